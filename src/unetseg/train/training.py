"""Training the U-Net from the TFRecords: resumable, optionally deterministic, saved atomically.

An interrupted or killed training leaves its backup (unetseg.train.backups) in the backup
folder; the next run with the same params and data continues from the last
completed epoch, and dvclive continues its curves from that step.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from unetseg.config.params import Params
from unetseg.core import cpu
from unetseg.core.application import Application
from unetseg.core.errors import DataError, UnetsegError
from unetseg.core.startup import native_logs_filtered
from unetseg.data.classes import ClassMap, loss_weights
from unetseg.data.pairs_table import TRAIN, VALIDATION
from unetseg.model.efficientnet_lite import pretrained_weights
from unetseg.model.modelfile import save_model
from unetseg.model.unet import build_encoder_unet, build_unet
from unetseg.preprocess.tfrecords import (
    check_classes,
    check_shaping,
    class_pixels,
    read_manifest,
    shard_files,
)
from unetseg.train.backups import (
    best_state,
    epochs_done,
    fingerprint,
    prepare_backup,
    remove_backup,
    worker_backup,
)
from unetseg.train.callbacks import make_callbacks, open_live, trim_history
from unetseg.train.dataset import (
    CACHE_LIMIT_BYTES,
    STREAMED_SHUFFLE,
    fits_in_memory,
    steps_per_epoch,
    tiles_dataset,
    training_dataset,
    validation_dataset,
    validation_tiles,
)
from unetseg.train.distribute import Role, make_strategy, per_replica_batch, role, shards_for_pipeline
from unetseg.train.interrupts import StopOnInterrupt, interrupts_deferred
from unetseg.train.losses import get_loss, training_metrics
from unetseg.train.patches import PatchSampling
from unetseg.train.schedule import learning_rate


class TrainingError(UnetsegError):
    """Training that produced no usable model."""


OPTIMIZERS = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}


def gpu_available() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


def compute_policy(mixed_precision: bool) -> str:
    """The Keras dtype policy to train in: float16 compute only where it pays, on a GPU.

    Training only: `save_model` always writes a float32 network.
    """
    if mixed_precision and not gpu_available():
        print("note: train.mixed_precision has no effect without a GPU; training in float32", file=sys.stderr)
        return "float32"
    return "mixed_float16" if mixed_precision else "float32"


def build_model(params: Params, class_weights, steps_per_epoch: int) -> keras.Model:
    """The configured U-Net, compiled with the configured optimizer, learning-rate schedule, loss and
    the seed's metrics.

    Binary masks get the seed's one sigmoid channel; K named classes (two included)
    a softmax over K channels.
    """
    t = params.train
    keras.mixed_precision.set_global_policy(compute_policy(t.mixed_precision))
    # With patches the network takes any size (tiles at inference): the model file says which.
    height, width = (None, None) if params.patches.enabled else params.preprocess.image_size
    num_classes = len(params.classes.names) or 1
    m = params.model
    shape = dict(input_shape=(height, width, 3), num_classes=num_classes, filters=m.filters, dropout=m.dropout,
                 output_activation="softmax" if num_classes > 1 else "sigmoid", batch_norm=m.batch_norm)
    if m.encoder == "none":
        if m.encoder_weights not in ("imagenet", "none"):  # a file named means a wish: say it is not granted
            print(f"note: model.encoder_weights {m.encoder_weights} is not used: model.encoder is none (the "
                  "seed's U-Net, trained from scratch)", file=sys.stderr)
        model = build_unet(num_layers=m.num_layers, **shape)
    else:
        model = build_encoder_unet(encoder_weights=pretrained_weights(m.encoder_weights), **shape)
    model.compile(
        optimizer=OPTIMIZERS[t.optimizer](
            learning_rate=learning_rate(t.lr, t.schedule, t.epochs, steps_per_epoch, t.warmup_epochs),
            use_ema=t.ema,
        ),
        loss=get_loss(t.loss, num_classes, class_weights, ignoring=params.patches.enabled),
        metrics=training_metrics(num_classes, ignoring=params.patches.enabled),
        jit_compile=t.jit_compile,
    )
    return model


@dataclass(frozen=True)
class TrainingInputs:
    """What a training needs from the params and the TFRecords, worked out and checked once, at the start."""

    train_files: list[str]  # counted and checksummed
    validation_files: list[str]
    manifest: dict
    classes: ClassMap | None
    application: Application
    class_weights: object  # per-class loss weights, or None

    @property
    def train_records(self) -> dict[str, int]:
        return dict(zip(self.train_files, (row["records"] for row in self.manifest["splits"][TRAIN])))

    @property
    def validation_count(self) -> int:
        return sum(row["records"] for row in self.manifest["splits"][VALIDATION])


def resolve_inputs(params: Params, tfrecord_dir) -> TrainingInputs:
    """Shards, class map, application and loss weights, each checked against the TFRecords."""
    train_files = shard_files(tfrecord_dir, TRAIN)  # counts and checksums, before any work
    validation_files = shard_files(tfrecord_dir, VALIDATION)
    classes = ClassMap.from_params(params.classes)
    check_classes(tfrecord_dir, classes)
    application = Application.from_params(params)
    check_shaping(tfrecord_dir, Application.for_data(params))
    if application.tiled:
        check_patch_fits(params, tfrecord_dir)
    weights = None
    if classes is not None:
        weights = loss_weights(params.classes, class_pixels(train_files, classes.num_classes))
        shown = "" if weights is None else f", loss weights {[round(float(w), 3) for w in weights]}"
        print(f"{classes.num_classes} classes: {', '.join(classes.names)}{shown}")
    return TrainingInputs(train_files, validation_files, read_manifest(tfrecord_dir), classes, application, weights)


def check_patch_fits(params: Params, tfrecord_dir) -> None:
    """Refuse a patch larger than every training image at the working scale: it would be mostly padding."""
    sizes = read_manifest(tfrecord_dir)["sizes"][TRAIN]
    height, width = params.patches.size
    if not any(h >= height and w >= width for h, w in sizes):
        tallest, widest = max(h for h, _ in sizes), max(w for _, w in sizes)
        raise DataError(
            f"patches.size {height}x{width} is larger than every training image at patches.scale "
            f"{params.patches.scale} (the tallest is {tallest} pixels high, the widest {widest} wide): make "
            "the patch smaller or the scale larger"
        )


def _datasets(params: Params, inputs: TrainingInputs, strategy, me: Role, first_epoch: int):
    """Training and validation data, and steps per epoch, for one device or a strategy.

    Under a strategy each worker's pipeline reads its own train shards and batches at
    the per-replica size, and every pipeline's epoch has the same number of batches.
    Every worker validates on the whole validation split in global batches: the
    average over workers of identical numbers is the one-device number.
    """
    batch_size, seed = params.train.batch_size, params.training_seed
    shuffle_buffer = batch_size * params.train.shuffle_batches
    epochs = range(first_epoch, params.train.epochs)
    manifest, train_files, validation_files = inputs.manifest, inputs.train_files, inputs.validation_files
    records, validation_count = inputs.train_records, inputs.validation_count
    sampling = None
    if params.patches.enabled:
        pixels = sum(h * w for split in manifest["sizes"].values() for h, w in split)
    else:
        pixels = (sum(records.values()) + validation_count) * math.prod(params.preprocess.image_size)
    cache = fits_in_memory(pixels)  # in every mode: 50,000 images at 512x512 would be 40 GB
    if not cache:
        print(f"note: the decoded images exceed the {CACHE_LIMIT_BYTES >> 30} GiB in-memory cache: they are "
              f"read from the TFRecords each epoch, and shuffled {STREAMED_SHUFFLE} at a time")
    if params.patches.enabled:
        sampling = PatchSampling(tuple(params.patches.size), params.patches.foreground_share)
        # the same tiles for every training seed (base.seed): reseeded runs validate alike
        sample = validation_tiles(validation_files, validation_count, sampling.size,
                                  params.patches.validation_tiles, params.base.seed)
    patched = {"sampling": sampling, "cache": cache}

    def validation():
        if sampling is None:
            return validation_dataset(validation_files, batch_size, count=validation_count, cache=cache)
        return tiles_dataset(*sample, batch_size)

    fixed = params.train.steps_per_epoch or None  # None: one pass over the images
    if not me.distributed:
        count = sum(records.values())
        return (
            training_dataset(train_files, batch_size, shuffle_buffer, seed, params.augment, count, epochs,
                             batches_per_epoch=fixed, **patched),
            validation(),
            fixed or steps_per_epoch(count, batch_size),
        )

    replica_batch = per_replica_batch(batch_size, me.num_replicas)
    local_replicas = me.num_replicas // me.num_workers
    shares = [shards_for_pipeline(train_files, i, me.num_workers) for i in range(me.num_workers)]
    steps = fixed or max(
        steps_per_epoch(sum(records[f] for f in share), replica_batch * local_replicas) for share in shares
    )

    def train_pipeline(context: tf.distribute.InputContext):
        share = shares[context.input_pipeline_id]
        return training_dataset(
            share, replica_batch, shuffle_buffer, seed + context.input_pipeline_id, params.augment,
            sum(records[f] for f in share), epochs, batches_per_epoch=steps * local_replicas, **patched,
        )

    def validation_pipeline(context: tf.distribute.InputContext):
        return validation()

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
    print(cpu.describe())
    strategy = make_strategy(params.train.strategy)  # before any other TensorFlow work
    me = role(strategy)
    live_dir, backup_dir = Path(live_dir), Path(backup_dir)
    inputs = resolve_inputs(params, tfrecord_dir)
    if params.base.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(params.training_seed)
    expected = fingerprint(params, tfrecord_dir, me.num_replicas)
    if me.is_chief:
        resume = prepare_backup(backup_dir, expected)
    else:
        backup_dir, resume = worker_backup(backup_dir, expected, me.task)
    first_epoch = 0
    if resume:
        first_epoch = epochs_done(backup_dir)
        print(f"resuming from the backup in {backup_dir}: {first_epoch} epoch(s) done")
        if me.is_chief:
            trim_history(live_dir, first_epoch)
    train_ds, validation_ds, steps = _datasets(params, inputs, strategy, me, first_epoch)
    if inputs.application.tiled and params.patches.validation_tiles > 0.6 * steps * params.train.batch_size:
        # a tile's forward pass costs about a third of a training step's
        print(f"note: validating on {params.patches.validation_tiles} tiles (patches.validation_tiles) costs more "
              f"than a fifth of an epoch of {steps} steps of {params.train.batch_size}: fewer tiles, or a larger "
              "train.steps_per_epoch, train faster")
    with strategy.scope():
        model = build_model(params, inputs.class_weights, steps)
    live = open_live(live_dir, resume) if me.is_chief else None
    try:
        with interrupts_deferred() as interrupted, native_logs_filtered():
            history = model.fit(
                train_ds,
                validation_data=validation_ds,
                epochs=params.train.epochs,
                steps_per_epoch=steps,
                callbacks=[StopOnInterrupt(interrupted), *make_callbacks(params.train, backup_dir, live)],
                shuffle=False,  # the dataset shuffles, seeded
                verbose=2 if me.is_chief else 0,
            )
    finally:
        if not me.is_chief:
            remove_backup(backup_dir)
    losses = history.history.get("loss", [])
    if any(not math.isfinite(v) for v in losses):
        remove_backup(backup_dir)
        raise TrainingError(
            f"training loss became {losses[-1]} at epoch {len(losses)}: no model written "
            "(lower train.lr, or check the data)"
        )
    if me.is_chief and params.train.keep == "best":
        best = best_state(backup_dir)
        if best is None:
            raise TrainingError(
                f"train.keep best: no epoch gave a finite {params.train.monitor} (train.monitor), so there "
                f"is no best model; nothing written (the backup in {backup_dir} is kept)"
            )
        model.load_weights(backup_dir / best["weights"])
    if me.is_chief:
        application = inputs.application  # a resized network's input is its size: recorded only for the bits
        save_model(model, model_path, inputs.classes, application if application.tiled or application.image_bits != 16
                   else None, params.model.encoder)
        remove_backup(backup_dir)
    else:
        print(f"{me.task}: done; the chief writes the model and the curves")
    return {name: values[-1] for name, values in history.history.items()}
