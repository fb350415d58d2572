import keras
import numpy as np
import pytest

from unetseg.losses import bce_dice_loss, dice_coefficient, dice_loss, get_loss


def test_dice_coefficient_is_the_seeds_smoothed_batch_dice(rng):
    y_true = (rng.random((2, 8, 8, 1)) > 0.5).astype("float32")
    y_pred = rng.random((2, 8, 8, 1)).astype("float32")
    expected = (2 * (y_true * y_pred).sum() + 1) / (y_true.sum() + y_pred.sum() + 1)
    assert float(dice_coefficient(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)
    assert float(dice_loss(y_true, y_pred)) == pytest.approx(1 - expected, rel=1e-5)


def test_bce_dice_adds_both(rng):
    y_true = (rng.random((2, 8, 8, 1)) > 0.5).astype("float32")
    y_pred = np.clip(rng.random((2, 8, 8, 1)), 0.01, 0.99).astype("float32")
    bce = -(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred)).mean()
    expected = bce + float(dice_loss(y_true, y_pred))
    assert float(bce_dice_loss(y_true, y_pred)) == pytest.approx(expected, rel=1e-4)


def test_perfect_prediction_has_dice_one():
    y = np.ones((1, 4, 4, 1), "float32")
    assert float(dice_coefficient(y, y)) == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["dice_coefficient", "dice_loss", "bce_dice_loss"])
def test_registered_for_saving(name):
    assert keras.saving.get_registered_object(f"unetseg>{name}") is not None


def test_every_loss_name_resolves():
    for name in ("binary_crossentropy", "dice", "bce_dice"):
        assert get_loss(name) is not None
