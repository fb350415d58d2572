"""Scoring a saved model on the validation split, at the model's and at the original resolution.

Binary models by unetseg.evaluate.metrics, models of several classes by unetseg.evaluate.class_metrics;
both write a confusion matrix (counts, and a row-normalised picture). The model's
resolution is the TFRecords': the model size, or with patches each whole image at the
working scale, predicted by the sliding window.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from unetseg.config.params import Data, Evaluate, Inference
from unetseg.core.application import Application
from unetseg.core.atomic import atomic_output
from unetseg.core.constants import IGNORE
from unetseg.core.errors import UnetsegError
from unetseg.data.classes import ClassMap
from unetseg.data.masks import read_truth
from unetseg.data.pairs_table import TRAIN, VALIDATION, read_pairs
from unetseg.evaluate import baselines
from unetseg.evaluate.class_metrics import confusion, confusion_table, per_image_scores, summarize_classes
from unetseg.evaluate.intervals import group_bootstrap_interval
from unetseg.evaluate.metrics import (
    distribution,
    image_counts,
    per_image_dice,
    per_image_table,
    precision_recall_curve,
    summarize,
    threshold_curve,
)
from unetseg.infer.pictures import class_gallery, confusion_picture, gallery
from unetseg.model.applying import binarize, mask_at, probabilities, tiled_probabilities, to_mask
from unetseg.model.modelfile import NO_ENCODER, load_applied
from unetseg.preprocess.tfrecords import (
    check_classes,
    check_shaping,
    class_pixels,
    records_dataset,
    shard_files,
)

BATCH = 16
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)


@dataclass
class Evaluation:
    metrics: dict
    per_image: pd.DataFrame
    curves: dict[str, pd.DataFrame]
    gallery: object  # PIL image
    confusion: pd.DataFrame  # pixel counts, true class by predicted class, at the model's resolution


def _batches(files, batch: int = BATCH):
    """(images float, masks uint8, ids, original sizes) batches of some shards, in file order."""
    for image, mask, id_, size in records_dataset(files, batch):
        yield image.numpy(), mask.numpy()[..., 0], [i.decode() for i in id_.numpy()], size.numpy()


def intervals(per_image: pd.DataFrame, resamples: int, seed: int) -> dict[str, float]:
    """95 % bootstrap intervals of the mean dice and original dice, redrawing validation groups
    (unetseg.evaluate.intervals); none with a single group, where there is nothing to redraw."""
    if per_image["group"].nunique() < 2:
        return {}
    found = {}
    for name in ("dice", "original_dice"):
        low, high = group_bootstrap_interval(per_image[name].to_numpy(), per_image["group"].to_numpy(), resamples, seed)
        found[f"{name}_ci_low"], found[f"{name}_ci_high"] = low, high
    return found


def evaluate_model(
    model_path, tfrecord_dir, pairs_path, inference: Inference, data: Data, settings: Evaluate,
    classes: ClassMap | None = None, application: Application | None = None, encoder: str = NO_ENCODER,
) -> Evaluation:
    """Metrics, per-image table, curves, gallery and confusion matrix of the validation split.

    `classes`, `application` and `encoder` (model.encoder), from the params, must be those the
    TFRecords and the model were made with (without `application`, the model file's is used).
    """
    overlap = application.overlap if application is not None and application.tiled else None  # the params'
    resolved = load_applied(model_path, (classes, application, encoder), overlap)
    check_classes(tfrecord_dir, classes)
    model, applied = resolved.network, resolved.application
    check_shaping(tfrecord_dir, applied)
    if applied.tiled:  # images of their own sizes, one by one through the sliding window
        batches = list(_batches(shard_files(tfrecord_dir, VALIDATION), 1))
        images, masks = [b[0][0] for b in batches], [b[1][0] for b in batches]
        p = [tiled_probabilities(model, image, applied, inference.tta_flip) for image in images]
    else:
        batches = list(_batches(shard_files(tfrecord_dir, VALIDATION)))
        images, masks = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
        p = np.concatenate(
            [probabilities(model, images[i : i + BATCH], inference.tta_flip) for i in range(0, len(images), BATCH)]
        )
    ids, sizes = [i for b in batches for i in b[2]], np.concatenate([b[3] for b in batches])
    pairs = read_pairs(pairs_path).set_index("id")

    def truth_at_original(id_, size):
        """An image's mask file read by the data rules, at the image's original size (as Kaggle scored Carvana)."""
        return read_truth(pairs.at[id_, "mask"], tuple(size), data, pairs.at[id_, "image"], classes).mask

    scored = _Scored(images, masks, p, ids, sizes, truth_at_original, shard_files(tfrecord_dir, TRAIN),
                     1 if applied.tiled else BATCH)
    evaluation = _score_binary(scored, inference) if classes is None else _score_classes(scored, inference, classes)
    evaluation.metrics["images"] = len(ids)
    per_image = evaluation.per_image
    per_image.insert(1, "group", [pairs.at[i, "group"] for i in ids])
    evaluation.metrics.update(intervals(per_image, settings.bootstrap_resamples, settings.bootstrap_seed))
    order = np.argsort(per_image["dice"].to_numpy(), kind="stable")
    worst, best = order[: settings.gallery_size], order[::-1][: settings.gallery_size]
    shown = list(worst) + [i for i in best if i not in worst]
    evaluation.curves["dice_sorted"] = pd.DataFrame(
        {"rank": np.arange(len(order)), "dice": per_image["dice"].to_numpy()[order]}
    )
    predicted = [to_mask(p[i], inference) for i in shown]
    panels = [(ids[i], images[i], masks[i], mask, per_image["dice"][i]) for i, mask in zip(shown, predicted)]
    if classes is None:
        evaluation.gallery = gallery([(n, im, t.astype(bool), m.astype(bool), d) for n, im, t, m, d in panels])
    else:
        evaluation.gallery = class_gallery(panels, classes.colours)
    return evaluation


@dataclass
class _Scored:
    """The validation split as the model saw it, and how to read its truth at the original size."""

    images: np.ndarray  # float, at the model's size
    masks: np.ndarray  # uint8, at the model's size
    p: np.ndarray  # probabilities
    ids: list[str]
    sizes: np.ndarray  # original (height, width)
    truth_at_original: object  # (id, size) -> the mask file read by the data rules
    train_files: list[str]  # the train split's shards, for the baselines
    batch: int  # how many train images read at once (1 when they differ in size)


def _score_binary(scored: _Scored, inference: Inference) -> Evaluation:
    """unetseg.evaluate.metrics's definitions, the empty and brightness baselines, and the threshold curves."""
    images, p, ids, sizes = scored.images, scored.p, scored.ids, scored.sizes
    masks = [m.astype(bool) for m in scored.masks]
    predicted = [binarize(pi, inference) for pi in p]
    counts = image_counts(masks, predicted)
    metrics = summarize(counts)
    metrics.update(distribution(per_image_dice(counts), "dice"))
    original, truths = [], []
    for id_, pi, size in zip(ids, p, sizes):
        truth = scored.truth_at_original(id_, size)
        original.append(mask_at(pi, truth.shape, inference))
        truths.append(truth)
    original = image_counts(truths, original)
    metrics.update({f"original_{k}": v for k, v in summarize(original).items()})
    train_batches = ((b[0], b[1].astype(bool)) for b in _batches(scored.train_files, scored.batch))
    metrics["baseline_empty_dice"] = baselines.empty_dice(masks)
    metrics["baseline_brightness_dice"] = baselines.brightness_dice(
        baselines.grey_histograms(train_batches), baselines.grey_histograms((i[None], m[None]) for i, m in zip(images, masks))
    )
    per_image = per_image_table(ids, counts)
    per_image["original_dice"] = per_image_dice(original)
    curves = {
        "dice_vs_threshold": threshold_curve(p, masks, THRESHOLDS, lambda pi, t: binarize(pi, inference, t)),
        "precision_recall": precision_recall_curve(p, masks),
    }
    matrix = np.array([[counts["tn"].sum(), counts["fp"].sum()], [counts["fn"].sum(), counts["tp"].sum()]])
    return Evaluation(metrics, per_image, curves, None, confusion_table(matrix, ["background", "foreground"]))


def _score_classes(scored: _Scored, inference: Inference, classes: ClassMap) -> Evaluation:
    """unetseg.evaluate.class_metrics's definitions and the all-most-frequent-class baseline."""
    k, ids = classes.num_classes, scored.ids
    matrices = np.stack([confusion(t, to_mask(pi, inference), k) for t, pi in zip(scored.masks, scored.p)])
    metrics = summarize_classes(matrices, classes.names)
    original = []
    for id_, pi, size in zip(ids, scored.p, scored.sizes):
        truth = scored.truth_at_original(id_, size)
        original.append(confusion(truth, mask_at(pi, truth.shape, inference), k))
    original = np.stack(original)
    metrics.update({f"original_{key}": v for key, v in summarize_classes(original, classes.names).items()})
    # Every pixel given the class with the most training pixels: what a model must beat.
    frequent = int(np.argmax(class_pixels(scored.train_files, k)))
    baseline = np.zeros((k, k), np.int64)
    baseline[:, frequent] = matrices.sum(0).sum(1)
    everywhere = summarize_classes(baseline[None], classes.names)
    metrics["baseline_most_frequent_class"] = classes.names[frequent]
    metrics["baseline_most_frequent_mean_iou"] = everywhere["mean_iou"]
    metrics["baseline_most_frequent_pixel_accuracy"] = everywhere["pixel_accuracy"]
    dice, iou, _ = per_image_scores(matrices)
    tp = np.diagonal(matrices, axis1=1, axis2=2).sum(1)
    per_image = pd.DataFrame({
        "id": ids, "dice": dice, "iou": iou,
        "pixel_accuracy": np.where(matrices.sum((1, 2)) > 0, tp / np.maximum(matrices.sum((1, 2)), 1), 1.0),
        "original_dice": per_image_scores(original)[0],
    })
    probs, truths = _one_vs_rest(scored.masks, scored.p, k)
    curves = {  # dvc.yaml's plots, for a class model too
        "dice_vs_threshold": threshold_curve(probs, truths, THRESHOLDS, lambda pi, t: pi > t),
        "precision_recall": precision_recall_curve(probs, truths),
    }
    return Evaluation(metrics, per_image, curves, None, confusion_table(matrices.sum(0), classes.names))


def _one_vs_rest(masks, p, k: int):
    """Per image, each labelled pixel's K probabilities and its one-hot truth: a class model's
    threshold and precision-recall curves are the binary ones over these (pixel, class) pairs,
    each class's probability against its own mask (micro-averaged one-vs-rest)."""
    probs, truths = [], []
    for mask, pi in zip(masks, p):
        labelled = mask != IGNORE
        probs.append(pi[labelled])
        truths.append(np.eye(k, dtype=bool)[mask[labelled]])
    return probs, truths


def _numbers(metrics: dict, prefix: str = ""):
    """(dotted key, value) of every number in nested metrics, as `dvc metrics` flattens them."""
    for key, value in metrics.items():
        if isinstance(value, dict):
            yield from _numbers(value, f"{prefix}{key}.")
        elif not isinstance(value, str):
            yield f"{prefix}{key}", value


def write_evaluation(
    evaluation: Evaluation, metrics_path, per_image_path, plots_dir, gallery_path, confusion_path
) -> None:
    """Write the metrics JSON (finite numbers only), the per-image CSV, the curves, the gallery and the
    confusion matrix (CSV of counts, and beside it a PNG of its rows normalised), atomically."""
    bad = [k for k, v in _numbers(evaluation.metrics) if not math.isfinite(v)]
    if bad:
        raise UnetsegError(
            f"{metrics_path}: not written: non-finite metric(s) {', '.join(bad)}; the model gives NaN or infinite "
            f"probabilities (a diverged training? see its curves)"
        )
    with atomic_output(metrics_path) as out:
        out.write_text(json.dumps(evaluation.metrics, indent=2) + "\n")
    with atomic_output(per_image_path) as out:
        evaluation.per_image.to_csv(out, index=False, float_format="%.6f")
    with atomic_output(plots_dir) as out:
        out.mkdir()
        for name, table in evaluation.curves.items():
            table.to_csv(Path(out) / f"{name}.csv", index=False, float_format="%.6f")
    with atomic_output(gallery_path) as out:
        evaluation.gallery.save(out, format="PNG")
    with atomic_output(confusion_path) as out:
        evaluation.confusion.to_csv(out)
    with atomic_output(Path(confusion_path).with_suffix(".png")) as out:
        confusion_picture(evaluation.confusion).save(out, format="PNG")
