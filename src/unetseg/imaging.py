"""Decoding images and masks into arrays by stated rules, and resizing them.

Images become RGB uint8: greyscale is repeated, palette/CMYK/alpha images are
converted by Pillow (alpha dropped), 16-bit images are scaled to 8 bits (not
clipped). Masks become {0,1} uint8: a palette image by palette index (index 0 is
background, any other index foreground, whatever the colours), a 1-bit image as is,
any other image by its grey level: values already in {0,1} as they are, otherwise
foreground above half the range (128 of 255). The EXIF orientation of either is
applied, so image and mask turn together.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from unetseg.errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff"}

_DECODE_ERRORS = (OSError, SyntaxError, ValueError, UnidentifiedImageError, Image.DecompressionBombError)


def _open(path: Path, what: str) -> Image.Image:
    try:
        image = Image.open(path)
        image.load()
        return ImageOps.exif_transpose(image)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} file not found") from None
    except _DECODE_ERRORS as error:
        raise DataError(f"{path}: cannot decode {what}: {error}") from None


def _grey_levels(image: Image.Image) -> tuple[np.ndarray, int]:
    """(array, full-scale value) of a non-palette image, 16-bit kept at 16 bits."""
    if image.mode.startswith("I;16") or image.mode == "I":
        array = np.asarray(image, dtype=np.int64)
        return array, 65535 if array.max(initial=0) > 255 or image.mode.startswith("I;16") else 255
    if image.mode == "F":
        return np.asarray(image, dtype=np.float64), 1
    return np.asarray(image.convert("L"), dtype=np.int64), 255


def read_image(path: str | Path) -> np.ndarray:
    """An image file as an RGB uint8 array of shape (height, width, 3)."""
    path = Path(path)
    image = _open(path, "image")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        levels, full = _grey_levels(image)
        grey = np.clip(np.round(levels.astype(np.float64) * 255.0 / full), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def read_mask(path: str | Path) -> np.ndarray:
    """A mask file as a {0,1} uint8 array of shape (height, width)."""
    path = Path(path)
    image = _open(path, "mask")
    if image.mode in ("P", "PA"):
        return (np.asarray(image.convert("P") if image.mode == "PA" else image) != 0).astype(np.uint8)
    if image.mode == "1":
        return np.asarray(image, dtype=np.uint8)
    levels, full = _grey_levels(image)
    if levels.max(initial=0) <= 1:
        return (levels > 0).astype(np.uint8)
    return (levels > full / 2).astype(np.uint8)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize to (height, width); Pillow antialiases when shrinking."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a {0,1} mask and re-threshold at 0.5: the area-weighted majority, still {0,1}."""
    return (resize_probabilities(mask.astype(np.float32), size) >= 0.5).astype(np.uint8)


def resize_probabilities(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float (height, width) map, e.g. probabilities back to full size."""
    height, width = size
    if values.shape[:2] == (height, width):
        return values.astype(np.float32)
    resized = Image.fromarray(values.astype(np.float32)).resize((width, height), Image.BILINEAR)
    return np.asarray(resized)
