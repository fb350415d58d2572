"""Scoring a saved model on the validation split, at the model's and at the original resolution."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from unetseg import baselines
from unetseg.atomic import atomic_output
from unetseg.dataset import records_dataset
from unetseg.imaging import read_truth
from unetseg.inference import binarize, mask_at, probabilities
from unetseg.metrics import (
    confusion_counts,
    distribution,
    merge_counts,
    per_image_dice,
    per_image_table,
    precision_recall_curve,
    summarize,
    threshold_curve,
)
from unetseg.modelio import load_model
from unetseg.pairs_table import TRAIN, VALIDATION, read_pairs
from unetseg.params import Data, Evaluate, Inference
from unetseg.plots import gallery
from unetseg.tfrecords import shard_files
from unetseg.uncertainty import group_bootstrap_interval

BATCH = 16
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)


@dataclass
class Evaluation:
    metrics: dict
    per_image: pd.DataFrame
    curves: dict[str, pd.DataFrame]
    gallery: object  # PIL image


def _batches(files):
    """(images float, masks bool, ids, original sizes) batches of some shards, in file order."""
    for image, mask, id_, size in records_dataset(files, BATCH):
        yield image.numpy(), mask.numpy()[..., 0].astype(bool), [i.decode() for i in id_.numpy()], size.numpy()


def intervals(per_image: pd.DataFrame, resamples: int, seed: int) -> dict[str, float]:
    """95 % bootstrap intervals of the mean dice and original dice, redrawing validation groups
    (unetseg.uncertainty); none with a single group, where there is nothing to redraw."""
    if per_image["group"].nunique() < 2:
        return {}
    found = {}
    for name in ("dice", "original_dice"):
        low, high = group_bootstrap_interval(per_image[name].to_numpy(), per_image["group"].to_numpy(), resamples, seed)
        found[f"{name}_ci_low"], found[f"{name}_ci_high"] = low, high
    return found


def evaluate_model(
    model_path, tfrecord_dir, pairs_path, inference: Inference, data: Data, settings: Evaluate
) -> Evaluation:
    """Metrics (unetseg.metrics's definitions), per-image table, curves and gallery of the validation split."""
    model = load_model(model_path)
    batches = list(_batches(shard_files(tfrecord_dir, VALIDATION)))
    images, masks = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    ids, sizes = [i for b in batches for i in b[2]], np.concatenate([b[3] for b in batches])
    p = np.concatenate(
        [probabilities(model, images[i : i + BATCH], inference.tta_flip) for i in range(0, len(images), BATCH)]
    )
    predicted = np.stack([binarize(pi, inference) for pi in p])
    counts = confusion_counts(masks, predicted)
    metrics = summarize(counts)
    metrics.update(distribution(per_image_dice(counts), "dice"))

    # At each image's original size, against its mask file read by the data rules (as Kaggle scored Carvana).
    pairs = read_pairs(pairs_path).set_index("id")
    original = []
    for id_, pi, size in zip(ids, p, sizes):
        truth = read_truth(pairs.at[id_, "mask"], tuple(size), data, pairs.at[id_, "image"]).mask
        original.append(confusion_counts(truth[None], mask_at(pi, truth.shape, inference)[None]))
    original = merge_counts(original)
    metrics.update({f"original_{k}": v for k, v in summarize(original).items()})

    train_batches = ((b[0], b[1]) for b in _batches(shard_files(tfrecord_dir, TRAIN)))
    metrics["baseline_empty_dice"] = baselines.empty_dice(masks)
    metrics["baseline_brightness_dice"] = baselines.brightness_dice(
        baselines.grey_histograms(train_batches), baselines.grey_histograms([(images, masks)])
    )
    metrics["images"] = len(ids)

    per_image = per_image_table(ids, counts)
    per_image.insert(1, "group", [pairs.at[i, "group"] for i in ids])
    per_image["original_dice"] = per_image_dice(original)
    metrics.update(intervals(per_image, settings.bootstrap_resamples, settings.bootstrap_seed))
    order = np.argsort(per_image["dice"].to_numpy(), kind="stable")
    worst, best = order[: settings.gallery_size], order[::-1][: settings.gallery_size]
    shown = list(worst) + [i for i in best if i not in worst]
    curves = {
        "dice_vs_threshold": threshold_curve(p, masks, THRESHOLDS, lambda pi, t: binarize(pi, inference, t)),
        "precision_recall": precision_recall_curve(p, masks),
        "dice_sorted": pd.DataFrame({"rank": np.arange(len(order)), "dice": per_image["dice"].to_numpy()[order]}),
    }
    panels = [(ids[i], images[i], masks[i], predicted[i].astype(bool), per_image["dice"][i]) for i in shown]
    return Evaluation(metrics, per_image, curves, gallery(panels))


def write_evaluation(evaluation: Evaluation, metrics_path, per_image_path, plots_dir, gallery_path) -> None:
    """Write the metrics JSON (finite numbers only), the per-image CSV, the curves and the gallery, atomically."""
    bad = [k for k, v in evaluation.metrics.items() if not math.isfinite(v)]
    if bad:
        raise ValueError(f"non-finite metric(s): {', '.join(bad)}")
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
