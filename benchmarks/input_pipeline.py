"""Time of a training epoch by input pipeline, side by side on the same model and machine.

On the embedded sample's training split (run `dvc repro` first), with the default
model (params.yaml):
- in-memory: the decoded, resized images and masks as tensors in memory (shuffled,
  batched, prefetched), no augmentation;
- ours: the TFRecord pipeline (parse, cache, shuffle, batch), without and with the
  configured augmentation;
- seed: the seed's pipeline, decoding and resizing every JPEG and GIF in every epoch,
  with its augmentation;
and, without any model, the examples/s the TFRecord pipeline alone delivers.
Each epoch time is the fastest of `--epochs` epochs after a warm-up epoch (the
fastest, because other load on a shared machine only ever adds time).
`--project` points at another checkout whose pipeline ran on other data (e.g.
Carvana at 512x512 or 1918x1280, where decoding costs more).

    python benchmarks/input_pipeline.py [--epochs 5] [--project DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from unetseg.config.loading import load_params
from unetseg.data.pairs_table import TRAIN, read_pairs
from unetseg.preprocess.tfrecords import count_records, parse_example, shard_files
from unetseg.train.dataset import steps_per_epoch, training_dataset
from unetseg.train.training import build_model

ROOT = Path(__file__).resolve().parents[1]


class EpochTimes(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times = getattr(self, "times", []) + [time.perf_counter() - self.start]


def epoch_time(params, data, epochs, **fit) -> float:
    keras.utils.set_random_seed(0)
    model = build_model(params, None, steps_per_epoch=1)  # the rate's schedule changes no epoch's time
    timer = EpochTimes()
    model.fit(data, epochs=epochs + 1, callbacks=[timer], verbose=0, **fit)
    return float(np.min(timer.times[1:]))


def seed_dataset(pairs, size, batch_size):
    """The seed's tf.data pipeline: decode, convert, resize and augment every file, every epoch."""

    def load(image, mask):
        img = tf.image.convert_image_dtype(tf.io.decode_jpeg(tf.io.read_file(image), channels=3), tf.float32)
        msk = tf.image.convert_image_dtype(tf.io.decode_gif(tf.io.read_file(mask))[0, :, :, :1], tf.float32)
        img = tf.image.resize(img, size)
        img = tf.image.random_brightness(img, 0.3)
        img = tf.image.random_contrast(img, 0.5, 0.7)
        img = tf.clip_by_value(tf.image.random_saturation(img, 0.5, 0.7), 0, 1)
        return img, tf.image.resize(msk, size)

    ds = tf.data.Dataset.from_tensor_slices((list(pairs["image"]), list(pairs["mask"]))).map(load)
    return ds.batch(batch_size).shuffle(128)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--project", type=Path, default=ROOT)
    args = parser.parse_args()
    params = load_params(args.project / "params.yaml")
    tfrecords, batch = args.project / "data/tfrecords", params.train.batch_size
    files, count = shard_files(tfrecords, TRAIN), count_records(tfrecords, TRAIN)
    steps = steps_per_epoch(count, batch)
    records = tf.data.TFRecordDataset(files).map(parse_example)
    images = np.stack([r[0].numpy() for r in records]).astype(np.float32) / 255.0
    masks = np.stack([r[1].numpy() for r in records]).astype(np.float32)

    def ours(augment):
        return training_dataset(files, batch, batch * params.train.shuffle_batches, 0, augment, count,
                                range(args.epochs + 1))

    start = time.perf_counter()
    pipeline_only = sum(int(x.shape[0]) for x, _ in ours(params.augment))
    pipeline_rate = pipeline_only / (time.perf_counter() - start)
    in_memory = tf.data.Dataset.from_tensor_slices((tf.constant(images), tf.constant(masks)))
    in_memory = in_memory.shuffle(count, seed=0).batch(batch).prefetch(tf.data.AUTOTUNE)
    plain = epoch_time(params, ours(None), args.epochs, steps_per_epoch=steps)
    memory = epoch_time(params, in_memory, args.epochs)
    augmented = epoch_time(params, ours(params.augment), args.epochs, steps_per_epoch=steps)
    pairs = read_pairs(args.project / "data/split/pairs.csv")
    seed = epoch_time(params, seed_dataset(pairs[pairs["split"] == TRAIN], params.preprocess.image_size, batch),
                      args.epochs)
    print(f"{count} training pairs, {params.preprocess.image_size}, batch {batch}, {params.model.filters} filters")
    print(f"in-memory tensors:           {memory:6.2f} s/epoch")
    print(f"ours, no augmentation:       {plain:6.2f} s/epoch ({100 * (plain / memory - 1):+.1f} % vs in-memory)")
    print(f"ours, with augmentation:     {augmented:6.2f} s/epoch ({100 * (augmented / memory - 1):+.1f} % vs in-memory)")
    print(f"seed, decode every epoch:    {seed:6.2f} s/epoch ({100 * (seed / memory - 1):+.1f} % vs in-memory)")
    print(f"our pipeline alone (with augmentation, no model): {pipeline_rate:.0f} examples/s")


if __name__ == "__main__":
    main()
