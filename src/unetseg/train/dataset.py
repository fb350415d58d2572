"""tf.data pipelines over the TFRecord shards: read, parse, cache, shuffle, cut patches, batch, augment,
prefetch."""

from __future__ import annotations

import functools

import tensorflow as tf

from unetseg.config.params import Augment
from unetseg.core.constants import EPOCH_STRIDE, IGNORE
from unetseg.model.applying import sample_tiles
from unetseg.preprocess.tfrecords import parse_example, to_float
from unetseg.train.augment import augment_batch
from unetseg.train.patches import PatchSampling, random_patch

AUTOTUNE = tf.data.AUTOTUNE
STREAMED_SHUFFLE = 32  # images held for shuffling when they are streamed, not cached
CACHE_LIMIT_BYTES = 2 << 30  # decoded uint8 images and masks above this are streamed, not cached


def fits_in_memory(pixels: int) -> bool:
    """Whether decoded images (3 bytes a pixel) and masks (1) of this many pixels may be cached in RAM."""
    return pixels * 4 <= CACHE_LIMIT_BYTES


def _pairs(files: list[str], count: int | None, cache: bool = True) -> tf.data.Dataset:
    """uint8 (image, mask) pairs in file order, cached after the first pass unless `cache` is false
    (images too large for memory: decoded again each epoch).

    A known `count` (from the manifest) gives Keras the epoch length up front.
    """
    records = tf.data.TFRecordDataset(files).map(parse_example, num_parallel_calls=AUTOTUNE)
    if count is not None:
        records = records.apply(tf.data.experimental.assert_cardinality(count))
    pairs = records.map(lambda image, mask, id_, size: (image, mask))
    return pairs.cache() if cache else pairs


def training_dataset(
    files,
    batch_size: int,
    shuffle_buffer: int,
    seed: int,
    augment: Augment | None,
    count: int,
    epochs: range,
    batches_per_epoch: int | None = None,
    sampling: PatchSampling | None = None,
    cache: bool = True,
):
    """Shuffled, batched, augmented float (image, mask) pairs for `epochs`, one epoch after another.

    Epoch e is shuffled and augmented from (seed, e) alone, so a run resumed at epoch e
    sees exactly the batches that an uninterrupted run sees: resuming does not change
    the result. Pass `steps_per_epoch(count, batch_size)` to `fit`. With
    `batches_per_epoch`, each epoch is that many full batches, drawn from as many fresh
    passes over the images as it takes (train.steps_per_epoch; and workers holding a
    few records more or less stay in step). With
    `sampling`, each image gives one random patch per pass (unetseg.train.patches), cut from
    (seed, pass, image) alone as well.
    """
    pairs = _pairs(files, count, cache)
    if not cache:
        shuffle_buffer = min(shuffle_buffer, STREAMED_SHUFFLE)
    epochs = epochs or range(epochs.start, epochs.start + 1)  # fit wants data even with no epoch left
    # Passes over the images an epoch needs; each pass of the run has its own number,
    # which seeds its order and its patches: (seed, epoch) still fixes everything.
    passes = 1 if batches_per_epoch is None else -(-batches_per_epoch * batch_size // max(count, 1))

    def one_pass(number):
        ds = pairs.shuffle(shuffle_buffer, seed=seed * EPOCH_STRIDE + number, reshuffle_each_iteration=False)
        if sampling is not None:  # seed pairs (seed, -1 - ...): apart from the augmentation's
            ds = ds.enumerate().map(
                lambda index, pair: random_patch(
                    pair[0], pair[1], tf.stack([tf.constant(seed, tf.int64), -1 - number * EPOCH_STRIDE - index]),
                    sampling,
                ),
                num_parallel_calls=AUTOTUNE,
            )
        return ds

    def one_epoch(epoch):
        ds = functools.reduce(tf.data.Dataset.concatenate, (one_pass(epoch * passes + k) for k in range(passes)))
        ds = ds.batch(batch_size).map(to_float, num_parallel_calls=AUTOTUNE)
        if augment is not None:
            ds = ds.enumerate().map(
                lambda index, batch: augment_batch(
                    batch[0], batch[1], tf.stack([tf.constant(seed, tf.int64), epoch * EPOCH_STRIDE + index]), augment
                ),
                num_parallel_calls=AUTOTUNE,
            )
        return ds if batches_per_epoch is None else ds.take(batches_per_epoch)

    # One dataset per epoch, seeded with Python ints, one after another.
    ds = functools.reduce(tf.data.Dataset.concatenate, (one_epoch(epoch) for epoch in epochs))
    return ds.prefetch(AUTOTUNE)


def steps_per_epoch(count: int, batch_size: int) -> int:
    return -(-count // batch_size)


def validation_dataset(files, batch_size: int, count: int | None = None, cache: bool = True):
    """Batched float (image, mask) pairs in file order, unaugmented."""
    return _pairs(files, count, cache).batch(batch_size).map(to_float, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def validation_tiles(files, count: int, tile: tuple[int, int], tiles: int, seed: int):
    """uint8 (images, masks) arrays of a fixed sample of `tiles` tiles of the `count` validation images,
    cut at places drawn from `seed` and padded as the sliding window pads (unetseg.model.applying)."""
    records = tf.data.TFRecordDataset(files).map(parse_example, num_parallel_calls=AUTOTUNE)
    pairs = ((image.numpy(), mask.numpy()) for image, mask, _, _ in records)
    return sample_tiles(pairs, count, tile, tiles, seed, IGNORE)


def tiles_dataset(images, masks, batch_size: int):
    """Batched float (image, mask) tiles from in-memory arrays, in their order."""
    return tf.data.Dataset.from_tensor_slices((images, masks)).batch(batch_size).map(
        to_float, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
