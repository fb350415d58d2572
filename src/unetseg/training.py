"""Training the U-Net from the TFRecords: resumable, optionally deterministic, saved atomically.

An interrupted or killed training leaves its backup (weights, optimizer state and
epoch, saved after every epoch by Keras `BackupAndRestore`) in the backup folder;
the next run with the same params and data continues from the last completed epoch,
and dvclive continues its curves from that step. A backup made with other params or
other data is discarded with a warning.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import keras
import pandas as pd
import tensorflow as tf

from unetseg.atomic import atomic_output
from unetseg.dataset import EPOCH_STRIDE, steps_per_epoch, training_dataset, validation_dataset
from unetseg.distribute import Role, make_strategy, per_replica_batch, role, shards_for_pipeline
from unetseg.errors import UnetsegError
from unetseg.losses import get_loss, training_metrics
from unetseg.model import build_unet
from unetseg.modelio import save_model
from unetseg.params import Params
from unetseg.splitting import TRAIN, VALIDATION
from unetseg.tfrecords import count_records, read_manifest, shard_files


class TrainingError(UnetsegError):
    """Training that produced no usable model."""


OPTIMIZERS = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}
FINGERPRINT = "fingerprint.json"
BEST = "best.weights.h5"
BEST_STATE = "best.json"


def build_model(params: Params) -> keras.Model:
    """The configured U-Net, compiled with the configured optimizer, loss and the seed's metrics."""
    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    if params.train.mixed_precision and not on_gpu:
        print("note: train.mixed_precision has no effect without a GPU; training in float32", file=sys.stderr)
    keras.mixed_precision.set_global_policy(
        "mixed_float16" if params.train.mixed_precision and on_gpu else "float32"
    )
    height, width = params.preprocess.image_size
    model = build_unet(
        input_shape=(height, width, 3),
        filters=params.model.filters,
        num_layers=params.model.num_layers,
        dropout=params.model.dropout,
        batch_norm=params.model.batch_norm,
    )
    model.compile(
        optimizer=OPTIMIZERS[params.train.optimizer](learning_rate=params.train.lr),
        loss=get_loss(params.train.loss),
        metrics=training_metrics(),
        jit_compile=params.train.jit_compile,
    )
    return model


def fingerprint(params: Params, tfrecord_dir: str | Path, num_replicas: int = 1) -> str:
    """What a backup must match to be resumed: everything that shapes training, and the data."""
    shaping = {
        "replicas": num_replicas,
        "base": [params.base.seed, params.base.deterministic],
        "image_size": params.preprocess.image_size,
        "augment": asdict(params.augment),
        "model": asdict(params.model),
        "train": asdict(params.train),
        "data": read_manifest(tfrecord_dir),
    }
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()


def prepare_backup(backup_dir: Path, expected: str) -> bool:
    """True if `backup_dir` holds a resumable backup; a foreign one is discarded with a warning."""
    marker = backup_dir / FINGERPRINT
    if backup_dir.exists():
        found = json.loads(marker.read_text())["fingerprint"] if marker.exists() else None
        if found == expected and (backup_dir / "training_metadata.json").exists():
            return True
        if found != expected:
            print(f"warning: {backup_dir}: backup made with other params or data, discarded", file=sys.stderr)
        shutil.rmtree(backup_dir)
    backup_dir.mkdir(parents=True)
    with atomic_output(marker) as temporary:  # other workers may be reading it
        temporary.write_text(json.dumps({"fingerprint": expected}) + "\n")
    return False


def _worker_backup(backup_dir: Path, expected: str, task: str) -> tuple[Path, bool]:
    """A non-chief worker's own backup folder beside the chief's, started from it if resumable.

    Workers must not write the chief's files; they only read them, before the first
    epoch, which the chief cannot finish without them.
    """
    local = backup_dir.with_name(f"{backup_dir.name}-{task}")
    shutil.rmtree(local, ignore_errors=True)
    marker = backup_dir / FINGERPRINT
    resumable = (
        marker.exists()
        and json.loads(marker.read_text())["fingerprint"] == expected
        and (backup_dir / "training_metadata.json").exists()
    )
    if resumable:
        shutil.copytree(backup_dir, local)
    return local, resumable


def _trim_history(live_dir: Path, epoch: int) -> None:
    """Drop dvclive rows logged after the backup's epoch, so resumed steps never repeat."""
    for tsv in (live_dir / "plots" / "metrics").rglob("*.tsv"):
        rows = pd.read_csv(tsv, sep="\t")
        rows[rows["step"] < epoch].to_csv(tsv, sep="\t", index=False)


def _improved(monitor: str, new: float, old: float | None) -> bool:
    """Lower is better for losses, higher for dice and accuracy."""
    if old is None:
        return True
    return new < old if monitor.endswith("loss") else new > old


class KeepBest(keras.callbacks.Callback):
    """Save the weights of the best monitored epoch beside the backup, so a resumed run keeps them."""

    def __init__(self, backup_dir: Path, monitor: str):
        super().__init__()
        self.weights, self.state, self.monitor = backup_dir / BEST, backup_dir / BEST_STATE, monitor
        self.best = json.loads(self.state.read_text())["value"] if self.state.exists() else None

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is not None and math.isfinite(value) and _improved(self.monitor, value, self.best):
            self.best = float(value)
            with atomic_output(self.weights) as temporary:
                self.model.save_weights(temporary)
            self.state.write_text(json.dumps({"epoch": epoch, "value": self.best}) + "\n")


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


def _live_callback(live):
    from dvclive.keras import DVCLiveCallback

    class EpochSteps(DVCLiveCallback):
        """dvclive's callback with step = epoch, so curves stay aligned after a resume."""

        def on_epoch_begin(self, epoch, logs=None):
            self.live.step = epoch

    return EpochSteps(live=live)


def _open_live(live_dir: Path, resume: bool):
    from dvclive import Live
    from scmrepo.exceptions import SCMError

    try:
        # dvcyaml=None: the stage's outputs are declared in the project's dvc.yaml, which
        # dvclive must not rewrite; save_dvc_exp=False: `dvc exp run` records the run.
        return Live(str(live_dir), resume=resume, dvcyaml=None, save_dvc_exp=False, report=None)
    except SCMError as error:  # dvclive reads the git revision and fails on a repo with no commit
        raise TrainingError(
            f"dvclive cannot start ({error}): commit once (git add -A && git commit) and run again"
        ) from None


def _callbacks(params: Params, backup_dir: Path, live) -> list:
    """With `live` None (a non-chief worker) nothing is logged and best weights are not kept."""
    train = params.train
    callbacks = [keras.callbacks.TerminateOnNaN(), EpochSeeds()]
    if train.keep == "best" and live is not None:
        callbacks.append(KeepBest(backup_dir, train.monitor))
    if train.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(train.monitor, patience=train.early_stopping_patience))
    if train.reduce_lr_patience:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                train.monitor, factor=train.reduce_lr_factor, patience=train.reduce_lr_patience
            )
        )
    # The backup comes last: an epoch that dvclive logged but the backup missed (a kill
    # in between) is trimmed from the curves and trained again on resume.
    if live is not None:
        callbacks.append(_live_callback(live))
    return callbacks + [
        keras.callbacks.BackupAndRestore(str(backup_dir), double_checkpoint=True, delete_checkpoint=False),
    ]


def _datasets(params: Params, tfrecord_dir, train_files, validation_files, strategy, me: Role, first_epoch: int):
    """Training and validation data, and steps per epoch, for one device or a strategy.

    Under a strategy each worker's pipeline reads its own train shards and batches at
    the per-replica size, and every pipeline's epoch has the same number of batches.
    Every worker validates on the whole validation split in global batches: the
    average over workers of identical numbers is the one-device number.
    """
    batch_size, seed = params.train.batch_size, params.base.seed
    shuffle_buffer = batch_size * params.train.shuffle_batches
    epochs = range(first_epoch, params.train.epochs)
    records = dict(zip(train_files, (row["records"] for row in read_manifest(tfrecord_dir)["splits"][TRAIN])))
    validation_count = count_records(tfrecord_dir, VALIDATION)
    if not me.distributed:
        count = sum(records.values())
        return (
            training_dataset(train_files, batch_size, shuffle_buffer, seed, params.augment, count, epochs),
            validation_dataset(validation_files, batch_size, count=validation_count),
            steps_per_epoch(count, batch_size),
        )

    replica_batch = per_replica_batch(batch_size, me.num_replicas)
    local_replicas = me.num_replicas // me.num_workers
    shares = [shards_for_pipeline(train_files, i, me.num_workers) for i in range(me.num_workers)]
    steps = max(steps_per_epoch(sum(records[f] for f in share), replica_batch * local_replicas) for share in shares)

    def train_pipeline(context: tf.distribute.InputContext):
        share = shares[context.input_pipeline_id]
        return training_dataset(
            share, replica_batch, shuffle_buffer, seed + context.input_pipeline_id, params.augment,
            sum(records[f] for f in share), epochs, batches_per_epoch=steps * local_replicas,
        )

    def validation_pipeline(context: tf.distribute.InputContext):
        return validation_dataset(validation_files, batch_size, count=validation_count)

    return (
        strategy.distribute_datasets_from_function(train_pipeline),
        strategy.distribute_datasets_from_function(validation_pipeline),
        steps,
    )


def train(
    params: Params, tfrecord_dir: str | Path, model_path: str | Path, live_dir: str | Path, backup_dir: str | Path
) -> dict:
    """Fit on the train shards, validate each epoch, save the model; return the last epoch's logs.

    Under a multi-worker strategy every worker runs this; the chief alone writes the
    model, the curves and the backup that the next run resumes from.
    """
    strategy = make_strategy(params.train.strategy)  # before any other TensorFlow work
    me = role(strategy)
    live_dir, backup_dir = Path(live_dir), Path(backup_dir)
    train_files = shard_files(tfrecord_dir, TRAIN)  # counts and checksums, before any work
    validation_files = shard_files(tfrecord_dir, VALIDATION)
    if params.base.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(params.base.seed)
    with strategy.scope():
        model = build_model(params)
    expected = fingerprint(params, tfrecord_dir, me.num_replicas)
    if me.is_chief:
        resume = prepare_backup(backup_dir, expected)
    else:
        backup_dir, resume = _worker_backup(backup_dir, expected, me.task)
    first_epoch = 0
    if resume:
        first_epoch = json.loads((backup_dir / "training_metadata.json").read_text())["epoch"]
        print(f"resuming from the backup in {backup_dir}: {first_epoch} epoch(s) done")
        if me.is_chief:
            _trim_history(live_dir, first_epoch)
    train_ds, validation_ds, steps = _datasets(
        params, tfrecord_dir, train_files, validation_files, strategy, me, first_epoch
    )
    live = _open_live(live_dir, resume) if me.is_chief else None
    try:
        history = model.fit(
            train_ds,
            validation_data=validation_ds,
            epochs=params.train.epochs,
            steps_per_epoch=steps,
            callbacks=_callbacks(params, backup_dir, live),
            shuffle=False,  # the dataset shuffles, seeded
            verbose=2 if me.is_chief else 0,
        )
    finally:
        if not me.is_chief:
            shutil.rmtree(backup_dir, ignore_errors=True)
    losses = history.history.get("loss", [])
    if any(not math.isfinite(v) for v in losses):
        shutil.rmtree(backup_dir, ignore_errors=True)
        raise TrainingError(
            f"training loss became {losses[-1]} at epoch {len(losses)}: no model written "
            "(lower train.lr, or check the data)"
        )
    if params.train.keep == "best" and (backup_dir / BEST).exists():
        model.load_weights(backup_dir / BEST)
    if me.is_chief:
        save_model(model, model_path)
        shutil.rmtree(backup_dir)
    else:
        print(f"{me.task}: done; the chief writes the model and the curves")
    return {name: values[-1] for name, values in history.history.items()}
