"""Resizing images, masks and probabilities to another size (where a file becomes model input:
unetseg.model.applying)."""

from __future__ import annotations

import numpy as np
from PIL import Image

from unetseg.data.classes import ClassMap


def shrink(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to (height, width): first by box averaging over whole blocks when shrinking by
    2x or more (cheap), then bilinear, which Pillow antialiases when shrinking."""
    height, width = size
    factor = min(image.height // height, image.width // width)
    if factor >= 2:
        image = image.reduce(factor)
    return image.resize((width, height), Image.BILINEAR)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An RGB uint8 image at (height, width)."""
    if image.shape[:2] == tuple(size):
        return image
    return np.asarray(shrink(Image.fromarray(image), size))


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a {0,1} mask and re-threshold at one half: the area-weighted majority, still {0,1}."""
    if mask.shape == tuple(size):
        return mask
    scaled = shrink(Image.fromarray(mask * np.uint8(255)), size)
    return (np.asarray(scaled) >= 128).astype(np.uint8)


def resize_mask_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize: every pixel keeps a label of the original, none is invented at a boundary."""
    height, width = size
    if mask.shape == (height, width):
        return mask
    return np.asarray(Image.fromarray(mask).resize((width, height), Image.NEAREST))


def resize_truth(mask: np.ndarray, size: tuple[int, int], classes: ClassMap | None) -> np.ndarray:
    """A truth mask at the model size: a binary one by area majority, a label map by nearest neighbour
    (class indices have no order to average, and ignored pixels stay ignored)."""
    return resize_mask(mask, size) if classes is None else resize_mask_nearest(mask, size)


def resize_probabilities(values: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a float (height, width) map, or of each channel of (height, width, K) maps:
    probabilities back to full size."""
    height, width = size
    if values.shape[:2] == (height, width):
        return np.asarray(values, np.float32)  # no copy of a large map that is already right
    if values.ndim == 3:
        return np.stack([resize_probabilities(values[..., k], size) for k in range(values.shape[2])], axis=-1)
    return np.asarray(Image.fromarray(values.astype(np.float32)).resize((width, height), Image.BILINEAR))
