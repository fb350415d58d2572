"""Running exported files outside TensorFlow: onnxruntime, the LiteRT (TFLite) interpreter, OpenVINO.

`Exported` runs a folder written by `unetseg export` as a user's program
would: the file through its runtime, and what export.json leaves outside the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from unetseg.config.params import THRESHOLD, Inference
from unetseg.core.application import PATCHES, Application
from unetseg.core.errors import DataError
from unetseg.data.resize import resize_image
from unetseg.export.formats import DESCRIPTION
from unetseg.model.applying import largest_component, mask_at, sliding_window
from unetseg.model.runtimes import IMAGES, compile_openvino, needs, onnx_session


class _Tflite:
    def __init__(self, path: Path):
        interpreter = needs("ai_edge_litert.interpreter", "the TFLite runtime")
        self.interpreter = interpreter.Interpreter(model_path=str(path), num_threads=os.cpu_count())
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.shape = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self.shape != batch.shape:
            self.interpreter.resize_tensor_input(self.input, batch.shape)
            self.interpreter.allocate_tensors()
            self.shape = batch.shape
        self.interpreter.set_tensor(self.input, batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output)


def _saved_model(path: Path):
    import tensorflow as tf

    serve = tf.saved_model.load(str(path)).signatures["serve"]
    return lambda batch: next(iter(serve(tf.constant(batch)).values())).numpy()


class Exported:
    """A folder of `unetseg export`: `masks(images)` for uint8 RGB images of one size (N, H, W, 3)."""

    def __init__(self, folder):
        folder = Path(folder)
        try:
            self.description = json.loads((folder / DESCRIPTION).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise DataError(f"{folder}: not a folder of unetseg export ({DESCRIPTION}: {error})") from None
        fmt, path = self.description["format"], folder / self.description["file"]
        if fmt == "onnx":
            session = onnx_session(path.read_bytes())
            self.run = lambda batch: session.run(None, {IMAGES: batch})[0]
        elif fmt == "tflite":
            self.run = _Tflite(path)
        elif fmt == "openvino":
            compiled = compile_openvino(needs("openvino", "the OpenVINO runtime").Core().read_model(path))
            self.run = lambda batch: compiled(batch)[0]
        else:
            self.run = _saved_model(path)

    def masks(self, images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, np.uint8)
        if self.description["application"]["mode"] != PATCHES:
            masks = np.asarray(self.run(images))
            if self._inference()["largest_component"]:  # the one step left outside
                masks = np.stack([largest_component(mask > 0) * np.uint8(255) for mask in masks])
            return masks
        return np.stack([self._tiled_mask(image) for image in images])

    def _inference(self) -> dict:
        """The inference settings export.json records (before they had their own entry: threshold alone)."""
        return self.description.get("inference") or {"threshold": self.description.get("threshold"),
                                                      "largest_component": False}

    def _tiled_mask(self, image: np.ndarray) -> np.ndarray:
        """What export.json leaves outside a tile network, by unetseg's own functions."""
        application = Application.from_record(self.description["application"])
        small = resize_image(image, application.working_size(image.shape[:2]))
        p = sliding_window(small, lambda tiles: self.run(np.round(tiles * 255).astype(np.uint8)),
                           application.size, application.overlap)
        binary = p.shape[-1] == 1
        settings = self._inference()
        inference = Inference(settings["threshold"] if binary else THRESHOLD, False, settings["largest_component"])
        mask = mask_at(p[..., 0] if binary else p, image.shape[:2], inference)
        return mask * np.uint8(255) if binary else mask
