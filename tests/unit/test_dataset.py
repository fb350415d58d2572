import numpy as np
import pytest

from unetseg.config.params import Augment
from unetseg.preprocess.tfrecords import Example, serialize, write_manifest, write_shards
from unetseg.train.augment import augment_batch
from unetseg.train.dataset import training_dataset, validation_dataset

SEED_AUGMENT = Augment(0.3, (0.5, 0.7), (0.5, 0.7), False)
IDENTITY = Augment(0.0, (1.0, 1.0), (1.0, 1.0), False)


@pytest.fixture
def shards(tmp_path, rng):
    examples = []
    for i in range(10):
        mask = np.zeros((8, 8), np.uint8)
        mask[:, : 1 + i % 7] = 1  # asymmetric, so a flip is visible
        image = np.repeat(mask[..., None] * 200 + 20, 3, axis=2).astype(np.uint8)
        examples.append(Example(f"id{i}", image, mask, (8, 8)))
    rows = write_shards(map(serialize, examples), 10, tmp_path, "train", 2)
    write_manifest(tmp_path, (8, 8), {"train": rows})
    return [str(tmp_path / r["file"]) for r in rows], examples


def _collect(ds):
    images, masks = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(images), np.concatenate(masks)


def test_validation_keeps_file_order_and_values(shards):
    files, examples = shards
    images, masks = _collect(validation_dataset(files, 4))
    assert np.allclose(images, np.stack([e.image for e in examples]) / 255.0)
    assert np.array_equal(masks[..., 0], np.stack([e.mask for e in examples]))


def _epochs(files, epochs, augment=SEED_AUGMENT, batch=4):
    """Each epoch's (images, masks), as fit would draw them (3 batches of 4 per epoch)."""
    ds = training_dataset(files, batch, shuffle_buffer=10, seed=3, augment=augment, count=10, epochs=epochs)
    batches = [(x.numpy(), y.numpy()) for x, y in ds]
    per_epoch = -(-10 // batch)
    return [
        tuple(np.concatenate(part) for part in zip(*batches[i : i + per_epoch]))
        for i in range(0, len(batches), per_epoch)
    ]


def test_training_is_repeatable_and_reshuffles_each_epoch(shards):
    files, _ = shards
    first, second = _epochs(files, range(0, 2))
    assert not np.array_equal(first[1], second[1])  # another order in epoch 2
    again = _epochs(files, range(0, 2))
    assert all(np.array_equal(a, b) for a, b in zip(first + second, again[0] + again[1]))


def test_a_resumed_epoch_sees_the_same_batches(shards):
    files, _ = shards
    uninterrupted = _epochs(files, range(0, 3))
    resumed = _epochs(files, range(2, 3))
    assert np.array_equal(uninterrupted[2][0], resumed[0][0]) and np.array_equal(uninterrupted[2][1], resumed[0][1])


def test_seed_augmentation_stays_in_range_and_leaves_masks(shards):
    files, examples = shards
    images, masks = _collect(
        training_dataset(files, 5, shuffle_buffer=1, seed=0, augment=SEED_AUGMENT, count=10, epochs=range(1))
    )
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert np.array_equal(masks[..., 0], np.stack([e.mask for e in examples]))
    original = np.stack([e.image for e in examples]) / 255.0
    assert np.abs(images - original).mean() > 0.05  # the seed's contrast range always changes images


def test_identity_ranges_change_nothing(rng):
    images = rng.random((3, 8, 8, 3)).astype("float32")
    masks = (rng.random((3, 8, 8, 1)) > 0.5).astype("float32")
    out, out_masks = augment_batch(images, masks, np.array([1, 2]), IDENTITY)
    assert np.allclose(out.numpy(), images, atol=1e-5) and np.array_equal(np.asarray(out_masks), masks)


def test_flip_moves_image_and_mask_together(rng):
    masks = np.zeros((16, 8, 8, 1), "float32")
    masks[:, :, :3] = 1
    images = np.repeat(masks, 3, axis=3) * 0.8 + 0.1
    flip = Augment(0.0, (1.0, 1.0), (1.0, 1.0), True)
    out, out_masks = augment_batch(images, masks, np.array([4, 5]), flip)
    out, out_masks = np.asarray(out), np.asarray(out_masks)
    assert np.allclose((out[..., :1] > 0.5), out_masks)
    flipped = out_masks[:, 0, -1, 0] == 1
    assert 0 < flipped.sum() < 16  # some flipped, some not


def test_fixed_steps_draw_fresh_passes_and_a_resumed_epoch_the_same_batches(shards):
    """train.steps_per_epoch 7 of 4 images: each epoch takes three passes over the 10, each pass in its
    own order; an epoch's batches depend on (seed, epoch) alone."""
    files, _ = shards

    def epochs(run):
        ds = training_dataset(files, 4, shuffle_buffer=10, seed=3, augment=IDENTITY, count=10, epochs=run,
                              batches_per_epoch=7)
        batches = [y.numpy() for _, y in ds]
        assert len(batches) == 7 * len(run) and all(len(b) == 4 for b in batches)
        return [np.concatenate(batches[i : i + 7]) for i in range(0, len(batches), 7)]

    whole, resumed = epochs(range(0, 2)), epochs(range(1, 2))
    assert np.array_equal(whole[1], resumed[0])
    first = whole[0][:, :, :, 0].sum(axis=(1, 2))  # each mask's area names its image
    passes = [first[:10], first[10:20]]
    assert all(sorted(p) == sorted(passes[0]) for p in passes)  # every pass sees every image once
    assert not np.array_equal(passes[0], passes[1])  # in another order
