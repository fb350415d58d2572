"""A model file resolved once for use by evaluate, predict, `unetseg predict` and export: its network,
class map, how it meets an image, the inference settings evaluate scored it with and its int8
network, each checked against the params before anything reads them (unetseg.model.modelfile
reads and checks the file)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import keras

from unetseg.config.params import THRESHOLD, TTA_FLIP, Inference
from unetseg.core.application import Application, check_model_application
from unetseg.core.errors import DataError, UnetsegError
from unetseg.data.classes import ClassMap, check_same
from unetseg.model.modelfile import (
    load_model,
    model_application,
    model_classes,
    model_encoder,
    model_inference,
    model_int8,
)
from unetseg.model.runtimes import Int8Network, runtime_network


@dataclass(frozen=True)
class AppliedModel:
    """A model file resolved once for use (evaluate, predict, `unetseg predict`, export): its network,
    class map and how it meets an image, checked before anything reads them."""

    path: Path
    network: keras.Model
    classes: ClassMap | None
    application: Application
    scored: Inference | None  # the inference settings evaluate scored it with (models/scored.keras)
    int8: Int8Network | None = None  # the quantized network evaluate scored, if it did

    def inference(self, threshold: float | None = None, tta_flip: bool | None = None,
                  largest_component: bool | None = None, runtime: str | None = None,
                  precision: str | None = None) -> Inference:
        """The settings to apply: those given (command-line options), else the file's (what evaluate
        scored), else the defaults (threshold 0.5, the mirror average, every region, Keras in float32)."""
        if self.classes is not None and (threshold not in (None, THRESHOLD) or largest_component):
            option = "--largest-component" if largest_component else "--threshold"
            raise DataError(f"{self.path}: a model of {self.classes.num_classes} classes takes each pixel's most "
                            f"probable class: leave out {option} (it applies to binary models)")
        base = self.scored or Inference(THRESHOLD, TTA_FLIP, False)
        if runtime not in (None, "openvino") and precision is None:
            precision = "float32"  # another runtime for a file scored in int8: its float32 network
        given = {"threshold": threshold, "tta_flip": tta_flip, "largest_component": largest_component,
                 "runtime": runtime, "precision": precision}
        try:
            return replace(base, **{key: value for key, value in given.items() if value is not None})
        except UnetsegError as error:
            raise DataError(f"{self.path}: {error}") from None

    def runner(self, inference: Inference):
        """The network step as `inference` runs it (unetseg.model.runtimes): Keras, onnxruntime or
        OpenVINO, the int8 network being the one evaluate scored."""
        return runtime_network(self.network, inference.runtime, inference.precision, self.int8, self.path)


def load_applied(path, params: tuple[ClassMap | None, Application | None, str] | None = None,
                 overlap: float | None = None) -> AppliedModel:
    """A model file with its records. `params`, the (class map, application, model.encoder) of
    params.yaml, must be the file's (an application of None is not checked; its overlap is not
    compared); the file's own records hold, `overlap` replacing a patch model's."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: model file not found (models/model.keras is the train stage's, "
                        "models/scored.keras the evaluate stage's: dvc repro writes them)")
    classes = model_classes(path)
    if params is not None:
        check_same(params[0], classes, "params.yaml (classes)", str(path))
        if model_encoder(path) != params[2]:
            raise DataError(f"params.yaml has model.encoder {params[2]}, but {path} was trained with "
                            f"{model_encoder(path)}: rerun the train stage (dvc repro)")
    network = load_model(path)
    application = model_application(path, network)
    if params is not None and params[1] is not None:
        check_model_application(params[1], application, "params.yaml", str(path))
    if overlap is not None:
        if not application.tiled:
            raise DataError(f"{path}: --overlap is for models trained on patches; this one takes "
                            f"{application.describe()}")
        application = replace(application, overlap=overlap)
    return AppliedModel(path, network, classes, application, model_inference(path), model_int8(path))
