"""`unetseg plan` on real files: params rewritten in place, plan.json beside them, refusals that touch nothing."""

from __future__ import annotations

import json
import shutil

import pytest
from PIL import Image

from conftest import make_blobs, shared_dataset
from unetseg.cli import main
from unetseg.config.loading import load_params
from unetseg.plan import planning
from unetseg.plan.throughput import Throughput


@pytest.fixture
def project(tmp_path):
    params = tmp_path / "project" / "params.yaml"
    params.parent.mkdir()
    params.write_text((planning.Path(__file__).parents[2] / "params.yaml").read_text())  # comments and all
    images, masks = make_blobs(tmp_path / "data")
    return params, images, masks


FIXED = Throughput(train_step=0.05, infer_item=0.002)


@pytest.fixture
def fixed_machine(monkeypatch):
    """The planner's timing replaced by fixed numbers: what a plan does with them, apart from the clock."""
    monkeypatch.setattr(planning, "measure_throughput", lambda params, size: FIXED)


def test_plan_rewrites_the_params_in_place_and_writes_its_reasons(project, capsys):
    params, images, masks = project
    comments = [line for line in params.read_text().splitlines() if "#" in line]
    assert main(["plan", str(images), str(masks), "--params", str(params), "--minutes", "5"]) == 0
    out = capsys.readouterr().out
    planned = load_params(params)
    assert planned.data.images_dir == "../data/images" and planned.data.mask_pattern == "{stem}_mask.png"
    assert planned.split.group_pattern == "^([^_]+)_"
    assert planned.classes.names == () and planned.model.encoder == "none"
    assert planned.patches.enabled is False and max(planned.preprocess.image_size) <= 96
    assert planned.generate == load_params(planning.Path(__file__).parents[2] / "params.yaml").generate  # untouched
    text = params.read_text()
    assert all(comment.partition("#")[2] in text for comment in comments)  # every comment kept
    record = json.loads((params.parent / "plan.json").read_text())
    keys = [d["key"] for d in record["decisions"]]
    assert "train.epochs" in keys and "preprocess.image_size" in keys
    assert all(d["because"] for d in record["decisions"])
    assert record["machine"]["train_step_seconds"] > 0 and record["fingerprint"]["pairs"] == 16
    # int8 is the default precision: the int8 network and its making were timed, and count in the estimate
    assert record["machine"]["int8_item_seconds"] > 0 and record["machine"]["int8_quantize_seconds"] > 0
    assert record["estimate_seconds"]["int8 calibration"] > record["machine"]["int8_quantize_seconds"]
    assert "preprocess.image_size" in out and "dvc repro" in out
    # the schedule fits the budget by the plan's own estimate
    assert sum(record["estimate_seconds"].values()) <= 5 * 60


def test_same_inputs_same_plan_and_more_minutes_only_train_longer(project, fixed_machine):
    params, images, masks = project
    original = params.read_text()
    main(["plan", str(images), str(masks), "--params", str(params), "--minutes", "5"])
    first, first_plan = params.read_text(), (params.parent / "plan.json").read_text()
    params.write_text(original)
    main(["plan", str(images), str(masks), "--params", str(params), "--minutes", "5"])
    assert params.read_text() == first and (params.parent / "plan.json").read_text() == first_plan
    short = load_params(params)
    params.write_text(original)
    main(["plan", str(images), str(masks), "--params", str(params), "--minutes", "30"])
    long = load_params(params)
    assert long.train.epochs * long.train.steps_per_epoch > short.train.epochs * short.train.steps_per_epoch
    for section in ("data", "classes", "split", "preprocess", "patches", "model", "augment", "inference"):
        assert getattr(long, section) == getattr(short, section), section


def _refused(project, capsys, *args) -> str:
    params = project[0]
    before = params.read_text()
    assert main(["plan", *map(str, args), "--params", str(params)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert params.read_text() == before and not (params.parent / "plan.json").exists()
    return err


def test_bad_inputs_are_refused_and_touch_nothing(project, capsys, tmp_path, fixed_machine):
    _, images, masks = project
    (masks / "s0_0_mask.png").rename(masks / "other.png")
    err = _refused(project, capsys, images, masks)
    # the names pair but for one image and one mask: the pattern, then those two files
    assert err.startswith("error: --mask-pattern '{stem}_mask.png' pairs") and "other.png" in err and "s0_0." in err
    (masks / "other.png").rename(masks / "s0_0_mask.png")
    good = (masks / "s1_0_mask.png").read_bytes()
    (masks / "s1_0_mask.png").write_bytes(b"not a png")
    assert "s1_0_mask.png" in _refused(project, capsys, images, masks)
    (masks / "s1_0_mask.png").write_bytes(good)
    # a mask turned a quarter against its image (drawn on a photo's stored pixels, the photo turned by its
    # EXIF orientation): no resize, which would stretch it across the image
    Image.open(masks / "s1_0_mask.png").transpose(Image.Transpose.ROTATE_90).save(masks / "s1_0_mask.png")
    assert "turned a quarter against their image" in _refused(project, capsys, images, masks)
    (masks / "s1_0_mask.png").write_bytes(good)
    one = tmp_path / "one"
    make_blobs(one, count=1)
    assert "at least 4" in _refused(project, capsys, one / "images", one / "masks")
    assert "masks folder not found" in _refused(project, capsys, images, tmp_path / "nowhere")
    assert "--minutes 0.2 is too short" in _refused(project, capsys, images, masks, "--minutes", "0.2")
    assert "data.id_pattern" in _refused(project, capsys, images, masks, "--mask-pattern", "{id}.png",
                                         "--id-pattern", "(")
    assert "--ignore" in _refused(project, capsys, images, masks, "--ignore", "[]")
    nested = tmp_path / "nested"  # a folder per patient: where the images are, and how to bring them up
    (nested / "patient0").mkdir(parents=True)
    shutil.copy(next(images.iterdir()), nested / "patient0" / "000.png")
    err = _refused(project, capsys, nested, masks)
    assert "no images found" in err and "subfolders hold 1 (e.g." in err and "patient0_000.png" in err


def test_a_groups_file_given_is_kept_and_checked_first(project, capsys, fixed_machine):
    params, images, masks = project
    groups = params.parent / "patients.csv"  # 8 patients of two images each, across the names' own groups
    groups.write_text("id,group\n" + "".join(f"{p.stem},patient{i // 2}\n"
                                             for i, p in enumerate(sorted(images.iterdir(), key=lambda p: p.stem[::-1]))))
    from unetseg.config.presets import set_params

    set_params(params, {"split": {"group_pattern": "", "groups": str(groups)}})
    assert main(["plan", str(images), str(masks), "--params", str(params), "--minutes", "5"]) == 0
    planned = load_params(params)
    assert planned.split.groups == str(groups) and planned.split.group_pattern == ""
    assert "8 groups from split.groups" in capsys.readouterr().out
    (params.parent / "plan.json").unlink()
    groups.write_text("id,group\n" + "".join(f"{p.stem},everyone\n" for p in images.iterdir()))
    assert "need at least 2 (split.groups" in _refused(project, capsys, images, masks)


def test_a_pattern_given_is_kept(project, fixed_machine):
    params, images, masks = project
    assert main(["plan", str(images), str(masks), "--params", str(params), "--mask-pattern", "{stem}_mask.*"]) == 0
    assert load_params(params).data.mask_pattern == "{stem}_mask.*"


@pytest.mark.parametrize("dataset, ignore, expected", [
    ("isbi2012-membranes", (), {"patches.enabled": True, "classes.values": [255, 0], "model.encoder": "none"}),
    ("stanford-background", (15,),
     {"patches.enabled": False, "preprocess.image_size": [192, 256], "classes.ignore": [15]}),
    ("kvasir-seg", (), {"classes.names": [], "data.mask_pattern": "{stem}.jpg", "data.max_nonbinary_fraction": 0.01}),
    ("dsb2018-nuclei", (), {"classes.names": [], "patches.enabled": True, "model.encoder": "none"}),
    ("carvana-sample", (), {"split.group_pattern": "^([^_]+)_", "preprocess.image_size": [128, 128]}),
])
def test_plans_of_the_real_datasets(project, fixed_machine, dataset, ignore, expected):
    """The decisions docs/guides/your-data.md reports for each real set, by their two folders alone."""
    root = shared_dataset(dataset)
    folders = (root / "train", root / "train_masks") if (root / "train").is_dir() else (root / "images", root / "masks")
    plan = planning.make_plan(*folders, project[0], 20, ignore)
    decisions = {d.key: d.value for d in plan.decisions}
    assert {key: decisions.get(key) for key in expected} == expected
