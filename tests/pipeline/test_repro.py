"""End to end: `dvc repro` in a temporary git repo holding a copy of the project."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from dvcrepo import check_outputs, make_repo, set_param, sh, stages_run
from PIL import Image

from conftest import ROOT, shared_dataset, tiny_params
from unetseg.core.startup import is_noise

pytestmark = pytest.mark.slow

def test_repro_reruns_only_what_a_change_touches(tmp_path):
    repo = make_repo(tmp_path / "repo", tiny_params())
    first = sh(repo, "dvc", "repro")
    assert stages_run(first) == ["generate", "split", "preprocess", "train", "evaluate", "predict"]
    assert [line for line in first.splitlines() if is_noise(line)] == []  # TensorFlow's start-up chatter
    assert "CPU kernels:" in first
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

    # inference settings are evaluate's and predict's alone; the registry's model (dvc.yaml artifacts),
    # a version registered as GTO does (an annotated tag unet@v...) and fetched by its name, carries
    # them: `unetseg predict` given that file alone writes the predict stage's masks
    set_param(repo, "inference", "threshold", 0.3)
    set_param(repo, "inference", "tta_flip", False)
    set_param(repo, "inference", "largest_component", True)
    set_param(repo, "inference", "runtime", "openvino")  # the default's int8, shipped inside the file
    set_param(repo, "inference", "precision", "int8")
    assert stages_run(sh(repo, "dvc", "repro")) == ["evaluate", "predict"]
    sh(repo, "git", "add", "-A")
    sh(repo, "git", "commit", "-qm", "inference settings")
    sh(repo, "git", "tag", "-a", "unet@v0.1.0", "-m", "Registering artifact unet version v0.1.0")
    sh(tmp_path, "dvc", "artifacts", "get", str(repo), "unet", "--rev", "v0.1.0", "-o", str(tmp_path / "got.keras"))
    assert (tmp_path / "got.keras").read_bytes() == (repo / "models" / "scored.keras").read_bytes()
    sh(repo, "unetseg", "predict", str(tmp_path / "got.keras"), "data/sample/train", str(tmp_path / "got"),
       "--no-overlays")
    stage = sorted((repo / "data" / "predictions" / "masks").iterdir())
    assert stage and all(np.array_equal(np.asarray(Image.open(p)), np.asarray(Image.open(tmp_path / "got" / "masks" / p.name)))
                         for p in stage)

    # encoder weights of one's own live in weights/, a dependency of train: a file added or replaced there
    # retrains (params refuse a path elsewhere); the folder's note to users is no dependency
    (repo / "weights" / "README.md").write_text("edited")
    assert json.loads(sh(repo, "dvc", "status", "--json")) == {}
    (repo / "weights" / "mine.pth").write_bytes(b"weights")
    assert json.loads(sh(repo, "dvc", "status", "--json")) == {"train": [{"changed deps": {"weights": "modified"}}]}
    (repo / "weights" / "mine.pth").unlink()

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


def test_repro_on_stanford_background_by_params_alone(tmp_path):
    """Eight scene classes, unknown (15) ignored, images of 51 sizes: `dvc repro` by params alone."""
    from unetseg.data.classes import classes_from_table

    root = shared_dataset("stanford-background")
    classes = {**classes_from_table(root / "classes.csv", [15]), "weights": "balanced"}
    params = tiny_params(
        data={"images_dir": str(root / "images"), "masks_dir": str(root / "masks"), "mask_pattern": "{stem}.png"},
        split={"group_pattern": ""}, classes=classes,
        train={"loss": "crossentropy_dice", "monitor": "val_mean_iou"},
    )
    repo = make_repo(tmp_path / "repo", params)
    assert "predict" in stages_run(sh(repo, "dvc", "repro"))
    metrics = json.loads((repo / "metrics" / "evaluate.json").read_text())
    for key in ("mean_iou", "pixel_accuracy", "mean_class_accuracy", "original_mean_iou",
                "baseline_most_frequent_mean_iou", "baseline_most_frequent_pixel_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert set(metrics["original_class_iou"]) <= set(classes["names"]) and metrics["images"] == 143
    data = json.loads((repo / "metrics" / "data.json").read_text())
    assert list(data["classes"]["validation"]) == classes["names"]
    assert 0.001 < data["ignored_pixels"]["fraction"] < 0.02  # unknown: about 0.5 %
    shown = json.loads(sh(repo, "dvc", "metrics", "show", "--json"))
    assert "sky" in json.dumps(shown)  # per-class keys reach `dvc metrics`
    assert len((repo / "eval" / "confusion.csv").read_text().splitlines()) == 9
