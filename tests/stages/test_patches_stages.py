"""Patches through every stage script: whole images at a working scale, training on patches,
evaluate and predict by the sliding window, the model file saying how to apply it."""

import json
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from sklearn.metrics import jaccard_score
from test_stages import _declared, evaluate, generate, predict, preprocess, run_stages, train

from conftest import ROOT, classes_params, interrupted_at_epoch, make_classes_sample, tiny_params, write_yaml
from unetseg.config.loading import params_from_dict
from unetseg.core.application import Application
from unetseg.core.constants import IGNORE
from unetseg.data.classes import ClassMap
from unetseg.data.masks import read_labels
from unetseg.model.modelfile import model_application

PATCHES = {"enabled": True, "scale": 1.0, "size": [32, 32], "foreground_share": 0.33, "overlap": 0.5}


def _params(work, **overrides):
    return tiny_params(data={"images_dir": str(work / "sample/train"), "masks_dir": str(work / "sample/train_masks")},
                       patches={**PATCHES, **overrides.pop("patches", {})}, **overrides)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("patches")
    params = write_yaml(work / "params.yaml", _params(work, base={"workers": 1}))
    assert generate.main(["--params", str(params), "--out", str(work / "sample")]) == 0
    reads = {}
    run_stages(work, params, reads)
    (work / "reads.json").write_text(json.dumps({k: sorted(v) for k, v in reads.items()}))
    return work


@pytest.mark.parametrize("stage", ["preprocess", "train", "evaluate", "predict"])
def test_dvc_yaml_declares_the_patch_params_each_stage_reads(run, stage):
    reads = {k for k in json.loads((run / "reads.json").read_text())[stage] if k.startswith(("patches.", "preprocess."))}
    declared = {k for k in _declared(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]["params"])
                if k.startswith(("patches.", "preprocess."))}
    # train records the overlap in the model file, as `unetseg predict`'s default only: a change
    # of it must not retrain (evaluate reads and declares it; predict applies the scored file's)
    assert reads - declared == ({"patches.overlap"} if stage == "train" else set())
    assert declared - reads <= {"preprocess.image_size", "preprocess.num_shards"} - (
        {"preprocess.num_shards"} if stage == "preprocess" else set())


def test_tfrecords_hold_whole_images_at_the_working_scale(run):
    manifest = json.loads((run / "tfrecords" / "manifest.json").read_text())
    assert manifest["application"]["mode"] == "patches" and manifest["application"]["scale"] == 1.0
    pairs = pd.read_csv(run / "pairs.csv")
    for split in ("train", "validation"):
        assert manifest["sizes"][split] == [[48, 64]] * (pairs.split == split).sum()


def test_the_model_file_records_how_to_apply_it(run):
    import keras

    from unetseg.model.modelfile import model_application

    model = keras.saving.load_model(run / "model.keras")
    assert model.input_shape == (None, None, None, 3)  # any size: the record says tiles
    assert model_application(run / "model.keras", model) == Application("patches", (32, 32), 1.0, 0.5)


def test_evaluate_scores_whole_images_by_the_sliding_window(run):
    """original_dice from the model file and the mask files alone, through unetseg.model.applying."""
    import keras
    from sklearn.metrics import f1_score

    from unetseg.config.params import Inference
    from unetseg.data.decoding import read_image
    from unetseg.data.masks import read_mask
    from unetseg.model.applying import mask_at, sliding_window

    metrics = json.loads((run / "evaluate.json").read_text())
    model = keras.saving.load_model(run / "model.keras")
    pairs = pd.read_csv(run / "pairs.csv", dtype=str)
    scores = []
    for row in pairs[pairs.split == "validation"].itertuples():
        image = read_image(row.image).astype(np.float32) / 255.0
        p = sliding_window(image, lambda t: model.predict_on_batch(t), (32, 32), 0.5)[..., 0]
        truth = read_mask(row.mask).mask
        scores.append(f1_score(truth.ravel(), mask_at(p, truth.shape, Inference(0.5, False, False)).ravel(),
                               zero_division=1.0))
    assert metrics["original_dice"] == pytest.approx(np.mean(scores), abs=1e-5)
    assert metrics["dice"] == pytest.approx(metrics["original_dice"], abs=1e-6)  # scale 1: the same pixels
    per_image = pd.read_csv(run / "per_image.csv")
    assert len(per_image) == metrics["images"] and (run / "plots" / "dice_vs_threshold.csv").is_file()


def test_unetseg_predict_needs_no_params_and_matches_the_stage(run, tmp_path):
    from unetseg.cli import main as unetseg

    inputs = tmp_path / "in"
    inputs.mkdir()
    pairs = pd.read_csv(run / "pairs.csv")
    for image in pairs[pairs.split == "validation"].image:
        (inputs / image.split("/")[-1]).write_bytes(open(image, "rb").read())
    assert unetseg(["predict", str(run / "scored.keras"), str(inputs), str(tmp_path / "out")]) == 0
    masks = sorted((tmp_path / "out" / "masks").iterdir())
    assert masks
    for mask in masks:
        ours = np.asarray(Image.open(mask))
        assert ours.shape == (48, 64)
        assert np.array_equal(ours, np.asarray(Image.open(run / "predictions" / "masks" / mask.name)))


def test_a_model_is_never_applied_the_other_way(run, tmp_path, capsys):
    resized = write_yaml(tmp_path / "params.yaml", _params(run, patches={"enabled": False}))
    args = ["--params", str(resized), "--tfrecords", str(run / "tfrecords"), "--model", str(run / "model.keras"),
            "--pairs", str(run / "pairs.csv"), "--metrics", str(tmp_path / "e.json"), "--per-image",
            str(tmp_path / "p.csv"), "--plots", str(tmp_path / "plots"), "--gallery", str(tmp_path / "g.png"),
            "--confusion", str(tmp_path / "c.csv"), "--scored", str(tmp_path / "s.keras")]
    assert evaluate.main(args) == 1
    err = capsys.readouterr().err
    assert "preprocess.image_size" in err and "patches.scale 1.0 in tiles of 32x32 (patches.size)" in err
    assert not (tmp_path / "e.json").exists()
    assert predict.main(["--params", str(resized), "--pairs", str(run / "pairs.csv"), "--model",
                         str(run / "model.keras"), "--out", str(tmp_path / "pred"),
                         "--montage", str(tmp_path / "m.png")]) == 1
    assert "patches.size" in capsys.readouterr().err and not (tmp_path / "pred").exists()
    assert train.main(["--params", str(resized), "--tfrecords", str(run / "tfrecords"), "--model",
                       str(tmp_path / "model.keras"), "--live", str(tmp_path / "live"),
                       "--backup", str(tmp_path / "backup")]) == 1
    assert "whole images at patches.scale 1.0" in capsys.readouterr().err


def test_a_patch_larger_than_every_image_is_refused(run, tmp_path, capsys):
    params = write_yaml(tmp_path / "params.yaml", _params(run, patches={"size": [64, 64]}))
    assert train.main(["--params", str(params), "--tfrecords", str(run / "tfrecords"), "--model",
                       str(tmp_path / "model.keras"), "--live", str(tmp_path / "live"),
                       "--backup", str(tmp_path / "backup")]) == 1
    err = capsys.readouterr().err
    assert ("patches.size 64x64 is larger than every training image at patches.scale 1.0 (the tallest is 48 "
            "pixels high, the widest 64 wide)") in err
    assert not (tmp_path / "model.keras").exists()


def test_a_scale_that_makes_an_image_vanish_is_refused(run, tmp_path, capsys):
    params = write_yaml(tmp_path / "params.yaml", _params(run, patches={"scale": 0.01}))
    assert preprocess.main(["--params", str(params), "--pairs", str(run / "pairs.csv"),
                            "--out", str(tmp_path / "tfrecords")]) == 1
    err = capsys.readouterr().err
    assert "64x48 at patches.scale 0.01 would be 1x0 pixels" in err and ".jpg" in err
    assert not (tmp_path / "tfrecords").exists()


def test_bad_patch_params_name_the_key():
    from unetseg.config.checks import ParamsError

    with pytest.raises(ParamsError, match=r"patches.overlap: must be < 1, got 1.0"):
        params_from_dict(tiny_params(patches={**PATCHES, "overlap": 1.0}))
    with pytest.raises(ParamsError, match="patches.size: 30x32 must be divisible by 2\\*\\*model.num_layers = 4"):
        params_from_dict(tiny_params(patches={**PATCHES, "size": [30, 32]}))


def test_another_overlap_than_the_models_needs_no_retraining(run, tmp_path, monkeypatch):
    """The overlap is an inference setting: evaluate applies the params' and records it in the scored model
    file, which the predict stage and `unetseg predict` apply (--overlap replacing it)."""
    from unetseg.cli import main as unetseg
    from unetseg.evaluate import evaluation

    used, window = [], evaluation.tiled_probabilities
    monkeypatch.setattr(evaluation, "tiled_probabilities",
                        lambda model, image, applied, *rest: used.append(applied.overlap) or window(model, image, applied, *rest))
    params = write_yaml(tmp_path / "params.yaml", _params(run, patches={"overlap": 0.25}))
    assert evaluate.main(["--params", str(params), "--tfrecords", str(run / "tfrecords"), "--model",
                          str(run / "model.keras"), "--pairs", str(run / "pairs.csv"),
                          "--metrics", str(tmp_path / "e.json"), "--per-image", str(tmp_path / "p.csv"),
                          "--plots", str(tmp_path / "plots"), "--gallery", str(tmp_path / "g.png"),
                          "--confusion", str(tmp_path / "c.csv"), "--scored", str(tmp_path / "scored.keras")]) == 0
    assert used == [0.25] * json.loads((tmp_path / "e.json").read_text())["images"]  # the model file says 0.5
    assert model_application(run / "model.keras", None).overlap == 0.5
    assert model_application(tmp_path / "scored.keras", None).overlap == 0.25
    assert predict.main(["--params", str(params), "--pairs", str(run / "pairs.csv"), "--model",
                         str(tmp_path / "scored.keras"), "--out", str(tmp_path / "pred"),
                         "--montage", str(tmp_path / "m.png")]) == 0
    for overlap, out in ((["--overlap", "0.5"], "half"), ([], "default")):
        assert unetseg(["predict", str(tmp_path / "scored.keras"), str(run / "sample" / "train"), str(tmp_path / out),
                        "--no-overlays"] + overlap) == 0
        assert len(list((tmp_path / out / "masks").iterdir())) == 12
    same = [np.array_equal(np.asarray(Image.open(tmp_path / "default" / "masks" / p.name)),
                           np.asarray(Image.open(tmp_path / "pred" / "masks" / p.name)))
            for p in (tmp_path / "pred" / "masks").iterdir()]
    assert all(same), "the predict stage and unetseg predict apply the overlap evaluate scored"


def test_a_model_that_takes_any_size_without_its_record_is_refused(run, tmp_path, capsys):
    from unetseg.cli import main as unetseg

    stripped = tmp_path / "model.keras"
    with zipfile.ZipFile(run / "model.keras") as source, zipfile.ZipFile(stripped, "w") as target:
        for item in source.infolist():
            if item.filename != "unetseg.json":
                target.writestr(item, source.read(item))
    assert unetseg(["predict", str(stripped), str(run / "sample" / "train"), str(tmp_path / "out")]) == 1
    assert "takes images of any size but the file has no application record" in capsys.readouterr().err


def test_resuming_an_interrupted_training_on_patches_changes_nothing(run, tmp_path):
    """Interrupted after its first epoch's backup, then run again: the same weights as one uninterrupted run."""
    from unetseg.model.modelfile import load_model
    from unetseg.train import training

    params = params_from_dict(_params(run, train={"epochs": 3}))

    def fit(folder):
        return training.train(params, run / "tfrecords", folder / "model.keras", folder / "live", folder / "backup")

    fit(tmp_path / "whole")
    with interrupted_at_epoch(1):
        fit(tmp_path / "resumed")
    assert (tmp_path / "resumed" / "backup").is_dir() and not (tmp_path / "resumed" / "model.keras").exists()
    fit(tmp_path / "resumed")
    whole, resumed = (load_model(tmp_path / f / "model.keras").get_weights() for f in ("whole", "resumed"))
    assert all(np.array_equal(a, b) for a, b in zip(whole, resumed))


def test_patches_compose_with_a_strategy_keep_best_and_early_stopping(run, tmp_path, monkeypatch):
    """The options a user reaches for together: tf.distribute, the best epoch kept, early stopping
    on dice, with patches (not square, here)."""
    from unetseg.model.modelfile import load_model, model_application
    from unetseg.train import training

    epochs = 8
    params = params_from_dict(_params(run, patches={"size": [48, 32]}, train={
        "epochs": epochs, "lr": 0.02, "strategy": "mirrored", "keep": "best", "monitor": "val_dice",
        "early_stopping_patience": 1}))
    kept = tmp_path / "backup-at-the-end"
    real_remove = training.remove_backup

    def snapshot_then_remove(folder):  # the backup as training leaves it, before it is deleted
        shutil.copytree(folder, kept)
        real_remove(folder)

    monkeypatch.setattr(training, "remove_backup", snapshot_then_remove)
    training.train(params, run / "tfrecords", tmp_path / "model.keras", tmp_path / "live", tmp_path / "backup")
    assert not (tmp_path / "backup").exists()
    curve = pd.read_csv(tmp_path / "live" / "plots" / "metrics" / "eval" / "dice.tsv", sep="\t")["dice"].to_numpy()
    best = int(np.argmax(curve))
    assert len(curve) < epochs and len(curve) == best + 2  # stopped one epoch (the patience) after the best
    state = json.loads((kept / "best.json").read_text())
    assert state["epoch"] == best and state["value"] == pytest.approx(curve[best], abs=1e-6)
    model = load_model(tmp_path / "model.keras")
    assert model_application(tmp_path / "model.keras", model) == Application("patches", (48, 32), 1.0, 0.5)
    weights = model.get_weights()
    model.load_weights(kept / state["weights"])  # the model written is the best epoch's, not the last's
    assert all(np.array_equal(a, b) for a, b in zip(weights, model.get_weights()))


def test_several_classes_on_patches(tmp_path):
    """Label maps with ignored borders, trained on patches and scored by the sliding window."""
    from unetseg.model.modelfile import model_classes

    sample = make_classes_sample(tmp_path / "sample")
    params = write_yaml(tmp_path / "params.yaml", classes_params(sample, patches=PATCHES))
    run_stages(tmp_path, params)
    metrics = json.loads((tmp_path / "evaluate.json").read_text())
    assert model_classes(tmp_path / "model.keras").names == ("background", "box", "disc")
    mask = Image.open(sorted((tmp_path / "predictions" / "masks").iterdir())[0])
    assert mask.mode == "P" and mask.size == (64, 48) and set(np.unique(np.asarray(mask))) <= {0, 1, 2}
    # evaluate's scores at the original size are the predict stage's masks against the label maps
    classes = ClassMap.from_params(params_from_dict(classes_params(sample)).classes)
    pairs = pd.read_csv(tmp_path / "pairs.csv", dtype=str)
    truths, predictions = [], []
    for row in pairs[pairs.split == "validation"].itertuples():
        truth = read_labels(row.mask, classes).mask
        predicted = np.asarray(Image.open(tmp_path / "predictions" / "masks" / f"{row.id}.png"))
        truths.append(truth[truth != IGNORE])
        predictions.append(predicted[truth != IGNORE])
    truth, predicted = np.concatenate(truths), np.concatenate(predictions)
    iou = jaccard_score(truth, predicted, labels=[0, 1, 2], average=None, zero_division=0.0)
    assert metrics["original_class_iou"] == pytest.approx(dict(zip(["background", "box", "disc"], iou)), abs=1e-6)
    assert metrics["original_mean_iou"] == pytest.approx(iou.mean(), abs=1e-6)
