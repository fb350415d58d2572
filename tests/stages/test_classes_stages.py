"""Several classes through every stage script, on a tiny generated sample of label maps with ignored borders."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from sklearn.metrics import confusion_matrix, jaccard_score
from test_stages import _declared, evaluate, predict, run_stages

from conftest import CLASSES, ROOT, classes_params, make_classes_sample, write_yaml
from unetseg.config.loading import params_from_dict
from unetseg.config.params import Inference
from unetseg.core.application import RESIZE, Application
from unetseg.core.constants import IGNORE
from unetseg.data.classes import ClassMap
from unetseg.data.masks import read_labels
from unetseg.model.applying import mask_at, model_input

NAMES = CLASSES["names"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = tmp_path_factory.mktemp("classes")
    sample = make_classes_sample(work / "sample")
    params = write_yaml(work / "params.yaml", classes_params(sample, base={"workers": 1}, train={"keep": "best"}))
    reads = {}
    run_stages(work, params, reads)
    (work / "reads.json").write_text(json.dumps({k: sorted(v) for k, v in reads.items()}))
    return work


@pytest.mark.parametrize("stage", ["split", "preprocess", "train", "evaluate", "predict"])
def test_dvc_yaml_declares_the_class_params_each_stage_reads(run, stage):
    reads = {k for k in json.loads((run / "reads.json").read_text())[stage] if k.startswith("classes.")}
    declared = {k for k in _declared(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]["params"])
                if k.startswith("classes.")}
    assert reads == declared


def test_data_summary_has_a_class_census_per_split(run):
    data = json.loads((run / "data.json").read_text())
    pairs = pd.read_csv(run / "pairs.csv")
    assert 0 < data["ignored_pixels"]["fraction"] < 0.1 and data["ignored_pixels"]["masks_with_any"] == 12
    for split in ("train", "validation"):
        census = data["classes"][split]
        assert list(census) == NAMES
        assert sum(c["pixel_fraction"] for c in census.values()) == pytest.approx(1.0)
        assert census["box"]["images"] == (pairs.split == split).sum()  # every scene has a box
    assert "warnings" not in data


def test_tfrecords_and_model_carry_the_class_map(run):
    from unetseg.model.modelfile import model_classes

    expected = ClassMap.from_params(params_from_dict(classes_params(run / "sample")).classes)
    manifest = json.loads((run / "tfrecords" / "manifest.json").read_text())
    assert ClassMap.from_record(manifest["classes"]) == expected
    assert model_classes(run / "model.keras") == expected


def test_model_is_a_softmax_over_the_classes(run):
    import keras

    model = keras.saving.load_model(run / "model.keras")
    p = model.predict_on_batch(np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32))
    assert p.shape == (2, 32, 32, 3) and np.allclose(p.sum(-1), 1.0, atol=1e-5)


def test_training_curves_show_mean_iou(run):
    metrics = json.loads((run / "live" / "metrics.json").read_text())
    assert 0 <= metrics["eval"]["mean_iou"] <= 1 and "dice" in metrics["eval"]
    assert (run / "live" / "plots" / "metrics" / "eval" / "mean_iou.tsv").is_file()


def _labels_by_scikit_learn(run):
    """Truth and predicted labels of every labelled validation pixel at the images' own size, from
    the model file and the files alone."""
    import keras

    classes = ClassMap.from_params(params_from_dict(classes_params(run / "sample")).classes)
    model = keras.saving.load_model(run / "model.keras")
    pairs = pd.read_csv(run / "pairs.csv", dtype=str)
    truths, predictions = [], []
    for row in pairs[pairs.split == "validation"].itertuples():
        small, info = model_input(row.image, Application(RESIZE, (32, 32)))
        x = small.astype("float32")[None] / 255.0  # with its mirror image's, as inference.tta_flip (the default)
        p = (model.predict_on_batch(x) + model.predict_on_batch(x[:, :, ::-1])[:, :, ::-1])[0] / 2
        truth = read_labels(row.mask, classes).mask
        predicted = mask_at(p, info.size, Inference(0.5, False, False))
        truths.append(truth[truth != IGNORE])
        predictions.append(predicted[truth != IGNORE])
    return np.concatenate(truths), np.concatenate(predictions)


def test_original_resolution_metrics_match_scikit_learn(run):
    metrics = json.loads((run / "evaluate.json").read_text())
    truth, predicted = _labels_by_scikit_learn(run)
    iou = jaccard_score(truth, predicted, labels=[0, 1, 2], average=None)  # every class is in the truth
    for name, value in zip(NAMES, iou):
        assert metrics["original_class_iou"][name] == pytest.approx(value, abs=1e-6)
    assert metrics["original_mean_iou"] == pytest.approx(iou.mean(), abs=1e-6)
    matrix = confusion_matrix(truth, predicted, labels=[0, 1, 2])
    assert metrics["original_pixel_accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum(), abs=1e-6)
    recall = np.diag(matrix) / matrix.sum(1)
    assert metrics["original_mean_class_accuracy"] == pytest.approx(recall.mean(), abs=1e-6)


def test_evaluate_writes_metrics_confusion_and_baseline(run):
    metrics = json.loads((run / "evaluate.json").read_text())
    for key in ("mean_iou", "pixel_accuracy", "mean_class_accuracy", "dice", "iou", "original_mean_iou",
                "baseline_most_frequent_mean_iou", "baseline_most_frequent_pixel_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["baseline_most_frequent_class"] == "background"
    # every pixel called background: background's IoU is its share of the labelled pixels, the others 0
    confusion = pd.read_csv(run / "confusion.csv", index_col=0)
    assert list(confusion.columns) == NAMES and list(confusion.index) == NAMES
    share = confusion.loc["background"].sum() / confusion.to_numpy().sum()
    assert metrics["baseline_most_frequent_pixel_accuracy"] == pytest.approx(share)
    assert metrics["baseline_most_frequent_mean_iou"] == pytest.approx(share / 3)
    assert metrics["pixel_accuracy"] == pytest.approx(np.trace(confusion.to_numpy()) / confusion.to_numpy().sum())
    assert Image.open(run / "confusion.png").size[0] > 3 * 28
    per_image = pd.read_csv(run / "per_image.csv")
    assert list(per_image.columns[:3]) == ["id", "group", "dice"]
    assert metrics["dice"] == pytest.approx(per_image.dice.mean(), abs=1e-6)


def test_evaluate_writes_every_curve_dvc_yaml_plots(run):
    """A class run leaves no plot of dvc.yaml without its file (`dvc plots show` would complain)."""
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    declared = [path for p in plots if isinstance(p, dict) for path in next(iter(p.values()))["y"]]
    curves = [d for d in declared if d.startswith("eval/plots/") and d != "eval/plots/confusion.csv"]
    assert len(curves) == 3
    for path in curves:
        table = pd.read_csv(run / "plots" / path.removeprefix("eval/plots/"))
        assert len(table) > 5 and table.drop(columns=["rank", "threshold"], errors="ignore").stack().between(0, 1).all()
    # the long form of the confusion matrix: each true class's shares, as confusion.csv's rows
    rows = pd.read_csv(run / "plots" / "confusion.csv")
    counts = pd.read_csv(run / "confusion.csv", index_col=0)
    present = [name for name in NAMES if counts.loc[name].sum()]
    assert sorted(set(rows.actual)) == sorted(present) and set(rows.predicted) <= set(NAMES)
    shares = pd.crosstab(rows.actual, rows.predicted).reindex(index=present, columns=NAMES, fill_value=0) / 1000
    expected = counts.loc[present].div(counts.loc[present].sum(axis=1), axis=0)
    assert np.abs(shares.to_numpy() - expected.to_numpy()).max() <= 0.001


def test_predictions_are_palette_label_maps_with_legend_overlays(run):
    classes = ClassMap.from_params(params_from_dict(classes_params(run / "sample")).classes)
    masks = sorted((run / "predictions" / "masks").iterdir())
    assert masks
    with Image.open(masks[0]) as mask:
        assert mask.mode == "P" and mask.size == (64, 48)
        assert set(np.unique(np.asarray(mask))) <= {0, 1, 2}
        palette = mask.getpalette()[:9]
    assert [tuple(palette[i:i + 3]) for i in (0, 3, 6)] == classes.colours
    with Image.open(run / "predictions" / "overlays" / f"{masks[0].stem}.jpg") as overlay:
        assert overlay.width == 64 and overlay.height > 48  # the legend below the image
    with Image.open(run / "montage.png") as montage:
        assert montage.size == (3 * 32 + 2 * 4, 2 * 32 + 4)


def test_unetseg_predict_needs_no_params_and_matches_the_stage(run, tmp_path, capsys):
    from unetseg.cli import main as unetseg

    pairs = pd.read_csv(run / "pairs.csv")
    inputs = tmp_path / "in"
    inputs.mkdir()
    for image in pairs[pairs.split == "validation"].image:
        (inputs / image.split("/")[-1]).write_bytes(open(image, "rb").read())
    assert unetseg(["predict", str(run / "scored.keras"), str(inputs), str(tmp_path / "out")]) == 0
    for mask in (tmp_path / "out" / "masks").iterdir():
        assert np.array_equal(np.asarray(Image.open(mask)), np.asarray(Image.open(run / "predictions" / "masks" / mask.name)))
    assert unetseg(["predict", str(run / "model.keras"), str(inputs), str(tmp_path / "out2"),
                    "--rle", str(tmp_path / "sub.csv")]) == 1
    assert "3 classes, but the RLE file (Kaggle's format) holds binary masks only" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists() and not (tmp_path / "sub.csv").exists()
    assert unetseg(["predict", str(run / "model.keras"), str(inputs), str(tmp_path / "out3"),
                    "--largest-component"]) == 1
    assert not (tmp_path / "out3").exists()
    capsys.readouterr()
    assert unetseg(["predict", str(run / "model.keras"), str(inputs), str(tmp_path / "out4"), "--threshold", "0.3"]) == 1
    assert "takes each pixel's most probable class: leave out --threshold" in capsys.readouterr().err
    assert not (tmp_path / "out4").exists()


def test_a_class_map_changed_since_preprocess_is_refused(run, tmp_path, capsys):
    changed = classes_params(run / "sample", classes={"names": ["background", "box", "round"]})
    params = write_yaml(tmp_path / "params.yaml", changed)
    out = tmp_path / "evaluate.json"
    assert evaluate.main(["--params", str(params), "--tfrecords", str(run / "tfrecords"),
                          "--model", str(run / "model.keras"), "--pairs", str(run / "pairs.csv"),
                          "--metrics", str(out), "--per-image", str(tmp_path / "p.csv"),
                          "--plots", str(tmp_path / "plots"), "--gallery", str(tmp_path / "g.png"),
                          "--confusion", str(tmp_path / "c.csv"), "--scored", str(tmp_path / "s.keras")]) == 1
    err = capsys.readouterr().err
    assert "the class map changed" in err and "round" in err and "disc" in err
    assert not out.exists() and not (tmp_path / "c.csv").exists()
    assert predict.main(["--params", str(params), "--pairs", str(run / "pairs.csv"), "--model",
                         str(run / "scored.keras"), "--out", str(tmp_path / "pred"),
                         "--montage", str(tmp_path / "m.png")]) == 1
    assert "the class map changed" in capsys.readouterr().err and not (tmp_path / "pred").exists()


def test_a_mask_value_outside_the_map_stops_split_naming_file_value_and_count(run, tmp_path, capsys):
    import shutil

    sample = tmp_path / "sample"
    shutil.copytree(run / "sample", sample)
    mask = sample / "masks" / "g1_0.png"
    with Image.open(mask) as original:
        indices, palette = np.asarray(original).copy(), original.getpalette()
    indices[:2, :3] = 7
    changed = Image.fromarray(indices)
    changed.putpalette(palette)
    changed.save(mask)
    params = write_yaml(tmp_path / "params.yaml", classes_params(sample))
    split = __import__("split")
    assert split.main(["--params", str(params), "--out", str(tmp_path / "o" / "pairs.csv"),
                       "--summary", str(tmp_path / "o" / "s.json"), "--data-summary", str(tmp_path / "o" / "d.json")]) == 1
    err = capsys.readouterr().err
    assert "g1_0.png: mask value(s) 7 (6 pixels) are neither a class nor ignored" in err
    assert not (tmp_path / "o").exists()


def test_check_data_command_reads_masks_by_a_class_map_and_counts_the_classes(run, capsys):
    from unetseg.cli import main as unetseg

    sample = run / "sample"
    args = ["check-data", str(sample / "images"), str(sample / "masks"), "--mask-pattern", "{stem}.png"]
    assert unetseg(args) == 1  # as binary masks: three classes and a border are refused
    assert "name the classes in classes.names" in capsys.readouterr().err
    params = write_yaml(run / "check-params.yaml", classes_params(sample))
    assert unetseg(args + ["--classes-from", str(params)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert list(summary["classes"]["all"]) == NAMES and summary["classes"]["all"]["disc"]["images"] == 12


def test_a_class_absent_from_the_validation_split_is_a_warning(capsys):
    from unetseg.data.checking import class_census

    classes = ClassMap.from_params(params_from_dict(classes_params(ROOT)).classes)
    pixels = {"a": np.array([5, 3, 2]), "b": np.array([5, 3, 0]), "c": np.array([9, 1, 0])}
    census = class_census(pixels, {"a": "train", "b": "validation", "c": "validation"}, classes)
    assert census["classes"]["validation"]["disc"] == {"pixel_fraction": 0.0, "images": 0}
    assert census["classes"]["validation"]["background"] == {"pixel_fraction": 14 / 18, "images": 2}
    assert census["warnings"] == ["class 'disc' has no pixel in the validation split"]
    assert "warning: class 'disc' has no pixel in the validation split" in capsys.readouterr().err


def test_training_refuses_tfrecords_made_with_another_class_map(run, tmp_path, capsys):
    train = __import__("train")
    changed = classes_params(run / "sample", classes={"ignore": []})
    params = write_yaml(tmp_path / "params.yaml", changed)
    assert train.main(["--params", str(params), "--tfrecords", str(run / "tfrecords"), "--model",
                       str(tmp_path / "model.keras"), "--live", str(tmp_path / "live"),
                       "--backup", str(tmp_path / "backup")]) == 1
    err = capsys.readouterr().err
    assert "the class map changed" in err and "manifest.json" in err
    assert not (tmp_path / "model.keras").exists()


def test_onednns_int32_line_is_kept_off_the_terminal_while_a_class_model_trains(run, tmp_path, monkeypatch, capfd):
    """On CPUs without AVX-512, TensorFlow prints this E line once a class training's graph runs (it
    falls back to another kernel; nothing fails). Written where TensorFlow writes it, during the fit."""
    import os

    import keras

    from unetseg.core.startup import LOG_LEVEL, OURS
    from unetseg.train import training
    from unetseg.train.callbacks import make_callbacks

    line = ("E0000 00:00:1764764000.123456   4242 util.cc:131] oneDNN supports DT_INT32 only on platforms with "
            "AVX-512. Falling back to the default Eigen-based implementation if present.\n")

    class NativeLines(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 0:
                os.write(2, line.encode() + b"a line of the run's own\n")

    monkeypatch.setattr(training, "make_callbacks", lambda *args: [NativeLines(), *make_callbacks(*args)])
    # the level unetseg sets at start-up, whatever an earlier test in this worker left (importing
    # tf2onnx.convert sets TF_CPP_MIN_LOG_LEVEL=3, which reads as the user's choice: nothing filtered)
    for name in (LOG_LEVEL, OURS):
        monkeypatch.setenv(name, "2")
    params = params_from_dict(classes_params(run / "sample", train={"epochs": 1}))
    training.train(params, run / "tfrecords", tmp_path / "model.keras", tmp_path / "live", tmp_path / "backup")
    err = capfd.readouterr().err
    assert "a line of the run's own" in err and "DT_INT32" not in err
    assert (tmp_path / "model.keras").exists()
