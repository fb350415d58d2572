"""The int8 network that evaluate scores: quantized on a seeded sample of the training split.

Calibration measures the range of each activation on images the network will meet, so
it draws from the training images as the TFRecords hold them (the model's size, or the
working scale, cut into tiles for a patch model, as the sliding window feeds it):
never from the validation images it is about to be scored on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import tensorflow as tf

from unetseg.core.application import Application
from unetseg.model.applying import sample_tiles
from unetseg.model.runtimes import cached_quantize
from unetseg.preprocess.tfrecords import parse_example


def _training_images(files):
    """(id, uint8 image) of every training record, in file order."""
    for image, _, id_, _ in tf.data.TFRecordDataset(files).map(parse_example):
        yield id_.numpy().decode(), image.numpy()


def calibration_samples(files, ids: list[str], application: Application, count: int, seed: int):
    """(uint8 samples at the network's input size, the calibration record): `count` training images
    drawn by `seed` (all of them if there are fewer), or `count` tiles spread over them."""
    rng = np.random.default_rng(seed)
    if application.tiled:
        pairs = ((image, np.zeros(image.shape[:2], np.uint8)) for _, image in _training_images(files))
        tiles, _ = sample_tiles(pairs, len(ids), application.size, count, seed, 0)
        return tiles, {"tiles": len(tiles), "seed": seed, "from": "the training split"}
    chosen = set(rng.choice(sorted(ids), min(count, len(ids)), replace=False).tolist())
    found = [(id_, image) for id_, image in _training_images(files) if id_ in chosen]
    return np.stack([image for _, image in found]), {
        "images": len(found), "seed": seed, "from": "the training split", "ids": sorted(id_ for id_, _ in found)}


def int8_network(network, model_path, files, ids, application: Application, count: int, seed: int):
    """The quantized network and whether a cache held it (unetseg.model.runtimes.cached_quantize)."""
    samples, calibration = calibration_samples(files, ids, application, count, seed)
    digest = hashlib.sha256(Path(model_path).read_bytes()).hexdigest()
    return cached_quantize(network, digest, samples, calibration)
