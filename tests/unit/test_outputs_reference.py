"""docs/reference/outputs.md names every key the evaluate stage writes to metrics/evaluate.json and every
key of the record (unetseg.json) that unetseg.model.modelfile writes into a model file, so the page
cannot fall behind the code.

The rule, exactly:

- A name is documented when it appears in backticks in the page's section for it: for the metrics the
  section headed "## metrics/evaluate.json", for the record the one headed "## The model file's record"
  (each up to the next "## " heading; its "### " parts included). A cell listing several keys documents
  each (`dice_min`, `dice_p10`).
- A metrics key is named as itself (`dice`, `baseline_most_frequent_class`), except a key whose value is
  a mapping of class names to numbers (`class_iou`), which is named `class_iou.<name>`: `<name>` stands
  for any class, as `dvc metrics show` flattens it to `class_iou.sky`.
- A record key is named by its dotted path from the record's top (`inference.calibration.seed`); a key
  whose value is a mapping is named itself and so is each of its keys. Lists and nulls are values, not
  mappings (`classes.values`, `inference.calibration.ids`).

The keys come from the repository's own outputs (metrics/evaluate.json, a binary run, and
models/scored.keras's record, read by unetseg.model.modelfile's reader), each test skipping with its
reason when the file is absent, and from outputs built here by the functions that write them: a binary
and a class model's metrics (unetseg.evaluate.scoring, with evaluate's intervals), and the records of a
class model on patches under an encoder, scored in int8 (unetseg.model.modelfile's save_model and
save_scored, with the calibration records of unetseg.evaluate.calibration, both kinds).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from conftest import ROOT

PAGE = ROOT / "docs" / "reference" / "outputs.md"
METRICS_SECTION = "## metrics/evaluate.json"
RECORD_SECTION = "## The model file's record"
PER_CLASS = "<name>"


def documented(heading: str) -> set[str]:
    """The backticked names of one `## ` section of the page."""
    lines = PAGE.read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(heading)]
    assert len(starts) == 1, f"{PAGE}: expected one section headed {heading!r}, found {len(starts)}"
    section = []
    for line in lines[starts[0] + 1:]:
        if line.startswith("## "):
            break
        section.append(line)
    return set(re.findall(r"`([^`\s]+)`", "\n".join(section)))


def metric_names(metrics: dict) -> set[str]:
    """The names a metrics JSON's keys are documented by (the module docstring's rule)."""
    return {f"{key}.{PER_CLASS}" if isinstance(value, dict) else key for key, value in metrics.items()}


def record_names(record: dict, prefix: str = "") -> set[str]:
    """Every dotted path of a record, mappings and their keys alike."""
    names = set()
    for key, value in record.items():
        names.add(prefix + key)
        if isinstance(value, dict):
            names |= record_names(value, f"{prefix}{key}.")
    return names


def _missing(names: set[str], heading: str) -> list[str]:
    return sorted(names - documented(heading))


# --- metrics/evaluate.json -------------------------------------------------------------------------


def test_every_key_of_the_repositorys_evaluate_json_is_documented():
    path = ROOT / "metrics" / "evaluate.json"
    if not path.is_file():
        pytest.skip(f"{path} absent: no evaluate run in this checkout (dvc repro, or dvc pull, writes it)")
    missing = _missing(metric_names(json.loads(path.read_text())), METRICS_SECTION)
    assert not missing, f"{PAGE} ({METRICS_SECTION}) does not document: {', '.join(missing)}"


def _inference():
    from unetseg.config.params import Inference

    return Inference(0.5, False, False)


def _evaluated(scores, result_input, groups) -> dict:
    """What evaluate_model makes of the scores: the metrics, with the image count and the intervals."""
    from unetseg.evaluate.evaluation import intervals

    ids = [f"image{i}" for i in range(len(groups))]
    metrics, per_image, _, _ = scores.result(ids, result_input)
    metrics["images"] = len(ids)
    per_image.insert(1, "group", groups)
    found = intervals(per_image, 50, 0)
    assert found, "the intervals were not computed: the test data must have two groups with scores"
    metrics.update(found)
    return metrics


def test_every_key_of_a_binary_models_evaluate_json_is_documented():
    from unetseg.evaluate.scoring import BinaryScores

    rng = np.random.default_rng(0)
    scores, groups = BinaryScores(_inference()), ["a", "a", "b", "b"]
    for _ in groups:
        image, p = rng.random((8, 8, 3), np.float32), rng.random((8, 8), np.float32)
        mask = (rng.random((8, 8)) > 0.5).astype(np.uint8)
        scores.add(image, mask, p, (rng.random((12, 12)) > 0.5))
    train = [(rng.random((2, 8, 8, 3), np.float32), (rng.random((2, 8, 8)) > 0.5).astype(np.uint8))]
    missing = _missing(metric_names(_evaluated(scores, train, groups)), METRICS_SECTION)
    assert not missing, f"{PAGE} ({METRICS_SECTION}) does not document: {', '.join(missing)}"


def test_every_key_of_a_class_models_evaluate_json_is_documented():
    from unetseg.core.constants import IGNORE
    from unetseg.data.classes import ClassMap
    from unetseg.evaluate.scoring import ClassScores

    rng = np.random.default_rng(0)
    classes = ClassMap(("sky", "grass", "road"), ((0,), (1,), (2,)), (), "labels")
    scores, groups = ClassScores(_inference(), classes), ["a", "a", "b", "b", "b"]
    for i, _ in enumerate(groups):
        mask = rng.integers(0, 3, (8, 8)).astype(np.uint8)
        if i == len(groups) - 1:
            mask[:] = IGNORE  # an image with nothing to score
        p = rng.random((8, 8, 3)).astype(np.float32)
        p /= p.sum(-1, keepdims=True)
        scores.add(rng.random((8, 8, 3), np.float32), mask, p, rng.integers(0, 3, (12, 12)).astype(np.uint8))
    metrics = _evaluated(scores, np.array([50, 30, 20]), groups)
    assert any(isinstance(value, dict) for value in metrics.values())  # the per-class keys are in it
    missing = _missing(metric_names(metrics), METRICS_SECTION)
    assert not missing, f"{PAGE} ({METRICS_SECTION}) does not document: {', '.join(missing)}"


# --- the model file's record ---------------------------------------------------------------------


def test_every_key_of_the_repositorys_scored_model_record_is_documented():
    from unetseg.model.modelfile import _record

    path = ROOT / "models" / "scored.keras"
    if not path.is_file():
        pytest.skip(f"{path} absent: no evaluate run in this checkout (dvc repro, or dvc pull, writes it)")
    record = _record(path)
    assert "inference" in record, f"{path}: the evaluate stage's model file has no inference record"
    missing = _missing(record_names(record), RECORD_SECTION)
    assert not missing, f"{PAGE} ({RECORD_SECTION}) does not document: {', '.join(missing)}"


@pytest.mark.parametrize("mode", ["resize", "patches"])
def test_every_key_of_a_record_modelfile_writes_is_documented(tmp_path, monkeypatch, mode):
    """A class model under an encoder, on patches or resized, scored in int8: every part of the record
    that save_model and save_scored write, with the calibration record evaluate writes for each kind."""
    import keras

    from unetseg.config.params import Inference
    from unetseg.core.application import PATCHES, RESIZE, Application
    from unetseg.data.classes import ClassMap
    from unetseg.evaluate import calibration
    from unetseg.model.modelfile import _record, save_model, save_scored
    from unetseg.model.runtimes import Int8Network

    classes = ClassMap(("sky", "grass"), ((0,), (1, 2)), (255,), "labels")
    application = Application(PATCHES, (8, 8), 0.5, 0.25) if mode == "patches" else Application(RESIZE, (8, 8))
    inputs = keras.Input((8, 8, 3))
    network = keras.Model(inputs, keras.layers.Conv2D(2, 1, activation="softmax")(inputs))
    model_path, scored_path = tmp_path / "model.keras", tmp_path / "scored.keras"
    # as the train stage saves: the application recorded for a patch model only
    save_model(network, model_path, classes, application if application.tiled else None, "efficientnet_lite0")

    images = [(f"id{i}", np.zeros((16, 16, 3), np.uint8)) for i in range(3)]
    monkeypatch.setattr(calibration, "_training_images", lambda files: iter(images))
    _, calibrated = calibration.calibration_samples([], [i for i, _ in images], application, 2, 42)
    save_scored(model_path, scored_path, Inference(0.5, True, False, "openvino", "int8"), application,
                Int8Network(b"<net/>", b"", calibrated))

    record = _record(scored_path)
    assert {"classes", "application", "encoder", "inference"} <= set(record)
    assert "calibration" in record["inference"]
    missing = _missing(record_names(record), RECORD_SECTION)
    assert not missing, f"{PAGE} ({RECORD_SECTION}) does not document: {', '.join(missing)}"
