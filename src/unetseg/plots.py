"""Pictures: the seed's mask | image | prediction montage, and a gallery of errors."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

GAP = 4
CAPTION = 14
TP, FP, FN = (40, 200, 40), (230, 40, 40), (40, 90, 255)


def _rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:  # a {0,1} mask
        array = np.repeat((array > 0)[..., None] * 255, 3, axis=2)
    elif array.dtype != np.uint8:  # a float image in [0, 1]
        array = np.clip(array * 255 + 0.5, 0, 255)
    return array.astype(np.uint8)


def _grid(rows: list[list[np.ndarray]], captions: list[str] | None = None) -> Image.Image:
    height, width = rows[0][0].shape[:2]
    columns, top = len(rows[0]), CAPTION if captions else 0
    row_height = top + height + GAP
    canvas = Image.new("RGB", (columns * (width + GAP) - GAP, len(rows) * row_height - GAP), "white")
    draw = ImageDraw.Draw(canvas)
    for r, row in enumerate(rows):
        if captions:
            draw.text((2, r * row_height), captions[r], fill="black")
        for c, panel in enumerate(row):
            canvas.paste(Image.fromarray(_rgb(panel)), (c * (width + GAP), r * row_height + top))
    return canvas


def montage(rows: list[tuple[np.ndarray, ...]]) -> Image.Image:
    """Rows of same-sized panels (masks as {0,1} 2-D arrays, images as RGB), white gaps between."""
    return _grid([list(row) for row in rows])


def tint(image: np.ndarray, region: np.ndarray, colour, weight: float) -> np.ndarray:
    """The image (RGB uint8, or float in [0, 1]) with `region` blended towards `colour` by `weight`."""
    out = _rgb(image).astype(np.float32)
    out[region] = (1 - weight) * out[region] + weight * np.array(colour, np.float32)
    return out.round().astype(np.uint8)


def error_colours(image: np.ndarray, truth: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """The image with true positives green, false positives red and false negatives blue."""
    for region, colour in ((truth & predicted, TP), (~truth & predicted, FP), (truth & ~predicted, FN)):
        image = tint(image, region, colour, 0.6)
    return image


def gallery(panels: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, float]]) -> Image.Image:
    """Rows of image | errors (TP green, FP red, FN blue), captioned with id and dice: worst first."""
    rows = [[image, error_colours(image, truth, predicted)] for _, image, truth, predicted, _ in panels]
    captions = [f"{id_}  dice {dice:.3f}" for id_, _, _, _, dice in panels]
    return _grid(rows, captions)
