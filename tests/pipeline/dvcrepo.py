"""A copy of the project in a temporary git repo, and running DVC in it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT, write_yaml
from unetseg.core.startup import LOG_LEVEL, OURS

PROJECT_FILES = ["dvc.yaml", "stages", "src", "weights", ".dvc/config", ".dvcignore", ".gitignore"]


def env_for(repo: Path) -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `python` in dvc.yaml
    env["PYTHONPATH"] = str(repo / "src")  # the copied library, whose files dvc.yaml tracks
    env["PYTHONUNBUFFERED"] = "1"  # every line reaches the log, even from a killed process
    # as a user's shell: no TensorFlow log level left by an earlier test in this process
    # (importing tf2onnx.convert sets TF_CPP_MIN_LOG_LEVEL=3 in os.environ, for good)
    for name in (LOG_LEVEL, OURS):
        env.pop(name, None)
    for role in ("AUTHOR", "COMMITTER"):  # git and `dvc exp` commit, on machines with no git identity too
        env.setdefault(f"GIT_{role}_NAME", "unetseg tests")
        env.setdefault(f"GIT_{role}_EMAIL", "tests@unetseg.invalid")
    return env


def sh(repo: Path, *args: str) -> str:
    result = subprocess.run(args, cwd=repo, env=env_for(repo), capture_output=True, text=True)
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
    sh(path, "git", "add", "-A")
    sh(path, "git", "commit", "-qm", "project")
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
