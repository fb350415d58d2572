"""Scoring a saved model on the validation shards, beside trivial baselines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from unetseg import baselines
from unetseg.atomic import atomic_output
from unetseg.dataset import records_dataset
from unetseg.metrics import confusion_counts, per_image_table, summarize
from unetseg.modelio import load_model
from unetseg.splitting import TRAIN, VALIDATION
from unetseg.tfrecords import shard_files

BATCH = 16


def _arrays(files):
    """All (images float, masks bool, ids) of some shards, in file order."""
    images, masks, ids = [], [], []
    for image, mask, id_, _ in records_dataset(files, BATCH):
        images.append(image.numpy())
        masks.append(mask.numpy()[..., 0].astype(bool))
        ids.extend(i.decode() for i in id_.numpy())
    return np.concatenate(images), np.concatenate(masks), ids


def evaluate_model(model_path, tfrecord_dir, threshold: float):
    """Metrics (metrics.py's definitions, at the model's resolution) and a per-image table."""
    model = load_model(model_path)
    images, masks, ids = _arrays(shard_files(tfrecord_dir, VALIDATION))
    probabilities = np.concatenate(
        [np.asarray(model.predict_on_batch(images[i : i + BATCH]))[..., 0] for i in range(0, len(images), BATCH)]
    )
    counts = confusion_counts(masks, probabilities > threshold)
    metrics = summarize(counts)
    train_images, train_masks, _ = _arrays(shard_files(tfrecord_dir, TRAIN))
    metrics["baseline_empty_dice"] = baselines.empty_dice(masks)
    metrics["baseline_brightness_dice"] = baselines.brightness_dice(train_images, train_masks, images, masks)
    metrics["images"] = len(ids)
    return metrics, per_image_table(ids, counts)


def write_metrics(metrics: dict, per_image, metrics_path, per_image_path) -> None:
    """Write the metrics JSON (finite numbers only) and the per-image CSV, each atomically."""
    bad = [k for k, v in metrics.items() if not math.isfinite(v)]
    if bad:
        raise ValueError(f"non-finite metric(s): {', '.join(bad)}")
    with atomic_output(metrics_path) as out:
        out.write_text(json.dumps(metrics, indent=2) + "\n")
    with atomic_output(per_image_path) as out:
        per_image.to_csv(out, index=False, float_format="%.6f")
