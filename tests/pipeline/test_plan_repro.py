"""`unetseg plan FOLDERS` then `dvc repro`, with no other key touched: the planned run learns, in its budget."""

from __future__ import annotations

import json
import time

import pytest
from dvcrepo import make_repo, sh, stages_run

from conftest import make_blobs, shared_dataset, tiny_params

pytestmark = pytest.mark.slow


def test_planned_run_learns_within_its_budget(tmp_path):
    images, masks = make_blobs(tmp_path / "data", count=24)
    repo = make_repo(tmp_path / "repo", tiny_params())  # the tiny network: the plan decides data and schedule
    sh(repo, "unetseg", "plan", str(images), str(masks), "--minutes", "2")
    start = time.perf_counter()
    assert stages_run(sh(repo, "dvc", "repro", "evaluate")) == ["split", "preprocess", "train", "evaluate"]
    seconds = time.perf_counter() - start
    metrics = json.loads((repo / "metrics" / "evaluate.json").read_text())
    assert metrics["original_dice"] > 0.6 and metrics["original_dice"] > metrics["baseline_empty_dice"]
    plan = json.loads((repo / "plan.json").read_text())
    assert seconds < 2 * 60 * 1.5, f"planned for 2 minutes, took {seconds:.0f} s"
    assert json.loads(sh(repo, "dvc", "params", "diff", "--json"))["params.yaml"]  # what the plan changed
    assert {d["key"] for d in plan["decisions"]} >= {"data.mask_pattern", "train.epochs", "preprocess.image_size"}


@pytest.mark.parametrize("dataset, ignore, expected", [
    ("isbi2012-membranes", [], {"patches.enabled": True, "classes.values": [255, 0], "model.encoder": "none"}),
    ("stanford-background", ["--ignore", "15"],
     {"patches.enabled": False, "preprocess.image_size": [192, 256], "classes.ignore": [15]}),
    ("kvasir-seg", [], {"classes.names": [], "data.mask_pattern": "{stem}.jpg"}),
    ("dsb2018-nuclei", [], {"classes.names": [], "patches.enabled": True, "model.encoder": "none"}),
    ("carvana-sample", [], {"split.group_pattern": "^([^_]+)_", "preprocess.image_size": [128, 128]}),
])
def test_plans_of_the_real_datasets(tmp_path, dataset, ignore, expected):
    """The decisions the README reports for each real set: by their two folders alone."""
    root = shared_dataset(dataset)
    folders = [root / "train", root / "train_masks"] if (root / "train").is_dir() else [root / "images", root / "masks"]
    repo = make_repo(tmp_path / "repo", tiny_params())
    sh(repo, "unetseg", "plan", *map(str, folders), *ignore)
    decisions = {d["key"]: d["value"] for d in json.loads((repo / "plan.json").read_text())["decisions"]}
    assert {key: decisions.get(key) for key in expected} == expected
