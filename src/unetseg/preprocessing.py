"""Decode once, at the model size: the pairs table to TFRecord shards per split."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from unetseg.errors import DataError
from unetseg.imaging import read_image, read_mask, resize_image, resize_mask
from unetseg.tfrecords import Example, write_manifest, write_shards

def load_example(id_: str, image_path: str, mask_path: str, size: tuple[int, int]) -> Example:
    """One pair decoded and resized; image and mask must have the same size."""
    image, mask = read_image(image_path), read_mask(mask_path)
    if image.shape[:2] != mask.shape:
        raise DataError(
            f"{image_path} is {image.shape[1]}x{image.shape[0]} but its mask {mask_path} is "
            f"{mask.shape[1]}x{mask.shape[0]} (width x height)"
        )
    return Example(id_, resize_image(image, size), resize_mask(mask, size), image.shape[:2])


def write_tfrecords(pairs: pd.DataFrame, out_dir: Path, size: tuple[int, int], num_shards: int) -> dict:
    """Write every split of `pairs` as shards in `out_dir` with its manifest; return counts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shards, counts = {}, {}
    for split, rows in pairs.groupby("split", sort=True):
        examples = (
            load_example(row.id, row.image, row.mask, size) for row in rows.itertuples(index=False)
        )
        shards[split] = write_shards(examples, len(rows), out_dir, split, num_shards)
        counts[split] = len(rows)
    write_manifest(out_dir, size, shards)
    return counts
