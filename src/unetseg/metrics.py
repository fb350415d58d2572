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


def _ratio(numerator, denominator):
    """numerator / denominator, 1 where both are 0 (an empty mask predicted empty is perfect)."""
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, 1.0, numerator / safe)


def per_image_dice(c) -> np.ndarray:
    return _ratio(2 * c["tp"], 2 * c["tp"] + c["fp"] + c["fn"])


def per_image_iou(c) -> np.ndarray:
    return _ratio(c["tp"], c["tp"] + c["fp"] + c["fn"])


def summarize(c) -> dict[str, float]:
    """The metrics of the module docstring from per-image counts."""
    tp, fp, fn, tn = (int(c[k].sum()) for k in ("tp", "fp", "fn", "tn"))
    return {
        "dice": float(per_image_dice(c).mean()),
        "iou": float(per_image_iou(c).mean()),
        "dice_global": float(_ratio(2 * tp, 2 * tp + fp + fn)),
        "accuracy": float((tp + tn) / (tp + fp + fn + tn)),
        "precision": float(_ratio(tp, tp + fp)),
        "recall": float(_ratio(tp, tp + fn)),
    }


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
