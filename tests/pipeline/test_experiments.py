"""Experiments: `dvc exp run -S`, a queued sweep, and `dvc exp show` listing params and dice."""

import json

import pytest
from dvcrepo import make_repo, sh

from conftest import tiny_params

pytestmark = pytest.mark.slow


def _experiments(repo) -> dict:
    """{name: (train.lr, dice)} of every experiment `dvc exp show` lists."""
    found = {}
    for baseline in json.loads(sh(repo, "dvc", "exp", "show", "--json")):
        for exp in (baseline.get("experiments") or []):
            rev = exp["revs"][0]
            data = rev.get("data") or {}
            params = data["params"]["params.yaml"]["data"]
            metrics = data.get("metrics", {})
            scores = metrics.get("metrics/evaluate.json", {}).get("data", {})
            curves = metrics.get("metrics/train/metrics.json", {}).get("data", {})
            found[exp["name"]] = (params["train"]["lr"], scores.get("dice"), curves.get("train", {}).get("loss"))
    return found


def test_run_queue_and_show(tmp_path):
    repo = make_repo(tmp_path / "repo", tiny_params())
    sh(repo, "dvc", "exp", "run", "-n", "lr-low", "-S", "train.lr=5.0e-4")
    sh(repo, "dvc", "exp", "run", "--queue", "-n", "lr-high", "-S", "train.lr=2.0e-3")  # a one-run sweep
    sh(repo, "dvc", "exp", "run", "--run-all")  # runs the queue, one at a time, and returns when it is done
    status = sh(repo, "dvc", "queue", "status")
    assert "Failed" not in status and "Queued" not in status, status
    experiments = _experiments(repo)
    assert {name: lr for name, (lr, _, _) in experiments.items()} == {
        "lr-low": 5.0e-4, "lr-high": 2.0e-3
    }
    assert all(0.0 <= dice <= 1.0 for _, dice, _ in experiments.values())  # each evaluated
    low, high = (experiments[name][2] for name in ("lr-low", "lr-high"))
    assert low is not None and high is not None and low != high  # each rate reached its own training
    table = sh(repo, "dvc", "exp", "show", "--csv")
    assert "train.lr" in table and "dice" in table
