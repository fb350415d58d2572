import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, jaccard_score, precision_score, recall_score

from unetseg import baselines
from unetseg.metrics import confusion_counts, per_image_dice, per_image_table, summarize


@pytest.fixture
def masks(rng):
    truth = rng.random((6, 16, 16)) > 0.6
    predicted = truth ^ (rng.random((6, 16, 16)) > 0.85)  # flip some pixels
    return truth, predicted


def test_per_image_and_pooled_metrics_match_scikit_learn(masks):
    truth, predicted = masks
    metrics = summarize(confusion_counts(truth, predicted))
    assert metrics["dice"] == pytest.approx(np.mean([f1_score(t.ravel(), p.ravel()) for t, p in zip(truth, predicted)]))
    assert metrics["iou"] == pytest.approx(np.mean([jaccard_score(t.ravel(), p.ravel()) for t, p in zip(truth, predicted)]))
    assert metrics["dice_global"] == pytest.approx(f1_score(truth.ravel(), predicted.ravel()))
    assert metrics["accuracy"] == pytest.approx(accuracy_score(truth.ravel(), predicted.ravel()))
    assert metrics["precision"] == pytest.approx(precision_score(truth.ravel(), predicted.ravel()))
    assert metrics["recall"] == pytest.approx(recall_score(truth.ravel(), predicted.ravel()))


def test_empty_prediction_on_empty_mask_scores_one():
    empty = np.zeros((2, 4, 4), bool)
    full = np.ones((2, 4, 4), bool)
    assert per_image_dice(confusion_counts(empty, empty)).tolist() == [1.0, 1.0]
    assert per_image_dice(confusion_counts(full, empty)).tolist() == [0.0, 0.0]


def test_per_image_table(masks):
    truth, predicted = masks
    table = per_image_table([f"i{k}" for k in range(6)], confusion_counts(truth, predicted))
    assert list(table.columns) == ["id", "dice", "iou", "true_fraction", "predicted_fraction"]
    assert table.true_fraction.tolist() == pytest.approx(truth.reshape(6, -1).mean(1).tolist())


def test_empty_baseline():
    masks = np.zeros((4, 3, 3), bool)
    masks[:3, 1, 1] = True
    assert baselines.empty_dice(masks) == 0.25


def test_brightness_baseline_finds_a_dark_object_and_fails_on_mixed(rng):
    masks = np.zeros((4, 16, 16), bool)
    masks[:, 4:12, 4:12] = True
    dark_object = np.where(masks[..., None], 0.2, 0.8) * np.ones(3)
    assert baselines.brightness_dice(dark_object, masks, dark_object, masks) == pytest.approx(1.0)
    mixed = dark_object.copy()
    mixed[2:] = 1 - mixed[2:]  # half the objects bright on dark
    assert baselines.brightness_dice(mixed, masks, mixed, masks) < 0.8
