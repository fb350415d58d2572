"""The seed's photometric augmentation, per image inside a batch, from stateless seeds.

Brightness, contrast and saturation factors are drawn per image (as the seed does
before batching) but applied to the whole batch at once. Random draws come from a
seed pair that tf.data supplies per batch, so runs are repeatable and the map
stays parallel.
"""

from __future__ import annotations

import tensorflow as tf

from unetseg.config.params import Augment


def _uniform(seed, batch, low, high):
    return tf.random.stateless_uniform([batch, 1, 1, 1], seed=seed, minval=low, maxval=high)


def augment_batch(images, masks, seed, params: Augment):
    """Augment a batch of float images in [0,1]; masks move only with geometric changes."""
    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed, num=4)
    if params.flip_horizontal:
        flip = _uniform(seeds[0], batch, 0.0, 1.0) < 0.5
        images = tf.where(flip, tf.reverse(images, axis=[2]), images)
        masks = tf.where(flip, tf.reverse(masks, axis=[2]), masks)
    delta = params.brightness_max_delta
    images = images + _uniform(seeds[1], batch, -delta, delta)
    mean = tf.reduce_mean(images, axis=[1, 2], keepdims=True)
    images = (images - mean) * _uniform(seeds[2], batch, *params.contrast_range) + mean
    hsv = tf.image.rgb_to_hsv(images)
    saturation = tf.clip_by_value(hsv[..., 1:2] * _uniform(seeds[3], batch, *params.saturation_range), 0.0, 1.0)
    images = tf.image.hsv_to_rgb(tf.concat([hsv[..., :1], saturation, hsv[..., 2:]], axis=-1))
    return tf.clip_by_value(images, 0.0, 1.0), masks
