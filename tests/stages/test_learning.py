"""Training learns: tiny runs of the stage scripts on real files (generated JPEGs and GIFs, label-map
PNGs) beat the trivial baselines that evaluate writes beside the model's score, by a stated margin.

One short recipe for all three: the default schedule (cosine with a warm-up) over a fixed
number of steps, so each run sees enough batches to learn in seconds.
"""

import json

import pytest
from test_stages import run_stages

from conftest import LEARNING_SAMPLE, classes_params, make_classes_sample, tiny_params, write_yaml

pytestmark = pytest.mark.slow

RECIPE = {
    "model": {"filters": 8, "num_layers": 3, "dropout": 0.0},
    "preprocess": {"image_size": [64, 64], "num_shards": 2},
    # 400 steps: enough for batch normalisation's moving statistics (momentum 0.99) to forget their start
    "train": {"epochs": 10, "steps_per_epoch": 40, "batch_size": 8, "lr": 3.0e-3, "schedule": "cosine",
              "warmup_epochs": 1},
}
MARGIN = 0.25  # over the better baseline, in the metric's own units (seen: 0.53, 0.42 and 0.69)


def _scores(work, params) -> dict:
    run_stages(work, write_yaml(work / "params.yaml", params))
    return json.loads((work / "evaluate.json").read_text())


def _car_params(sample, **overrides):
    merged = {section: {**RECIPE.get(section, {}), **overrides.get(section, {})} for section in {*RECIPE, *overrides}}
    return tiny_params(data={"images_dir": str(sample / "train"), "masks_dir": str(sample / "train_masks")},
                       generate=LEARNING_SAMPLE, **merged)


def test_resized_binary_training_beats_the_empty_and_brightness_baselines(cars, tmp_path):
    scores = _scores(tmp_path, _car_params(cars))
    baseline = max(scores["baseline_empty_dice"], scores["baseline_brightness_dice"])
    assert scores["dice"] >= baseline + MARGIN, scores


def test_patch_training_beats_the_baselines(cars, tmp_path):
    params = _car_params(cars, patches={"enabled": True, "scale": 1.0, "size": [32, 32], "foreground_share": 0.33,
                                        "overlap": 0.5, "validation_tiles": 8})
    scores = _scores(tmp_path, params)
    baseline = max(scores["baseline_empty_dice"], scores["baseline_brightness_dice"])
    assert scores["original_dice"] >= baseline + MARGIN, scores


def test_training_on_several_classes_beats_the_most_frequent_class(tmp_path):
    sample = make_classes_sample(tmp_path / "sample", count=16)
    params = classes_params(sample, model=RECIPE["model"], train={**RECIPE["train"], "loss": "crossentropy_dice",
                                                                  "monitor": "val_mean_iou"})
    scores = _scores(tmp_path, params)
    assert scores["mean_iou"] >= scores["baseline_most_frequent_mean_iou"] + MARGIN, scores
    assert scores["pixel_accuracy"] > scores["baseline_most_frequent_pixel_accuracy"], scores
