"""End to end: `dvc repro` in a temporary git repo holding a copy of the project."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import ROOT, shared_dataset, tiny_params
from dvcrepo import check_outputs, make_repo, set_param, sh, stages_run

pytestmark = pytest.mark.slow

def test_repro_reruns_only_what_a_change_touches(tmp_path):
    repo = make_repo(tmp_path / "repo", tiny_params())
    first = sh(repo, "dvc", "repro")
    assert stages_run(first) == ["generate", "split", "preprocess", "train", "evaluate", "predict"]
    check_outputs(repo)
    assert yaml.safe_load((repo / "dvc.yaml").read_text()) == yaml.safe_load((ROOT / "dvc.yaml").read_text())

    assert stages_run(sh(repo, "dvc", "repro")) == []
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "first run")

    set_param(repo, "train", "epochs", 2)
    assert stages_run(sh(repo, "dvc", "repro")) == ["train", "evaluate", "predict"]
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "two epochs")

    # Compare the two commits: metrics, params and plots.
    diff = json.loads(sh(repo, "dvc", "metrics", "diff", "HEAD~1", "HEAD", "--all", "--json"))
    dice = diff["metrics/evaluate.json"]["dice"]
    assert dice["new"] - dice["old"] == pytest.approx(dice["diff"])
    assert diff["metrics/train/metrics.json"]["step"] == {"old": 0, "new": 1, "diff": 1}
    params = json.loads(sh(repo, "dvc", "params", "diff", "HEAD~1", "HEAD", "--json"))
    assert params["params.yaml"]["train.epochs"] == {"old": 1, "new": 2, "diff": 1}
    sh(repo, "dvc", "plots", "diff", "HEAD~1", "HEAD", "-o", "plots-diff")
    page = (repo / "plots-diff" / "index.html").read_text()
    for title in ("Validation dice by threshold", "Precision-recall", "Training dice", "gallery.png"):
        assert title in page, title

    set_param(repo, "preprocess", "image_size", [16, 16])
    assert stages_run(sh(repo, "dvc", "repro")) == ["preprocess", "train", "evaluate", "predict"]

    shown = sh(repo, "dvc", "metrics", "show", "--json")
    assert "dice" in shown


@pytest.mark.parametrize(
    "dataset, data, group_pattern",
    [
        ("carvana-sample", {"images_dir": "train", "masks_dir": "train_masks", "mask_pattern": "{stem}_mask.gif"}, "^([^_]+)_"),
        ("isbi2012-membranes", {"images_dir": "images", "masks_dir": "masks", "mask_pattern": "{stem}.png"}, ""),
    ],
)
def test_repro_on_real_datasets_by_params_alone(tmp_path, dataset, data, group_pattern):
    root = shared_dataset(dataset)
    params = tiny_params(
        data={**data, "images_dir": str(root / data["images_dir"]), "masks_dir": str(root / data["masks_dir"])},
        split={"group_pattern": group_pattern},
    )
    repo = make_repo(tmp_path / "repo", params)
    output = sh(repo, "dvc", "repro")
    assert "predict" in stages_run(output)
    check_outputs(repo)
    pairs = (repo / "data" / "split" / "pairs.csv").read_text().splitlines()
    assert len(pairs) - 1 == len([p for p in (root / data["images_dir"]).iterdir() if not p.name.startswith(".")])
