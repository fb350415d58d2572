"""What happens around each epoch: keeping the best weights, early stopping, reducing
the learning rate, per-epoch dropout seeds, dvclive curves and the backup."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import keras
import pandas as pd

from unetseg.config.params import Train
from unetseg.core.atomic import atomic_output
from unetseg.core.constants import EPOCH_STRIDE
from unetseg.core.errors import UnetsegError
from unetseg.train.backups import BEST_STATE, BEST_WEIGHTS, best_state


def monitor_mode(monitor: str) -> str:
    """Whether the monitored value should fall (losses) or rise (dice, accuracy).

    Stated for Keras, whose "auto" cannot tell for a custom metric such as dice.
    """
    return "min" if monitor.endswith("loss") else "max"


def _improved(mode: str, new: float, old: float | None) -> bool:
    return old is None or (new < old if mode == "min" else new > old)


class KeepBest(keras.callbacks.Callback):
    """Save the weights of the best monitored epoch beside the backup, so a resumed run keeps them.

    Each best epoch's weights go to a file of their own; the state file that names
    them is then replaced in one rename, the commit: a kill at any moment leaves the
    previous best value and its own weights, or the new ones, never a mix.
    """

    def __init__(self, backup_dir: Path, monitor: str):
        super().__init__()
        self.folder = backup_dir
        self.monitor, self.mode = monitor, monitor_mode(monitor)
        state = best_state(backup_dir)
        self.best = state["value"] if state else None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and math.isfinite(value) and _improved(self.mode, value, self.best):
            weights = self.folder / BEST_WEIGHTS.format(epoch=epoch)
            with atomic_output(weights) as temporary:
                self.model.save_weights(temporary)
            with atomic_output(self.folder / BEST_STATE) as temporary:
                temporary.write_text(json.dumps({"epoch": epoch, "value": float(value), "weights": weights.name}) + "\n")
            self.best = float(value)
            for old in self.folder.glob(BEST_WEIGHTS.format(epoch="*")):
                if old != weights:
                    old.unlink()


class EpochSeeds(keras.callbacks.Callback):
    """Restart each random layer's (dropout's) seed stream at a point fixed by the epoch.

    Keras counts dropout draws in a seed variable that backups do not keep; fixing
    it per epoch makes a resumed epoch draw the same masks as an uninterrupted one.
    """

    def on_train_begin(self, logs=None):
        self.states = [v for v in self.model.variables if v.path.endswith("seed_generator_state")]
        self.seeds = [int(keras.ops.convert_to_numpy(v)[0]) for v in self.states]

    def on_epoch_begin(self, epoch, logs=None):
        for state, seed in zip(self.states, self.seeds):
            state.assign(keras.ops.convert_to_tensor([seed, epoch * EPOCH_STRIDE], dtype=state.dtype))


class LearningRateLog(keras.callbacks.Callback):
    """The rate at the end of each epoch (the schedule's value there: the next step's) in the logs, so the
    curves show the schedule."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class EpochTimes(keras.callbacks.Callback):
    """Print how each epoch's time splits between training and validation (on stdout, not in the
    curves, which must repeat exactly from run to run)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.begun, self.validation = time.perf_counter(), 0.0

    def on_test_begin(self, logs=None):
        self.tested = time.perf_counter()

    def on_test_end(self, logs=None):
        self.validation += time.perf_counter() - self.tested

    def on_epoch_end(self, epoch, logs=None):
        total = time.perf_counter() - self.begun
        print(f"epoch {epoch + 1}: {total - self.validation:.1f} s training, {self.validation:.1f} s validation "
              f"({self.validation / max(total, 1e-9):.0%})", flush=True)


def _live_callback(live):
    from dvclive.keras import DVCLiveCallback

    class EpochSteps(DVCLiveCallback):
        """dvclive's callback with step = epoch, so curves stay aligned after a resume."""

        def on_epoch_begin(self, epoch, logs=None):
            self.live.step = epoch

    return EpochSteps(live=live)


def open_live(live_dir: Path, resume: bool):
    """dvclive's logger; on resume, the rows logged after the backup's epoch are dropped first."""
    from dvclive import Live
    from scmrepo.exceptions import SCMError

    try:
        # dvcyaml=None: the stage's outputs are declared in the project's dvc.yaml, which
        # dvclive must not rewrite; save_dvc_exp=False: `dvc exp run` records the run.
        return Live(str(live_dir), resume=resume, dvcyaml=None, save_dvc_exp=False, report=None)
    except SCMError as error:  # dvclive reads the git revision and fails on a repo with no commit
        raise UnetsegError(
            f"dvclive cannot start ({error}): commit once (git add -A && git commit) and run again"
        ) from None


def trim_history(live_dir: Path, epoch: int) -> None:
    """Drop dvclive rows logged after the backup's epoch, so resumed steps never repeat."""
    for tsv in (live_dir / "plots" / "metrics").rglob("*.tsv"):
        rows = pd.read_csv(tsv, sep="\t")
        with atomic_output(tsv) as temporary:
            rows[rows["step"] < epoch].to_csv(temporary, sep="\t", index=False)


def make_callbacks(train: Train, backup_dir: Path, live) -> list:
    """With `live` None (a non-chief worker) nothing is logged and best weights are not kept."""
    mode = monitor_mode(train.monitor)
    callbacks = [keras.callbacks.TerminateOnNaN(), EpochSeeds(), LearningRateLog()]
    if train.ema:  # validation scores the average, which fit leaves in the model at the end
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=False))
    if train.keep == "best" and live is not None:
        callbacks.append(KeepBest(backup_dir, train.monitor))
    if train.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(train.monitor, patience=train.early_stopping_patience, mode=mode)
        )
    if train.reduce_lr_patience:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                train.monitor, factor=train.reduce_lr_factor, patience=train.reduce_lr_patience, mode=mode
            )
        )
    # The backup comes last: an epoch that dvclive logged but the backup missed (a kill
    # in between) is trimmed from the curves and trained again on resume.
    if live is not None:
        callbacks += [EpochTimes(), _live_callback(live)]
    return callbacks + [
        keras.callbacks.BackupAndRestore(str(backup_dir), double_checkpoint=True, delete_checkpoint=False),
    ]
