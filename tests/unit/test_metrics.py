import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, jaccard_score, precision_score, recall_score

from unetseg.evaluate import baselines
from unetseg.evaluate.metrics import (
    confusion_counts,
    distribution,
    merge_counts,
    per_image_dice,
    per_image_table,
    precision_recall_curve,
    summarize,
    threshold_curve,
)


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
    assert baselines.empty_dice([mask.any() for mask in masks]) == 0.25


def test_brightness_baseline_finds_a_dark_object_and_fails_on_mixed(rng):
    masks = np.zeros((4, 16, 16), bool)
    masks[:, 4:12, 4:12] = True
    dark_object = np.where(masks[..., None], 0.2, 0.8) * np.ones(3)
    dark = baselines.grey_histograms([(dark_object, masks)])
    assert baselines.brightness_dice(dark, dark) == pytest.approx(1.0)
    mixed = dark_object.copy()
    mixed[2:] = 1 - mixed[2:]  # half the objects bright on dark
    mixed = baselines.grey_histograms([(mixed[:2], masks[:2]), (mixed[2:], masks[2:])])  # batch by batch
    assert baselines.brightness_dice(mixed, mixed) < 0.8


def test_brightness_histograms_memory_stays_flat_in_the_number_of_images(rng):
    """Batches are reduced to counts as they come: 8x the images must not need 8x the memory."""
    import tracemalloc

    def batches(count):
        for _ in range(count):
            yield rng.random((4, 64, 64, 3), dtype=np.float32), rng.random((4, 64, 64)) > 0.5

    peaks = []
    for count in (4, 32):
        tracemalloc.start()
        fg, bg = baselines.grey_histograms(batches(count))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert fg.shape == bg.shape == (4 * count, baselines.BINS) and (fg + bg).sum() == 4 * count * 64 * 64
    one_batch = 4 * 64 * 64 * 3 * 4
    assert peaks[1] - peaks[0] < one_batch, peaks  # holding the images would add 28 batches


def test_distribution_and_merged_counts(masks):
    truth, predicted = masks
    parts = [confusion_counts(t[None], p[None]) for t, p in zip(truth, predicted)]
    merged = merge_counts(parts)
    whole = confusion_counts(truth, predicted)
    assert all(np.array_equal(merged[k], whole[k]) for k in whole)
    dice = per_image_dice(whole)
    spread = distribution(dice, "dice")
    assert spread["dice_min"] == dice.min() and spread["dice_median"] == pytest.approx(np.median(dice))


def test_threshold_curve_matches_scikit_learn(rng, masks):
    truth, _ = masks
    probabilities = np.clip(truth * 0.6 + rng.random(truth.shape) * 0.5, 0, 1)
    curve = threshold_curve(probabilities, truth, [0.3, 0.5, 0.7], lambda p, t: p > t)
    for _, row in curve.iterrows():
        expected = np.mean([f1_score(t.ravel(), (p > row.threshold).ravel()) for t, p in zip(truth, probabilities)])
        assert row.dice == pytest.approx(expected)


@pytest.mark.parametrize("refined", [False, True])
def test_curves_at_the_threshold_equal_the_reported_scores(rng, refined):
    """The curves use the masks' own rule (p > t, refinements included), ties at exactly 0.5 too."""
    from unetseg.config.params import Inference
    from unetseg.model.applying import binarize

    inference = Inference(0.5, False, refined)
    truth = np.zeros((4, 16, 16), bool)
    truth[:, 4:12, 4:12] = True
    p = np.where(truth, 0.8, 0.1).astype(np.float32)
    p[:, 0:2, 0:2] = 0.9  # a stray blob, which largest_component removes
    p[:, 6, 5:8] = 0.5  # exactly at the threshold: not foreground
    predicted = np.stack([binarize(pi, inference) for pi in p])
    reported = summarize(confusion_counts(truth, predicted))
    curve = threshold_curve(p, truth, [0.25, 0.5], lambda pi, t: binarize(pi, inference, t)).set_index("threshold")
    assert curve.loc[0.5, "dice"] == pytest.approx(reported["dice"])
    unrefined = threshold_curve(p, truth, [0.5], lambda pi, t: pi > t)["dice"][0]
    assert (unrefined != pytest.approx(reported["dice"])) == refined  # the old curve missed the refinement
    pr = precision_recall_curve(p, truth).set_index("threshold")
    plain = summarize(confusion_counts(truth, p > 0.5))
    assert pr.loc[0.5, "precision"] == pytest.approx(plain["precision"])
    assert pr.loc[0.5, "recall"] == pytest.approx(plain["recall"])


def test_precision_recall_curve_matches_scikit_learn(rng, masks):
    truth, _ = masks
    probabilities = np.clip(truth * 0.4 + rng.random(truth.shape) * 0.6, 0, 0.999)
    probabilities[0, 0, :4] = 0.5  # ties: the masks' rule is p > t
    curve = precision_recall_curve(probabilities, truth, bins=10).set_index("threshold")
    for threshold in (0.3, 0.5, 0.8):
        predicted = probabilities > threshold
        assert curve.loc[threshold, "precision"] == pytest.approx(precision_score(truth.ravel(), predicted.ravel()))
        assert curve.loc[threshold, "recall"] == pytest.approx(recall_score(truth.ravel(), predicted.ravel()))
