"""Decode once, at the model size: the pairs table to TFRecord shards per split."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from unetseg.checking import load_pair
from unetseg.imaging import resize_image, resize_mask
from unetseg.params import Data
from unetseg.tfrecords import Example, write_manifest, write_shards

def load_example(id_: str, image_path: str, mask_path: str, size: tuple[int, int], data: Data) -> Example:
    """One pair decoded by the data rules and resized to the model size."""
    pair = load_pair(image_path, mask_path, data)
    return Example(id_, resize_image(pair.image, size), resize_mask(pair.mask, size), pair.image.shape[:2])


def write_tfrecords(pairs: pd.DataFrame, out_dir: Path, size: tuple[int, int], num_shards: int, data: Data) -> dict:
    """Write every split of `pairs` as shards in `out_dir` with its manifest; return counts."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shards, counts = {}, {}
    for split, rows in pairs.groupby("split", sort=True):
        examples = (
            load_example(row.id, row.image, row.mask, size, data) for row in rows.itertuples(index=False)
        )
        shards[split] = write_shards(examples, len(rows), out_dir, split, num_shards)
        counts[split] = len(rows)
    write_manifest(out_dir, size, shards)
    return counts
