"""Decode once, as the model will see them: the pairs table to TFRecord shards per split.

Every image at the model size, or (patches) whole at the working scale."""

from __future__ import annotations

import contextlib
import multiprocessing
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from unetseg.config.params import Data, worker_count
from unetseg.core.application import Application
from unetseg.data.classes import ClassMap
from unetseg.data.masks import read_truth
from unetseg.data.resize import resize_truth
from unetseg.model.applying import model_input
from unetseg.preprocess.tfrecords import Example, serialize, write_manifest, write_shards


def load_example(
    id_: str, image_path: str, mask_path: str, application: Application, data: Data, classes: ClassMap | None = None
) -> Example:
    """One pair as the model sees it (`model_input`) with its mask (`read_truth`) at the same size
    (`resize_truth`)."""
    image, info = model_input(image_path, application, data.max_pixels)
    truth = read_truth(mask_path, info.size, data, image_path, classes)
    return Example(id_, image, resize_truth(truth.mask, image.shape[:2], classes), info.size)


def _record_job(job) -> tuple[bytes, tuple[int, int]]:
    """A serialized example and its size, made in a worker: decoding and PNG encoding both happen there."""
    example = load_example(*job)
    return serialize(example), example.image.shape[:2]


def write_tfrecords(
    pairs: pd.DataFrame, out_dir: Path, application: Application, num_shards: int, data: Data, workers: int = 1,
    progress: bool = False, classes: ClassMap | None = None,
) -> dict:
    """Write every split of `pairs` as shards in `out_dir` with its manifest; return counts.

    Pairs are decoded in `workers` processes (0: one per core) and streamed, in
    order, into the shards: memory holds a few examples, not the dataset.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    shards, counts, sizes = {}, {}, {}

    def sizes_noted(results, split):
        for record, size in results:
            sizes.setdefault(split, []).append(list(size))
            yield record

    count = worker_count(workers)
    # fork, before any TensorFlow op runs in this process: the workers use Pillow and NumPy only.
    with multiprocessing.get_context("fork").Pool(count) if count > 1 else contextlib.nullcontext() as pool:
        for split, rows in pairs.groupby("split", sort=True):
            jobs = [(row.id, row.image, row.mask, application, data, classes) for row in rows.itertuples(index=False)]
            records = pool.imap(_record_job, jobs, chunksize=4) if pool else map(_record_job, jobs)
            records = tqdm(records, total=len(jobs), desc=f"preprocess {split}", unit="pair", disable=not progress)
            shards[split] = write_shards(sizes_noted(records, split), len(jobs), out_dir, split, num_shards)
            counts[split] = len(jobs)
    write_manifest(out_dir, application, shards, classes, sizes)
    return counts
