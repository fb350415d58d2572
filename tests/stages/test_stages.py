"""Each stage script on tiny real files: outputs, exit codes and messages."""

import json
import shutil
import subprocess
import sys
import typing
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from conftest import ROOT, tiny_params, write_yaml
from unetseg.config.params import Params

sys.path.insert(0, str(ROOT / "stages"))
import evaluate  # noqa: E402
import generate  # noqa: E402
import predict  # noqa: E402
import preprocess  # noqa: E402
import split  # noqa: E402
import train  # noqa: E402

SECTIONS = {cls: name for name, cls in typing.get_type_hints(Params).items()}
NOT_DECLARED = {"base.workers"}  # how many processes decode changes no output: no rerun for it
READ_ONLY_IF = {
    "data.resize_masks": "a mask's size differs from its image's",
    "inference.calibration_images": "inference.precision is int8 (test_repro's inference step runs it)",
    **{f"classes.{key}": "classes are named (test_classes_stages checks them)"
       for key in ("values", "ignore", "masks", "weights")},
    **{f"patches.{key}": "patches are enabled (test_patches_stages checks them)"
       for key in ("scale", "size", "foreground_share", "overlap", "validation_tiles")},
}


@contextmanager
def params_reads(stage):
    """The params keys a stage reads after loading them, by watching every section's fields."""
    reads, watched, load = set(), set(), stage.load_params

    def loaded(path):
        params = load(path)
        # building and checking the sections reads every key: not counted; nor are reads of other
        # instances (a model file's inference settings are an Inference too)
        watched.update(id(object.__getattribute__(params, section)) for section in SECTIONS.values())
        return params

    def reader(section):
        def get(self, name):
            if id(self) in watched and name in type(self).__dataclass_fields__:
                reads.add(f"{section}.{name}")
            return object.__getattribute__(self, name)
        return get

    stage.load_params = loaded
    for cls, section in SECTIONS.items():
        cls.__getattribute__ = reader(section)
    try:
        yield reads
    finally:
        stage.load_params = load
        for cls in SECTIONS:
            del cls.__getattribute__


def run_stages(work, params_file, stages_reads=None) -> None:
    """The whole chain of stages, called as their scripts are, in `work`; each stage's params reads recorded."""
    p = ["--params", str(params_file)]
    calls = [
        (split, ["--out", str(work / "pairs.csv"), "--summary", str(work / "split.json"),
                 "--data-summary", str(work / "data.json")]),
        (preprocess, ["--pairs", str(work / "pairs.csv"), "--out", str(work / "tfrecords")]),
        (train, ["--tfrecords", str(work / "tfrecords"), "--model", str(work / "model.keras"),
                 "--live", str(work / "live"), "--backup", str(work / "backup")]),
        (evaluate, ["--tfrecords", str(work / "tfrecords"), "--model", str(work / "model.keras"),
                    "--pairs", str(work / "pairs.csv"), "--metrics", str(work / "evaluate.json"),
                    "--per-image", str(work / "per_image.csv"), "--plots", str(work / "plots"),
                    "--gallery", str(work / "gallery.png"), "--confusion", str(work / "confusion.csv"),
                    "--scored", str(work / "scored.keras")]),
        (predict, ["--pairs", str(work / "pairs.csv"), "--model", str(work / "scored.keras"),
                   "--out", str(work / "predictions"), "--montage", str(work / "montage.png")]),
    ]
    for stage, args in calls:
        with params_reads(stage) as reads:
            assert stage.main(p + args) == 0, stage.__name__
        if stages_reads is not None:
            stages_reads[stage.__name__] = reads


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The chain on the generated tiny sample; `run.reads` holds each stage's params reads."""
    work = tmp_path_factory.mktemp("run")
    params = write_yaml(work / "params.yaml", tiny_params(
        base={"workers": 1},  # decode in this process, where reads are watched
        data={"images_dir": str(work / "sample/train"), "masks_dir": str(work / "sample/train_masks")}))
    reads = {}
    with params_reads(generate) as reads["generate"]:
        assert generate.main(["--params", str(params), "--out", str(work / "sample")]) == 0
    run_stages(work, params, reads)
    (work / "reads.json").write_text(json.dumps({k: sorted(v) for k, v in reads.items()}))
    return work


def _declared(entries) -> set[str]:
    keys = set()
    for entry in entries:
        section, _, key = entry.partition(".")
        cls = next(c for c, name in SECTIONS.items() if name == section)
        keys |= {f"{section}.{key}"} if key else {f"{section}.{name}" for name in cls.__dataclass_fields__}
    return keys


@pytest.mark.parametrize("stage", ["generate", "split", "preprocess", "train", "evaluate", "predict"])
def test_dvc_yaml_declares_exactly_the_params_each_stage_reads(run, stage):
    reads = set(json.loads((run / "reads.json").read_text())[stage]) - NOT_DECLARED
    declared = _declared(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]["params"])
    assert reads - declared == set(), "read but not declared: a change would not rerun the stage"
    assert declared - reads - set(READ_ONLY_IF) == set(), "declared but never read: needless reruns"


def test_split_outputs(run):
    pairs = pd.read_csv(run / "pairs.csv")
    assert len(pairs) == 12 and set(pairs.split) == {"train", "validation"}
    summary = json.loads((run / "split.json").read_text())
    assert summary["train_images"] + summary["validation_images"] == 12
    data = json.loads((run / "data.json").read_text())
    assert data["pairs"] == 12 and data["images"]["formats"] == {"JPEG": 12} and data["masks"]["modes"] == {"P": 12}
    assert data["images"]["sizes"] == {"64x48": 12} and 0 < data["foreground_fraction"]["mean"] < 1
    assert data["nonbinary_pixels"]["total"] == 0

def test_tfrecords_follow_the_pairs(run):
    manifest = json.loads((run / "tfrecords" / "manifest.json").read_text())
    pairs = pd.read_csv(run / "pairs.csv")
    for side in ("train", "validation"):
        assert sum(r["records"] for r in manifest["splits"][side]) == (pairs.split == side).sum()
    assert manifest["image_size"] == [32, 32]


def test_training_curves_and_model(run):
    metrics = json.loads((run / "live" / "metrics.json").read_text())
    assert {"train", "eval"} <= set(metrics) and "dice" in metrics["eval"]
    assert (run / "live" / "plots" / "metrics" / "eval" / "dice.tsv").is_file()
    assert not (run / "live" / "dvc.yaml").exists()  # dvclive left dvc.yaml to the project
    assert not (run / "backup").exists()  # a finished training leaves no backup


def test_model_loads_with_plain_keras_in_safe_mode(run):
    """A fresh interpreter that never imports unetseg loads the model and predicts."""
    code = (
        "import keras, numpy as np, sys\n"
        "m = keras.saving.load_model(sys.argv[1])\n"
        "assert 'unetseg' not in sys.modules\n"
        "print(m.predict_on_batch(np.zeros((1, 32, 32, 3), 'float32')).shape)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(run / "model.keras")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(1, 32, 32, 1)" in result.stdout


def test_evaluate_metrics(run):
    metrics = json.loads((run / "evaluate.json").read_text())
    for key in ("dice", "iou", "dice_global", "accuracy", "precision", "recall", "dice_min", "dice_p10",
                "dice_median", "original_dice", "original_iou", "original_dice_global", "original_accuracy",
                "original_precision", "original_recall", "baseline_empty_dice", "baseline_brightness_dice"):
        assert 0.0 <= metrics[key] <= 1.0, key
    per_image = pd.read_csv(run / "per_image.csv")
    assert list(per_image.columns) == ["id", "group", "dice", "iou", "true_fraction", "predicted_fraction",
                                       "original_dice"]
    assert len(per_image) == metrics["images"]
    assert metrics["dice"] == pytest.approx(per_image.dice.mean(), abs=1e-5)
    assert metrics["original_dice"] == pytest.approx(per_image.original_dice.mean(), abs=1e-5)


def test_evaluate_original_resolution_matches_scikit_learn(run):
    """original_* metrics against the mask files and the predictions resized to their size."""
    assert _original_dice_by_scikit_learn(run) == pytest.approx(
        json.loads((run / "evaluate.json").read_text())["original_dice"], abs=1e-5)


def _original_dice_by_scikit_learn(run, resize_masks=False):
    """Mean per-image dice at each image's own size, from the model file and the files alone."""
    import keras
    from sklearn.metrics import f1_score

    from unetseg.config.params import Inference
    from unetseg.core.application import RESIZE, Application
    from unetseg.data.masks import read_mask
    from unetseg.data.resize import resize_mask_nearest
    from unetseg.model.applying import mask_at, model_input

    model = keras.saving.load_model(run / "model.keras")
    pairs = pd.read_csv(run / "pairs.csv", dtype=str)
    scores = []
    for row in pairs[pairs.split == "validation"].itertuples():
        small, info = model_input(row.image, Application(RESIZE, (32, 32)))
        x = small.astype("float32")[None] / 255.0  # with its mirror image's, as inference.tta_flip (the default)
        p = (model.predict_on_batch(x) + model.predict_on_batch(x[:, :, ::-1])[:, :, ::-1])[0, ..., 0] / 2
        truth = read_mask(row.mask).mask
        if resize_masks:
            truth = resize_mask_nearest(truth, info.size)
        predicted = mask_at(p, info.size, Inference(0.5, False, False))
        scores.append(f1_score(truth.ravel(), predicted.ravel(), zero_division=1.0))
    return np.mean(scores)


def test_evaluate_and_predict_read_masks_by_the_data_rules(tmp_path, run):
    """Masks at half size (data.resize_masks) and names paired by an id (data.id_pattern): truth is
    scored at each image's own size, as split and preprocess read it."""
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "masks").mkdir()
    for image in sorted((run / "sample" / "train").iterdir()):
        shutil.copy(image, data / "images" / f"{image.stem}_training.jpg")
        mask = Image.open(run / "sample" / "train_masks" / f"{image.stem}_mask.gif")
        mask.resize((32, 24), Image.NEAREST).save(data / "masks" / f"{image.stem}_manual.gif")
    params = write_yaml(tmp_path / "params.yaml", tiny_params(data={
        "images_dir": str(data / "images"), "masks_dir": str(data / "masks"), "mask_pattern": "{id}_manual.gif",
        "id_pattern": "^(.+)_training$", "resize_masks": True}, split={"val_fraction": 0.5}))
    run_stages(tmp_path, params)
    metrics = json.loads((tmp_path / "evaluate.json").read_text())
    per_image = pd.read_csv(tmp_path / "per_image.csv")
    assert per_image.group.nunique() == 2  # two validation objects: an interval over groups
    for name in ("dice", "original_dice"):
        assert metrics[f"{name}_ci_low"] <= metrics[name] <= metrics[f"{name}_ci_high"]
    assert metrics["original_dice"] == pytest.approx(_original_dice_by_scikit_learn(tmp_path, True), abs=1e-5)
    masks = sorted((tmp_path / "predictions" / "masks").iterdir())
    assert masks and all(m.stem.endswith("_training") for m in masks)  # named after the image files
    assert all(Image.open(m).size == (64, 48) for m in masks)


def test_a_12_bit_cameras_images_run_as_their_8_bit_copy(tmp_path, run):
    """16-bit files of a 12-bit camera's levels, with data.image_bits 12, train, score and predict exactly as
    the same pictures saved 8-bit; the model files record the bits, so `unetseg predict` reads them alike."""
    from unetseg.cli import main as unetseg
    from unetseg.model.modelfile import load_model, model_application

    runs = {}
    for bits, image_bits in ((8, 16), (12, 12)):  # 8-bit files: the key reads no 16-bit ones
        data = tmp_path / f"data{bits}"
        (data / "images").mkdir(parents=True)
        shutil.copytree(run / "sample" / "train_masks", data / "masks")
        for image in sorted((run / "sample" / "train").iterdir()):
            grey = np.asarray(Image.open(image).convert("L"))
            levels = grey if bits == 8 else np.round(grey * (4095 / 255)).astype(np.uint16)  # read back: grey
            Image.fromarray(levels).save(data / "images" / f"{image.stem}.png")
        params = write_yaml(tmp_path / f"params{bits}.yaml", tiny_params(data={
            "images_dir": str(data / "images"), "masks_dir": str(data / "masks"), "image_bits": image_bits}))
        work = tmp_path / f"run{bits}"
        work.mkdir()
        run_stages(work, params)
        runs[bits] = work
    assert (runs[12] / "evaluate.json").read_text() == (runs[8] / "evaluate.json").read_text()
    masks = {bits: {p.name: p.read_bytes() for p in (work / "predictions" / "masks").iterdir()}
             for bits, work in runs.items()}
    assert masks[12] and masks[12] == masks[8]
    scored = runs[12] / "scored.keras"
    assert model_application(scored, load_model(scored)).image_bits == 12
    out = tmp_path / "cli"
    assert unetseg(["predict", str(scored), str(tmp_path / "data12" / "images"), str(out), "--no-overlays"]) == 0
    assert {p.name: p.read_bytes() for p in (out / "masks").iterdir() if p.name in masks[12]} == masks[12]


def test_evaluate_curves_and_gallery(run):
    curve = pd.read_csv(run / "plots" / "dice_vs_threshold.csv")
    assert curve.threshold.tolist()[0] == 0.05 and len(curve) == 19
    metrics = json.loads((run / "evaluate.json").read_text())
    assert curve.set_index("threshold").loc[0.5, "dice"] == pytest.approx(metrics["dice"], abs=1e-5)
    pr = pd.read_csv(run / "plots" / "precision_recall.csv")
    assert pr.recall.is_monotonic_decreasing and len(pr) == 99
    ranked = pd.read_csv(run / "plots" / "dice_sorted.csv")
    assert ranked.dice.is_monotonic_increasing and len(ranked) == metrics["images"]
    with Image.open(run / "gallery.png") as gallery:
        assert gallery.size[0] == 2 * 32 + 4


def test_predicted_masks_at_original_size(run):
    pairs = pd.read_csv(run / "pairs.csv")
    validation = pairs[pairs.split == "validation"]
    files = sorted((run / "predictions" / "masks").iterdir())
    stems = sorted(Path(image).stem for image in validation.image)  # masks/<stem>.png, named after the image file
    assert [f.stem for f in files] == stems
    assert sorted(f.stem for f in (run / "predictions" / "overlays").iterdir()) == stems
    mask = np.asarray(Image.open(files[0]))
    assert mask.shape == (48, 64) and set(np.unique(mask)) <= {0, 255}
    with Image.open(run / "montage.png") as montage:
        assert montage.size == (3 * 32 + 2 * 4, 2 * 32 + 4)


def test_unetseg_predict_replaces_its_output_folder_whole(run, tmp_path, capsys):
    """A rerun leaves no masks of earlier inputs; a run stopped by a bad file leaves the old folder as it was."""
    from unetseg.cli import main as unetseg

    images = sorted((run / "sample" / "train").iterdir())
    first, second, out = tmp_path / "first", tmp_path / "second", tmp_path / "out"
    first.mkdir()
    second.mkdir()
    for name, image in (("a.jpg", images[0]), ("b.jpg", images[1])):
        shutil.copy(image, first / name)
    shutil.copy(images[2], second / "c.jpg")
    (second / "d.jpg").write_bytes(b"not a picture")  # after c.jpg: c's mask would be written first
    model = str(run / "scored.keras")
    assert unetseg(["predict", model, str(first), str(out), "--no-overlays"]) == 0
    before = {p.name: p.read_bytes() for p in (out / "masks").iterdir()}
    assert sorted(before) == ["a.png", "b.png"]
    assert unetseg(["predict", model, str(second), str(out), "--no-overlays"]) == 1
    assert "d.jpg" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (out / "masks").iterdir()} == before  # untouched, no c.png
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # nothing half-written beside
    (second / "d.jpg").unlink()
    assert unetseg(["predict", model, str(second), str(out), "--no-overlays"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["masks"] and [p.name for p in (out / "masks").iterdir()] == ["c.png"]


def test_bad_params_value_names_the_key(tmp_path, capsys):
    params = write_yaml(tmp_path / "params.yaml", tiny_params(train={"lr": "fast"}))
    assert split.main(["--params", str(params), "--out", str(tmp_path / "p.csv"),
                       "--summary", str(tmp_path / "s.json"), "--data-summary", str(tmp_path / "d.json")]) == 1
    assert "train.lr: must be a number" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [params]


def test_missing_images_folder_names_it(tmp_path, capsys):
    params = write_yaml(tmp_path / "params.yaml", tiny_params(data={"images_dir": str(tmp_path / "absent")}))
    assert split.main(["--params", str(params), "--out", str(tmp_path / "p.csv"),
                       "--summary", str(tmp_path / "s.json"), "--data-summary", str(tmp_path / "d.json")]) == 1
    assert "absent: images folder not found" in capsys.readouterr().err


def test_unreadable_image_names_it_and_writes_nothing(run, tmp_path, capsys):
    pairs = pd.read_csv(run / "pairs.csv")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((run / "sample" / "train" / f"{pairs.id[3]}.jpg").read_bytes()[:300])
    pairs.loc[3, "image"] = str(broken)
    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    params = write_yaml(tmp_path / "params.yaml", tiny_params())
    out = tmp_path / "tfrecords"
    assert preprocess.main(["--params", str(params), "--pairs", str(tmp_path / "pairs.csv"), "--out", str(out)]) == 1
    assert "broken.jpg: cannot decode image" in capsys.readouterr().err
    assert not out.exists() and not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


def test_split_takes_groups_from_a_file_and_names_a_bad_one(run, tmp_path, capsys):
    ids = sorted(pd.read_csv(run / "pairs.csv").id)
    groups = tmp_path / "patients.csv"
    groups.write_text("id,group\n" + "".join(f"{id_}.jpg,patient{i % 4}\n" for i, id_ in enumerate(ids)))
    data = {"images_dir": str(run / "sample" / "train"), "masks_dir": str(run / "sample" / "train_masks")}
    params = write_yaml(tmp_path / "params.yaml", tiny_params(data=data, split={"group_pattern": "",
                                                                                 "groups": str(groups)}))
    out = tmp_path / "out"
    args = ["--params", str(params), "--out", str(out / "pairs.csv"), "--summary", str(out / "s.json"),
            "--data-summary", str(out / "d.json")]
    assert split.main(args) == 0
    table = pd.read_csv(out / "pairs.csv").sort_values("id")
    assert list(table.group) == [f"patient{i % 4}" for i in range(len(ids))]
    assert json.loads((out / "s.json").read_text())["validation_groups"] == 1
    shutil.rmtree(out)
    groups.write_text("id,group\n" + "".join(f"{id_},patient\n" for id_ in ids[1:]))
    assert split.main(args) == 1
    assert capsys.readouterr().err == f"error: split.groups: {groups}: no group for 1 image(s) (by their id or " \
                                      f"file name): {ids[0]}\n"
    assert not out.exists()


def test_split_checks_every_file_first_and_lists_every_problem(run, tmp_path, capsys):
    """A truncated image, a mask of the wrong size and an orphan mask: one error, nothing written."""
    data = tmp_path / "data"
    shutil.copytree(run / "sample", data)
    images = sorted((data / "train").iterdir())
    images[0].write_bytes(images[0].read_bytes()[: int(images[0].stat().st_size * 0.95)])
    Image.new("P", (10, 10)).save(data / "train_masks" / f"{images[1].stem}_mask.gif")
    Image.new("P", (64, 48)).save(data / "train_masks" / "stray_mask.gif")
    params = write_yaml(tmp_path / "params.yaml", tiny_params(
        data={"images_dir": str(data / "train"), "masks_dir": str(data / "train_masks")}))
    out = tmp_path / "out"
    assert split.main(["--params", str(params), "--out", str(out / "pairs.csv"), "--summary", str(out / "s.json"),
                       "--data-summary", str(out / "d.json")]) == 1
    err = capsys.readouterr().err
    assert "stray_mask.gif" in err  # orphan
    assert f"{images[0].name}: cannot decode image" in err  # truncated
    assert f"{images[1].name} is 64x48 but its mask" in err and "is 10x10" in err  # size mismatch
    assert not out.exists()


def test_check_data_command(run, tmp_path, capsys):
    from unetseg.cli import main as unetseg

    summary = tmp_path / "summary.json"
    status = unetseg(["check-data", str(run / "sample" / "train"), str(run / "sample" / "train_masks"),
                      "--summary", str(summary)])
    assert status == 0 and json.loads(summary.read_text())["pairs"] == 12
    assert unetseg(["check-data", str(run / "sample" / "train"), str(run / "sample" / "train_masks"),
                    "--mask-pattern", "{stem}.png"]) == 1
    assert "12 image(s) without a mask" in capsys.readouterr().err


def test_palette_masks_with_the_brighter_background_are_a_warning_in_data_json(run, tmp_path, capsys):
    """White objects on black, saved with white at index 0: read by index they are background."""
    data = tmp_path / "data"
    shutil.copytree(run / "sample", data)
    flipped = sorted((data / "train_masks").iterdir())[:2]
    for path in flipped:
        with Image.open(path) as mask:
            indices = 1 - np.asarray(mask.convert("L")) // 255  # the car (white) now index 0
        image = Image.frombytes("P", (indices.shape[1], indices.shape[0]), indices.astype(np.uint8).tobytes())
        image.putpalette([255, 255, 255, 0, 0, 0])
        image.save(path)
    params = write_yaml(tmp_path / "params.yaml", tiny_params(
        data={"images_dir": str(data / "train"), "masks_dir": str(data / "train_masks")}))
    out = tmp_path / "out"
    assert split.main(["--params", str(params), "--out", str(out / "pairs.csv"), "--summary", str(out / "s.json"),
                       "--data-summary", str(out / "d.json")]) == 0
    (warning,) = json.loads((out / "d.json").read_text())["warnings"]
    assert warning.startswith("2 palette mask(s) whose background index") and all(str(p) in warning for p in flipped)
    assert f"warning: {warning}" in capsys.readouterr().err
    assert "warnings" not in json.loads((run / "data.json").read_text())  # the sample's own masks: none


@pytest.mark.parametrize("stage", [generate, split, preprocess, train, evaluate, predict], ids=lambda m: m.__name__)
def test_a_bad_command_line_to_a_stage_is_one_error_line(stage, capsys):
    assert stage.main(["--no-such-option"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "(see " in lines[0]  # not a usage block
