"""Scores accumulated image by image, so evaluate's memory does not grow with the validation split.

Each validation image is scored as it is predicted, then let go: what is kept is a few
numbers an image (its counts or confusion matrix, at the model's and the original
resolution, and at each threshold of the curve), histograms summed over all pixels (the
precision-recall curve, the brightness baseline), and the pictures of the few images
the gallery may still show.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from unetseg.config.params import Inference
from unetseg.core.constants import IGNORE
from unetseg.data.classes import ClassMap
from unetseg.evaluate import baselines
from unetseg.evaluate.class_metrics import confusion, confusion_table, per_image_scores, summarize_classes
from unetseg.evaluate.metrics import (
    Curves,
    distribution,
    image_counts,
    merge_counts,
    per_image_dice,
    per_image_table,
    summarize,
)
from unetseg.model.applying import binarize, mask_at, to_mask

THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)


class BinaryScores:
    """unetseg.evaluate.metrics's definitions, the empty and brightness baselines, and the curves."""

    def __init__(self, inference: Inference):
        self.inference = inference
        self.counts, self.original, self.has_foreground, self.grey = [], [], [], []
        self.curves = Curves(THRESHOLDS, lambda p, t: binarize(p, inference, t))

    def add(self, image: np.ndarray, mask: np.ndarray, p: np.ndarray, truth: np.ndarray):
        """Score one image (float image, mask and probabilities at the model's size, truth at the
        original size); return its dice and its predicted mask."""
        mask = mask.astype(bool)
        predicted = binarize(p, self.inference)
        counts = image_counts([mask], [predicted])
        self.counts.append(counts)
        self.original.append(image_counts([truth], [mask_at(p, truth.shape, self.inference)]))
        self.has_foreground.append(bool(mask.any()))
        self.grey.append(baselines.grey_histograms([(image[None], mask[None])]))
        self.curves.add(p, mask)
        return float(per_image_dice(counts)[0]), predicted

    def result(self, ids, train_batches):
        """(metrics, per-image table, curves, confusion table); `train_batches` feed the brightness baseline."""
        counts, original = merge_counts(self.counts), merge_counts(self.original)
        metrics = summarize(counts)
        metrics.update(distribution(per_image_dice(counts), "dice"))
        metrics.update({f"original_{k}": v for k, v in summarize(original).items()})
        metrics["baseline_empty_dice"] = baselines.empty_dice(self.has_foreground)
        validation = tuple(np.concatenate([h[i] for h in self.grey]) for i in (0, 1))
        metrics["baseline_brightness_dice"] = baselines.brightness_dice(
            baselines.grey_histograms((b[0], b[1].astype(bool)) for b in train_batches), validation)
        per_image = per_image_table(ids, counts)
        per_image["original_dice"] = per_image_dice(original)
        curves = {"dice_vs_threshold": self.curves.threshold_table(),
                  "precision_recall": self.curves.precision_recall_table()}
        matrix = np.array([[counts["tn"].sum(), counts["fp"].sum()], [counts["fn"].sum(), counts["tp"].sum()]])
        return metrics, per_image, curves, confusion_table(matrix, ["background", "foreground"])


class ClassScores:
    """unetseg.evaluate.class_metrics's definitions, the all-most-frequent-class baseline, and the curves
    one-vs-rest: each labelled pixel's K probabilities against its one-hot truth (micro-averaged)."""

    def __init__(self, inference: Inference, classes: ClassMap):
        self.inference, self.classes, self.k = inference, classes, classes.num_classes
        self.matrices, self.original = [], []
        self.curves = Curves(THRESHOLDS, lambda p, t: p > t)

    def add(self, image: np.ndarray, mask: np.ndarray, p: np.ndarray, truth: np.ndarray):
        predicted = to_mask(p, self.inference)
        matrix = confusion(mask, predicted, self.k)
        self.matrices.append(matrix)
        self.original.append(confusion(truth, mask_at(p, truth.shape, self.inference), self.k))
        if (mask != IGNORE).any():  # an image with nothing to score is in no curve either
            self.curves.add(*one_vs_rest(mask, p, self.k))
        return float(per_image_scores(matrix[None])[0][0]), predicted

    def result(self, ids, train_pixels: np.ndarray):
        """As BinaryScores.result; `train_pixels`, the training split's pixels per class, name the baseline."""
        names, matrices, original = self.classes.names, np.stack(self.matrices), np.stack(self.original)
        metrics = summarize_classes(matrices, names)
        metrics.update({f"original_{key}": v for key, v in summarize_classes(original, names).items()})
        # Every pixel given the class with the most training pixels: what a model must beat.
        frequent = int(np.argmax(train_pixels))
        baseline = np.zeros((self.k, self.k), np.int64)
        baseline[:, frequent] = matrices.sum(0).sum(1)
        everywhere = summarize_classes(baseline[None], names)
        metrics["baseline_most_frequent_class"] = names[frequent]
        metrics["baseline_most_frequent_mean_iou"] = everywhere["mean_iou"]
        metrics["baseline_most_frequent_pixel_accuracy"] = everywhere["pixel_accuracy"]
        dice, iou, _ = per_image_scores(matrices)
        metrics["images_not_scored"] = int(np.isnan(dice).sum())  # every pixel ignored: NaN in the table
        tp = np.diagonal(matrices, axis1=1, axis2=2).sum(1)
        per_image = pd.DataFrame({
            "id": ids, "dice": dice, "iou": iou,
            "pixel_accuracy": np.where(matrices.sum((1, 2)) > 0, tp / np.maximum(matrices.sum((1, 2)), 1), np.nan),
            "original_dice": per_image_scores(original)[0],
        })
        curves = {"dice_vs_threshold": self.curves.threshold_table(),  # dvc.yaml's plots, for a class model too
                  "precision_recall": self.curves.precision_recall_table()}
        return metrics, per_image, curves, confusion_table(matrices.sum(0), names)


def one_vs_rest(mask: np.ndarray, p: np.ndarray, k: int):
    """An image's labelled pixels' K probabilities (n, K) and their one-hot truth (n, K): a class model's
    curves are the binary ones over these (pixel, class) pairs, ignored pixels left out."""
    labelled = mask != IGNORE
    return p[labelled], np.eye(k, dtype=bool)[mask[labelled]]


class GalleryPicks:
    """The `size` worst and best images by dice, kept while the images stream past: every image's
    dice, and the pictures of those still among the worst or best so far (once out, never back)."""

    def __init__(self, size: int):
        self.size, self.dice, self.kept = size, [], {}

    def _chosen(self) -> tuple[list[int], list[int]]:
        order = np.argsort(np.asarray(self.dice), kind="stable")  # ties: the earlier image first
        return list(order[: self.size]), list(order[::-1][: self.size])

    def offer(self, dice: float, panel) -> None:
        """Consider an image; one with nothing to score (NaN) is neither worst nor best."""
        if np.isnan(dice):
            return
        self.dice.append(dice)
        worst, best = self._chosen()
        chosen = set(worst) | set(best)
        self.kept = {i: kept for i, kept in self.kept.items() if i in chosen}
        if len(self.dice) - 1 in chosen:  # arrays copied: a view would hold its whole batch
            self.kept[len(self.dice) - 1] = tuple(np.copy(p) if isinstance(p, np.ndarray) else p for p in panel) \
                if isinstance(panel, tuple) else panel

    def panels(self) -> list:
        """(panel, dice) of the worst, from the worst up, then of the best not among them, from the best down."""
        worst, best = self._chosen()
        return [(self.kept[i], self.dice[i]) for i in worst + [i for i in best if i not in worst]]
