import typing

import keras
import numpy as np
import pytest

from unetseg.config.params import Train
from unetseg.core.constants import IGNORE
from unetseg.train.losses import ClassLosses, bce_dice_loss, dice_coefficient, dice_loss, get_loss


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


LOSS_NAMES = typing.get_args(typing.get_type_hints(Train)["loss"])


@pytest.mark.parametrize("ignoring", [False, True], ids=["resize", "patches"])
@pytest.mark.parametrize("name", LOSS_NAMES)
def test_every_loss_name_gives_its_definition_in_both_binary_modes(rng, name, ignoring):
    """Each `train.loss` name params accept, as a binary loss (resize mode; patches, whose losses leave
    ignored pixels out: here there are none), against its formula, written out below."""
    y_true = (rng.random((2, 8, 8, 1)) > 0.5).astype("float32")
    y_pred = np.clip(rng.random((2, 8, 8, 1)), 0.01, 0.99).astype("float32")
    bce = -(y_true * np.log(y_pred) + (1 - y_true) * np.log(1 - y_pred)).mean()
    dice = (2 * (y_true * y_pred).sum() + 1) / (y_true.sum() + y_pred.sum() + 1)
    expected = {"crossentropy": bce, "binary_crossentropy": bce, "dice": 1 - dice,
                "crossentropy_dice": bce + 1 - dice, "bce_dice": bce + 1 - dice}[name]
    loss = keras.losses.get(get_loss(name, ignoring=ignoring))
    assert float(np.mean(np.asarray(loss(y_true, y_pred)))) == pytest.approx(expected, rel=1e-4)


def test_binary_crossentropy_is_one_function_in_both_modes(rng):
    """Patches and resize mode take Keras' cross-entropy, which reads a sigmoid's logits: a confidently
    wrong pixel (logit 30 against truth 0) costs 30 in both, not the -log(1e-7) = 16.1 of clipping."""
    y_true = (rng.random((2, 8, 8, 1)) > 0.5).astype("float32")
    logits = rng.normal(0, 12, (2, 8, 8, 1)).astype("float32")
    logits[0, 0, 0, 0], y_true[0, 0, 0, 0] = 30.0, 0.0
    y_pred = keras.activations.sigmoid(keras.ops.convert_to_tensor(logits))
    resize = float(np.mean(np.asarray(keras.losses.get(get_loss("crossentropy"))(y_true, y_pred))))
    patches = float(np.mean(np.asarray(get_loss("crossentropy", ignoring=True)(y_true, y_pred))))
    exact = np.mean(np.maximum(logits, 0) - logits * y_true + np.log1p(np.exp(-np.abs(logits))))
    assert resize == pytest.approx(exact, rel=1e-5) and patches == pytest.approx(exact, rel=1e-5)


def _class_batch(rng, k=4):
    labels = rng.integers(0, k, (2, 8, 8)).astype("float32")
    labels[0, :2] = IGNORE
    logits = rng.normal(size=(2, 8, 8, k)).astype("float32")
    p = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return labels[..., None], p.astype("float32")


def test_class_crossentropy_is_the_weighted_mean_over_labelled_pixels(rng):
    y_true, y_pred = _class_batch(rng)
    labels = y_true[..., 0]
    labelled = labels != IGNORE
    picked = np.take_along_axis(y_pred, np.where(labelled, labels, 0).astype(int)[..., None], -1)[..., 0]
    weights = np.array([1.0, 2.0, 0.5, 3.0], "float32")
    w = weights[np.where(labelled, labels, 0).astype(int)] * labelled
    expected = (-np.log(picked) * w).sum() / w.sum()
    assert float(ClassLosses(4, weights).crossentropy(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)
    plain = -np.log(picked[labelled]).mean()
    assert float(ClassLosses(4).crossentropy(y_true, y_pred)) == pytest.approx(plain, rel=1e-5)


def test_class_dice_averages_every_class(rng):
    y_true, y_pred = _class_batch(rng)
    labels = y_true[..., 0]
    labelled = (labels != IGNORE)[..., None]
    one_hot = np.eye(4)[np.where(labelled[..., 0], labels, 0).astype(int)] * labelled
    p = y_pred * labelled
    per_class = (2 * (one_hot * p).sum((0, 1, 2)) + 1) / (one_hot.sum((0, 1, 2)) + p.sum((0, 1, 2)) + 1)
    assert float(ClassLosses(4).dice(y_true, y_pred)) == pytest.approx(per_class.mean(), rel=1e-5)


def test_ignored_pixels_change_no_class_loss_and_no_metric(rng):
    y_true, y_pred = _class_batch(rng)
    other = y_pred.copy()
    other[0, :2] = other[0, :2, :, ::-1]  # another prediction where the truth is ignored
    losses = ClassLosses(4)
    for name in ("crossentropy", "dice", "crossentropy_dice"):
        loss = get_loss(name, 4)
        assert np.asarray(loss(y_true, other)) == pytest.approx(np.asarray(loss(y_true, y_pred)), rel=1e-6)
    assert float(losses.accuracy(y_true, other)) == pytest.approx(float(losses.accuracy(y_true, y_pred)))
    iou = losses.metrics()[2]
    iou.update_state(y_true, y_pred)
    first = float(iou.result())
    iou.reset_state()
    iou.update_state(y_true, other)
    assert float(iou.result()) == pytest.approx(first)


def test_image_dice_is_evaluates_per_image_dice(rng):
    """The monitored metric, averaged over images, equals evaluate's `dice` (unetseg.evaluate.metrics)."""
    from unetseg.evaluate.metrics import image_counts, per_image_dice
    from unetseg.train.losses import image_dice

    truth = (rng.random((5, 8, 8, 1)) > 0.6).astype(np.float32)
    truth[0] = 0  # an empty mask ...
    p = rng.random((5, 8, 8, 1)).astype(np.float32)
    p[0] = 0.1  # ... predicted empty: 1
    values = keras.ops.convert_to_numpy(image_dice(truth, p))
    expected = per_image_dice(image_counts(truth[..., 0].astype(bool), p[..., 0] > 0.5))
    assert values[0] == 1.0 and np.allclose(values, expected)
    ignored = truth.copy()
    ignored[1, :4] = 255
    part = keras.ops.convert_to_numpy(image_dice(ignored, p))[1]
    assert part == pytest.approx(per_image_dice(image_counts(truth[1:2, 4:, :, 0].astype(bool), p[1:2, 4:, :, 0] > 0.5))[0])
