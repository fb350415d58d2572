"""One way from model to mask: for each kind of model (binary or classes, resized or patches), trained
with inference settings other than the defaults, the masks of the predict stage, of `unetseg predict`
given only the model file evaluate wrote, and of each export format applied as its export.json says
(by this module's own code for every listed step, not unetseg's) are the same; and `unetseg predict
--runtime onnx`."""

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from scipy import ndimage
from test_stages import evaluate, generate, predict, preprocess, split, train

from conftest import classes_params, make_classes_sample, tiny_params, write_yaml
from unetseg import cli
from unetseg.data.decoding import read_image
from unetseg.export.runtime import Exported

pytestmark = pytest.mark.slow

# enough training that the masks have boundaries to disagree on
RECIPE = {"model": {"filters": 8, "num_layers": 3, "dropout": 0.0},
          "train": {"epochs": 3, "steps_per_epoch": 20, "batch_size": 8, "lr": 3.0e-3, "warmup_epochs": 1}}
PATCHES = {"enabled": True, "scale": 1.0, "size": [32, 32], "foreground_share": 0.33, "overlap": 0.25,
           "validation_tiles": 8}
# none of them the default: a rule that reads a constant instead of the scored settings shows
# (0.3 on the briefly trained binary patch model marks nearly every pixel: 0.7 there)
INFERENCE = {"resize-binary": {"threshold": 0.3, "tta_flip": False, "largest_component": True},
             "patches-binary": {"threshold": 0.7, "tta_flip": False, "largest_component": True},
             "resize-classes": {"threshold": 0.5, "tta_flip": False, "largest_component": False}}
INFERENCE["patches-classes"] = INFERENCE["resize-classes"]
SAMPLE = {"num_objects": 12, "views_per_object": 2, "height": 64, "width": 96}
KINDS = ["resize-binary", "resize-classes", "patches-binary", "patches-classes"]
FORMATS = ["onnx", "tflite", "savedmodel", "openvino"]


def _stages(work, params) -> None:
    p = ["--params", str(write_yaml(work / "params.yaml", params))]
    assert split.main(p + ["--out", str(work / "pairs.csv"), "--summary", str(work / "split.json"),
                           "--data-summary", str(work / "data.json")]) == 0
    assert preprocess.main(p + ["--pairs", str(work / "pairs.csv"), "--out", str(work / "tfrecords")]) == 0
    assert train.main(p + ["--tfrecords", str(work / "tfrecords"), "--model", str(work / "model.keras"),
                           "--live", str(work / "live"), "--backup", str(work / "backup")]) == 0
    assert evaluate.main(p + ["--tfrecords", str(work / "tfrecords"), "--model", str(work / "model.keras"),
                              "--pairs", str(work / "pairs.csv"), "--metrics", str(work / "evaluate.json"),
                              "--per-image", str(work / "per_image.csv"), "--plots", str(work / "plots"),
                              "--gallery", str(work / "gallery.png"), "--confusion", str(work / "confusion.csv"),
                              "--scored", str(work / "scored.keras")]) == 0
    assert predict.main(p + ["--pairs", str(work / "pairs.csv"), "--model", str(work / "scored.keras"),
                             "--out", str(work / "predictions"), "--montage", str(work / "montage.png")]) == 0


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{kind: (scored model file, folder of images, folder of the predict stage's masks of the validation images)}."""
    root = tmp_path_factory.mktemp("export")
    cars = write_yaml(root / "cars.yaml", tiny_params(generate=SAMPLE))
    assert generate.main(["--params", str(cars), "--out", str(root / "cars")]) == 0
    scenes = make_classes_sample(root / "scenes", count=16)
    found = {}
    for kind in KINDS:
        mode, labels = kind.split("-")
        extra = {**RECIPE, "patches": PATCHES if mode == "patches" else {"enabled": False},
                 "preprocess": {"image_size": [32, 32] if labels == "classes" else [64, 64], "num_shards": 2},
                 "inference": INFERENCE[kind]}
        if labels == "classes":
            params, images = classes_params(scenes, **extra), scenes / "images"
            params["train"].update(loss="crossentropy_dice", monitor="val_mean_iou")
        else:
            params = tiny_params(data={"images_dir": str(root / "cars/train"),
                                       "masks_dir": str(root / "cars/train_masks")}, generate=SAMPLE, **extra)
            images = root / "cars/train"
        work = root / kind
        work.mkdir()
        _stages(work, params)
        found[kind] = work / "scored.keras", images, work / "predictions" / "masks"
    return found


def _agreement(got: np.ndarray, expected: np.ndarray, binary: bool) -> tuple[float, float]:
    """(share of equal pixels, dice between the two masks: of the foreground, or the mean over classes present)."""
    labels = [255] if binary else sorted(set(np.unique(expected)) | set(np.unique(got)))
    dices = [2 * np.sum((got == k) & (expected == k)) / (np.sum(got == k) + np.sum(expected == k)) for k in labels
             if np.any(got == k) or np.any(expected == k)]
    return float(np.mean(got == expected)), float(np.mean(dices)) if dices else 1.0


def _window(image, step, run):
    """export.json's sliding_window step, as its text says."""
    tile, overlap = step["tile"], step["overlap"]
    strides = [max(1, round(t * (1 - overlap))) for t in tile]
    pads = []
    for n, t, s in zip(image.shape[:2], tile, strides):
        total = max(n + 2 * ((t - s) // 2), t) - n
        pads.append((total // 2, total - total // 2))
    padded = np.pad(image, pads + [(0, 0)], mode="reflect")
    axes = []
    for t in tile:
        x = np.arange(t) - (t - 1) / 2
        axes.append(np.exp(-0.5 * (x / (t * step["sigma"])) ** 2))
    weight = np.outer(*axes)
    weight = np.maximum(weight / weight.max(), step["min_weight"])
    starts = [sorted({min(i, n - t) for i in range(0, max(n - t, 0) + s, s)})
              for n, t, s in zip(padded.shape[:2], tile, strides)]
    total = weights = 0
    for y in starts[0]:
        for x in starts[1]:
            p = np.asarray(run(np.ascontiguousarray(padded[None, y : y + tile[0], x : x + tile[1]])))[0]
            canvas = np.zeros(padded.shape[:2] + p.shape[2:])
            canvas[y : y + tile[0], x : x + tile[1]] = p * weight[..., None]
            total = total + canvas
            cover = np.zeros(padded.shape[:2])
            cover[y : y + tile[0], x : x + tile[1]] = weight
            weights = weights + cover
    (top, _), (left, _) = pads
    return (total / weights[..., None])[top : top + image.shape[0], left : left + image.shape[1]]


def _largest(mask):
    labels, count = ndimage.label(mask > 0, structure=np.ones((3, 3)))
    if count <= 1:
        return mask
    return ((labels == 1 + np.argmax(np.bincount(labels.ravel())[1:])) * 255).astype(np.uint8)


def _follow(folder, image: np.ndarray) -> np.ndarray:
    """An image's mask by the exported file and each step export.json leaves outside it, in its order."""
    description = json.loads((folder / "export.json").read_text())
    run, size = Exported(folder).run, image.shape[:2]  # the file through its runtime; every step after, ours
    x = image if description["outside"] and description["outside"][0]["step"] == "resize" else \
        np.asarray(run(image[None]))[0]
    for step in description["outside"]:
        kind = step["step"]
        if kind == "resize":
            height, width = round(size[0] * step["scale"]), round(size[1] * step["scale"])
            picture = Image.fromarray(x)
            factor = min(picture.height // height, picture.width // width)
            picture = picture.reduce(factor) if factor >= 2 else picture
            x = np.asarray(picture.resize((width, height), Image.BILINEAR))
        elif kind == "sliding_window":
            x = _window(x, step, run)
        elif kind == "resize_back":
            x = np.stack([np.asarray(Image.fromarray(x[..., k].astype(np.float32)).resize(size[::-1], Image.BILINEAR))
                          for k in range(x.shape[-1])], axis=-1)
        elif kind == "threshold":
            x = ((x[..., 0] > step["above"]) * 255).astype(np.uint8)
        elif kind == "argmax":
            x = np.argmax(x, axis=-1).astype(np.uint8)
        elif kind == "largest_component":
            x = _largest(x)
        else:
            raise AssertionError(f"export.json lists a step this caller does not know: {step}")
    return x


def _validation_images(model):
    pairs = pd.read_csv(model.parent / "pairs.csv")
    return [p for p in map(str, pairs[pairs.split == "validation"].image)]


@pytest.mark.parametrize("kind", KINDS)
def test_unetseg_predict_given_the_scored_model_alone_writes_the_stages_masks(models, tmp_path, kind):
    model, images, stage_masks = models[kind]
    assert cli.main(["predict", str(model), str(images), str(tmp_path), "--no-overlays"]) == 0
    validation = _validation_images(model)
    assert validation
    for path in validation:
        name = f"{path.rsplit('/', 1)[-1].rsplit('.', 1)[0]}.png"
        assert np.array_equal(np.asarray(Image.open(tmp_path / "masks" / name)),
                              np.asarray(Image.open(stage_masks / name)))
    # and the settings matter: the defaults give other masks
    if kind.endswith("binary"):
        assert cli.main(["predict", str(model), str(images), str(tmp_path / "defaults"), "--no-overlays",
                         "--threshold", "0.5", "--tta-flip", "--no-largest-component"]) == 0
        assert any(not np.array_equal(np.asarray(Image.open(tmp_path / "defaults" / "masks" / p.name)),
                                      np.asarray(Image.open(p))) for p in stage_masks.iterdir())


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", KINDS)
def test_the_exported_file_applied_as_export_json_says_gives_the_stages_masks(models, tmp_path, kind, fmt):
    model, images, stage_masks = models[kind]
    binary = kind.endswith("binary")
    assert cli.main(["export", str(model), str(tmp_path / "out"), "--format", fmt]) == 0
    description = json.loads((tmp_path / "out" / "export.json").read_text())
    assert description["inference"]["tta_flip"] is False
    listed = [step["step"] for step in description["outside"]]
    if kind.startswith("patches"):
        assert listed[:3] == ["resize", "sliding_window", "resize_back"]  # probabilities resized, then the mask
        assert description["outside"][1]["overlap"] == 0.25  # evaluate's, not the model file's
    assert (description["outside"] or description["inside"])[-1]["step"] == ("largest_component" if binary else "argmax")
    equal, dice, shares = [], [], []
    for path in _validation_images(model):
        expected = np.asarray(Image.open(stage_masks / f"{path.rsplit('/', 1)[-1].rsplit('.', 1)[0]}.png"))
        got = _follow(tmp_path / "out", read_image(path))
        assert got.shape == expected.shape and got.dtype == np.uint8
        e, d = _agreement(got, expected, binary)
        equal.append(e)
        dice.append(d)
        shares.append(np.mean(expected == (255 if binary else 1)))
    # the masks are not trivial: the trained model draws shapes for the two to disagree on
    assert 0.05 < np.mean(shares) < 0.95, np.mean(shares)
    assert min(equal) >= 0.995 and min(dice) >= 0.99, (min(equal), min(dice))
    # unetseg's own reader of an export agrees too
    exported = Exported(tmp_path / "out")
    for path in _validation_images(model)[:2]:
        assert np.mean(exported.masks(read_image(path)[None])[0] == _follow(tmp_path / "out", read_image(path))) >= 0.995


def test_options_replace_the_scored_settings_in_an_export(models, tmp_path):
    model = models["resize-binary"][0]
    assert cli.main(["export", str(model), str(tmp_path / "out"), "--format", "onnx", "--tta-flip",
                     "--threshold", "0.6", "--no-largest-component"]) == 0
    description = json.loads((tmp_path / "out" / "export.json").read_text())
    assert description["inference"] == {"threshold": 0.6, "tta_flip": True, "largest_component": False}
    assert [step["step"] for step in description["inside"]] == [
        "resize", "scale", "network", "mirror_average", "resize_back", "threshold"]
    assert description["inside"][-1]["above"] == 0.6 and description["outside"] == []


@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
@pytest.mark.parametrize("kind", ["resize-binary", "patches-classes"])
def test_predict_by_another_runtime_writes_the_masks_keras_does(models, tmp_path, kind, runtime):
    model, images, masks = models[kind]
    assert cli.main(["predict", str(model), str(images), str(tmp_path), "--no-overlays", "--runtime", runtime]) == 0
    for path in masks.iterdir():
        got = np.asarray(Image.open(tmp_path / "masks" / path.name))
        assert np.mean(got == np.asarray(Image.open(path))) >= 0.999


def _rescored(model, inference: dict, tag: str):
    """Evaluate and the predict stage again on a kind's trained model, with `inference` changed:
    (scored model file, evaluate's metrics, its per-image table, the predict stage's masks)."""
    work = model.parent
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["inference"].update(inference)
    p = ["--params", str(write_yaml(work / f"params-{tag}.yaml", params))]
    out = work / tag
    assert evaluate.main(p + ["--tfrecords", str(work / "tfrecords"), "--model", str(work / "model.keras"),
                              "--pairs", str(work / "pairs.csv"), "--metrics", str(out / "evaluate.json"),
                              "--per-image", str(out / "per_image.csv"), "--plots", str(out / "plots"),
                              "--gallery", str(out / "gallery.png"), "--confusion", str(out / "confusion.csv"),
                              "--scored", str(out / "scored.keras")]) == 0
    assert predict.main(p + ["--pairs", str(work / "pairs.csv"), "--model", str(out / "scored.keras"),
                             "--out", str(out / "predictions"), "--montage", str(out / "montage.png")]) == 0
    return (out / "scored.keras", json.loads((out / "evaluate.json").read_text()),
            pd.read_csv(out / "per_image.csv"), out / "predictions" / "masks")


INT8 = {"runtime": "openvino", "precision": "int8", "calibration_images": 16}


@pytest.mark.parametrize("kind", KINDS)
def test_int8_evaluate_scores_the_network_that_predict_and_unetseg_predict_ship(
        models, tmp_path, kind, monkeypatch, capsys):
    monkeypatch.setenv("UNETSEG_CACHE", str(tmp_path / "cache"))
    model, images, float_masks = models[kind]
    scored, metrics, per_image, masks = _rescored(model, INT8, "int8")
    pairs = pd.read_csv(model.parent / "pairs.csv").set_index("id")
    # 16 tiles; 16 training images, or every one where there are fewer
    drawn = 16 if kind.startswith("patches") else min(16, int(np.sum(pairs.split == "train")))
    assert f"calibrated on {drawn} training" in capsys.readouterr().out
    with zipfile.ZipFile(scored) as archive:
        assert {"openvino_int8/model.xml", "openvino_int8/model.bin"} <= set(archive.namelist())
        record = json.loads(archive.read("unetseg.json"))["inference"]
    seed = yaml.safe_load((model.parent / "params.yaml").read_text())["base"]["seed"]
    assert record["precision"] == "int8" and record["calibration"]["seed"] == seed
    assert record["calibration"]["tiles" if kind.startswith("patches") else "images"] == drawn
    # what evaluate reports is what the predict stage writes: each image's score from its mask file
    binary = kind.endswith("binary")
    for row in per_image.itertuples():
        mask = np.asarray(Image.open(masks / f"{Path(pairs.at[row.id, 'image']).stem}.png"))
        truth = np.asarray(Image.open(pairs.at[row.id, "mask"]))
        if binary:
            truth, mask = truth > 0, mask > 0
            expected = 2 * np.sum(truth & mask) / max(truth.sum() + mask.sum(), 1) if truth.any() or mask.any() else 1
            assert row.original_dice == pytest.approx(expected, abs=1e-5)
    # int8 stays close to float32, and `unetseg predict` given the file alone runs the same int8 network
    float_metrics = json.loads((model.parent / "evaluate.json").read_text())
    key = "dice" if binary else "mean_iou"
    assert abs(metrics[key] - float_metrics[key]) < 0.03, (metrics[key], float_metrics[key])
    same = [np.mean(np.asarray(Image.open(path)) == np.asarray(Image.open(float_masks / path.name)))
            for path in masks.iterdir()]
    # (not every image: a briefly trained model leaves many pixels near a threshold of 0.7, where 8 bits flip them)
    assert np.median(same) >= 0.95, same
    assert cli.main(["predict", str(scored), str(images), str(tmp_path / "cli"), "--no-overlays"]) == 0
    for path in masks.iterdir():
        assert np.array_equal(np.asarray(Image.open(tmp_path / "cli" / "masks" / path.name)),
                              np.asarray(Image.open(path)))
    # the OpenVINO export of that int8 network, applied as its export.json says, gives those masks too
    assert cli.main(["export", str(scored), str(tmp_path / "ir"), "--format", "openvino", "--int8"]) == 0
    description = json.loads((tmp_path / "ir" / "export.json").read_text())
    assert description["precision"] == "int8" and description["calibration"]["seed"] == seed
    for path in _validation_images(model):
        expected = np.asarray(Image.open(masks / f"{Path(path).stem}.png"))
        equal, dice = _agreement(_follow(tmp_path / "ir", read_image(path)), expected, binary)
        assert equal >= 0.995 and dice >= 0.99, (path, equal, dice)
    # and in float32 again, from the same file
    assert cli.main(["predict", str(scored), str(images), str(tmp_path / "f32"), "--no-overlays",
                     "--runtime", "keras"]) == 0
    for path in float_masks.iterdir():
        assert np.array_equal(np.asarray(Image.open(tmp_path / "f32" / "masks" / path.name)),
                              np.asarray(Image.open(path)))


def test_a_threshold_changed_scores_again_without_calibrating_again(models, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("UNETSEG_CACHE", str(tmp_path / "cache"))
    model = models["resize-binary"][0]
    _rescored(model, INT8, "cache-a")
    assert "from the cache" not in capsys.readouterr().out
    scored, *_ = _rescored(model, {**INT8, "threshold": 0.4}, "cache-b")
    assert "), from the cache" in capsys.readouterr().out
    with zipfile.ZipFile(model.parent / "cache-a" / "scored.keras") as a, zipfile.ZipFile(scored) as b:
        assert a.read("openvino_int8/model.bin") == b.read("openvino_int8/model.bin")


def test_int8_from_a_file_evaluate_scored_in_float32_is_refused(models, tmp_path, capsys):
    model, images, _ = models["resize-binary"]
    line = _error_line(capsys, ["predict", str(model), str(images), str(tmp_path / "out"), "--runtime", "openvino",
                                "--precision", "int8"])
    assert f"{model}: holds no int8 network: evaluate quantizes and scores it" in line
    line = _error_line(capsys, ["export", str(model), str(tmp_path / "ir"), "--format", "openvino", "--int8"])
    assert f"{model}: holds no int8 network: evaluate quantizes and scores it" in line
    assert "--int8: for --format openvino only" in _error_line(
        capsys, ["export", str(model), str(tmp_path / "ir"), "--format", "onnx", "--int8"])
    assert not (tmp_path / "out").exists() and not (tmp_path / "ir").exists()


def _error_line(capsys, argv) -> str:
    assert cli.main(argv) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_bad_exports_end_in_one_line_with_nothing_written(models, tmp_path, capsys, monkeypatch):
    import keras

    model = str(models["resize-binary"][0])
    other = tmp_path / "other.keras"
    inputs = keras.Input((32, 32, 3))
    keras.Model(inputs, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(inputs))).save(other)
    assert "not a unetseg model" in _error_line(capsys, ["export", str(other), str(tmp_path / "a"), "--format", "onnx"])
    assert "invalid choice: 'coreml'" in _error_line(capsys, ["export", model, str(tmp_path / "b"), "--format", "coreml"])
    (tmp_path / "taken").mkdir()
    assert "already exists" in _error_line(capsys, ["export", model, str(tmp_path / "taken"), "--format", "onnx"])
    assert "--overlap is for models trained on patches" in _error_line(
        capsys, ["export", model, str(tmp_path / "c"), "--format", "onnx", "--overlap", "0.25"])

    import importlib

    import unetseg.export.formats as formats

    original = importlib.import_module

    def without_tf2onnx(name, *args):
        if name == "tf2onnx":
            raise ImportError(name)
        return original(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_tf2onnx)
    assert 'pip install -e ".[export]"' in _error_line(capsys, ["export", model, str(tmp_path / "d"), "--format", "onnx"])
    monkeypatch.undo()

    def broken(*args):
        (args[-1]).write_bytes(b"half")  # a converter that writes part of its file, then fails
        raise RuntimeError("converter failed")

    monkeypatch.setattr(formats, "_onnx", broken)
    with pytest.raises(RuntimeError):
        cli.main(["export", model, str(tmp_path / "e"), "--format", "onnx"])
    assert not (tmp_path / "e").exists() and [p.name for p in tmp_path.iterdir()] == ["other.keras", "taken"]
