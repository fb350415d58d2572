"""Where a mask file becomes truth: binary masks by stated rules, label and colour masks by the class map.

Masks become {0,1} uint8:
- palette (GIF/PNG): by palette index, whatever the colours: index 0 background,
  the other index foreground; more than two indices in use is an error (more than
  two classes). Where the background index has the brighter colour (white objects
  on black read inverted), the data check warns naming the files. On Carvana's GIFs
  this equals thresholding `tf.io.decode_gif`'s RGB frames.
- 1-bit: as it is.
- greyscale (8 or 16 bit), or RGB whose channels agree (black/white): with at most
  two grey levels, the lower is background and the higher foreground ({0,1},
  {0,255}, {0,128} alike); with more, if all levels are small integers (< 32) the
  file is a label map with more than two classes: an error; if none is above half the
  full scale, object ids (nothing would be foreground): an error; otherwise (JPEG noise,
  antialiased edges) foreground is above half the full scale, and the pixels that
  are genuinely ambiguous, more than a quarter of the full scale away from both
  black and white (between 25 % and 75 % of it), are counted as non-binary: the
  ringing that every JPEG edge has stays near one level, a grey or blurred picture
  does not.
- RGB with more than two colours: an error.
- with `data.instance_masks`, masks of object ids (an instance label map, grey,
  palette or colours): every nonzero pixel is foreground, however many ids.

With named classes (unetseg.data.classes) a mask is read as values, never thresholded:
label maps (`classes.masks: labels`) by palette index or grey level (8 or 16 bit;
an RGB mask whose channels all agree counts as grey), colour masks (`colours`) as
RGB colours (a palette mask by its palette's colours); the class map turns the
values into class indices. A colour mask read as labels, or a grey one read as
colours, is an error that says which setting to change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from unetseg.config.params import Data
from unetseg.core.errors import DataError
from unetseg.data.classes import ClassMap
from unetseg.data.decoding import DEFAULT_MAX_PIXELS, Decoded, open_checked, read_image, sixteen_bit
from unetseg.data.resize import resize_mask_nearest

LABEL_MAP_LEVELS = 32  # grey levels all below this, more than two of them: a label map
GREY_TOLERANCE = 24  # RGB channels this close count as grey (JPEG chroma noise)
COLOUR_FRACTION = 0.01  # more pixels than this with channels apart: a colour mask


@dataclass(frozen=True)
class MaskReading:
    mask: np.ndarray  # uint8 (height, width): {0,1}, or class indices (unetseg.data.classes)
    nonbinary: int  # pixels that were not exactly background or foreground
    info: Decoded
    # a binary palette mask whose background index has the brighter colour: white objects on
    # black read as background, which trains an inverted model (the data check warns)
    bright_background: bool = False


def open_mask(path: Path, max_pixels: int) -> tuple[Image.Image, Decoded]:
    """A mask file decoded, where every reader opens one: pixels it leaves fully transparent are background
    (0), whatever colour they store (objects drawn on a transparent layer); a mask whose colour is one
    value throughout and whose alpha draws the objects is its alpha."""
    image, info = open_checked(path, "mask", max_pixels)
    if image.mode not in ("LA", "RGBA"):
        return image, info
    alpha = np.asarray(image.getchannel("A"))
    if alpha.min() == 255:
        return image, info
    values = np.asarray(image.convert(image.mode[:-1])).copy()
    drawn = values[alpha > 0]
    if not len(drawn) or (drawn == drawn[0]).all():  # one colour where opaque: the alpha is the drawing
        return Image.fromarray(alpha), info
    values[alpha == 0] = 0
    return Image.fromarray(values), info  # L or RGB, from the array


def turned(mask_shape, image_shape) -> bool:
    """A mask turned a quarter against its image: drawn on a photo's stored pixels while the photo, read
    by its EXIF orientation, turns. No resize can fix it (it would stretch the mask across the image)."""
    return tuple(mask_shape) == tuple(image_shape)[::-1] != tuple(image_shape)


def _levels(values: np.ndarray) -> np.ndarray:
    """The distinct values of an array; two passes instead of a sort when there are at most two."""
    low, high = values.min(), values.max()
    if high - low <= 1 or not np.count_nonzero((values != low) & (values != high)):
        return np.unique([low, high])
    return np.unique(values)


def _two_levels(values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """With at most two levels: the higher one is foreground (a single level: foreground if nonzero)."""
    return (values == levels.max()).astype(np.uint8) if levels.max() > 0 else np.zeros(values.shape, np.uint8)


def _grey_mask(path: Path, grey: np.ndarray, full: int) -> tuple[np.ndarray, int]:
    levels = _levels(grey)
    if levels.size <= 2:
        return _two_levels(grey, levels), 0
    if levels.max() < LABEL_MAP_LEVELS:
        raise DataError(
            f"{path}: mask has {levels.size} classes (values {', '.join(map(str, levels[:8]))}"
            f"{'…' if levels.size > 8 else ''}) but the model is binary: name the classes in classes.names "
            "(docs/guides/classes.md), or, if the values are object ids, set data.instance_masks true"
        )
    if levels.max() <= full / 2:  # thresholded at half the scale, nothing would be foreground
        raise DataError(f"{path}: mask has {levels.size} levels, none above half its scale (at most "
                        f"{levels.max()}): object ids (instance labels)? data.instance_masks true reads every "
                        "nonzero pixel as an object")
    nonbinary = int(np.count_nonzero((grey > full / 4) & (grey < full * 3 / 4)))
    return (grey > full / 2).astype(np.uint8), nonbinary


def read_mask(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, max_nonbinary_fraction: float = 1.0,
              instances: bool = False) -> MaskReading:
    """A mask file as {0,1} by the rules of the module docstring; with `instances` (data.instance_masks),
    a mask of object ids: every nonzero pixel (grey level, palette index or colour) is an object's.

    A mask whose non-binary pixels exceed `max_nonbinary_fraction` of its pixels is
    an error: it is probably not a mask, or not a binary one.
    """
    path = Path(path)
    image, info = open_mask(path, max_pixels)
    nonbinary, bright_background = 0, False
    if instances:  # however many ids, whatever their values; an alpha channel is no id
        plain = {"LA": "L", "PA": "P", "RGBA": "RGB"}.get(image.mode)
        ids = np.asarray(image.convert(plain) if plain else image)
        mask = (ids.reshape(ids.shape[0], ids.shape[1], -1) != 0).any(axis=2).astype(np.uint8)
    elif image.mode in ("P", "PA"):
        indices = np.asarray(image.convert("P") if image.mode == "PA" else image)
        used = _levels(indices)
        if used.size > 2:
            raise DataError(
                f"{path}: palette mask uses {used.size} indices ({', '.join(map(str, used[:8]))}) "
                "but the model is binary: name the classes in classes.names (docs/guides/classes.md)"
            )
        if list(used) == [0, 1]:
            mask = indices  # already {0,1}
        else:
            mask = (indices != 0).astype(np.uint8) if 0 in used else _two_levels(indices, used)
        bright_background = used.size == 2 and _palette_luma(image, used[0]) > _palette_luma(image, used[1])
    elif image.mode == "1":
        mask = np.asarray(image, dtype=np.uint8)
    elif sixteen_bit(image):
        mask, nonbinary = _grey_mask(path, np.asarray(image, dtype=np.int64), 65535)
    elif image.mode in ("L", "LA"):
        mask, nonbinary = _grey_mask(path, np.asarray(image.convert("L"), dtype=np.int64), 255)
    else:
        rgb = np.asarray(image.convert("RGB"), dtype=np.int64)
        spread = rgb.max(axis=2) - rgb.min(axis=2)
        colours = _levels((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])  # packed: a 1-D sort
        if len(colours) == 2:  # two colours of any hue: the brighter is foreground
            luma = rgb @ np.array([299, 587, 114])
            mask = _two_levels(luma, np.unique(luma))
        elif np.count_nonzero(spread > GREY_TOLERANCE) > COLOUR_FRACTION * spread.size:
            raise DataError(f"{path}: colour mask with {len(colours)} colours; expected black and white")
        else:
            mask, nonbinary = _grey_mask(path, rgb.mean(axis=2).round().astype(np.int64), 255)
    if nonbinary > max_nonbinary_fraction * mask.size:
        raise DataError(
            f"{path}: {nonbinary / mask.size:.1%} of the mask's pixels are neither background nor "
            f"foreground, over the limit of {max_nonbinary_fraction:.1%} (data.max_nonbinary_fraction)"
        )
    return MaskReading(mask, nonbinary, info, bright_background)


def _palette_luma(image: Image.Image, index: int) -> int:
    """The brightness (ITU-R 601 weights) of a palette entry's colour."""
    palette = image.getpalette() or []
    red, green, blue = (palette[3 * index : 3 * index + 3] + [0, 0, 0])[:3]
    return 299 * red + 587 * green + 114 * blue


def _mask_values(path: Path, image: Image.Image, masks: str) -> np.ndarray:
    """A mask's raw values: (H, W) indices or grey levels for label maps, (H, W, 3) for colour masks."""
    if masks == "labels":
        if image.mode in ("P", "PA"):
            indices = np.asarray(image)
            return indices[..., 0] if indices.ndim == 3 else indices
        if sixteen_bit(image):
            return np.asarray(image, dtype=np.int64)
        if image.mode in ("1", "L", "LA"):
            return np.asarray(image.convert("L"))
        rgb = np.asarray(image.convert("RGB"))
        if (rgb == rgb[..., :1]).all():
            return rgb[..., 0]
        raise DataError(
            f"{path}: a colour ({image.mode}) mask, but classes.masks is labels (class indices); "
            "for colour-coded masks set classes.masks: colours and give each class's [r, g, b]"
        )
    if image.mode in ("P", "PA", "RGB", "RGBA", "CMYK", "YCbCr"):
        return np.asarray(image.convert("RGB"))
    raise DataError(
        f"{path}: a greyscale ({image.mode}) mask, but classes.masks is colours; "
        "for masks of class indices set classes.masks: labels"
    )


def read_labels(path: str | Path, classes: ClassMap, max_pixels: int = DEFAULT_MAX_PIXELS) -> MaskReading:
    """A mask file as uint8 class indices by the class map (IGNORE for ignored values)."""
    path = Path(path)
    image, info = open_mask(path, max_pixels)
    return MaskReading(classes.encode(_mask_values(path, image, classes.masks), path), 0, info)


def read_truth(
    mask_path, image_size: tuple[int, int], data: Data, image_path=None, classes: ClassMap | None = None
) -> MaskReading:
    """The mask of an image of `image_size` (height, width) by the data rules, wherever a truth mask is read:
    {0,1} for binary masks, class indices by the class map `classes`.

    Sizes must agree, unless `data.resize_masks`: then the mask is resized to its
    image by nearest neighbour.
    """
    if classes is None:
        reading = read_mask(mask_path, data.max_pixels, data.max_nonbinary_fraction, data.instance_masks)
    else:
        reading = read_labels(mask_path, classes, data.max_pixels)
    height, width = image_size
    if reading.mask.shape != (height, width):
        if turned(reading.mask.shape, (height, width)):
            raise DataError(f"{image_path or 'its image'} is {width}x{height} but its mask {mask_path} is "
                            f"{height}x{width} (width x height): turned a quarter, as by an image's EXIF "
                            "orientation (unetseg applies it to images); save the image and mask the same way up")
        if not data.resize_masks:
            raise DataError(
                f"{image_path or 'its image'} is {width}x{height} but its mask {mask_path} is "
                f"{reading.mask.shape[1]}x{reading.mask.shape[0]} (width x height); "
                "data.resize_masks: true resizes masks"
            )
        reading = replace(reading, mask=resize_mask_nearest(reading.mask, (height, width)))
    return reading


@dataclass(frozen=True)
class PairReading:
    image: np.ndarray
    mask: np.ndarray
    image_info: Decoded
    mask_info: Decoded
    nonbinary: int
    bright_background: bool = False


def load_pair(image_path, mask_path, data: Data, classes: ClassMap | None = None) -> PairReading:
    """An image, fully decoded, and its mask (`read_truth`): what the data check reads."""
    image, image_info = read_image(image_path, data.max_pixels, with_info=True, bits=data.image_bits)
    reading = read_truth(mask_path, image_info.size, data, image_path, classes)
    return PairReading(image, reading.mask, image_info, reading.info, reading.nonbinary, reading.bright_background)
