"""The exported graph's resizes against the Pillow rules they restate (unetseg.data.resize)."""

import numpy as np
import pytest

from unetseg.data.resize import resize_image, resize_probabilities

SIZES = [  # (H, W) to (h, w): Carvana's box reduce by 10, a non-divisible reduce, a plain shrink, an enlargement
    ((1280, 1918), (128, 128)), ((513, 777), (64, 96)), ((192, 288), (128, 128)), ((100, 90), (128, 128)),
]


def _images(rng, height, width):
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    ramps = (np.indices((height, width)).sum(0)[..., None] * np.array([1, 2, 3]) % 256).astype(np.uint8)
    return noise, ramps


@pytest.mark.parametrize("original, size", SIZES)
def test_shrink_is_pillows_to_a_grey_level(rng, original, size):
    from unetseg.export.graph import shrink

    for image in _images(rng, *original):
        expected = resize_image(image, size).astype(int)
        got = shrink(image[None], *size)[0].numpy()
        assert got.shape == (*size, 3)
        difference = np.abs(got.astype(int) - expected)
        assert difference.max() <= 1 and np.mean(difference > 0) < 0.03, (difference.max(), np.mean(difference > 0))


@pytest.mark.parametrize("original, size", SIZES)
def test_enlarge_is_pillows_bilinear_of_float_maps(rng, original, size):
    from unetseg.export.graph import enlarge

    p = rng.random((*size, 3)).astype(np.float32)
    expected = resize_probabilities(p, original)
    got = enlarge(p[None], *original)[0].numpy().transpose(1, 2, 0)
    assert np.abs(got - expected).max() < 1e-4


def test_a_plain_bilinear_resize_is_not_pillows(rng):
    """What the test above tells apart: TensorFlow's own resize (no antialiasing) is far from Pillow's."""
    import tensorflow as tf

    image = _images(rng, 1280, 1918)[0]
    plain = tf.image.resize(image[None].astype(np.float32), (128, 128))[0].numpy()
    assert np.abs(np.round(plain) - resize_image(image, (128, 128))).max() > 20
