import keras
import numpy as np
import pytest

from unetseg.losses import bce_dice_loss, dice_coefficient, dice_loss, get_loss


def test_dice_coefficient_is_the_seeds_smoothed_batch_dice(rng):
    y_true = (rng.random((2, 8, 8, 1)) > 0.5).astype("float32")
    y_pred = rng.random((2, 8, 8, 1)).astype("float32")
    expected = (2 * (y_true * y_pred).sum() + 1) / (y_true.sum() + y_pred.sum() + 1)
    assert float(dice_coefficient(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)
    assert np.asarray(dice_loss(y_true, y_pred)) == pytest.approx([1 - expected] * 2, rel=1e-5)


def test_bce_dice_adds_both(rng):
    y_true = (rng.random((2, 8, 8, 1)) > 0.5).astype("float32")
    y_pred = np.clip(rng.random((2, 8, 8, 1)), 0.01, 0.99).astype("float32")
    bce = -(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred)).mean()
    expected = bce + 1 - float(dice_coefficient(y_true, y_pred))
    assert np.asarray(bce_dice_loss(y_true, y_pred)) == pytest.approx([expected] * 2, rel=1e-4)


@pytest.mark.parametrize("name", ["dice", "bce_dice"])
def test_batch_losses_give_one_value_per_example(rng, name):
    """Keras divides a per-example loss by the replicas under tf.distribute, never a scalar."""
    y_true = (rng.random((3, 8, 8, 1)) > 0.5).astype("float32")
    y_pred = np.clip(rng.random((3, 8, 8, 1)), 0.01, 0.99).astype("float32")
    values = np.asarray(get_loss(name)(y_true, y_pred))
    assert values.shape == (3,) and np.all(values == values[0])


def test_perfect_prediction_has_dice_one():
    y = np.ones((1, 4, 4, 1), "float32")
    assert float(dice_coefficient(y, y)) == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["dice_coefficient", "dice_loss", "bce_dice_loss"])
def test_registered_for_saving(name):
    assert keras.saving.get_registered_object(f"unetseg>{name}") is not None


def test_every_loss_name_resolves():
    for name in ("binary_crossentropy", "dice", "bce_dice"):
        assert get_loss(name) is not None
