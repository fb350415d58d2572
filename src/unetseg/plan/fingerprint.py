"""A dataset's fingerprint: what the planner needs to know about the files, read once.

Each pair is read in a worker process, which returns a few numbers and small
histograms, never pixels, so memory does not grow with the dataset. Masks are read
as raw values (palette indices, grey levels, or packed RGB colours) because what
they mean (binary, label map, colours) is a decision made from all of them
together. Every mask is also squashed to each candidate size (and scale) and blown
back as the pipeline would, to measure the resolution ceiling: what a perfect
network could still score at that size.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from PIL import Image
from scipy import ndimage

from unetseg.core.errors import DataError
from unetseg.data.checking import map_in_workers
from unetseg.data.decoding import read_image, sixteen_bit
from unetseg.data.masks import GREY_TOLERANCE, open_mask
from unetseg.data.resize import resize_mask, resize_mask_nearest, resize_probabilities

GREY, INDEX, COLOUR = "grey", "index", "colour"
MAX_VALUES = 255  # more distinct values in one mask than this: not a label map (JPEG noise, a photo)
NOISY_MIDDLE = 0.05  # a binary mask's share of pixels half way between black and white (data.masks' limit)
FEW_COLOURS = 32  # an RGB mask of at most this many colours is a colour mask, however close they are to grey
SIZE_STEP = 32  # candidate sides are multiples of this: what a U-Net of 5 halvings (the encoder) needs
LONG_SIDES = (64, 96, 128, 160, 192, 224, 256)  # resize candidates; above, patches (decisions.MAX_RESIZE)
SCALES = (1.0, 0.75, 0.5, 0.375, 0.25)
# a pixel whose channels are further apart than this is coloured: a grey car on a grey floor has a
# fifth of its pixels so (Carvana), a grey micrograph none, even saved as JPEG
COLOURED = 8
FEW_IDS = 16  # up to this many values, count each one's regions (a few numbered objects: one region each)
ID_CHANGES = 0.25  # an instance label map changes value at more pixels than this (a row's neighbours) only if it is a picture


class RawMask(NamedTuple):
    values: np.ndarray  # palette indices, grey levels, or colours packed as r<<16|g<<8|b
    kind: str
    full: int  # the full scale of the values
    # palette masks: the packed colour of each index in use (tools that save a palette per file can give
    # one index another colour in each: unetseg.plan.task reads those by colour)
    palette: dict | None = None
    rgb: bool = False  # an RGB file, which classes.masks: colours reads (a grey one among colour masks)


def _raw_mask(path, max_pixels: int) -> RawMask:
    """A mask's raw values. An RGB mask is grey when its channels agree, or when it has many colours
    that all but agree (a black/white mask saved as JPEG, read by its grey level as unetseg.data.masks
    reads it); a few colours, however close to grey, are a colour mask.
    """
    image, _ = open_mask(path, max_pixels)
    if image.mode in ("P", "PA"):
        values = np.asarray(image.convert("P") if image.mode == "PA" else image).astype(np.int64)
        entries = ((image.getpalette() or []) + [0] * 768)[:768]  # as Pillow's convert("RGB") pads it
        colours = {int(i): (entries[3 * i] << 16) | (entries[3 * i + 1] << 8) | entries[3 * i + 2]
                   for i in np.unique(values)}
        return RawMask(values, INDEX, 255, colours)
    if image.mode == "1":  # 0/255 as the label reader sees it (convert("L"))
        return RawMask(np.asarray(image, dtype=np.int64) * 255, GREY, 255)
    if sixteen_bit(image):
        return RawMask(np.asarray(image, dtype=np.int64), GREY, 65535)
    if image.mode in ("L", "LA"):
        return RawMask(np.asarray(image.convert("L"), dtype=np.int64), GREY, 255)
    rgb = np.asarray(image.convert("RGB"), dtype=np.int64)
    if (rgb == rgb[..., :1]).all():
        return RawMask(rgb[..., 0], GREY, 255, rgb=True)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    spread = rgb.max(axis=2) - rgb.min(axis=2)
    if len(np.unique(packed)) > FEW_COLOURS and np.count_nonzero(spread > GREY_TOLERANCE) <= 0.01 * spread.size:
        return RawMask(rgb.mean(axis=2).round().astype(np.int64), GREY, 255, rgb=True)
    return RawMask(packed, COLOUR, 255, rgb=True)


def noisy_binary(found: np.ndarray, kind: str, full: int, middle: float) -> bool:
    """Grey levels of a binary mask saved lossy or smoothed: more than two, some of them just below
    white (JPEG ringing) and few pixels half way (`middle`, their share), not the small indices of a
    label map with a void value at the top, nor a label map drawn in grey levels."""
    top = found[found < full]
    ringing = bool(np.any(top >= full * 3 / 4)) and middle <= NOISY_MIDDLE
    return kind == GREY and len(found) > 2 and (len(found) > MAX_VALUES or ringing)


def object_ids(values: np.ndarray, found: np.ndarray, counts: np.ndarray, kind: str, full: int) -> bool:
    """Values that may be object ids (an instance label map): 0, then ids filling at least half of 1 up to
    the largest, most of whose pixels are not in the top quarter of the scale (where a binary mask saved
    as JPEG has its objects), in regions of one value (not a picture: `ID_CHANGES`). A few such values
    may be classes as well: the planner decides."""
    if kind == COLOUR or found[0] != 0:
        return False
    top = counts[found >= full * 3 / 4].sum()
    if found[-1] > 2 * max(1, len(found) - 1) or top > counts[1:].sum() / 2:
        return False
    return bool(np.count_nonzero(values[:, 1:] != values[:, :-1]) <= ID_CHANGES * values[:, 1:].size)


def regions_per_value(values: np.ndarray, found: np.ndarray) -> list[int]:
    """How many separate regions (8-connected) each nonzero value makes: one each for a few numbered
    objects, several for a class (trees across a street scene)."""
    return [int(ndimage.label(values == value, structure=np.ones((3, 3)))[1]) for value in found if value != 0]


def _labels(values: np.ndarray, full: int, noisy: bool, ids: bool) -> tuple[np.ndarray, list]:
    """A provisional label image (uint8) and the value of each label: object ids too many for a label
    map as objects on background; a noisy binary mask (or one of many levels) thresholded at half the
    full scale, as the binary reader does; else the values."""
    found = np.unique(values)
    if ids and len(found) > MAX_VALUES:
        return (values != 0).astype(np.uint8), ["low", "high"]
    if noisy or len(found) > MAX_VALUES:
        return (values > full / 2).astype(np.uint8), ["low", "high"]
    return np.searchsorted(found, values).astype(np.uint8), [int(v) for v in found]


def _overlaps(labels: np.ndarray, back: np.ndarray, count: int) -> list[list[int]]:
    """Per label: [pixels in the truth, pixels in the round trip, pixels in both]."""
    truth = np.bincount(labels.ravel(), minlength=count)[:count]
    trip = np.bincount(back.ravel(), minlength=count)[:count]
    both = np.bincount(labels[labels == back].ravel(), minlength=count)[:count]
    return [[int(a), int(b), int(c)] for a, b, c in zip(truth, trip, both)]


def round_trip(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A mask squashed to `size` and blown back by the pipeline's rules: two labels as a binary mask
    (area majority down, probabilities bilinear up, threshold one half), more as a label map (nearest)."""
    original = labels.shape
    if labels.max() <= 1:
        small = resize_mask(labels, size)
        return (resize_probabilities(small.astype(np.float32), original) > 0.5).astype(np.uint8)
    return resize_mask_nearest(resize_mask_nearest(labels, size), original)


def structure_width(labels: np.ndarray) -> float | None:
    """The typical width in pixels of the structures that are not the image's largest label: four times
    their mean distance to the boundary (exact for stripes; two thirds of the diameter for discs)."""
    counts = np.bincount(labels.ravel())
    minority = labels != counts.argmax()
    if not minority.any():
        return None
    return float(4 * ndimage.distance_transform_edt(minority)[minority].mean())


@dataclass(frozen=True)
class PairJob:
    image: str
    mask: str
    max_pixels: int
    sizes: tuple  # candidate (height, width) of the resize mode
    ignore: tuple  # values the user names as void


def measure_pair(job: PairJob) -> dict:
    """What the fingerprint keeps of one pair; a file that cannot be read is a problem, not an exception."""
    start = time.perf_counter()
    try:
        image, info = read_image(job.image, job.max_pixels, with_info=True)
        raw = _raw_mask(job.mask, job.max_pixels)
        values, kind, full = raw.values, raw.kind, raw.full
    except DataError as error:
        return {"problem": str(error)}
    read_seconds = time.perf_counter() - start
    sample = image[::4, ::4].astype(np.int16)
    result = {
        "mask": job.mask, "size": list(info.size), "mask_size": list(values.shape), "kind": kind, "full": full,
        "colour_share": float(np.mean(sample.max(axis=2) - sample.min(axis=2) > COLOURED)), "read_seconds": read_seconds,
        "image_top": info.top, "palette": raw.palette, "rgb": raw.rgb,
    }
    found, counts = np.unique(values, return_counts=True)
    left = np.unique(values[:, : values.shape[1] // 2], return_counts=True)
    # pixels per value, and in the left half of the image (for mirroring): the top 256 values of a
    # 16-bit mask at most, which is every value of an 8-bit one
    result["values"] = {int(v): int(n) for v, n in zip(found[-256:], counts[-256:])}
    result["pixels"] = int(values.size)
    result["left"] = {int(v): int(n) for v, n in zip(*left) if int(v) in result["values"]}
    result["distinct"] = len(found)
    result["bright"] = int(np.count_nonzero(values > full / 2))
    result["nonbinary"] = float(np.count_nonzero((values > full / 4) & (values < full * 3 / 4)) / values.size)
    result["ids"] = object_ids(values, found, counts, kind, full)
    result["background"] = int(counts[0]) if found[0] == 0 else 0
    result["regions"] = regions_per_value(values, found) if kind != COLOUR and len(found) <= FEW_IDS + 1 else []
    result["noisy"] = not (result["ids"] and len(found) > MAX_VALUES) and noisy_binary(
        found, kind, full, result["nonbinary"])
    if kind == COLOUR and len(found) > MAX_VALUES:
        return result  # refused by the planner: too many colours for a class map
    labels, names = _labels(np.where(np.isin(values, job.ignore), values.min(), values), full, result["noisy"],
                            result["ids"])
    if labels.shape != tuple(info.size):  # as data.resize_masks would have it
        labels = resize_mask_nearest(labels, tuple(info.size))
    result["label_values"] = names
    result["width"] = structure_width(labels)
    result["resize"] = {f"{h}x{w}": _overlaps(labels, round_trip(labels, (h, w)), len(names)) for h, w in job.sizes}
    height, width = info.size
    result["scales"] = {
        str(s): _overlaps(labels, round_trip(labels, (max(1, round(height * s)), max(1, round(width * s)))),
                          len(names))
        for s in SCALES if s < 1
    }
    return result


def candidate_sizes(sizes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Resize-mode sizes at the images' median aspect ratio, long sides from `LONG_SIDES`, both sides
    multiples of `SIZE_STEP`, none above the median image."""
    heights, widths = np.array([s[0] for s in sizes]), np.array([s[1] for s in sizes])
    aspect = float(np.median(heights / widths))
    longest = max(np.median(heights), np.median(widths))
    found = []
    for side in LONG_SIDES:
        if side > max(longest, LONG_SIDES[0]):
            break
        short = max(LONG_SIDES[0], round(side * min(aspect, 1 / aspect) / SIZE_STEP) * SIZE_STEP)
        size = (side, short) if aspect >= 1 else (short, side)
        if size not in found:
            found.append(size)
    return found


@dataclass
class Fingerprint:
    pairs: int
    results: list[dict]  # per pair, as measure_pair returns it
    sizes: list[tuple[int, int]]  # the resize candidates
    problems: list[str] = field(default_factory=list)

    def counter(self, key) -> Counter:
        return Counter(key(r) for r in self.results)


def header_sizes(pairs, max_pixels: int) -> list[tuple[int, int]]:
    """Each image's (height, width) from its header alone (EXIF turn included), for the candidate sizes."""
    sizes = []
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # our own limit, below, names the file
    try:
        for pair in pairs:
            sizes.append(_header_size(pair.image, max_pixels))
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return sizes


def _header_size(path, max_pixels: int) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            width, height = image.size
            if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                width, height = height, width
    except (OSError, SyntaxError, ValueError) as error:
        raise DataError(f"{path}: cannot read the image's header: {error}") from None
    if width * height > max_pixels:
        raise DataError(f"{path}: {width}x{height} pixels, over data.max_pixels {max_pixels:,}")
    return height, width


def fingerprint(pairs, max_pixels: int, ignore: tuple = (), workers: int = 0) -> Fingerprint:
    """Read every pair once, in `workers` processes (0: one per core)."""
    sizes = candidate_sizes(header_sizes(pairs, max_pixels))
    jobs = [PairJob(str(p.image), str(p.mask), max_pixels, tuple(sizes), tuple(ignore)) for p in pairs]
    results = map_in_workers(measure_pair, jobs, workers, "plan: reading pairs")
    problems = [r["problem"] for r in results if "problem" in r]
    return Fingerprint(len(pairs), [r for r in results if "problem" not in r], sizes, problems)
