"""Training the U-Net from the TFRecords, with dvclive curves and an atomic model save."""

from __future__ import annotations

import math
from pathlib import Path

import keras

from unetseg.atomic import atomic_output
from unetseg.dataset import training_dataset, validation_dataset
from unetseg.errors import UnetsegError
from unetseg.losses import get_loss, training_metrics
from unetseg.model import build_unet
from unetseg.params import Params
from unetseg.splitting import TRAIN, VALIDATION
from unetseg.tfrecords import count_records, shard_files


class TrainingError(UnetsegError):
    """Training that produced no usable model."""


OPTIMIZERS = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}


def build_model(params: Params) -> keras.Model:
    """The configured U-Net, compiled with the configured optimizer, loss and the seed's metrics."""
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
    )
    return model


def save_model(model: keras.Model, path: str | Path) -> None:
    """Save the network alone (no optimizer, loss or metrics) under a temporary name, then rename.

    Without a compile config the file holds only built-in layers, so plain
    `keras.saving.load_model` reads it in safe mode, on any backend, without unetseg.
    """
    inference = keras.Model(model.inputs, model.outputs, name=model.name)
    with atomic_output(path) as temporary:
        inference.save(temporary)


def train(params: Params, tfrecord_dir: str | Path, model_path: str | Path, live_dir: str | Path) -> dict:
    """Fit on the train shards, validate each epoch, save the model; return the last epoch's logs."""
    from dvclive import Live
    from dvclive.keras import DVCLiveCallback
    from scmrepo.exceptions import SCMError

    keras.utils.set_random_seed(params.base.seed)
    train_files = shard_files(tfrecord_dir, TRAIN)
    validation_files = shard_files(tfrecord_dir, VALIDATION)
    train_ds = training_dataset(
        train_files,
        params.train.batch_size,
        shuffle_buffer=params.train.batch_size * params.train.shuffle_batches,
        seed=params.base.seed,
        augment=params.augment,
        count=count_records(tfrecord_dir, TRAIN),
    )
    validation_ds = validation_dataset(
        validation_files, params.train.batch_size, count=count_records(tfrecord_dir, VALIDATION)
    )
    model = build_model(params)
    # dvcyaml=None: the stage's outputs are declared in the project's dvc.yaml, which
    # dvclive must not rewrite; save_dvc_exp=False: `dvc exp run` already records the run.
    try:
        live = Live(str(live_dir), dvcyaml=None, save_dvc_exp=False, report=None)
    except SCMError as error:  # dvclive reads the git revision and fails on a repo with no commit
        raise TrainingError(
            f"dvclive cannot start ({error}): commit once (git add -A && git commit) and run again"
        ) from None
    history = model.fit(
        train_ds,
        validation_data=validation_ds,
        epochs=params.train.epochs,
        callbacks=[keras.callbacks.TerminateOnNaN(), DVCLiveCallback(live=live)],
        shuffle=False,  # the dataset shuffles, seeded
        verbose=2,
    )
    losses = history.history.get("loss", [])
    if not losses or any(not math.isfinite(v) for v in losses):
        raise TrainingError(
            f"training loss became {losses[-1] if losses else 'undefined'} at epoch {len(losses)}: "
            "no model written (lower train.lr, or check the data)"
        )
    save_model(model, model_path)
    return {name: values[-1] for name, values in history.history.items()}
