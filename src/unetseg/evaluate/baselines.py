"""Trivial baselines that a trained model must beat, scored like the model.

- empty: predict background everywhere.
- brightness: foreground where the grey level is above (or below) one fixed
  threshold, the threshold and direction chosen to maximise mean per-image dice on
  the training images, then scored on the validation images.
"""

from __future__ import annotations

import numpy as np

from unetseg.evaluate.metrics import ratio

BINS = 64


def _histograms(images: np.ndarray, masks: np.ndarray):
    """Per-image histograms of grey level for foreground and background pixels of one batch."""
    grey = images.mean(axis=-1).reshape(len(images), -1)
    bins = np.minimum((grey * BINS).astype(int), BINS - 1)
    fg = masks.reshape(len(masks), -1).astype(bool)
    offsets = np.arange(len(images))[:, None] * BINS
    fg_hist = np.bincount((bins + offsets)[fg], minlength=len(images) * BINS).reshape(-1, BINS)
    bg_hist = np.bincount((bins + offsets)[~fg], minlength=len(images) * BINS).reshape(-1, BINS)
    return fg_hist, bg_hist


def _dice_table(fg_hist, bg_hist) -> np.ndarray:
    """Mean per-image dice for each (direction, threshold bin): shape (2, BINS + 1)."""
    fg_above = np.cumsum(fg_hist[:, ::-1], axis=1)[:, ::-1]  # pixels in bins >= k
    bg_above = np.cumsum(bg_hist[:, ::-1], axis=1)[:, ::-1]
    fg_above = np.concatenate([fg_above, np.zeros((len(fg_hist), 1))], axis=1)
    bg_above = np.concatenate([bg_above, np.zeros((len(bg_hist), 1))], axis=1)
    fg_total, bg_total = fg_hist.sum(1, keepdims=True), bg_hist.sum(1, keepdims=True)
    tables = []
    for tp, fp in ((fg_above, bg_above), (fg_total - fg_above, bg_total - bg_above)):
        fn = fg_total - tp
        tables.append(ratio(2 * tp, 2 * tp + fp + fn).mean(axis=0))
    return np.stack(tables)


def empty_dice(has_foreground) -> float:
    """Mean per-image dice of an all-background prediction, from whether each image's mask has any
    foreground: 1 on empty masks, 0 elsewhere."""
    return float(np.mean([not any_foreground for any_foreground in has_foreground]))


def grey_histograms(batches) -> tuple[np.ndarray, np.ndarray]:
    """Per-image (foreground, background) grey-level histograms of (images, masks) batches.

    Accumulated batch by batch: memory grows by 2 x BINS counts an image, never by
    the images themselves (a whole Carvana training split would not fit).
    """
    parts = [_histograms(images, masks) for images, masks in batches]
    if not parts:
        return np.zeros((0, BINS), np.int64), np.zeros((0, BINS), np.int64)
    return np.concatenate([fg for fg, _ in parts]), np.concatenate([bg for _, bg in parts])


def brightness_dice(train_histograms, validation_histograms) -> float:
    """Validation dice of the best fixed grey-level threshold found on the training images
    (each argument a `grey_histograms` result)."""
    best = np.argmax(_dice_table(*train_histograms))
    direction, threshold = np.unravel_index(best, (2, BINS + 1))
    return float(_dice_table(*validation_histograms)[direction, threshold])
