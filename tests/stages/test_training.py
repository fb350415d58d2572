"""Training options, failure handling, resumable backups and determinism, on real tiny files."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import tiny_params
from unetseg.config.checks import ParamsError
from unetseg.config.loading import params_from_dict
from unetseg.model.modelfile import load_model
from unetseg.train import training
from unetseg.train.backups import BackupError, best_state, fingerprint, prepare_backup, remove_backup
from unetseg.train.callbacks import KeepBest, trim_history
from unetseg.train.training import TrainingError

CONSTANT = {"schedule": "constant", "warmup_epochs": 0}  # reduce-on-plateau sets the rate itself


def _params(**overrides):
    return params_from_dict(tiny_params(**overrides))


def _train(tmp_path, tfrecords, params):
    return training.train(params, tfrecords, tmp_path / "model.keras", tmp_path / "live", tmp_path / "backup")


def _steps(live_dir, metric="eval/dice"):
    return pd.read_csv(live_dir / "plots" / "metrics" / f"{metric}.tsv", sep="\t")


def test_nan_loss_stops_with_an_error_and_writes_no_model(tmp_path, tiny_tfrecords, monkeypatch):
    monkeypatch.setattr(training, "get_loss", lambda *args, **kwargs: lambda y_true, y_pred: keras.ops.mean(y_pred) * np.nan)
    with pytest.raises(TrainingError, match="training loss became nan at epoch 1: no model written"):
        _train(tmp_path, tiny_tfrecords, _params(train={"epochs": 3}))
    assert not (tmp_path / "model.keras").exists() and not (tmp_path / "backup").exists()


def _better(value, best, mode, min_delta=0.0):
    return best is None or (value < best - min_delta if mode == "min" else value > best + min_delta)


def _stop_epoch(values, patience, mode):
    """The epoch after which Keras EarlyStopping stops, replayed on logged values (None: it never stops)."""
    best, wait = None, 0
    for epoch, value in enumerate(values):
        if _better(value, best, mode):
            best, wait = value, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch
    return None


def _reductions(values, patience, mode, min_delta=1e-4):
    """After which epochs Keras ReduceLROnPlateau (default min_delta) lowers the rate, replayed."""
    best, wait, reduced = None, 0, []
    for epoch, value in enumerate(values):
        if _better(value, best, mode, min_delta):
            best, wait = value, 0
        else:
            wait += 1
            if wait >= patience:
                reduced.append(epoch)
                wait = 0
    return reduced


@pytest.mark.parametrize("monitor, mode", [("val_loss", "min"), ("val_dice", "max"), ("val_accuracy", "max"),
                                           ("val_image_dice", "max")])
def test_early_stopping_and_reduce_on_plateau_with_every_monitor(tmp_path, tiny_tfrecords, monitor, mode):
    """Both callbacks know which way each monitor improves (Keras cannot tell for dice)."""
    params = _params(train={"epochs": 8, "lr": 3.0e-3, "monitor": monitor, "early_stopping_patience": 2,
                            "reduce_lr_patience": 1, **CONSTANT})
    _train(tmp_path, tiny_tfrecords, params)
    logged = _steps(tmp_path / "live", "eval/" + monitor.removeprefix("val_"))
    values = logged[monitor.removeprefix("val_")].tolist()
    stop = _stop_epoch(values, 2, mode)
    assert logged.step.tolist() == list(range(8 if stop is None else stop + 1))
    rates = _steps(tmp_path / "live", "train/learning_rate").learning_rate.tolist()
    assert rates[0] == pytest.approx(3.0e-3) and len(rates) == len(values)
    reduced = _reductions(values, 1, mode)
    for epoch in range(1, len(values)):  # each epoch logs the rate it trained at
        factor = 0.5 if epoch - 1 in reduced else 1.0
        assert rates[epoch] == pytest.approx(rates[epoch - 1] * factor), (epoch, values, rates)
    assert (tmp_path / "model.keras").is_file()


def test_keep_best_saves_the_best_epoch_and_refuses_when_there_is_none(tmp_path, tiny_tfrecords, monkeypatch):
    params = _params(train={"epochs": 4, "lr": 1.0e-2, "monitor": "val_loss", "keep": "best"})
    _train(tmp_path, tiny_tfrecords, params)
    logged = _steps(tmp_path / "live", "eval/loss")["loss"].tolist()
    model = keras.saving.load_model(tmp_path / "model.keras")
    model.compile(loss=training.get_loss(params.train.loss))
    validation = training.validation_dataset(
        training.shard_files(tiny_tfrecords, "validation"), params.train.batch_size)
    assert model.evaluate(validation, verbose=0) == pytest.approx(min(logged), rel=1e-5)
    assert not (tmp_path / "backup").exists()

    monkeypatch.setattr(KeepBest, "on_epoch_end", lambda self, epoch, logs=None: None)  # as if every value were NaN
    with pytest.raises(TrainingError, match="train.keep best: no epoch gave a finite val_loss"):
        _train(tmp_path / "again", tiny_tfrecords, params)
    assert not (tmp_path / "again" / "model.keras").exists()


def test_early_stopping_and_reduce_on_plateau(tmp_path, tiny_tfrecords):
    # At lr 1e-9 the thresholded validation accuracy cannot change: a plateau from epoch 1.
    params = _params(train={"epochs": 6, "lr": 1.0e-9, "monitor": "val_accuracy",
                            "early_stopping_patience": 2, "reduce_lr_patience": 1, "reduce_lr_factor": 0.5,
                            **CONSTANT})
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
    model.load_weights(tmp_path / best_state(tmp_path)["weights"])
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), saved))


def test_a_kill_while_keeping_a_new_best_leaves_the_old_best_whole(tmp_path, monkeypatch):
    """Killed after the new weights are written, before the state that names them: the old best stands."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    keeper = KeepBest(tmp_path, "val_loss")
    keeper.set_model(model)
    keeper.on_epoch_end(0, {"val_loss": 0.5})
    saved = model.get_weights()
    model.set_weights([w + 1 for w in saved])
    real_write = Path.write_text

    def killed(path, *args, **kwargs):
        if "best.json" in path.name:
            raise KeyboardInterrupt
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", killed)
    with pytest.raises(KeyboardInterrupt):
        keeper.on_epoch_end(1, {"val_loss": 0.3})  # better: new weights, then the kill
    monkeypatch.undo()
    state = best_state(tmp_path)
    assert (state["epoch"], state["value"]) == (0, 0.5) and KeepBest(tmp_path, "val_loss").best == 0.5
    model.load_weights(tmp_path / state["weights"])
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), saved))  # epoch 0's, not epoch 1's


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


def test_a_backup_folder_unetseg_did_not_make_is_never_deleted(tmp_path, tiny_tfrecords):
    expected = fingerprint(_params(), tiny_tfrecords)
    models = tmp_path / "models"  # e.g. --backup models by mistake
    models.mkdir()
    (models / "model.keras").write_bytes(b"precious")
    for marker in (None, "not json", '{"other": 1}'):
        if marker is not None:
            (models / "fingerprint.json").write_text(marker)
        with pytest.raises(BackupError, match=r"models: this backup folder holds files but no unetseg fingerprint.json"):
            prepare_backup(models, expected)
        with pytest.raises(BackupError):
            remove_backup(models)
        assert (models / "model.keras").read_bytes() == b"precious"
    (tmp_path / "empty").mkdir()
    assert prepare_backup(tmp_path / "empty", expected) is False  # an empty folder is fine to use
    with pytest.raises(BackupError):
        training.train(_params(), tiny_tfrecords, tmp_path / "m.keras", tmp_path / "live", models)
    assert (models / "model.keras").read_bytes() == b"precious" and not (tmp_path / "m.keras").exists()


def test_mixed_precision_trains_in_float16_and_saves_a_float32_model(tmp_path, tiny_tfrecords, monkeypatch):
    """Float16 compute is the training device's business: evaluate and predict on a CPU get float32."""
    import zipfile

    monkeypatch.setattr(training, "gpu_available", lambda: True)  # float16 policy on this CPU
    params = _params(train={"mixed_precision": True, "keep": "best", "early_stopping_patience": 1, "epochs": 2})
    seen, save = [], training.save_model
    monkeypatch.setattr(training, "save_model", lambda model, path, *records: (seen.append(
        {layer.dtype_policy.name for layer in model.layers}), save(model, path)))
    _train(tmp_path, tiny_tfrecords, params)
    assert "mixed_float16" in seen[0]  # it did train under the float16 policy
    config = json.loads(zipfile.ZipFile(tmp_path / "model.keras").read("config.json"))
    assert "float16" not in json.dumps(config)
    assert {layer.compute_dtype for layer in load_model(tmp_path / "model.keras").layers} == {"float32"}
    keras.mixed_precision.set_global_policy("float32")  # as in the evaluate stage's own process
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}


def test_gpu_options_are_harmless_on_a_cpu(tmp_path, tiny_tfrecords, capsys):
    params = _params(train={"mixed_precision": True, "jit_compile": True}, base={"deterministic": False})
    _train(tmp_path, tiny_tfrecords, params)
    assert "train.mixed_precision has no effect without a GPU" in capsys.readouterr().err
    model = keras.saving.load_model(tmp_path / "model.keras")
    assert model.get_layer("mask").compute_dtype == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"


def test_jit_compile_compiles_and_is_refused_where_determinism_would_switch_it_off(tmp_path):
    with pytest.raises(ParamsError, match="train.jit_compile true does nothing with base.deterministic true"):
        _params(train={"jit_compile": True})
    # in a fresh process: op determinism, once on (other tests here train deterministically), stays on
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params(train={"jit_compile": True}, base={"deterministic": False})))
    code = ("import sys; from unetseg.config.loading import load_params; from unetseg.train.training import build_model;"
            "print(build_model(load_params(sys.argv[1]), None, 1).jit_compile)")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-1] == "True"


def test_seed_offset_reseeds_training_alone(tmp_path, tiny_tfrecords):
    """train.seed_offset draws other weights and batches from the same TFRecords (the split is untouched:
    split and preprocess read no train.* key, as tests/stages checks against dvc.yaml)."""
    weights = []
    for offset in (0, 1):
        params = _params(train={"seed_offset": offset})
        assert params.training_seed == params.base.seed + offset
        _train(tmp_path / str(offset), tiny_tfrecords, params)
        weights.append(keras.saving.load_model(tmp_path / str(offset) / "model.keras").get_weights())
    assert not all(np.array_equal(a, b) for a, b in zip(*weights))
    assert fingerprint(_params(train={"seed_offset": 1}), tiny_tfrecords) != fingerprint(_params(), tiny_tfrecords)


def test_ctrl_c_while_keras_converts_the_logs_stops_training_and_writes_no_model(tmp_path, tiny_tfrecords, monkeypatch):
    """Keras converts each batch's logs inside a bare `except:`; a Ctrl-C landing there used to be swallowed
    (training ran on and saved its model). Here it lands there, a few batches in."""
    import os
    import signal

    from keras.src import backend

    convert, calls = backend.convert_to_numpy, []

    def interrupting(value):
        calls.append(value)
        if len(calls) == 12:
            os.kill(os.getpid(), signal.SIGINT)
            sum(range(10_000))  # Python runs the handler here, inside Keras's try
        return convert(value)

    monkeypatch.setattr(backend, "convert_to_numpy", interrupting)
    before = signal.getsignal(signal.SIGINT)  # Python's default, or ignored where the shell started pytest in the background
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, tiny_tfrecords, _params(train={"epochs": 3}))
    assert len(calls) >= 12 and not (tmp_path / "model.keras").exists()
    assert signal.getsignal(signal.SIGINT) is before  # put back


def test_images_beyond_the_cache_limit_are_streamed_in_resize_mode_too(tmp_path, tiny_tfrecords, monkeypatch, capsys):
    """Decoded images over the limit are read from the TFRecords each epoch instead of cached; with a shuffle
    buffer the streamed one holds too, training sees the same batches and lands on the same weights."""
    from unetseg.train import dataset

    params = _params(train={"epochs": 2, "shuffle_batches": 8})
    assert params.train.batch_size * params.train.shuffle_batches <= dataset.STREAMED_SHUFFLE
    _train(tmp_path / "cached", tiny_tfrecords, params)
    assert "in-memory cache" not in capsys.readouterr().out
    monkeypatch.setattr(dataset, "CACHE_LIMIT_BYTES", 1000)  # the tiny split's 32x32 images: tens of kB
    cached = []
    monkeypatch.setattr(dataset.tf.data.Dataset, "cache", lambda self, *a: cached.append(1) or self)
    _train(tmp_path / "streamed", tiny_tfrecords, params)
    assert "exceed the 2 GiB in-memory cache: they are read from the TFRecords each epoch" in capsys.readouterr().out
    assert cached == []  # nothing cached, training or validation
    weights = [load_model(tmp_path / run / "model.keras").get_weights() for run in ("cached", "streamed")]
    assert all(np.array_equal(a, b) for a, b in zip(*weights))


def test_the_schedule_runs_over_fixed_steps_and_the_curves_log_it(tmp_path, tiny_tfrecords):
    """3 steps an epoch whatever the data's size; dvclive logs the rate after each epoch's last step,
    which is the schedule's value there: warm-up over the first epoch, cosine to 0 at the end."""
    from unetseg.train.schedule import WarmupDecay

    params = _params(train={"epochs": 4, "steps_per_epoch": 3, "schedule": "cosine", "warmup_epochs": 1,
                            "lr": 2.0e-3})
    logs = _train(tmp_path, tiny_tfrecords, params)
    rates = _steps(tmp_path / "live", "train/learning_rate").learning_rate.tolist()
    schedule = WarmupDecay(2.0e-3, total_steps=12, warmup_steps=3, shape="cosine")
    assert rates == pytest.approx([float(schedule(3 * (epoch + 1))) for epoch in range(4)], abs=1e-9)
    assert rates[0] == pytest.approx(2.0e-3) and logs["learning_rate"] < 1e-9


def test_with_ema_the_saved_model_is_the_validated_average(tmp_path, tiny_tfrecords):
    """train.ema: validation scores the moving average of the weights, and that average is what is
    saved: the saved model scores the last logged validation values."""
    params = _params(train={"epochs": 3, "lr": 3.0e-3, "ema": True})
    _train(tmp_path, tiny_tfrecords, params)
    model = keras.saving.load_model(tmp_path / "model.keras")
    model.compile(loss=training.get_loss(params.train.loss), metrics=training.training_metrics())
    validation = training.validation_dataset(training.shard_files(tiny_tfrecords, "validation"),
                                             params.train.batch_size)
    scores = model.evaluate(validation, verbose=0, return_dict=True)
    assert scores["loss"] == pytest.approx(_steps(tmp_path / "live", "eval/loss")["loss"].iloc[-1], rel=1e-5)
    assert scores["image_dice"] == pytest.approx(_steps(tmp_path / "live", "eval/image_dice")["image_dice"].iloc[-1])


def test_ema_with_keep_best_is_refused():
    from unetseg.config.checks import ParamsError

    with pytest.raises(ParamsError, match="train.keep best with train.ema true"):
        _params(train={"keep": "best", "ema": True})


def test_trimming_the_curves_drops_later_steps_and_a_kill_leaves_them_whole(tmp_path, monkeypatch):
    folder = tmp_path / "live" / "plots" / "metrics" / "train"
    folder.mkdir(parents=True)
    text = "timestamp\tstep\tloss\n1\t0\t0.9\n2\t1\t0.8\n3\t2\t0.7\n"
    for name in ("loss.tsv", "dice.tsv"):
        (folder / name).write_text(text)
    real_to_csv = pd.DataFrame.to_csv

    def killed(frame, path, *args, **kwargs):  # half a file, then the kill
        Path(path).write_text("timestamp\tst")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_csv", killed)
    with pytest.raises(KeyboardInterrupt):
        trim_history(tmp_path / "live", 2)
    assert [(folder / n).read_text() for n in ("loss.tsv", "dice.tsv")] == [text, text]
    monkeypatch.setattr(pd.DataFrame, "to_csv", real_to_csv)
    trim_history(tmp_path / "live", 2)
    assert pd.read_csv(folder / "loss.tsv", sep="\t")["step"].tolist() == [0, 1]
    assert sorted(p.name for p in folder.iterdir()) == ["dice.tsv", "loss.tsv"]


def test_a_best_state_of_an_older_backup_or_without_its_weights_is_read_safely(tmp_path):
    (tmp_path / "best.json").write_text(json.dumps({"epoch": 3, "value": 0.9}))  # before weights were named
    assert best_state(tmp_path) is None  # and its weights file is not there
    (tmp_path / "best.weights.h5").write_bytes(b"")
    assert best_state(tmp_path) == {"epoch": 3, "value": 0.9, "weights": "best.weights.h5"}


def test_encoder_weights_named_without_an_encoder_are_said_to_be_unused(capsys):
    training.build_model(_params(model={"encoder_weights": "weights/lite0.pth"}), None, 1)
    assert ("note: model.encoder_weights weights/lite0.pth is not used: model.encoder is none"
            in capsys.readouterr().err)
    training.build_model(_params(), None, 1)  # the default's imagenet with no encoder: nothing asked, nothing said
    assert "encoder_weights" not in capsys.readouterr().err
