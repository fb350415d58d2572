"""How long to train: epochs and steps that fit `dvc repro` into the minutes given, on this machine.

A tenth of the budget is kept for what timing a few steps cannot see (`PLANNED_SHARE`); the
rest is spent as the pipeline spends it: starting each stage, reading the
files (split and preprocess; measured while fingerprinting), training (timed steps
and, each epoch, a validation and a backup), then evaluate and predict on the validation images
(with the mirror average, twice the network). At `inference.precision: int8` evaluate also
converts and calibrates the network, and both apply the int8 network, at its timed speed.
What is left for training is split
into epochs of one pass over the training images (patches: at least
`PATCH_STEPS` batches), between `MIN_EPOCHS` and `MAX_EPOCHS`: a shorter epoch when
the data are many, a longer one when the time is plenty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from unetseg.core.errors import UnetsegError
from unetseg.plan.throughput import Throughput

STAGE_START = 30.0  # seconds to start a stage (Python, TensorFlow, DVC's bookkeeping); five stages
EPOCH_END = 4.0  # seconds between epochs: the backup for resuming, the curves (Carvana, ISBI: 4 to 5)
PATCH_SAMPLING = 1.3  # cutting patches beside the steps: ISBI's steps took 1.3 times the timed ones
# the share of the budget planned: on four datasets, train stages took 0.89 to 1.08 times this model of them
# (the input pipeline and other work on the machine), so the rest is kept for that
PLANNED_SHARE = 0.9
STAGES = 5
PREPROCESS_READS = 2.0  # preprocess reads, resizes and encodes each pair: about twice the split's read
MIN_EPOCHS, MAX_EPOCHS = 10, 40
# a calibration sample (a batch of one, its statistics gathered) costs 1.3 to 1.5 times a timed Keras inference item
# (docs/results.md#r-data-plan-int8-cost)
CALIBRATION_ITEM = 1.5
PATCH_STEPS = 16  # a patch epoch of fewer batches validates too often for what it trains


class BudgetError(UnetsegError):
    """--minutes too short for the data on this machine."""


@dataclass(frozen=True)
class Workload:
    train_images: int
    validation_images: int
    batch_size: int
    read_seconds: float  # one pair, decoded, one process
    workers: int
    validation_items: int  # what training validates each epoch: images, or tiles
    items_per_image: float  # network inputs an image takes at evaluate and predict (tiles, or 1)
    mirror: bool  # inference.tta_flip: two passes of the network
    calibration_items: int = 0  # images or tiles that calibrate the int8 network (inference.precision int8)


@dataclass(frozen=True)
class Schedule:
    epochs: int
    steps_per_epoch: int
    seconds: dict  # the estimate, by part

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def plan_schedule(work: Workload, speed: Throughput, minutes: float, patches: bool) -> Schedule:
    """The schedule that fills `PLANNED_SHARE` of `minutes`; a budget too short for even `MIN_EPOCHS` short
    epochs is an error. int8 is counted where `speed` timed it."""
    train_step, infer_item = speed.train_step, speed.infer_item
    reads = work.read_seconds * (work.train_images + work.validation_images) / work.workers
    network = infer_item if speed.int8_item is None else speed.int8_item
    applied = work.validation_images * (work.read_seconds + network * work.items_per_image * (1 + work.mirror))
    fixed = {"stage starts": STAGE_START * STAGES, "split": reads, "preprocess": PREPROCESS_READS * reads,
             "evaluate": applied, "predict": applied}
    if speed.int8_item is not None:
        fixed["int8 calibration"] = speed.quantize + work.calibration_items * CALIBRATION_ITEM * infer_item
    validation = work.validation_items * infer_item + EPOCH_END
    if patches:
        train_step *= PATCH_SAMPLING
    left = PLANNED_SHARE * minutes * 60 - sum(fixed.values())
    one_pass = math.ceil(work.train_images / work.batch_size)
    steps = max(one_pass, PATCH_STEPS) if patches else one_pass
    epochs = math.floor(left / (steps * train_step + validation)) if left > 0 else 0
    if epochs > MAX_EPOCHS:
        epochs = MAX_EPOCHS
        steps = math.floor((left / MAX_EPOCHS - validation) / train_step)
    elif epochs < MIN_EPOCHS:
        epochs = MIN_EPOCHS
        steps = math.floor((left / MIN_EPOCHS - validation) / train_step) if left > 0 else 0
        if steps < 1:
            least = (sum(fixed.values()) + MIN_EPOCHS * (validation + 8 * train_step)) / PLANNED_SHARE / 60
            raise BudgetError(
                f"--minutes {minutes:g} is too short for {work.train_images + work.validation_images} images on "
                f"this machine: reading, evaluating and {MIN_EPOCHS} short epochs alone take about "
                f"{math.ceil(least)} minutes"
            )
    seconds = {**fixed, "train": epochs * (steps * train_step + validation)}
    return Schedule(epochs, steps, {k: round(v, 1) for k, v in seconds.items()})
