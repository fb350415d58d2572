"""Thresholded segmentation metrics, per image and over all pixels, at the model's resolution.

Per image: dice = 2TP / (2TP + FP + FN) and IoU = TP / (TP + FP + FN), both defined
as 1 when the mask and the prediction are both empty. `dice` and `iou` are their
means over validation images (each image counts once, as Kaggle scored Carvana);
`dice_global` pools the pixels of all images first; `accuracy`, `precision` and
`recall` pool all pixels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def confusion_counts(truth: np.ndarray, predicted: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image TP, FP, FN, TN of boolean arrays shaped (images, ...)."""
    truth = truth.reshape(len(truth), -1).astype(bool)
    predicted = predicted.reshape(len(predicted), -1).astype(bool)
    return {
        "tp": (truth & predicted).sum(1),
        "fp": (~truth & predicted).sum(1),
        "fn": (truth & ~predicted).sum(1),
        "tn": (~truth & ~predicted).sum(1),
    }


def ratio(numerator, denominator):
    """numerator / denominator, 1 where both are 0 (an empty mask predicted empty is perfect)."""
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, 1.0, numerator / safe)


def per_image_dice(c) -> np.ndarray:
    return ratio(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"])


def per_image_iou(c) -> np.ndarray:
    return ratio(c["tp"], c["tp"] + c["fp"] + c["fn"])


def summarize(c) -> dict[str, float]:
    """The metrics of the module docstring from per-image counts."""
    tp, fp, fn, tn = (int(c[k].sum()) for k in ("tp", "fp", "fn", "tn"))
    return {
        "dice": float(per_image_dice(c).mean()),
        "iou": float(per_image_iou(c).mean()),
        "dice_global": float(ratio(2 * tp, 2 * tp + fp + fn)),
        "accuracy": float((tp + tn) / (tp + fp + fn + tn)),
        "precision": float(ratio(tp, tp + fp)),
        "recall": float(ratio(tp, tp + fn)),
    }


def merge_counts(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Per-image counts of images of different sizes, side by side."""
    return {k: np.concatenate([part[k] for part in parts]) for k in ("tp", "fp", "fn", "tn")}


def distribution(values: np.ndarray, name: str) -> dict[str, float]:
    """The spread of a per-image metric: min, 10th percentile, median."""
    return {
        f"{name}_min": float(values.min()),
        f"{name}_p10": float(np.percentile(values, 10)),
        f"{name}_median": float(np.median(values)),
    }


def image_counts(truth, predicted) -> dict[str, np.ndarray]:
    """Per-image counts of masks that may differ in size from image to image (sequences of arrays)."""
    return merge_counts([confusion_counts(t[None], p[None]) for t, p in zip(truth, predicted)])


def threshold_curve(probabilities, truth, thresholds, to_mask) -> pd.DataFrame:
    """Mean per-image dice and IoU of the masks `to_mask(p, t)` makes at each threshold t.

    Pass the rule that makes the reported masks (`inference.binarize`), refinements
    included, so the curve at the configured threshold is the reported score. Images
    may differ in size.
    """
    rows = []
    for t in thresholds:
        c = image_counts(truth, [to_mask(p, t) for p in probabilities])
        rows.append({"threshold": round(float(t), 4), "dice": per_image_dice(c).mean(), "iou": per_image_iou(c).mean()})
    return pd.DataFrame(rows)


def precision_recall_curve(probabilities, truth, bins: int = 100) -> pd.DataFrame:
    """Pixel precision and recall over all images of `p > k/bins` (the masks' rule), from histograms in one pass."""
    # bin k holds (k/bins, (k+1)/bins]: p > j/bins exactly when its bin is j or above
    p = np.concatenate([np.ravel(x) for x in probabilities]).astype(np.float64)
    index = np.clip(np.ceil(p * bins).astype(int) - 1, 0, bins - 1)
    positive = np.concatenate([np.ravel(x) for x in truth]).astype(bool)
    fg = np.bincount(index[positive], minlength=bins)[::-1].cumsum()[::-1]  # pixels in bins >= k
    bg = np.bincount(index[~positive], minlength=bins)[::-1].cumsum()[::-1]
    thresholds = np.arange(1, bins) / bins
    tp, fp = fg[1:], bg[1:]
    return pd.DataFrame(
        {
            "threshold": thresholds,
            "precision": ratio(tp, tp + fp),
            "recall": ratio(tp, np.full_like(tp, positive.sum())),
        }
    )


def per_image_table(ids, c) -> pd.DataFrame:
    pixels = c["tp"] + c["fp"] + c["fn"] + c["tn"]
    return pd.DataFrame(
        {
            "id": list(ids),
            "dice": per_image_dice(c),
            "iou": per_image_iou(c),
            "true_fraction": (c["tp"] + c["fn"]) / pixels,
            "predicted_fraction": (c["tp"] + c["fp"]) / pixels,
        }
    )
