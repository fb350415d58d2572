"""Training on patches of whole images: where to cut, drawn from stateless seeds in the tf.data graph.

Each training image gives one patch per pass over the images. With probability `foreground_share`
the patch is centred (as far as the image allows) on a foreground pixel drawn at
random — for binary masks a foreground pixel, for several classes a pixel of any
class but the first (class 0 counts as background) — so that thin or rare structures
are seen (nnU-Net's oversampling); otherwise it lies anywhere in the image, uniformly.
An image smaller than the patch is padded as the sliding window pads it (by reflection on
every side, unetseg.model.applying.pad_pair), its mask with ignored pixels (IGNORE), which no
loss counts: the network trains on the borders inference shows it. Image and mask are
cut together.

Validation during training scores a fixed sample of validation tiles, cut and
padded as the sliding window does (unetseg.model.applying.sample_tiles); evaluate and predict
use the whole sliding window.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from unetseg.core.constants import IGNORE
from unetseg.model.applying import pad_pair


@dataclass(frozen=True)
class PatchSampling:
    size: tuple[int, int]
    foreground_share: float


def _foreground(mask):
    """Pixels that the oversampling aims at: labelled and not class 0."""
    return tf.logical_and(tf.not_equal(mask, 0), tf.not_equal(mask, IGNORE))


def _pad_to(image, mask, height, width):
    """An image smaller than (height, width) padded by inference's rule (in NumPy: the one function)."""
    def pad():
        padded = tf.numpy_function(lambda i, m: pad_pair(i, m, (height, width), IGNORE), [image, mask],
                                   [image.dtype, mask.dtype], stateful=False)
        return tf.ensure_shape(padded[0], [None, None, 3]), tf.ensure_shape(padded[1], [None, None, 1])

    smaller = tf.logical_or(tf.shape(image)[0] < height, tf.shape(image)[1] < width)
    return tf.cond(smaller, pad, lambda: (image, mask))


def _offset(centre, length, patch, forced, seed):
    """Where a patch starts along one axis: around `centre` when forced, else uniformly."""
    around = tf.clip_by_value(centre - patch // 2, 0, length - patch)
    anywhere = tf.random.stateless_uniform([], seed, 0, length - patch + 1, dtype=tf.int32)
    return tf.where(forced, around, anywhere)


def random_patch(image, mask, seed, sampling: PatchSampling):
    """One patch of an (H, W, 3) image and its (H, W, 1) mask, from a stateless seed pair."""
    height, width = sampling.size
    image, mask = _pad_to(image, mask, height, width)
    seeds = tf.random.experimental.stateless_split(seed, 4)
    wanted = tf.random.stateless_uniform([], seeds[0]) < sampling.foreground_share
    found = tf.cast(tf.where(_foreground(mask[..., 0])), tf.int32)
    count = tf.shape(found)[0]
    pick = tf.random.stateless_uniform([], seeds[1], 0, tf.maximum(count, 1), dtype=tf.int32)
    centre = tf.concat([found, tf.zeros([1, 2], tf.int32)], axis=0)[pick]  # a dummy row when there is none
    forced = tf.logical_and(wanted, count > 0)
    top = _offset(centre[0], tf.shape(image)[0], height, forced, seeds[2])
    left = _offset(centre[1], tf.shape(image)[1], width, forced, seeds[3])
    image = tf.ensure_shape(image[top : top + height, left : left + width], [height, width, 3])
    mask = tf.ensure_shape(mask[top : top + height, left : left + width], [height, width, 1])
    return image, mask
