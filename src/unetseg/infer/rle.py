"""Run-length encoding of masks as the Kaggle Carvana competition wrote them.

`train_masks.csv` and submissions hold `img,rle_mask` rows; `rle_mask` is a list of
"start length" pairs, 1-indexed, over the mask flattened row by row (1280 rows of
1918 pixels for Carvana).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from unetseg.core.atomic import atomic_output


def rle_encode(mask: np.ndarray) -> str:
    """'start length start length …' of the foreground runs of a 2-D mask."""
    flat = np.concatenate([[0], (mask.ravel() > 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(flat)) + 1  # 1-indexed starts, then ends + 1
    starts, ends = edges[::2], edges[1::2]
    return " ".join(f"{s} {e - s}" for s, e in zip(starts, ends))


def rle_decode(rle: str, shape: tuple[int, int]) -> np.ndarray:
    """The {0,1} uint8 mask of `shape` (height, width) that `rle` describes: the inverse the round-trip
    test checks `rle_encode` against (the pipeline itself only writes submissions)."""
    flat = np.zeros(shape[0] * shape[1], np.uint8)
    numbers = np.array(rle.split(), dtype=np.int64)
    if numbers.size % 2:
        raise ValueError("run-length encoding needs start/length pairs")
    for start, length in zip(numbers[::2], numbers[1::2]):
        flat[start - 1 : start - 1 + length] = 1
    return flat.reshape(shape)


def write_submission(rows: list[tuple[str, str]], path: str | Path) -> None:
    """A Kaggle-style CSV with header `img,rle_mask`, written atomically."""
    with atomic_output(path) as temporary, open(temporary, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["img", "rle_mask"])
        writer.writerows(rows)
