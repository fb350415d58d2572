"""More than one machine, as docs/guides/scale-out.md shows it: a DVC remote round trip, and a two-worker
training recorded into the pipeline."""

from __future__ import annotations

import subprocess
import sys

import pytest
from dvcrepo import env_for, make_repo, set_param, sh, stages_run

from conftest import tiny_params
from loopback import loopback_tf_configs

pytestmark = pytest.mark.slow


def test_push_then_pull_into_a_fresh_clone_runs_nothing(tmp_path):
    repo = make_repo(tmp_path / "repo", tiny_params())
    sh(repo, "dvc", "repro")
    remote = tmp_path / "remote"
    sh(repo, "dvc", "remote", "add", "-d", "storage", str(remote))  # as docs/guides/scale-out.md shows
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "results and remote")
    sh(repo, "dvc", "push")
    assert any(path.is_file() for path in remote.rglob("*"))

    # A colleague's machine: the git history only, no DVC cache, no outputs.
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(repo), str(clone))
    assert not (clone / "models" / "model.keras").exists() and not (clone / ".dvc" / "cache").exists()
    sh(clone, "dvc", "pull")
    assert (clone / "models" / "model.keras").read_bytes() == (repo / "models" / "model.keras").read_bytes()
    assert sorted(p.name for p in (clone / "data" / "tfrecords").iterdir()) == sorted(
        p.name for p in (repo / "data" / "tfrecords").iterdir())
    assert "up to date" in sh(clone, "dvc", "status")
    assert stages_run(sh(clone, "dvc", "repro")) == []


def test_two_worker_training_recorded_into_the_pipeline(tmp_path):
    """docs/guides/scale-out.md: train with two workers outside DVC, `dvc commit -f train`, `dvc repro`."""
    repo = make_repo(tmp_path / "repo", tiny_params())
    sh(repo, "dvc", "repro", "preprocess")
    set_param(repo, "train", "strategy", "multi_worker")
    command = [sys.executable, "stages/train.py", "--params", "params.yaml", "--tfrecords", "data/tfrecords",
               "--model", "models/model.keras", "--live", "metrics/train", "--backup", "models/.backup"]
    logs = [tmp_path / f"worker-{i}.log" for i in range(2)]
    workers = [
        subprocess.Popen(command, cwd=repo, stdout=log.open("w"), stderr=subprocess.STDOUT,
                         env={**env_for(repo), "TF_CONFIG": config})
        for log, config in zip(logs, loopback_tf_configs(2))
    ]
    try:
        for worker in workers:
            worker.wait(timeout=300)
    finally:
        for worker in workers:
            worker.kill()
    assert [w.returncode for w in workers] == [0, 0], "\n".join(log.read_text()[-3000:] for log in logs)
    sh(repo, "dvc", "commit", "-f", "train")
    assert stages_run(sh(repo, "dvc", "repro")) == ["evaluate", "predict"]
    assert stages_run(sh(repo, "dvc", "repro")) == []
