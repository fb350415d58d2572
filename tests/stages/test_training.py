"""Training options, failure handling, resumable backups and determinism, on real tiny files."""

import json
import subprocess
import sys

import keras
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, tiny_params, write_yaml
from unetseg import training
from unetseg.params import params_from_dict
from unetseg.training import KeepBest, TrainingError, fingerprint, prepare_backup


def _params(**overrides):
    return params_from_dict(tiny_params(**overrides))


def _train(tmp_path, tfrecords, params):
    return training.train(params, tfrecords, tmp_path / "model.keras", tmp_path / "live", tmp_path / "backup")


def _steps(live_dir, metric="eval/dice"):
    return pd.read_csv(live_dir / "plots" / "metrics" / f"{metric}.tsv", sep="\t")


def test_nan_loss_stops_with_an_error_and_writes_no_model(tmp_path, tiny_tfrecords, monkeypatch):
    monkeypatch.setattr(training, "get_loss", lambda name: lambda y_true, y_pred: keras.ops.mean(y_pred) * np.nan)
    with pytest.raises(TrainingError, match="training loss became nan at epoch 1: no model written"):
        _train(tmp_path, tiny_tfrecords, _params(train={"epochs": 3}))
    assert not (tmp_path / "model.keras").exists() and not (tmp_path / "backup").exists()


def test_early_stopping_and_reduce_on_plateau(tmp_path, tiny_tfrecords):
    # At lr 1e-9 the thresholded validation accuracy cannot change: a plateau from epoch 1.
    params = _params(train={"epochs": 6, "lr": 1.0e-9, "monitor": "val_accuracy",
                            "early_stopping_patience": 2, "reduce_lr_patience": 1, "reduce_lr_factor": 0.5})
    logs = _train(tmp_path, tiny_tfrecords, params)
    assert _steps(tmp_path / "live").step.tolist() == [0, 1, 2]  # stopped after 2 flat epochs
    rates = _steps(tmp_path / "live", "train/learning_rate").learning_rate.tolist()
    assert rates == pytest.approx([1e-9, 1e-9, 0.5e-9])  # each epoch logs the rate it trained at
    assert logs["learning_rate"] == pytest.approx(0.5e-9)
    assert (tmp_path / "model.keras").is_file()


def test_keep_best_persists_across_instances(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    tmp_path.mkdir(exist_ok=True)
    keeper = KeepBest(tmp_path, "val_loss")
    keeper.set_model(model)
    keeper.on_epoch_end(0, {"val_loss": 0.5})
    saved = model.get_weights()
    model.set_weights([w + 1 for w in saved])
    keeper.on_epoch_end(1, {"val_loss": 0.7})  # worse: the best weights stay
    resumed = KeepBest(tmp_path, "val_loss")  # as after a restart
    assert resumed.best == 0.5 and json.loads((tmp_path / "best.json").read_text())["epoch"] == 0
    model.load_weights(tmp_path / "best.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), saved))


def test_backup_from_other_params_is_discarded_with_a_warning(tmp_path, tiny_tfrecords, capsys):
    backup = tmp_path / "backup"
    first = fingerprint(_params(), tiny_tfrecords)
    assert prepare_backup(backup, first) is False
    (backup / "training_metadata.json").write_text('{"epoch": 2, "batch": 0}')
    assert prepare_backup(backup, first) is True
    other = fingerprint(_params(train={"lr": 5.0e-4}), tiny_tfrecords)
    assert other != first
    assert prepare_backup(backup, other) is False
    assert "backup made with other params or data, discarded" in capsys.readouterr().err
    assert not (backup / "training_metadata.json").exists()


def _train_in_subprocess(work, params_file, name):
    result = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "train.py"), "--params", str(params_file),
         "--tfrecords", str(work / "tfrecords"), "--model", str(work / f"{name}.keras"),
         "--live", str(work / f"live-{name}"), "--backup", str(work / f"backup-{name}")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return keras.saving.load_model(work / f"{name}.keras")


def test_deterministic_runs_are_bit_identical(tmp_path, tiny_tfrecords):
    (tmp_path / "tfrecords").symlink_to(tiny_tfrecords)
    params_file = write_yaml(tmp_path / "params.yaml", tiny_params(base={"deterministic": True}, train={"epochs": 2}))
    first = _train_in_subprocess(tmp_path, params_file, "a")
    second = _train_in_subprocess(tmp_path, params_file, "b")
    for a, b in zip(first.get_weights(), second.get_weights()):
        assert np.array_equal(a, b)
    assert (tmp_path / "live-a" / "metrics.json").read_text() == (tmp_path / "live-b" / "metrics.json").read_text()


def test_gpu_options_are_harmless_on_a_cpu(tmp_path, tiny_tfrecords, capsys):
    params = _params(train={"mixed_precision": True, "jit_compile": True})
    _train(tmp_path, tiny_tfrecords, params)
    assert "train.mixed_precision has no effect without a GPU" in capsys.readouterr().err
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert model.get_layer("mask").compute_dtype == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"
