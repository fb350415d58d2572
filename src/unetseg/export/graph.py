"""unetseg's rules from image to mask, written again in TensorFlow ops that every export format holds.

The Python rules (unetseg.data.resize.shrink, unetseg.model.applying) resize with
Pillow, which no exported graph can call. Pillow's bilinear resize is a separable
weighted sum: each output pixel a triangle filter, widened by the scale when
shrinking (antialiasing), over the input pixels, renormalised at the border; its box
reduce is an average over whole blocks. The resize's weights are matrices built here
from the sizes at run time and applied by plain matrix products (MatMul in ONNX and
TFLite), the reduce is a reshape and a sum, and each pass is rounded to 8 bits as
Pillow rounds a uint8 image: within one grey level of Pillow's pixels. The parity
tests (tests/stages/test_export.py) hold the masks to the Python rules', file by file.
"""

from __future__ import annotations

import tensorflow as tf


def bilinear_weights(n_in, n_out):
    """(n_out, n_in) weights of Pillow's bilinear resize along one axis of n_in pixels to n_out."""
    n_in_f, n_out_f = tf.cast(n_in, tf.float32), tf.cast(n_out, tf.float32)
    scale = n_in_f / n_out_f
    support = tf.maximum(scale, 1.0)  # the triangle's half-width in input pixels: wider when shrinking
    centres = (tf.range(n_out_f) + 0.5) * scale
    pixels = tf.range(n_in_f) + 0.5
    weights = tf.maximum(0.0, 1.0 - tf.abs(pixels[None, :] - centres[:, None]) / support)
    return weights / tf.reduce_sum(weights, axis=1, keepdims=True)


def box_reduce(x, factor):
    """Pillow's `reduce` of float planes (N, C, H, W): the mean of each `factor` x `factor` block, the last
    row and column of blocks over the pixels they have. By a reshape and a sum: a matrix over a whole
    image would cost far more than the image."""
    shape = tf.shape(x)
    height, width = shape[2], shape[3]
    blocks_h, blocks_w = (height + factor - 1) // factor, (width + factor - 1) // factor
    padded = tf.pad(x, [[0, 0], [0, 0], [0, blocks_h * factor - height], [0, blocks_w * factor - width]])
    sums = tf.reduce_sum(tf.reshape(padded, [shape[0], shape[1], blocks_h, factor, blocks_w, factor]), axis=[3, 5])

    def counts(length, blocks):
        return tf.cast(tf.minimum(factor, length - tf.range(blocks) * factor), tf.float32)

    return sums / (counts(height, blocks_h)[:, None] * counts(width, blocks_w)[None, :])


def _along_last(x, weights):
    """x (N, C, A, B) with its last axis mapped by (B', B) weights: (N, C, A, B'), by one plain 2-D
    matrix product (TensorFlow's oneDNN batched product with a broadcast operand crashes)."""
    shape = tf.shape(x)
    flat = tf.matmul(tf.reshape(x, [-1, shape[3]]), weights, transpose_b=True)
    return tf.reshape(flat, [shape[0], shape[1], shape[2], -1])


def _swap(x):
    """(N, C, A, B) to (N, C, B, A)."""
    return tf.transpose(x, [0, 1, 3, 2])


def _to_8_bits(x):
    return tf.clip_by_value(tf.floor(x + 0.5), 0.0, 255.0)


def shrink(images, height: int, width: int):
    """uint8 images (N, H, W, 3) at (height, width), as float32 in [0, 255]: `unetseg.data.resize.shrink`
    (box reduce by the whole factor when it is 2 or more, then bilinear). Planes (channels first)
    inside: each pass is then one matrix product over every row, or every column."""
    x = tf.transpose(tf.cast(images, tf.float32), [0, 3, 1, 2])
    shape = tf.shape(images)
    factor = tf.minimum(shape[1] // height, shape[2] // width)
    x = _to_8_bits(box_reduce(x, tf.where(factor >= 2, factor, 1)))
    reduced = tf.shape(x)
    x = _to_8_bits(_along_last(x, bilinear_weights(reduced[3], width)))  # Pillow: the width first
    x = _to_8_bits(_along_last(_swap(x), bilinear_weights(reduced[2], height)))  # (N, 3, width, height)
    return tf.transpose(x, [0, 3, 2, 1])


def enlarge(probabilities, height, width):
    """(N, h, w, K) probabilities at (height, width) as planes (N, K, height, width):
    `unetseg.data.resize.resize_probabilities`."""
    shape = tf.shape(probabilities)
    x = _along_last(tf.transpose(probabilities, [0, 3, 2, 1]), bilinear_weights(shape[1], height))  # (N, K, w, H)
    return _along_last(_swap(x), bilinear_weights(shape[2], width))  # the swap on the small map, not the large


def mirror_average(p, mirrored):
    """The mean of probabilities and those of the mirror image, mirrored back."""
    return (p + tf.reverse(mirrored, [2])) / 2


def network_probabilities(network, x, tta_flip: bool):
    """`unetseg.model.applying.probabilities` for float images in [0, 1]: (N, h, w, K)."""
    p = network(x, training=False)
    return mirror_average(p, network(tf.reverse(x, [2]), training=False)) if tta_flip else p


def network_input(images, size: tuple[int, int]):
    """uint8 images (N, H, W, 3) as the network takes them: floats in [0, 1] at `size`."""
    height, width = size
    return tf.reshape(shrink(images, height, width), [-1, height, width, 3]) / 255.0  # a static shape for the network


def mask_of(p, shape, threshold: float | None):
    """Masks (N, H, W) uint8 at `shape` (N, H, W, ...) of (N, h, w, K) probabilities: 0/255 above
    `threshold` (binary), or the most probable class (threshold None)."""
    p = enlarge(p, shape[1], shape[2])  # (N, K, H, W)
    if threshold is None:
        return tf.cast(tf.argmax(p, axis=1), tf.uint8)
    return tf.cast(tf.cast(p[:, 0] > threshold, tf.float32) * 255.0, tf.uint8)  # TFLite multiplies no uint8


def image_to_mask(network, size: tuple[int, int], threshold: float | None, tta_flip: bool):
    """A function of uint8 images (N, H, W, 3) to their masks (N, H, W) uint8: `unetseg predict` for a
    resized model."""
    return lambda images: mask_of(network_probabilities(network, network_input(images, size), tta_flip),
                                  tf.shape(images), threshold)


def tiles_to_probabilities(network, tta_flip: bool):
    """A function of uint8 tiles (N, h, w, 3) to their probabilities (N, h, w, K): the network of a
    model trained on patches, for the sliding window outside the file (unetseg.model.applying)."""
    return lambda tiles: network_probabilities(network, tf.cast(tiles, tf.float32) / 255.0, tta_flip)
