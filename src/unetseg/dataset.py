"""tf.data pipelines over the TFRecord shards: read, parse, cache, shuffle, batch, augment, prefetch."""

from __future__ import annotations

import tensorflow as tf

from unetseg.augment import augment_batch
from unetseg.params import Augment
from unetseg.tfrecords import parse_example, to_float

AUTOTUNE = tf.data.AUTOTUNE


def _pairs(files: list[str], count: int | None) -> tf.data.Dataset:
    """uint8 (image, mask) pairs in file order, cached after the first pass.

    A known `count` (from the manifest) gives Keras the epoch length up front.
    """
    records = tf.data.TFRecordDataset(files).map(parse_example, num_parallel_calls=AUTOTUNE)
    if count is not None:
        records = records.apply(tf.data.experimental.assert_cardinality(count))
    return records.map(lambda image, mask, id_, size: (image, mask)).cache()


def training_dataset(
    files, batch_size: int, shuffle_buffer: int, seed: int, augment: Augment | None, count: int | None = None
):
    """Shuffled (seeded, new order each epoch), batched, augmented float (image, mask) pairs."""
    ds = _pairs(files, count).shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(to_float, num_parallel_calls=AUTOTUNE)
    if augment is not None:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(
            lambda batch, s: augment_batch(batch[0], batch[1], s, augment),
            num_parallel_calls=AUTOTUNE,
        )
    return ds.prefetch(AUTOTUNE)


def validation_dataset(files, batch_size: int, count: int | None = None):
    """Batched float (image, mask) pairs in file order, unaugmented, cached."""
    return _pairs(files, count).batch(batch_size).map(to_float, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def records_dataset(files, batch_size: int):
    """Batched (float image, {0,1} uint8 mask, id, original size) in file order, for evaluate."""
    records = tf.data.TFRecordDataset(files).map(parse_example, num_parallel_calls=AUTOTUNE)
    return records.batch(batch_size).map(
        lambda image, mask, id_, size: (tf.cast(image, tf.float32) / 255.0, mask, id_, size)
    ).prefetch(AUTOTUNE)
