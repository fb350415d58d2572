"""`unetseg plan FOLDERS` then `dvc repro`, with no other key touched: the planned run learns, in its budget."""

from __future__ import annotations

import json
import time

import pytest
from dvcrepo import make_repo, sh, stages_run

from conftest import make_blobs, tiny_params

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("instances", [False, True], ids=["binary", "instance-labels"])
def test_planned_run_learns_within_its_budget(tmp_path, instances):
    images, masks = make_blobs(tmp_path / "data", count=24, instances=instances)
    repo = make_repo(tmp_path / "repo", tiny_params())  # the tiny network: the plan decides data and schedule
    sh(repo, "unetseg", "plan", str(images), str(masks), "--minutes", "6")
    start = time.perf_counter()
    assert stages_run(sh(repo, "dvc", "repro", "evaluate")) == ["split", "preprocess", "train", "evaluate"]
    seconds = time.perf_counter() - start
    metrics = json.loads((repo / "metrics" / "evaluate.json").read_text())
    assert metrics["original_dice"] > 0.6 and metrics["original_dice"] > metrics["baseline_empty_dice"]
    plan = json.loads((repo / "plan.json").read_text())
    assert seconds < 6 * 60 * 2, f"planned for 6 minutes with the plan itself, took {seconds:.0f} s"
    assert json.loads(sh(repo, "dvc", "params", "diff", "--json"))["params.yaml"]  # what the plan changed
    assert {d["key"] for d in plan["decisions"]} >= {"data.mask_pattern", "train.epochs", "preprocess.image_size"}
    assert {d["key"]: d["value"] for d in plan["decisions"]}["data.instance_masks"] is instances
