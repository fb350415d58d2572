"""Training patches: cut with their masks, aligned under flips, the foreground share kept, padding
ignored, and the same patches on a resumed run."""

import numpy as np
import pytest
import tensorflow as tf

from unetseg.config.params import Augment
from unetseg.core.constants import IGNORE
from unetseg.model.applying import pad_for_tiles
from unetseg.preprocess.tfrecords import Example, serialize, write_shards
from unetseg.train.augment import augment_batch
from unetseg.train.dataset import training_dataset, validation_tiles
from unetseg.train.patches import PatchSampling, random_patch


def _coded(height, width):
    """An image whose pixels say where they are, and a mask that is a function of the image."""
    y, x = np.mgrid[:height, :width]
    image = np.stack([y % 256, x % 256, (y * 7 + x * 3) % 256], axis=-1).astype(np.uint8)
    mask = (((y + 2 * x) % 5) == 0).astype(np.uint8)[..., None]
    return image, mask


def _mask_of(image):
    y, x = image[..., 0].astype(int), image[..., 1].astype(int)
    return (((y + 2 * x) % 5) == 0).astype(np.uint8)


def _patch(image, mask, seed, size=(16, 16), share=0.5):
    out = random_patch(tf.constant(image), tf.constant(mask), tf.constant(seed, tf.int64), PatchSampling(size, share))
    return out[0].numpy(), out[1].numpy()


def test_patches_and_their_masks_stay_aligned_under_crop_and_flip():
    image, mask = _coded(70, 90)
    flips = Augment(0.0, (1.0, 1.0), (1.0, 1.0), True)
    flipped = 0
    for seed in range(20):
        patch, truth = _patch(image, mask, [3, seed])
        assert patch.shape == (16, 16, 3) and np.array_equal(truth[..., 0], _mask_of(patch))
        images, masks = augment_batch(tf.constant(patch[None] / 255, tf.float32), tf.constant(truth[None], tf.float32),
                                      tf.constant([1, seed], tf.int64), flips)
        moved = np.round(images.numpy()[0] * 255).astype(np.uint8)
        assert np.array_equal(masks.numpy()[0, ..., 0].astype(np.uint8), _mask_of(moved))
        flipped += not np.array_equal(moved, patch)
    assert 0 < flipped < 20


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_the_foreground_share_holds_on_rare_foreground(share):
    """One 2x2 blob in a 64x64 image: a uniform 16x16 patch holds it with probability (16/49)^2 = 0.107."""
    image = np.zeros((64, 64, 3), np.uint8)
    mask = np.zeros((64, 64, 1), np.uint8)
    mask[40:42, 40:42] = 1
    hits = np.mean([_patch(image, mask, [0, s], share=share)[1].any() for s in range(400)])
    expected = share + (1 - share) * (16 / 49) ** 2
    assert hits == pytest.approx(expected, abs=0.07)
    if share == 1.0:
        assert hits == 1.0


@pytest.mark.parametrize("height, width", [(10, 12), (1, 5), (16, 9)])
def test_an_image_smaller_than_the_patch_is_padded_as_inference_pads_it(height, width):
    image, mask = _coded(height, width)
    patch, truth = _patch(image, mask, [0, 1])
    padded, pads = pad_for_tiles(image, (16, 16), (16, 16))  # the sliding window's rule, without overlap
    assert patch.shape == padded.shape == (16, 16, 3)
    assert np.array_equal(patch, padded)
    (top, _), (left, _) = pads
    assert top == (16 - height) // 2 and left == (16 - width) // 2  # every side, not the bottom and right
    assert np.array_equal(truth[top : top + height, left : left + width], mask)
    assert (truth == IGNORE).sum() == 16 * 16 - height * width  # the padding is ignored, nothing else


@pytest.fixture
def varied_shards(tmp_path, rng):
    """Records of different sizes, as the patch mode stores whole images."""
    examples = []
    for i, (h, w) in enumerate([(40, 50), (24, 30), (64, 20), (33, 47), (50, 50), (20, 70)]):
        image, mask = rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (rng.random((h, w)) > 0.7).astype(np.uint8)
        examples.append(Example(f"i{i}", image, mask, (h, w)))
    write_shards((serialize(e) for e in examples), len(examples), tmp_path, "train", 2)
    return sorted(str(p) for p in tmp_path.glob("train-*")), len(examples)


@pytest.mark.parametrize("cache", [True, False])
def test_a_resumed_epoch_cuts_the_same_patches(varied_shards, cache):
    files, count = varied_shards
    sampling = PatchSampling((16, 16), 0.33)

    def batches(epochs):
        ds = training_dataset(files, 2, 8, 5, Augment(0.1, (0.9, 1.1), (0.9, 1.1), True), count, epochs,
                              sampling=sampling, cache=cache)
        return [(x.numpy(), y.numpy()) for x, y in ds]

    whole, resumed = batches(range(0, 3)), batches(range(1, 3))
    per_epoch = len(whole) // 3
    assert per_epoch == 3 and len(resumed) == 2 * per_epoch
    for (a, b), (c, d) in zip(whole[per_epoch:], resumed):
        assert np.array_equal(a, c) and np.array_equal(b, d)
    assert not np.array_equal(whole[0][0], whole[per_epoch][0])  # new patches every epoch


def test_validation_tiles_are_a_fixed_sample_from_every_image(varied_shards):
    files, count = varied_shards
    images, masks = validation_tiles(files, count, (16, 16), 12, seed=4)
    assert images.shape == (12, 16, 16, 3) and masks.shape == (12, 16, 16, 1) and images.dtype == np.uint8
    again = validation_tiles(files, count, (16, 16), 12, seed=4)
    assert np.array_equal(images, again[0]) and np.array_equal(masks, again[1])
    assert not np.array_equal(images, validation_tiles(files, count, (16, 16), 12, seed=5)[0])
