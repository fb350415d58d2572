"""How a model meets an image: every rule from an image file to its mask, in one place.

Evaluate, predict, `unetseg predict`, the exports (unetseg.export.graph writes the
same rules in TensorFlow ops, and `mask_steps` lists them for export.json) and
training's padding and validation tiles call these functions; no other module pads,
tiles, blends, mirrors, resizes back or thresholds. In order:

1. input (`model_input`): the file decoded (a large JPEG at reduced scale) and resized
   to the model's size, or to the working scale of a model trained on patches;
2. padding (`pad_pair`, `pad_for_tiles`): by reflection on every side, half a tile's
   overlap and up to a whole tile where the image is smaller (an axis of one pixel
   is repeated); masks are padded with the ignored value. Training patches, validation
   tiles and the sliding window all pad this way, so the network trains on the
   borders it is shown;
3. the sliding window (`sliding_window`, patch models): overlapping tiles in a regular
   grid whose last row and column end flush with the padded border, batched; each
   tile's probabilities weighted by a Gaussian of standard deviation 1/8 of the tile
   (nnU-Net's choice; low at the edges, where a convolution sees zero padding) and
   the sum divided by the summed weights, so a model that returns its input gives it back;
4. the network on floats in [0, 1] and the mirror average (`probabilities`, `tta_flip`):
   the mean of the image's and its mirror image's probabilities;
5. the resize back (`mask_at`): bilinear, each class's channel, to the image's size —
   probabilities, never masks: a resized class index means nothing;
6. the mask (`to_mask`): foreground above `inference.threshold` (binary), or each
   pixel's most probable class; then, binary models only, `largest_component` keeps the
   largest 8-connected region (right for one object per image, as Carvana; wrong for many).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy import ndimage

from unetseg.config.params import Inference
from unetseg.core.application import Application
from unetseg.data.classes import ClassMap
from unetseg.data.decoding import DEFAULT_MAX_PIXELS, read_image
from unetseg.data.resize import resize_image, resize_probabilities

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


def pad_pair(image: np.ndarray, mask: np.ndarray, tile: tuple[int, int], ignore: int):
    """An (image, mask) pair at least a tile large, padded as the sliding window pads without overlap (the
    mask with `ignore`): training patches of small images (unetseg.train.patches) and validation tiles."""
    image, pads = pad_for_tiles(image, tile, tile)
    return image, np.pad(mask, pads + [(0, 0)] * (mask.ndim - 2), constant_values=ignore)


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
        padded, mask = pad_pair(image, mask, tile, ignore)
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


def model_input(path: str | Path, application: Application, max_pixels: int = DEFAULT_MAX_PIXELS):
    """(image, info): a file as the model sees it, RGB uint8, and what was read.

    The application says at what size: its own (resize), or its working scale of the
    image's own size (tiles). The one rule for training (preprocess) and use
    (evaluate, predict, the CLI): a large JPEG is decoded at reduced scale, then
    resized, so the model is never served pixels other than those it was trained on.
    """
    if application.tiled:
        image, info = read_image(path, max_pixels, with_info=True, bits=application.image_bits)
        return resize_image(image, application.working_size(info.size, path)), info
    image, info = read_image(path, max_pixels, with_info=True, reduce_to=application.size, bits=application.image_bits)
    return resize_image(image, application.size), info


def model_input_size(model) -> tuple[int, int]:
    height, width = model.input_shape[1:3]
    return int(height), int(width)


def _squeezed(p: np.ndarray) -> np.ndarray:
    return p[..., 0] if p.shape[-1] == 1 else p


def probabilities(model, images: np.ndarray, tta_flip: bool) -> np.ndarray:
    """For float images (N, H, W, 3) at the model's size: foreground probabilities (N, H, W) of a
    binary model, class probabilities (N, H, W, K) of a model of K classes."""
    p = _squeezed(np.asarray(model.predict_on_batch(images)))
    if tta_flip:
        mirrored = _squeezed(np.asarray(model.predict_on_batch(images[:, :, ::-1])))[:, :, ::-1]
        p = (p + mirrored) / 2
    return p


def tiled_probabilities(model, image: np.ndarray, application: Application, tta_flip: bool, batch: int = 8):
    """`probabilities` of one (H, W, 3) image (float, or uint8) of any size at the working scale, by
    the sliding window with the application's tile and overlap."""
    def predict(tiles):
        p = probabilities(model, tiles, tta_flip)
        return p[..., None] if p.ndim == 3 else p

    p = sliding_window(image, predict, application.size, application.overlap, batch)
    return p[..., 0] if p.shape[-1] == 1 else p


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Only the largest 8-connected foreground region of a {0,1} mask."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    return (labels == 1 + int(np.argmax(sizes))).astype(np.uint8)


def binarize(p: np.ndarray, inference: Inference, threshold: float | None = None) -> np.ndarray:
    """A {0,1} uint8 mask: foreground where p > threshold (`inference.threshold` unless given), refined as the params say."""
    mask = (p > (inference.threshold if threshold is None else threshold)).astype(np.uint8)
    return largest_component(mask) if inference.largest_component else mask


def to_mask(p: np.ndarray, inference: Inference, threshold: float | None = None) -> np.ndarray:
    """An image's mask from its probabilities: `binarize`d (H, W) foreground probabilities, or
    the most probable class of (H, W, K) class probabilities, as uint8 class indices."""
    if p.ndim == 3:
        return np.argmax(p, axis=-1).astype(np.uint8)
    return binarize(p, inference, threshold)


def mask_at(p: np.ndarray, size: tuple[int, int], inference: Inference) -> np.ndarray:
    """The mask at `size` (height, width) from model-size probabilities."""
    return to_mask(resize_probabilities(p, size), inference)


def mask_steps(application: Application, inference: Inference, classes: ClassMap | None) -> list[dict]:
    """Every step from an RGB uint8 image to its mask, in the order the functions above apply them, as
    data: export.json lists them (inside the exported file, or left to its caller) from this list."""
    if application.tiled:
        tile = [{"step": "scale", "divide_by": 255}, {"step": "network"},
                *([{"step": "mirror_average", "what": "the mean with the mirror tile's probabilities, mirrored back"}]
                  if inference.tta_flip else [])]
        steps = [
            {"step": "resize", "scale": application.scale, "what": "to round(height * scale) x round(width * scale): "
             "Pillow's box reduce by the whole factor, then its bilinear resize"},
            {"step": "sliding_window", "tile": list(application.size), "overlap": application.overlap,
             "sigma": SIGMA_FRACTION, "min_weight": MIN_WEIGHT, "tile_steps": tile,
             "what": "pad by reflection, on each side half a tile's overlap and up to a tile where the image is "
             "smaller; tiles every round(tile * (1 - overlap)) pixels, the last flush with the padded border; each "
             "tile's probabilities weighted by a Gaussian of sigma * tile (at least min_weight of its centre), "
             "summed and divided by the summed weights; the padding cut off"},
        ]
    else:
        steps = [{"step": "resize", "size": list(application.size), "what": "Pillow's box reduce by the whole "
                  "factor, then its bilinear resize"}, {"step": "scale", "divide_by": 255}, {"step": "network"},
                 *([{"step": "mirror_average", "what": "the mean with the mirror image's probabilities, mirrored back"}]
                   if inference.tta_flip else [])]
    steps.append({"step": "resize_back", "what": "bilinear, each channel, to the image's size"})
    if classes is not None:
        return [*steps, {"step": "argmax", "what": "each pixel's most probable class"}]
    steps.append({"step": "threshold", "above": inference.threshold, "what": "255 where the probability > above, else 0"})
    if inference.largest_component:
        steps.append({"step": "largest_component", "what": "only the largest 8-connected region of 255s"})
    return steps
