"""End to end: `dvc repro` in a temporary git repo holding a copy of the project."""

from __future__ import annotations

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

    set_param(repo, "train", "epochs", 2)
    assert stages_run(sh(repo, "dvc", "repro")) == ["train", "evaluate", "predict"]

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
