"""`unetseg export` on trained tiny models: each format's masks, run by onnxruntime, the LiteRT
interpreter or a bare SavedModel load (no Keras, no unetseg network code), against the masks
`unetseg predict` writes for the same files; and `unetseg predict --runtime onnx`."""

import json

import numpy as np
import pytest
from PIL import Image
from test_stages import generate, preprocess, split, train

from conftest import classes_params, make_classes_sample, tiny_params, write_yaml
from unetseg import cli
from unetseg.data.decoding import list_images, read_image
from unetseg.export.runtime import Exported

pytestmark = pytest.mark.slow

# enough training that the masks have boundaries to disagree on
RECIPE = {"model": {"filters": 8, "num_layers": 3, "dropout": 0.0},
          "train": {"epochs": 3, "steps_per_epoch": 20, "batch_size": 8, "lr": 3.0e-3, "warmup_epochs": 1}}
PATCHES = {"enabled": True, "scale": 1.0, "size": [32, 32], "foreground_share": 0.33, "overlap": 0.5,
           "validation_tiles": 8}
SAMPLE = {"num_objects": 12, "views_per_object": 2, "height": 64, "width": 96}
KINDS = ["resize-binary", "resize-classes", "patches-binary", "patches-classes"]
FORMATS = ["onnx", "tflite", "savedmodel"]


def _train(work, params) -> None:
    p = ["--params", str(write_yaml(work / "params.yaml", params))]
    assert split.main(p + ["--out", str(work / "pairs.csv"), "--summary", str(work / "split.json"),
                           "--data-summary", str(work / "data.json")]) == 0
    assert preprocess.main(p + ["--pairs", str(work / "pairs.csv"), "--out", str(work / "tfrecords")]) == 0
    assert train.main(p + ["--tfrecords", str(work / "tfrecords"), "--model", str(work / "model.keras"),
                           "--live", str(work / "live"), "--backup", str(work / "backup")]) == 0


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{kind: (model file, folder of images, folder of predict's masks)}."""
    root = tmp_path_factory.mktemp("export")
    cars = write_yaml(root / "cars.yaml", tiny_params(generate=SAMPLE))
    assert generate.main(["--params", str(cars), "--out", str(root / "cars")]) == 0
    scenes = make_classes_sample(root / "scenes", count=16)
    found = {}
    for kind in KINDS:
        mode, labels = kind.split("-")
        extra = {**RECIPE, "patches": PATCHES if mode == "patches" else {"enabled": False},
                 "preprocess": {"image_size": [32, 32] if labels == "classes" else [64, 64], "num_shards": 2}}
        if labels == "classes":
            params, images = classes_params(scenes, **extra), scenes / "images"
            params["train"].update(loss="crossentropy_dice", monitor="val_mean_iou")
        else:
            params = tiny_params(data={"images_dir": str(root / "cars/train"),
                                       "masks_dir": str(root / "cars/train_masks")}, generate=SAMPLE, **extra)
            images = root / "cars/train"
        work = root / kind
        work.mkdir()
        _train(work, params)
        assert cli.main(["predict", str(work / "model.keras"), str(images), str(work / "predicted"),
                         "--no-overlays"]) == 0
        found[kind] = work / "model.keras", images, work / "predicted" / "masks"
    return found


def _agreement(got: np.ndarray, expected: np.ndarray, binary: bool) -> tuple[float, float]:
    """(share of equal pixels, dice between the two masks: of the foreground, or the mean over classes present)."""
    labels = [255] if binary else sorted(set(np.unique(expected)) | set(np.unique(got)))
    dices = [2 * np.sum((got == k) & (expected == k)) / (np.sum(got == k) + np.sum(expected == k)) for k in labels
             if np.any(got == k) or np.any(expected == k)]
    return float(np.mean(got == expected)), float(np.mean(dices)) if dices else 1.0


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", KINDS)
def test_the_exported_file_gives_the_masks_predict_writes(models, tmp_path, kind, fmt):
    model, images, masks = models[kind]
    binary = kind.endswith("binary")
    assert cli.main(["export", str(model), str(tmp_path / "out"), "--format", fmt]) == 0
    exported = Exported(tmp_path / "out")
    assert bool(exported.description["outside"]) == kind.startswith("patches")  # the sliding window: ours
    equal, dice, shares = [], [], []
    for path in list_images(images):
        expected = np.asarray(Image.open(masks / f"{path.stem}.png"))
        got = exported.masks(read_image(path)[None])[0]
        assert got.shape == expected.shape and got.dtype == np.uint8
        e, d = _agreement(got, expected, binary)
        equal.append(e)
        dice.append(d)
        shares.append(np.mean(expected == (255 if binary else 1)))
    # the masks are not trivial: the trained model draws shapes for the two to disagree on
    assert 0.05 < np.mean(shares) < 0.95, np.mean(shares)
    assert np.mean(equal) >= 0.995 and min(dice) >= 0.995, (np.mean(equal), min(dice))


def test_a_resized_model_exports_whole_and_a_patch_model_its_tile_network(models, tmp_path):
    for kind in ("resize-binary", "patches-classes"):
        out = tmp_path / kind
        assert cli.main(["export", str(models[kind][0]), str(out), "--format", "onnx", "--tta-flip"]) == 0
        description = json.loads((out / "export.json").read_text())
        assert description["tta_flip"] and "mirror average (tta_flip)" in description["inside"]
        if kind == "resize-binary":
            assert description["input"]["shape"] == ["N", "H", "W", 3] and description["outside"] == []
        else:
            assert description["input"]["shape"] == ["N", 32, 32, 3] and description["classes"]["names"]
            assert any("sliding_window" in step for step in description["outside"])


@pytest.mark.parametrize("kind", ["resize-binary", "patches-classes"])
def test_predict_by_onnxruntime_writes_the_masks_keras_does(models, tmp_path, kind):
    model, images, masks = models[kind]
    assert cli.main(["predict", str(model), str(images), str(tmp_path), "--no-overlays", "--runtime", "onnx"]) == 0
    for path in list_images(images):
        got = np.asarray(Image.open(tmp_path / "masks" / f"{path.stem}.png"))
        expected = np.asarray(Image.open(masks / f"{path.stem}.png"))
        assert np.mean(got == expected) >= 0.999


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
