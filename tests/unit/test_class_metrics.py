"""Metrics of several classes against scikit-learn, on real label maps."""

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import confusion_matrix, f1_score, jaccard_score

from conftest import shared_dataset
from unetseg.core.constants import IGNORE
from unetseg.evaluate.class_metrics import (
    confusion,
    confusion_rows,
    confusion_table,
    per_image_scores,
    summarize_classes,
)

NAMES = ["sky", "tree", "road", "grass", "water", "building", "mountain", "object"]


@pytest.fixture
def stanford_pairs():
    """Real Stanford Background label maps (15, unknown, as IGNORE) and a shifted copy of each as the 'prediction'."""
    root = shared_dataset("stanford-background")
    pairs = []
    for mask in sorted((root / "masks").iterdir())[:12]:
        truth = np.asarray(Image.open(mask)).copy()
        truth[truth == 15] = IGNORE
        predicted = np.roll(truth, (7, -5), axis=(0, 1))
        predicted[predicted == IGNORE] = 0
        pairs.append((truth, predicted))
    return pairs


def test_confusion_and_per_class_scores_match_scikit_learn(stanford_pairs):
    truth, predicted = next((t, p) for t, p in stanford_pairs if (t == IGNORE).any())  # ignored pixels left out
    labelled = truth != IGNORE
    assert np.array_equal(confusion(truth, predicted, 8), confusion_matrix(truth[labelled], predicted[labelled], labels=range(8)))

    matrices = np.stack([confusion(t, p, 8) for t, p in stanford_pairs])
    metrics = summarize_classes(matrices, NAMES)
    t = np.concatenate([t[t != IGNORE] for t, _ in stanford_pairs])
    p = np.concatenate([p[t != IGNORE] for t, p in stanford_pairs])
    present = np.union1d(np.unique(t), np.unique(p))
    iou = jaccard_score(t, p, labels=present, average=None)
    dice = f1_score(t, p, labels=present, average=None)
    assert sorted(metrics["class_iou"]) == sorted(NAMES[k] for k in present)  # absent classes have no key
    for k, i, d in zip(present, iou, dice):
        assert metrics["class_iou"][NAMES[k]] == pytest.approx(i)
        assert metrics["class_dice"][NAMES[k]] == pytest.approx(d)
    assert metrics["mean_iou"] == pytest.approx(iou.mean())
    assert metrics["pixel_accuracy"] == pytest.approx((t == p).mean())
    in_truth = np.unique(t)
    recall = [((t == k) & (p == k)).sum() / (t == k).sum() for k in in_truth]
    assert metrics["mean_class_accuracy"] == pytest.approx(np.mean(recall))


def test_per_image_scores_average_the_classes_each_image_has(stanford_pairs):
    matrices = np.stack([confusion(t, p, 8) for t, p in stanford_pairs])
    dice, iou, per_class = per_image_scores(matrices)
    for (truth, predicted), d, i in zip(stanford_pairs, dice, iou):
        labelled = truth != IGNORE
        t, p = truth[labelled], predicted[labelled]
        present = np.union1d(np.unique(t), np.unique(p))
        assert d == pytest.approx(f1_score(t, p, labels=present, average="macro"))
        assert i == pytest.approx(jaccard_score(t, p, labels=present, average="macro"))
    metrics = summarize_classes(matrices, NAMES)
    assert metrics["dice"] == pytest.approx(dice.mean())
    for k, name in enumerate(NAMES):
        column = per_class[:, k]
        if (~np.isnan(column)).any():
            assert metrics["class_image_dice"][name] == pytest.approx(np.nanmean(column))


def test_class_curves_are_one_vs_rest_over_labelled_pixels():
    """Each labelled pixel gives K (probability, is-its-class) pairs; ignored pixels none."""
    from unetseg.evaluate.metrics import precision_recall_curve
    from unetseg.evaluate.scoring import one_vs_rest

    mask = np.array([[0, 1], [2, IGNORE]], np.uint8)
    p = np.array([[[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]], [[0.5, 0.3, 0.2], [0.0, 0.0, 1.0]]], np.float32)
    probs, truths = (list(x) for x in zip(one_vs_rest(mask, p, 3)))
    assert probs[0].shape == truths[0].shape == (3, 3)
    assert truths[0].tolist() == [[True, False, False], [False, True, False], [False, False, True]]
    curve = precision_recall_curve(probs, truths).set_index("threshold")
    # above 0.05 all 9 pairs are called: the 3 true ones among them
    assert curve.loc[0.05, "recall"] == 1.0 and curve.loc[0.05, "precision"] == pytest.approx(3 / 9)
    # above 0.55: 0.7 (true) and 0.6 (true); the ignored pixel's 1.0 is not counted
    assert curve.loc[0.55, "precision"] == 1.0 and curve.loc[0.55, "recall"] == pytest.approx(2 / 3)


def test_the_long_form_confusion_keeps_each_true_class_shares():
    matrix = np.array([[970_000, 29_999, 1], [5, 3, 2], [0, 0, 0]])  # a rare cell, a small class, an absent one
    rows = confusion_rows(confusion_table(matrix, ["bg", "road", "sign"]), rows_per_class=1000)
    assert list(rows.columns) == ["actual", "predicted"] and len(rows) == 2000
    counts = rows.value_counts().to_dict()
    assert counts == {("bg", "bg"): 970, ("bg", "road"): 30, ("road", "bg"): 500, ("road", "road"): 300,
                      ("road", "sign"): 200}  # largest remainders: 969.999 -> 970, 29.999 -> 30, 0.001 -> 0
