"""Interrupted training resumes where it stopped, bit for bit: the resumed run (a second process)
ends with the same model file and metrics as an uninterrupted one, which also shows that two
deterministic runs repeat exactly."""

import json
import os
import re
import signal
import subprocess
import threading

import keras
import numpy as np
import pandas as pd
import pytest
from dvcrepo import check_outputs, env_for, make_repo, sh, stages_run

from conftest import tiny_params

pytestmark = pytest.mark.slow

EPOCHS = 12
PARAMS = tiny_params(train={"epochs": EPOCHS}, preprocess={"image_size": [64, 64]}, model={"filters": 8})


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The same pipeline run without interruption, for comparison."""
    repo = make_repo(tmp_path_factory.mktemp("uninterrupted") / "repo", PARAMS)
    sh(repo, "dvc", "repro")
    return repo


def _backup_epoch(repo):
    return json.loads((repo / "models" / ".backup" / "training_metadata.json").read_text())["epoch"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_interrupted_training_resumes(tmp_path, sig, uninterrupted):
    repo = make_repo(tmp_path / "repo", PARAMS)
    run = subprocess.Popen(["dvc", "repro"], cwd=repo, env=env_for(repo), start_new_session=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(300, os.killpg, [run.pid, signal.SIGKILL])  # a hang fails the test, not CI
    watchdog.start()
    seen = []
    for line in run.stdout:  # Keras announces epoch 4 after epoch 3's callbacks, the backup among them
        seen.append(line)
        if f"Epoch 4/{EPOCHS}" in line:
            break
    watchdog.cancel()
    assert f"Epoch 4/{EPOCHS}" in seen[-1], "".join(seen)[-3000:]
    assert _backup_epoch(repo) >= 3
    os.killpg(run.pid, sig)  # to the whole process group, as a terminal's Ctrl-C
    rest, _ = run.communicate(timeout=120)
    first_output = "".join(seen) + rest
    assert run.returncode != 0
    assert not (repo / "models" / "model.keras").exists()

    done = _backup_epoch(repo)
    logged = pd.read_csv(repo / "metrics/train/plots/metrics/eval/dice.tsv", sep="\t").step.tolist()
    assert done < EPOCHS and max(logged) <= done  # at most the epoch after the backup, trimmed on resume
    started = len(re.findall(rf"Epoch \d+/{EPOCHS}", first_output))
    assert started - done <= 1  # the interruption lost at most the epoch in progress

    output = sh(repo, "dvc", "repro")
    assert stages_run(output) == ["train", "evaluate", "predict"]
    assert f"{done} epoch(s) done" in output
    assert output.count("Epoch ") == EPOCHS - done  # only the missing epochs ran again
    steps = pd.read_csv(repo / "metrics/train/plots/metrics/eval/dice.tsv", sep="\t").step.tolist()
    assert steps == list(range(EPOCHS))  # continuous, no duplicates
    assert json.loads((repo / "metrics/train/metrics.json").read_text())["step"] == EPOCHS - 1
    assert not (repo / "models" / ".backup").exists()
    check_outputs(repo)
    # Resuming changes nothing: the same weights and metrics as the uninterrupted run.
    resumed, whole = (keras.saving.load_model(r / "models" / "model.keras").get_weights() for r in (repo, uninterrupted))
    assert all(np.array_equal(a, b) for a, b in zip(resumed, whole))
    assert (repo / "metrics/evaluate.json").read_text() == (uninterrupted / "metrics/evaluate.json").read_text()
    assert (repo / "models/model.keras").read_bytes() == (uninterrupted / "models/model.keras").read_bytes()

