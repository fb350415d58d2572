"""The network step run by Keras, onnxruntime or OpenVINO, in float32 or in 8-bit integers.

`inference.runtime` and `inference.precision` choose; every other rule of how a model
meets an image (unetseg.model.applying) stays the same, because each runtime stands in
for the Keras network where applying calls it (`predict_on_batch`). OpenVINO runs the
network as converted, its CPU plugin told to compute in float32 (on CPUs with bfloat16 it
would otherwise choose bfloat16, a precision nobody asked for). int8 is NNCF's
post-training quantization of that network, calibrated on a seeded sample of training
images (or tiles, for a patch model): the evaluate stage quantizes and scores the int8
network, and stores it inside models/scored.keras, so the predict stage, `unetseg
predict` and the registry run the very network evaluate scored. Quantizing is cached by
what it depends on (the network, the calibration sample, the package versions), so an
evaluate rerun for a threshold does not calibrate again.

OpenVINO and NNCF are unetseg's own dependencies (int8 is the default); onnxruntime is a
package of the `[export]` extra.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetseg.core.errors import DataError, UnetsegError

KERAS, ONNX, OPENVINO = "keras", "onnx", "openvino"
FLOAT32, INT8 = "float32", "int8"
EXTRA = 'pip install -e ".[export]"'
IMAGES = "images"  # the input's name in every format
OPSET = 17
CACHE_ENV = "UNETSEG_CACHE"
SCHEME = "int8, first convolution float32"  # how `quantize` quantizes: a cached network of another scheme is not it


class MissingPackage(UnetsegError):
    pass


def needs(module: str, what: str):
    """Import a package of the export extra (or of unetseg's own), or end in one line saying how to install it."""
    package = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError:
        install = "pip install -e ." if package in ("openvino", "nncf") else EXTRA
        raise MissingPackage(f"{what} needs the package {package}, not installed: {install}") from None


def onnx_session(model_bytes: bytes):
    ort = needs("onnxruntime", "the onnx runtime")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initialisers are noise to a user
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


class OnnxNetwork:
    """A Keras network converted to ONNX in memory, run by onnxruntime: float images in, probabilities out."""

    def __init__(self, network):
        import tensorflow as tf

        tf2onnx = needs("tf2onnx", "inference.runtime onnx")
        self.input_shape = tuple(network.input_shape)
        signature = [tf.TensorSpec(self.input_shape, tf.float32, name=IMAGES)]
        proto, _ = tf2onnx.convert.from_function(
            tf.function(lambda x: network(x, training=False)), input_signature=signature, opset=OPSET)
        self.session = onnx_session(proto.SerializeToString())

    def predict_on_batch(self, images: np.ndarray) -> np.ndarray:
        return self.session.run(None, {IMAGES: np.ascontiguousarray(images, np.float32)})[0]


def openvino_model(network):
    """The Keras network as an OpenVINO model (float32, any batch size)."""
    ov = needs("openvino", "inference.runtime openvino")
    with warnings.catch_warnings():  # Keras warns that a tuple of one input is not its dict of one: the same
        warnings.simplefilter("ignore", UserWarning)
        return ov.convert_model(network)


def compile_openvino(model):
    """Compiled for this machine's CPU, computing in float32 wherever the model is not int8."""
    ov = needs("openvino", "inference.runtime openvino")
    return ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


class OpenVinoNetwork:
    """An OpenVINO model, float32 or quantized, standing in for the Keras network."""

    def __init__(self, model, input_shape):
        self.input_shape = tuple(input_shape)
        self.compiled = compile_openvino(model)

    def predict_on_batch(self, images: np.ndarray) -> np.ndarray:
        return self.compiled(np.ascontiguousarray(images, np.float32))[0]


@dataclass(frozen=True)
class Int8Network:
    """A quantized network as OpenVINO's two files (the graph, the weights) and how it was calibrated."""

    xml: bytes
    weights: bytes
    calibration: dict  # images, seed, what they are, and which

    def model(self):
        ov = needs("openvino", "inference.precision int8")
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "model.xml").write_bytes(self.xml)
            (Path(folder) / "model.bin").write_bytes(self.weights)
            return ov.Core().read_model(Path(folder) / "model.xml")  # read whole: the folder may go

    @classmethod
    def of(cls, model, calibration: dict) -> Int8Network:
        ov = needs("openvino", "inference.precision int8")
        with tempfile.TemporaryDirectory() as folder:
            ov.save_model(model, Path(folder) / "model.xml", compress_to_fp16=False)
            return cls((Path(folder) / "model.xml").read_bytes(), (Path(folder) / "model.bin").read_bytes(),
                       calibration)


def quantize(network, samples: np.ndarray, calibration: dict) -> Int8Network:
    """NNCF's post-training quantization of the network, its activations' ranges measured on `samples`
    (uint8 images or tiles at the network's input size), every one of them.

    The first convolution stays in float32: quantized, its input (the image) loses half of its 256
    levels to a signed 8-bit scale, which dark images cannot spare (DSB 2018's fluorescence nuclei lost
    0.012 dice with it, 0.002 without: docs/results.md#r-int8-first-convolution)."""
    nncf = needs("nncf", "inference.precision int8")
    model = openvino_model(network)
    dataset = nncf.Dataset(samples, lambda image: image[None].astype(np.float32) / 255.0)
    first = next(op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "Convolution")
    logging.getLogger("nncf").setLevel(logging.WARNING)  # not a line per layer it leaves in float
    quantized = nncf.quantize(model, dataset, subset_size=len(samples), ignored_scope=nncf.IgnoredScope(names=[first]))
    return Int8Network.of(quantized, calibration)


def cache_folder() -> Path:
    """Where quantized networks are kept between runs: $UNETSEG_CACHE, else the user's cache folder."""
    root = os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "unetseg"
    return Path(root) / "int8"


def cached_quantize(network, weights_key: str, samples, calibration: dict) -> tuple[Int8Network, bool]:
    """`quantize`, or the network it gave before for the same network, sample and package versions.
    Returns the network and whether it came from the cache."""
    versions = {name: _version(name) for name in ("openvino", "nncf")}
    digest = hashlib.sha256(json.dumps([weights_key, calibration, versions, SCHEME], sort_keys=True).encode())
    digest.update(np.ascontiguousarray(samples).data)  # the samples' bytes, not a copy of them
    key = digest.hexdigest()[:32]
    folder = cache_folder() / key
    try:
        found = Int8Network((folder / "model.xml").read_bytes(), (folder / "model.bin").read_bytes(), calibration)
        return found, True
    except OSError:
        pass
    made = quantize(network, samples, calibration)
    try:  # a cache that cannot be written costs a calibration next time, nothing else
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as temporary:
            for name, data in (("model.bin", made.weights), ("model.xml", made.xml)):  # the graph last: it says done
                (Path(temporary) / name).write_bytes(data)
                os.replace(Path(temporary) / name, folder / name)
    except OSError:
        pass
    return made, False


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "none"


def runtime_network(network, runtime: str, precision: str, int8: Int8Network | None = None, path=None):
    """What applying calls for the network step: the Keras network itself, or a runtime standing in for it.

    int8 runs the quantized network given (evaluate's, from models/scored.keras); a file without one
    cannot be run in int8 without calibrating, which only the evaluate stage does.
    """
    if precision == INT8:
        if runtime != OPENVINO:
            raise DataError(f"inference.precision int8 runs on OpenVINO: set inference.runtime openvino "
                            f"(got {runtime})")
        if int8 is None:
            raise DataError(f"{path or 'the model file'}: holds no int8 network: evaluate quantizes and scores it "
                            "(inference.precision int8, then dvc repro); apply models/scored.keras")
        return OpenVinoNetwork(int8.model(), network.input_shape)
    if runtime == OPENVINO:
        return OpenVinoNetwork(openvino_model(network), network.input_shape)
    if runtime == ONNX:
        return OnnxNetwork(network)
    return network
