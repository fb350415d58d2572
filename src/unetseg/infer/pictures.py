"""Pictures: the seed's mask | image | prediction montage, galleries of errors, class colours and legends,
and the confusion matrix."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

GAP = 4
CAPTION = 14
TP, FP, FN = (40, 200, 40), (230, 40, 40), (40, 90, 255)


IGNORED_COLOUR = (128, 128, 128)


def colourize(labels: np.ndarray, colours) -> np.ndarray:
    """Class indices as an RGB picture in the class colours; ignored (or unknown) pixels grey."""
    table = np.array(list(colours) + [IGNORED_COLOUR] * (256 - len(colours)), np.uint8)
    return table[labels]


def legend(names, colours, width: int) -> np.ndarray:
    """A strip naming each class beside a square of its colour, as wide as the picture it goes under."""
    per_row = max(1, width // 120)
    rows = -(-len(names) // per_row)
    strip = Image.new("RGB", (width, rows * CAPTION + 2), "white")
    draw = ImageDraw.Draw(strip)
    for index, (name, colour) in enumerate(zip(names, colours)):
        x, y = (index % per_row) * (width // per_row) + 2, (index // per_row) * CAPTION + 2
        draw.rectangle((x, y, x + 10, y + 10), fill=tuple(colour), outline="black")
        draw.text((x + 14, y), name, fill="black")
    return np.asarray(strip)


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
            picture = Image.fromarray(_rgb(panel))
            if picture.size != (width, height):  # images of their own sizes (patches): shown at the first's
                picture = picture.resize((width, height), Image.NEAREST)
            canvas.paste(picture, (c * (width + GAP), r * row_height + top))
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


def class_gallery(panels, colours) -> Image.Image:
    """Rows of image | true classes | predicted classes, captioned with id and dice: worst first."""
    rows = [[image, colourize(truth, colours), colourize(predicted, colours)]
            for _, image, truth, predicted, _ in panels]
    captions = [f"{id_}  dice {dice:.3f}" for id_, _, _, _, dice in panels]
    return _grid(rows, captions)


def confusion_picture(table, cell: int = 28) -> Image.Image:
    """A confusion matrix's rows normalised (each true class's pixels as shares of its predictions),
    darker for larger shares, the percentage in each cell; rows and columns numbered, names on the left."""
    counts = table.to_numpy().astype(float)
    shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    names = [f"{i} {name}" for i, name in enumerate(table.index)]
    left = 8 + 7 * max(len(n) for n in names)
    size = len(names)
    canvas = Image.new("RGB", (left + size * cell + 2, CAPTION + size * cell + 2), "white")
    draw = ImageDraw.Draw(canvas)
    for column in range(size):
        draw.text((left + column * cell + cell // 3, 0), str(column), fill="black")
    for row, name in enumerate(names):
        y = CAPTION + row * cell
        draw.text((2, y + cell // 3), name, fill="black")
        for column in range(size):
            level = int(round(255 * (1 - shares[row, column])))
            x = left + column * cell
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=(level, level, 255), outline=(220, 220, 220))
            ink = "white" if level < 128 else "black"
            draw.text((x + 3, y + cell // 3), f"{100 * shares[row, column]:.0f}", fill=ink)
    return canvas
