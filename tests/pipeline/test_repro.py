"""End to end: `dvc repro` in a temporary git repo holding a copy of the project."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, shared_dataset, tiny_params, write_yaml

pytestmark = pytest.mark.slow

PROJECT_FILES = ["dvc.yaml", "stages", "src", ".dvc/config", ".dvcignore", ".gitignore"]


def _env(repo: Path) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `python` in dvc.yaml
    env["PYTHONPATH"] = str(repo / "src")  # the copied library, whose files dvc.yaml tracks
    return env


def sh(repo: Path, *args: str) -> str:
    result = subprocess.run(args, cwd=repo, env=_env(repo), capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def stages_run(output: str) -> list[str]:
    return re.findall(r"Running stage '(\w+)'", output)


def make_repo(path: Path, params: dict) -> Path:
    path.mkdir()
    for name in PROJECT_FILES:
        source, target = ROOT / name, path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(source, target)
    write_yaml(path / "params.yaml", params)
    sh(path, "git", "init", "-q")
    sh(path, "git", "-c", "user.name=t", "-c", "user.email=t@t", "add", "-A")
    sh(path, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "project")
    return path


def set_param(repo: Path, section: str, key: str, value) -> None:
    data = yaml.safe_load((repo / "params.yaml").read_text())
    data[section][key] = value
    write_yaml(repo / "params.yaml", data)


def check_outputs(repo: Path) -> dict:
    metrics = json.loads((repo / "metrics" / "evaluate.json").read_text())
    for key in ("dice", "iou", "dice_global", "accuracy", "precision", "recall"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert (repo / "models" / "model.keras").is_file()
    assert (repo / "eval" / "montage.png").is_file()
    assert any((repo / "data" / "predictions").iterdir())
    return metrics


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
