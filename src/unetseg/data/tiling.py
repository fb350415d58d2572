"""Sliding-window inference: a model of one tile size applied to an image of any size and aspect.

The image is padded by reflection — on every side by half the tiles' overlap, so that
its border lies inside tiles rather than on their edges, and up to one tile where it
is smaller — then covered by overlapping tiles in a regular grid whose last row and
column end exactly at the padded border. Tiles go to the model in batches; each
tile's probabilities are weighted by a Gaussian of standard deviation 1/8 of the
tile (nnU-Net's choice), highest at the centre and low at the edges where a
convolution sees zero padding, and the weighted sum is divided by the summed
weights. A model that returns its input therefore gives the input back (to float32
rounding). Memory: the padded image, one float32 accumulator per output channel and
one for the weights, at the working scale, plus one batch of tiles.
"""

from __future__ import annotations

import math

import numpy as np

SIGMA_FRACTION = 1 / 8
MIN_WEIGHT = 1e-4  # relative to the centre: no pixel of a tile counts for nothing


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Tile offsets along one axis of `length` >= `tile`: every `stride`, the last one flush with the end."""
    if length <= tile:
        return [0]
    count = math.ceil((length - tile) / stride) + 1
    return sorted({min(i * stride, length - tile) for i in range(count)})


def blend_weights(tile: tuple[int, int]) -> np.ndarray:
    """A (height, width) Gaussian, 1 at the centre, never below MIN_WEIGHT."""
    axes = []
    for size in tile:
        x = np.arange(size) - (size - 1) / 2
        axes.append(np.exp(-0.5 * (x / (size * SIGMA_FRACTION)) ** 2))
    weights = np.outer(*axes)
    return np.maximum(weights / weights.max(), MIN_WEIGHT).astype(np.float32)


def stride_of(tile: int, overlap: float) -> int:
    return max(1, int(round(tile * (1 - overlap))))


def _padding(length: int, tile: int, stride: int) -> tuple[int, int]:
    margin = (tile - stride) // 2
    total = max(length + 2 * margin, tile) - length
    return total // 2, total - total // 2


def _reflect(image: np.ndarray, pads) -> np.ndarray:
    """Pad by reflection; an axis of one pixel (nothing to mirror) by repeating it."""
    for axis, (before, after) in enumerate(pads):
        if before or after:
            mode = "reflect" if image.shape[axis] > 1 else "edge"
            widths = [(0, 0)] * image.ndim
            widths[axis] = (before, after)
            image = np.pad(image, widths, mode=mode)
    return image


def pad_for_tiles(image: np.ndarray, tile: tuple[int, int], strides: tuple[int, int]):
    """The image padded by reflection as the sliding window pads it, and the (top, bottom), (left, right)
    widths: half a tile's overlap on every side, and up to a whole tile where the image is smaller."""
    pads = [_padding(n, t, s) for n, t, s in zip(image.shape[:2], tile, strides)]
    return _reflect(image, pads), pads


def sample_tiles(pairs, total: int, tile: tuple[int, int], count: int, seed: int, ignore: int):
    """`count` (image, mask) tiles at seeded places, spread evenly over `total` (image, mask) pairs
    (an iterable, read once): validation during training.

    Each image is padded as the sliding window pads it without overlap (reflection, up to
    a tile where it is smaller; the mask's padding `ignore`d), so a tile is what
    inference feeds the network; its place is uniform over the padded image.
    """
    rng = np.random.default_rng(seed)
    # tile i comes from the i-th image of a seeded order, round and round: every image gets count // total
    # tiles or one more, and which get one more is drawn too
    order = rng.permutation(total)
    shares = np.bincount(order[np.arange(count) % total], minlength=total) if total else []
    cut_images, cut_masks = [], []
    for (image, mask), share in zip(pairs, shares):
        padded, pads = pad_for_tiles(image, tile, tile)
        mask = np.pad(mask, pads + [(0, 0)] * (mask.ndim - 2), constant_values=ignore)
        for _ in range(share):
            y = rng.integers(0, padded.shape[0] - tile[0] + 1)
            x = rng.integers(0, padded.shape[1] - tile[1] + 1)
            cut_images.append(padded[y : y + tile[0], x : x + tile[1]].copy())  # not a view: the image goes
            cut_masks.append(mask[y : y + tile[0], x : x + tile[1]].copy())
    return np.stack(cut_images), np.stack(cut_masks)


def sliding_window(image: np.ndarray, predict, tile: tuple[int, int], overlap: float, batch: int = 8) -> np.ndarray:
    """(H, W, C) probabilities of an (H, W, 3) image (float in [0, 1], or uint8), from `predict`, which
    maps (n, th, tw, 3) float tiles to (n, th, tw, C) probabilities."""
    height, width = image.shape[:2]
    strides = [stride_of(t, overlap) for t in tile]
    padded, ((top, _), (left, _)) = pad_for_tiles(image, tile, strides)
    weights = blend_weights(tile)
    corners = [(y, x) for y in tile_starts(padded.shape[0], tile[0], strides[0])
               for x in tile_starts(padded.shape[1], tile[1], strides[1])]
    total = weight_sum = None
    for start in range(0, len(corners), batch):
        chunk = corners[start : start + batch]
        tiles = np.stack([padded[y : y + tile[0], x : x + tile[1]] for y, x in chunk])
        if tiles.dtype == np.uint8:
            tiles = tiles.astype(np.float32) / 255.0
        p = np.asarray(predict(tiles), np.float32)
        if total is None:
            total = np.zeros(padded.shape[:2] + p.shape[3:], np.float32)
            weight_sum = np.zeros(padded.shape[:2], np.float32)
        for (y, x), tile_p in zip(chunk, p):
            total[y : y + tile[0], x : x + tile[1]] += tile_p * weights[..., None]
            weight_sum[y : y + tile[0], x : x + tile[1]] += weights
    total /= weight_sum[..., None]  # in place: no second image-sized array
    return total[top : top + height, left : left + width]
