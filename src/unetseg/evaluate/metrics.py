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


class Curves:
    """The threshold curve and the precision-recall curve, accumulated image by image: per image its
    counts at each threshold, over all images two histograms of probabilities. Memory grows by a few
    numbers an image, never by the images.

    `to_mask(p, t)`: pass the rule that makes the reported masks (`binarize`), refinements included,
    so the curve at the configured threshold is the reported score.
    """

    def __init__(self, thresholds, to_mask, bins: int = 100):
        self.thresholds, self.to_mask, self.bins = list(thresholds), to_mask, bins
        self.counts = []  # per image: {tp, fp, fn, tn} arrays over the thresholds
        self.foreground = np.zeros(bins, np.int64)  # pixels by probability bin (k/bins, (k+1)/bins]
        self.background = np.zeros(bins, np.int64)

    def add(self, p: np.ndarray, truth: np.ndarray) -> None:
        if self.thresholds:
            self.counts.append(image_counts([truth] * len(self.thresholds), [self.to_mask(p, t) for t in self.thresholds]))
        index = np.clip(np.ceil(np.ravel(p).astype(np.float64) * self.bins).astype(int) - 1, 0, self.bins - 1)
        positive = np.ravel(truth).astype(bool)
        self.foreground += np.bincount(index[positive], minlength=self.bins)
        self.background += np.bincount(index[~positive], minlength=self.bins)

    def threshold_table(self) -> pd.DataFrame:
        """Mean per-image dice and IoU at each threshold."""
        rows = []
        for j, t in enumerate(self.thresholds):
            c = {k: np.array([image[k][j] for image in self.counts]) for k in ("tp", "fp", "fn", "tn")}
            rows.append({"threshold": round(float(t), 4), "dice": per_image_dice(c).mean(), "iou": per_image_iou(c).mean()})
        return pd.DataFrame(rows)

    def precision_recall_table(self) -> pd.DataFrame:
        """Pixel precision and recall over all images of `p > k/bins` (the masks' rule)."""
        # bin k holds (k/bins, (k+1)/bins]: p > j/bins exactly when its bin is j or above
        fg = self.foreground[::-1].cumsum()[::-1]  # pixels in bins >= k
        bg = self.background[::-1].cumsum()[::-1]
        tp, fp = fg[1:], bg[1:]
        return pd.DataFrame({"threshold": np.arange(1, self.bins) / self.bins, "precision": ratio(tp, tp + fp),
                             "recall": ratio(tp, np.full_like(tp, self.foreground.sum()))})


def threshold_curve(probabilities, truth, thresholds, to_mask) -> pd.DataFrame:
    """Mean per-image dice and IoU of the masks `to_mask(p, t)` makes at each threshold t (images may
    differ in size)."""
    curves = Curves(thresholds, to_mask)
    for p, t in zip(probabilities, truth):
        curves.add(p, t)
    return curves.threshold_table()


def precision_recall_curve(probabilities, truth, bins: int = 100) -> pd.DataFrame:
    """Pixel precision and recall over all images of `p > k/bins`, from histograms in one pass."""
    curves = Curves([], None, bins)
    for p, t in zip(probabilities, truth):
        curves.add(p, t)
    return curves.precision_recall_table()


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
