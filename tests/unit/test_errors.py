"""Every bad input ends in one `error: <file or key>: <problem>` line and status 1, never a traceback."""

import math

import pandas as pd
import pytest
from PIL import Image

from unetseg.cli import main
from unetseg.core.errors import UnetsegError
from unetseg.evaluate.evaluation import Evaluation, write_evaluation


@pytest.fixture
def setup(tmp_path, tiny_params_file, sample_dir):
    (tmp_path / "table.csv").write_text("value,name\n0,sky\n1,tree\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken.yaml").write_text("classes: [1,\n  names: x\n")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    return {"params": str(tiny_params_file), "dir": str(tmp_path), "images": str(sample_dir / "train"),
            "masks": str(sample_dir / "train_masks")}


BAD = {
    # command line -> what the one line must say
    "compare --seed -1": "evaluate.bootstrap_seed: must be >= 0, got -1",
    "compare --resamples 1": "evaluate.bootstrap_resamples: must be >= 100, got 1",
    "compare --resamples x": "evaluate.bootstrap_resamples: must be int, got 'x'",
    "compare --top -2": "--top: must be an integer >= 0, got '-2'",
    "compare workspace workspace --repo {dir}/empty": "'workspace' has no per-image results",
    "compare --bogus": "unrecognized arguments: --bogus",
    "spread --repo {dir}/empty": "`dvc exp show --json` failed",
    "check-data {dir}/none {dir}/none": "{dir}/none",
    "check-data {images} {masks} --max-pixels 0": "data.max_pixels: must be >= 1, got 0",
    "check-data {images} {masks} --workers -1": "base.workers: must be >= 0, got -1",
    "check-data {images}": "the following arguments are required: masks_dir",
    "predict {dir}/none.keras {images} {dir}/out": "{dir}/none.keras: model file not found (models/model.keras is "
                                                   "the train stage's, models/scored.keras the evaluate stage's",
    "predict {dir}/none.keras {images} {dir}/taken": "{dir}/taken: the output folder holds notes.txt",
    "predict {dir}/none.keras {images} {dir}/out --threshold 2": "inference.threshold: must be < 1, got 2.0",
    "predict {dir}/none.keras {images} {dir}/out --overlap 1": "patches.overlap: must be < 1, got 1.0",
    "classes {dir}/none.csv --params {params}": "{dir}/none.csv",
    "classes {dir}/table.csv --params {dir}/broken.yaml": "{dir}/broken.yaml: not valid YAML",
    "classes {dir}/table.csv --ignore x --params {params}": "a mask value is a level 0..65535",
    "classes {dir}/table.csv --ignore [1,2] --params {params}": "a colour [r,g,b] of 0..255",
    "plan {dir}/none {masks} --params {params}": "{dir}/none: images folder not found",
    "plan {images} {masks} --minutes 0 --params {params}": "a number of minutes above 0, got '0'",
    "plan {images} {masks} --id-pattern x --params {params}": "--id-pattern needs --mask-pattern",
    "plan {images} {masks} --mask-pattern {{x}}.png --params {params}": "data.mask_pattern: must contain",
    "preset nope --params {params}": "unknown preset 'nope'",
    "preset seed --params {dir}/none.yaml": "{dir}/none.yaml",
    "nope": "invalid choice: 'nope'",
}


@pytest.mark.parametrize("command", list(BAD))
def test_each_command_ends_bad_input_in_one_line(command, setup, capsys):
    status = main(command.format(**setup).split())
    lines = capsys.readouterr().err.splitlines()
    assert status == 1
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert BAD[command].format(**setup) in lines[0]


def test_non_finite_metrics_are_an_error_naming_the_file_and_nothing_is_written(tmp_path):
    evaluation = Evaluation({"dice": math.nan, "iou": 0.5}, pd.DataFrame({"id": ["a"]}), {}, Image.new("L", (1, 1)),
                            pd.DataFrame())
    paths = [tmp_path / name for name in ("m.json", "per_image.csv", "plots", "g.png", "c.csv")]
    with pytest.raises(UnetsegError, match=r"m.json: not written: non-finite metric\(s\) dice;"):
        write_evaluation(evaluation, *paths)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_outputs_are_replaced_all_or_none(tmp_path, monkeypatch):
    """A failure while writing evaluate's outputs (here the last picture) leaves every old one as it was."""
    from unetseg.evaluate import evaluation as module

    evaluation = Evaluation({"dice": 0.5}, pd.DataFrame({"id": ["a"], "dice": [0.5]}),
                            {"curve": pd.DataFrame({"x": [1]})}, Image.new("L", (1, 1)),
                            pd.DataFrame([[1]], index=["a"], columns=["a"]))
    paths = [tmp_path / name for name in ("m.json", "per_image.csv", "plots", "g.png", "c.csv")]
    for path in paths:
        path.mkdir() if path.suffix == "" else path.write_text("old")
    (tmp_path / "plots" / "old.csv").write_text("old")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))

    def broken(table):
        raise OSError("disk full")

    monkeypatch.setattr(module, "confusion_picture", broken)
    with pytest.raises(OSError):
        write_evaluation(evaluation, *paths)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before  # nothing beside either
    assert all(p.read_text() == "old" for p in paths if p.is_file())
    monkeypatch.undo()
    write_evaluation(evaluation, *paths)
    assert "0.5" in paths[0].read_text() and (tmp_path / "plots" / "curve.csv").is_file()
    assert not (tmp_path / "plots" / "old.csv").exists()
