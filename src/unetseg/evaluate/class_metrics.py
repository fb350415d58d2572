"""Metrics of several classes, from confusion matrices (rows: truth, columns: prediction).

Ignored pixels are in no matrix, so they count in no metric. Over all validation
pixels pooled, per class c: IoU = TP / (TP + FP + FN), dice = 2TP / (2TP + FP + FN),
accuracy = TP / (TP + FN) (the class's recall).

- `mean_iou`: the mean over classes of the pooled IoU, the number papers report
  (PASCAL VOC, Cityscapes). Every class counts, a background class too when the
  class map names one. A class absent from both the truth and the predictions of
  the whole split has no IoU: its keys are left out and it counts in no mean.
- `pixel_accuracy`: labelled pixels whose class is right; `mean_class_accuracy`:
  the mean of the per-class accuracies over classes present in the truth.
- Per image (each image counts once, as the binary `dice`): an image's `dice` and
  `iou` are the means over the classes in its truth or its prediction; `dice` and
  `iou` are their means over images. An image with every pixel ignored has nothing
  to score: NaN, in no mean (evaluate counts them as `images_not_scored`). `class_image_dice` is, per class, the mean
  over the images that have it in truth or prediction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from unetseg.core.constants import IGNORE


def confusion(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """The (K, K) pixel counts of one image's truth (class indices, IGNORE left out) against its prediction."""
    labelled = truth != IGNORE
    codes = truth[labelled].astype(np.int64) * num_classes + predicted[labelled]
    return np.bincount(codes, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _parts(matrices: np.ndarray):
    """TP, FP, FN per class of (..., K, K) matrices."""
    tp = np.diagonal(matrices, axis1=-2, axis2=-1)
    return tp, matrices.sum(-2) - tp, matrices.sum(-1) - tp


def _divide(numerator, denominator):
    """numerator / denominator, NaN where the denominator is 0 (undefined, not perfect)."""
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def per_image_scores(matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dice, iou) per image, each the mean over the classes in its truth or prediction (NaN when it has
    none: an image with every pixel ignored has nothing to score), and the per-image per-class dice
    (NaN where absent)."""
    tp, fp, fn = _parts(matrices)
    dice = _divide(2 * tp, 2 * tp + fp + fn)
    iou = _divide(tp, tp + fp + fn)
    present = ~np.isnan(dice)
    mean = lambda v: np.where(present.any(1), np.nansum(v, 1) / np.maximum(present.sum(1), 1), np.nan)  # noqa: E731
    return mean(dice), mean(iou), dice


def summarize_classes(matrices: np.ndarray, names) -> dict:
    """The metrics of the module docstring from per-image matrices (N, K, K)."""
    total = matrices.sum(0)
    tp, fp, fn = _parts(total)
    iou, dice, accuracy = _divide(tp, tp + fp + fn), _divide(2 * tp, 2 * tp + fp + fn), _divide(tp, tp + fn)
    image_dice, image_iou, per_class_image_dice = per_image_scores(matrices)
    with np.errstate(invalid="ignore"):
        class_image_dice = np.array([np.nanmean(c) if (~np.isnan(c)).any() else np.nan for c in per_class_image_dice.T])
    labelled = total.sum()
    metrics = {
        "mean_iou": float(np.nanmean(iou)) if (~np.isnan(iou)).any() else 0.0,
        "pixel_accuracy": float(tp.sum() / labelled) if labelled else 0.0,
        "mean_class_accuracy": float(np.nanmean(accuracy)) if (~np.isnan(accuracy)).any() else 0.0,
        "dice": _mean_of_scored(image_dice),
        "iou": _mean_of_scored(image_iou),
    }
    for key, values in (("class_iou", iou), ("class_dice", dice), ("class_image_dice", class_image_dice),
                        ("class_accuracy", accuracy)):
        metrics[key] = {name: float(v) for name, v in zip(names, values) if not np.isnan(v)}
    return metrics


def _mean_of_scored(values: np.ndarray) -> float:
    """The mean over images with something to score (0 when none has)."""
    scored = values[~np.isnan(values)]
    return float(scored.mean()) if scored.size else 0.0


ROWS_PER_CLASS = 1000  # each true class's shares to 0.1 %


def confusion_rows(table: pd.DataFrame, rows_per_class: int = ROWS_PER_CLASS) -> pd.DataFrame:
    """A confusion table in the long form DVC's confusion templates count (columns actual, predicted):
    each true class's pixels as `rows_per_class` rows shared among the predicted classes in proportion
    (largest remainders), since a row per pixel would be millions. Its row-normalised plot is the
    table's; a class absent from the truth has no rows."""
    actual, predicted = [], []
    for truth, counts in table.iterrows():
        counts = counts.to_numpy(float)
        if counts.sum() == 0:
            continue
        share = counts / counts.sum() * rows_per_class
        whole = np.floor(share).astype(int)
        short = rows_per_class - int(whole.sum())
        whole[np.argsort(whole - share, kind="stable")[:short]] += 1  # the largest remainders first
        actual += [truth] * rows_per_class
        predicted += [name for name, n in zip(table.columns, whole) for _ in range(n)]
    return pd.DataFrame({"actual": actual, "predicted": predicted})


def confusion_table(matrix: np.ndarray, names) -> pd.DataFrame:
    """A (K, K) matrix of pixel counts as a table: one row per true class, one column per predicted class."""
    table = pd.DataFrame(matrix, index=list(names), columns=list(names))
    table.index.name = "truth \\ predicted"
    return table
