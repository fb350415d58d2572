"""`unetseg export`: a model file to a SavedModel, ONNX, TFLite or OpenVINO file that maps images to masks.

The inference settings are the model file's (models/scored.keras: what evaluate scored),
options replacing them. A model trained on resized images exports whole: uint8 RGB
images (N, H, W, 3) of any size in, their masks (N, H, W) uint8 out, by the rules of
`unetseg predict` (unetseg.export.graph writes them in TensorFlow ops); keeping the
largest region, which no format's ops can do, is left to the caller. A model trained
on patches exports its tile network (uint8 tiles in, probabilities out): the sliding
window loops over a number of tiles that only the image knows, which the file does not
hold. `export.json` lists every step from image to mask in order
(unetseg.model.applying.mask_steps), split into those the file holds and those left
to its caller.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from unetseg.core.atomic import atomic_output
from unetseg.core.errors import DataError
from unetseg.data.classes import ClassMap
from unetseg.export.openvino import write_int8, write_openvino
from unetseg.model.runtimes import IMAGES, OPSET, needs

FORMATS = {"savedmodel": "saved_model", "onnx": "model.onnx", "tflite": "model.tflite", "openvino": "model.xml"}
DESCRIPTION = "export.json"
def check_network(model, classes: ClassMap | None, path) -> None:
    """Refuse a network that is not a unetseg U-Net: images in, one probability map per class out."""
    inputs, outputs = tuple(model.input_shape), tuple(model.output_shape)
    channels = 1 if classes is None else classes.num_classes
    if len(inputs) != 4 or inputs[-1] != 3 or len(outputs) != 4 or outputs[1:3] != inputs[1:3] \
            or outputs[-1] != channels:
        raise DataError(f"{path}: not a unetseg model: it maps {inputs} to {outputs}, where unetseg's maps RGB images "
                        f"(N, H, W, 3) to (N, H, W, {channels}) probabilities")


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def describe(model_path: Path, fmt: str, application, classes: ClassMap | None, inference) -> dict:
    """export.json: what the file takes and gives, and every step from image to mask
    (unetseg.model.applying.mask_steps), in order: those the file holds and those left to its caller."""
    from unetseg.model.applying import mask_steps

    steps = mask_steps(application, inference, classes)
    if application.tiled:
        window = next(step for step in steps if step["step"] == "sliding_window")
        inside, outside = window["tile_steps"], steps
    else:
        inside = [step for step in steps if step["step"] != "largest_component"]
        outside = steps[len(inside):]
    whole = not application.tiled
    grey = f" (a 16-bit image: grey round(level * 255 / {2**application.image_bits - 1}), data.image_bits)"
    return {
        "format": fmt,
        "file": FORMATS[fmt],
        "source": {"model": str(model_path), "md5": _md5(model_path)},
        "input": {"name": IMAGES, "dtype": "uint8", "shape": ["N", "H", "W", 3] if whole else
                  ["N", *application.size, 3], "what": ("RGB images, one size per batch" if whole else
                  "RGB tiles of the image at the working scale") + grey},
        "output": {"dtype": "uint8", "shape": ["N", "H", "W"], "what": "masks at the input's size: "
                   + ("0 or 255" if classes is None else "class indices")}
        if whole else {"dtype": "float32", "shape": ["N", *application.size, 1 if classes is None
                       else classes.num_classes], "what": "probabilities per tile"},
        "inside": inside,
        "outside": outside,
        "application": application.as_record(),
        "classes": classes and classes.as_record(),
        "inference": {"threshold": inference.threshold if classes is None else None, "tta_flip": inference.tta_flip,
                      "largest_component": inference.largest_component},
    }


def _function(network, application, classes, inference):
    import tensorflow as tf

    from unetseg.export.graph import image_to_mask, tiles_to_probabilities

    if application.tiled:
        apply = tiles_to_probabilities(network, inference.tta_flip)
        shape = (None, *application.size, 3)
    else:
        apply = image_to_mask(network, application.size, None if classes else inference.threshold, inference.tta_flip)
        shape = (None, None, None, 3)
    return apply, [tf.TensorSpec(shape, tf.uint8, name=IMAGES)]


def _saved_model(network, apply, signature, path: Path) -> None:
    import keras

    archive = keras.export.ExportArchive()
    archive.track(network)
    archive.add_endpoint("serve", apply, input_signature=signature)
    archive.write_out(str(path), verbose=False)


def _onnx(apply, signature, path: Path) -> None:
    import tensorflow as tf

    tf2onnx = needs("tf2onnx", "--format onnx")
    tf2onnx.convert.from_function(tf.function(apply), input_signature=signature, opset=OPSET,
                                  output_path=str(path))


def _tflite(network, apply, signature, path: Path) -> None:
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        _saved_model(network, apply, signature, Path(tmp) / "saved")
        converter = tf.lite.TFLiteConverter.from_saved_model(str(Path(tmp) / "saved"), signature_keys=["serve"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # what a bare interpreter runs
        path.write_bytes(converter.convert())


def export_model(model_path, out, fmt: str, options: dict | None = None, overlap: float | None = None,
                 int8: bool = False) -> Path:
    """Write folder `out` (new): the exported file and export.json. Returns the file's path.

    The model file's inference settings hold (what evaluate scored), each of `options`
    (threshold, tta_flip, largest_component; None: the file's) replacing its own. `int8`
    (OpenVINO only): the quantized network evaluate scored, which the file must hold."""
    from unetseg.model.applied import load_applied

    model_path, out = Path(model_path), Path(out)
    if fmt not in FORMATS:
        raise DataError(f"--format: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if out.exists():
        raise DataError(f"{out}: already exists; export writes a new folder (remove it, or name another)")
    if fmt in ("onnx", "openvino"):
        needs({"onnx": "tf2onnx", "openvino": "openvino"}[fmt], f"--format {fmt}")
    if int8 and fmt != "openvino":
        raise DataError(f"--int8: for --format openvino only (got --format {fmt})")
    resolved = load_applied(model_path, overlap=overlap)
    network, classes, application = resolved.network, resolved.classes, resolved.application
    inference = resolved.inference(**(options or {}))
    if int8 and resolved.int8 is None:
        raise DataError(f"{model_path}: holds no int8 network: evaluate quantizes and scores it (inference.runtime "
                        "openvino, inference.precision int8, then dvc repro); export models/scored.keras")
    check_network(network, classes, model_path)
    apply, signature = _function(network, application, classes, inference)
    with atomic_output(out) as folder:
        folder.mkdir()
        target = folder / FORMATS[fmt]
        if fmt == "savedmodel":
            _saved_model(network, apply, signature, target)
        elif fmt == "onnx":
            _onnx(apply, signature, target)
        elif int8:
            write_int8(resolved.int8, application, None if classes else inference.threshold, inference.tta_flip,
                       1 if classes is None else classes.num_classes, target)
        elif fmt == "openvino":
            write_openvino(lambda folder: _saved_model(network, apply, signature, folder), target)
        else:
            _tflite(network, apply, signature, target)
        description = describe(model_path, fmt, application, classes, inference)
        if fmt == "openvino":
            description["precision"] = "int8" if int8 else "float32"
            if int8:
                description["calibration"] = resolved.int8.calibration
        (folder / DESCRIPTION).write_text(json.dumps(description, indent=2) + "\n")
    return out / FORMATS[fmt]
