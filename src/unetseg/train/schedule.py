"""The learning rate over training: a linear warm-up, then constant, cosine or polynomial decay.

A function of the optimizer's step alone, so a resumed run (whose backup restores
the optimizer's step count) continues the schedule exactly where it stopped. The
decays reach zero one step after the last, so the last epochs settle instead of
ending on the steep part of the curve (nnU-Net: polynomial, power 0.9).
"""

from __future__ import annotations

import math

import keras
from keras import ops

POLY_POWER = 0.9  # nnU-Net's


@keras.saving.register_keras_serializable(package="unetseg")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """`peak` after `warmup_steps` steps of linear rise, then `shape` decay to 0 at `total_steps`."""

    def __init__(self, peak: float, total_steps: int, warmup_steps: int = 0, shape: str = "cosine"):
        if shape not in ("constant", "cosine", "poly"):
            raise ValueError(f"unknown schedule {shape!r}")
        self.peak, self.total_steps, self.warmup_steps, self.shape = float(peak), int(total_steps), int(warmup_steps), shape

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = float(self.warmup_steps)
        rising = self.peak * (step + 1.0) / max(warmup, 1.0)
        progress = ops.clip((step - warmup) / max(self.total_steps - warmup, 1.0), 0.0, 1.0)
        if self.shape == "cosine":
            decayed = self.peak * 0.5 * (1.0 + ops.cos(math.pi * progress))
        elif self.shape == "poly":
            decayed = self.peak * ops.power(1.0 - progress, POLY_POWER)
        else:
            decayed = self.peak + 0.0 * progress
        return ops.where(step < warmup, rising, decayed)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps,
                "shape": self.shape}


def learning_rate(peak: float, shape: str, epochs: int, steps_per_epoch: int, warmup_epochs: float):
    """The optimizer's `learning_rate`: the plain number for a constant rate with no warm-up (which
    reduce-on-plateau may change), else the schedule."""
    warmup_steps = round(warmup_epochs * steps_per_epoch)
    if shape == "constant" and not warmup_steps:
        return peak
    return WarmupDecay(peak, epochs * steps_per_epoch, warmup_steps, shape)
