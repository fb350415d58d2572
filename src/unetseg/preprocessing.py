"""Decode once, at the model size: the pairs table to TFRecord shards per split."""

from __future__ import annotations

import contextlib
import multiprocessing
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from unetseg.classes import ClassMap
from unetseg.imaging import model_input, read_truth, resize_truth
from unetseg.params import Data, worker_count
from unetseg.tfrecords import Example, serialize, write_manifest, write_shards


def load_example(
    id_: str, image_path: str, mask_path: str, size: tuple[int, int], data: Data, classes: ClassMap | None = None
) -> Example:
    """One pair as the model sees it (`model_input`) with its mask (`read_truth`) at the model size (`resize_truth`)."""
    image, info = model_input(image_path, size, data.max_pixels)
    truth = read_truth(mask_path, info.size, data, image_path, classes)
    return Example(id_, image, resize_truth(truth.mask, size, classes), info.size)


def _record_job(job) -> bytes:
    """A serialized example, made in a worker: decoding and PNG encoding both happen there."""
    return serialize(load_example(*job))


def write_tfrecords(
    pairs: pd.DataFrame, out_dir: Path, size: tuple[int, int], num_shards: int, data: Data, workers: int = 1,
    progress: bool = False, classes: ClassMap | None = None,
) -> dict:
    """Write every split of `pairs` as shards in `out_dir` with its manifest; return counts.

    Pairs are decoded in `workers` processes (0: one per core) and streamed, in
    order, into the shards: memory holds a few examples, not the dataset.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    shards, counts = {}, {}
    count = worker_count(workers)
    # fork, before any TensorFlow op runs in this process: the workers use Pillow and NumPy only.
    with multiprocessing.get_context("fork").Pool(count) if count > 1 else contextlib.nullcontext() as pool:
        for split, rows in pairs.groupby("split", sort=True):
            jobs = [(row.id, row.image, row.mask, size, data, classes) for row in rows.itertuples(index=False)]
            records = pool.imap(_record_job, jobs, chunksize=4) if pool else map(_record_job, jobs)
            records = tqdm(records, total=len(jobs), desc=f"preprocess {split}", unit="pair", disable=not progress)
            shards[split] = write_shards(records, len(jobs), out_dir, split, num_shards)
            counts[split] = len(jobs)
    write_manifest(out_dir, size, shards, classes)
    return counts
