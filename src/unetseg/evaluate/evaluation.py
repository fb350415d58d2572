"""Scoring a saved model on the validation split, at the model's and at the original resolution.

Binary models by unetseg.evaluate.metrics, models of several classes by unetseg.evaluate.class_metrics;
both write a confusion matrix (counts, and a row-normalised picture). The model's
resolution is the TFRecords': the model size, or with patches each whole image at the
working scale, predicted by the sliding window. Images are predicted a batch at a time and
scored as they come (unetseg.evaluate.scoring): memory holds one batch, a few numbers an
image and the gallery's pictures, whatever the size of the validation split.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from unetseg.config.params import Data, Evaluate, Inference
from unetseg.core.application import Application
from unetseg.core.atomic import atomic_outputs
from unetseg.core.errors import UnetsegError
from unetseg.data.classes import ClassMap
from unetseg.data.masks import read_truth
from unetseg.data.pairs_table import TRAIN, VALIDATION, read_pairs
from unetseg.evaluate.calibration import int8_network
from unetseg.evaluate.class_metrics import confusion_rows
from unetseg.evaluate.intervals import group_bootstrap_interval
from unetseg.evaluate.scoring import BinaryScores, ClassScores, GalleryPicks
from unetseg.infer.pictures import class_gallery, confusion_picture, gallery
from unetseg.model.applied import load_applied
from unetseg.model.applying import probabilities, tiled_probabilities
from unetseg.model.modelfile import NO_ENCODER
from unetseg.model.runtimes import INT8, Int8Network
from unetseg.preprocess.tfrecords import (
    check_classes,
    check_shaping,
    class_pixels,
    records_dataset,
    shard_files,
)

BATCH = 16


@dataclass
class Evaluation:
    metrics: dict
    per_image: pd.DataFrame
    curves: dict[str, pd.DataFrame]
    gallery: object  # PIL image
    confusion: pd.DataFrame  # pixel counts, true class by predicted class, at the model's resolution
    int8: Int8Network | None = None  # the quantized network scored (inference.precision int8)
    int8_cached: bool = False  # whether it came from the cache rather than a calibration


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
        scored = per_image[per_image[name].notna()]  # an image with nothing to score is no sample
        if scored["group"].nunique() < 2:
            continue
        low, high = group_bootstrap_interval(scored[name].to_numpy(), scored["group"].to_numpy(), resamples, seed)
        found[f"{name}_ci_low"], found[f"{name}_ci_high"] = low, high
    return found


def evaluate_model(
    model_path, tfrecord_dir, pairs_path, inference: Inference, data: Data, settings: Evaluate,
    classes: ClassMap | None = None, application: Application | None = None, encoder: str = NO_ENCODER,
    seed: int = 0,
) -> Evaluation:
    """Metrics, per-image table, curves, gallery and confusion matrix of the validation split, of the
    network as `inference.runtime` and `inference.precision` run it (int8: quantized here, calibrated
    on training images drawn by `seed`).

    `classes`, `application` and `encoder` (model.encoder), from the params, must be those the
    TFRecords and the model were made with (without `application`, the model file's is used).
    """
    overlap = application.overlap if application is not None and application.tiled else None  # the params'
    resolved = load_applied(model_path, (classes, application, encoder), overlap)
    check_classes(tfrecord_dir, classes)
    applied = resolved.application
    check_shaping(tfrecord_dir, applied)
    pairs = read_pairs(pairs_path).set_index("id")
    train_files = shard_files(tfrecord_dir, TRAIN)
    int8, cached = None, False
    if inference.precision == INT8:
        train_ids = list(pairs.index[pairs["split"] == TRAIN])
        int8, cached = int8_network(resolved.network, model_path, train_files, train_ids, applied,
                                    inference.calibration_images, seed)
    model = replace(resolved, int8=int8).runner(inference)
    scores = BinaryScores(inference) if classes is None else ClassScores(inference, classes)
    picks, ids = GalleryPicks(settings.gallery_size), []
    for image, mask, id_, size, p in _predicted(model, shard_files(tfrecord_dir, VALIDATION), applied, inference):
        # the mask file read by the data rules, at the image's original size (as Kaggle scored Carvana)
        truth = read_truth(pairs.at[id_, "mask"], tuple(size), data, pairs.at[id_, "image"], classes).mask
        dice, predicted = scores.add(image, mask, p, truth)
        picks.offer(dice, (id_, image, mask, predicted))  # copied if kept: not a view holding its batch
        ids.append(id_)
    if classes is None:
        found = scores.result(ids, _batches(train_files, 1 if applied.tiled else BATCH))
    else:
        found = scores.result(ids, class_pixels(train_files, classes.num_classes))
    metrics, per_image, curves, matrix = found
    metrics["images"] = len(ids)
    per_image.insert(1, "group", [pairs.at[i, "group"] for i in ids])
    metrics.update(intervals(per_image, settings.bootstrap_resamples, settings.bootstrap_seed))
    dice = per_image["dice"].dropna().to_numpy()
    curves["dice_sorted"] = pd.DataFrame({"rank": np.arange(len(dice)), "dice": np.sort(dice, kind="stable")})
    panels = [(n, im, t, m, d) for (n, im, t, m), d in picks.panels()]
    if not panels:  # no image with anything to score
        shown = Image.new("RGB", (1, 1), "white")
    elif classes is None:
        shown = gallery([(n, im, t.astype(bool), m.astype(bool), d) for n, im, t, m, d in panels])
    else:
        shown = class_gallery(panels, classes.colours)
    return Evaluation(metrics, per_image, curves, shown, matrix, int8, cached)


def _predicted(model, files, applied: Application, inference: Inference):
    """(image, mask, id, original size, probabilities) of each validation image, in file order, predicted a
    batch at a time (with patches one image at a time, by the sliding window): one batch held at once."""
    for images, masks, ids, sizes in _batches(files, 1 if applied.tiled else BATCH):
        if applied.tiled:
            p = [tiled_probabilities(model, images[0], applied, inference.tta_flip)]
        else:
            p = probabilities(model, images, inference.tta_flip)
        yield from zip(images, masks, ids, sizes, p)


def _numbers(metrics: dict, prefix: str = ""):
    """(dotted key, value) of every number in nested metrics, as `dvc metrics` flattens them."""
    for key, value in metrics.items():
        if isinstance(value, dict):
            yield from _numbers(value, f"{prefix}{key}.")
        elif not isinstance(value, str):
            yield f"{prefix}{key}", value


def write_evaluation(
    evaluation: Evaluation, metrics_path, per_image_path, plots_dir, gallery_path, confusion_path, extra=None,
) -> None:
    """Write the metrics JSON (finite numbers only), the per-image CSV, the curves, the gallery and the
    confusion matrix (CSV of counts, beside it a PNG of its rows normalised, and in the curves the long
    form DVC's confusion template draws), and `extra` (a
    (path, write(path)) pair: the scored model), all or none: each is written beside its final name,
    and all are put in place once every one is written (unetseg.core.atomic.atomic_outputs)."""
    bad = [k for k, v in _numbers(evaluation.metrics) if not math.isfinite(v)]
    if bad:
        raise UnetsegError(
            f"{metrics_path}: not written: non-finite metric(s) {', '.join(bad)}; the model gives NaN or infinite "
            f"probabilities (a diverged training? see its curves)"
        )
    finals = [metrics_path, per_image_path, plots_dir, gallery_path, confusion_path,
              Path(confusion_path).with_suffix(".png"), *([extra[0]] if extra else [])]
    with atomic_outputs(*finals) as paths:
        metrics, per_image, plots, shown, matrix, picture = paths[:6]
        metrics.write_text(json.dumps(evaluation.metrics, indent=2) + "\n")
        evaluation.per_image.to_csv(per_image, index=False, float_format="%.6f")
        plots.mkdir()
        for name, table in evaluation.curves.items():
            table.to_csv(plots / f"{name}.csv", index=False, float_format="%.6f")
        confusion_rows(evaluation.confusion).to_csv(plots / "confusion.csv", index=False)
        evaluation.gallery.save(shown, format="PNG")
        evaluation.confusion.to_csv(matrix)
        confusion_picture(evaluation.confusion).save(picture, format="PNG")
        if extra:
            extra[1](paths[6])
