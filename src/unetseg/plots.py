"""Pictures: the seed's mask | image | prediction montage."""

from __future__ import annotations

import numpy as np
from PIL import Image

GAP = 4


def _rgb(array: np.ndarray) -> np.ndarray:
    if array.ndim == 2:  # a {0,1} mask
        array = np.repeat((array > 0)[..., None] * 255, 3, axis=2)
    return array.astype(np.uint8)


def montage(rows: list[tuple[np.ndarray, ...]]) -> Image.Image:
    """Rows of same-sized panels (masks as {0,1} 2-D arrays, images as RGB), white gaps between."""
    height, width = rows[0][0].shape[:2]
    columns = len(rows[0])
    canvas = Image.new("RGB", (columns * width + (columns - 1) * GAP, len(rows) * height + (len(rows) - 1) * GAP), "white")
    for r, row in enumerate(rows):
        for c, panel in enumerate(row):
            canvas.paste(Image.fromarray(_rgb(panel)), (c * (width + GAP), r * (height + GAP)))
    return canvas
