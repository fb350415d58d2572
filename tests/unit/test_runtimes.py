"""The network step by another runtime: OpenVINO in float32 gives Keras's probabilities; int8 is
quantized once for the same network and sample, then read from the cache; the rules refuse what
cannot run, in one line naming the key or the file."""

import numpy as np
import pytest

from unetseg.config.checks import ParamsError
from unetseg.config.params import Inference
from unetseg.core.errors import DataError
from unetseg.model import runtimes
from unetseg.model.unet import build_unet


@pytest.fixture(scope="module")
def network():
    return build_unet((32, 32, 3), 1, 4, 2)


def test_openvino_in_float32_gives_the_keras_probabilities(network, rng):
    images = rng.random((3, 32, 32, 3), dtype=np.float32)
    expected = network.predict_on_batch(images)
    got = runtimes.runtime_network(network, "openvino", "float32").predict_on_batch(images)
    assert got.shape == expected.shape
    # float32 throughout: the CPU plugin is told not to pick bfloat16 where the CPU has it
    assert np.abs(got - expected).max() < 1e-5


def test_quantizing_is_cached_by_network_and_sample(network, rng, tmp_path, monkeypatch):
    monkeypatch.setenv(runtimes.CACHE_ENV, str(tmp_path))
    samples = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    record = {"images": 4, "seed": 0}
    made, cached = runtimes.cached_quantize(network, "weights-a", samples, record)
    assert not cached and b"FakeQuantize" in made.xml  # activations and weights quantized

    def no_calibration(*args):
        raise AssertionError("calibrated again")

    monkeypatch.setattr(runtimes, "quantize", no_calibration)
    again, cached = runtimes.cached_quantize(network, "weights-a", samples, record)
    assert cached and again.xml == made.xml and again.weights == made.weights
    # another sample, or other weights, is another network
    with pytest.raises(AssertionError, match="calibrated again"):
        runtimes.cached_quantize(network, "weights-a", samples[::-1].copy(), record)
    with pytest.raises(AssertionError, match="calibrated again"):
        runtimes.cached_quantize(network, "weights-b", samples, record)


def test_the_int8_network_runs_close_to_float32(network, rng, tmp_path, monkeypatch):
    monkeypatch.setenv(runtimes.CACHE_ENV, str(tmp_path))
    samples = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    int8, _ = runtimes.cached_quantize(network, "w", samples, {"images": 16, "seed": 0})
    images = samples[:4].astype(np.float32) / 255
    got = runtimes.runtime_network(network, "openvino", "int8", int8).predict_on_batch(images)
    expected = network.predict_on_batch(images)
    # 8-bit activations and weights: close, not equal
    assert 0 < np.abs(got - expected).mean() < 0.02


def test_the_first_convolution_stays_in_float(network, rng):
    """Quantized, the image that enters it would keep half its levels: dark images lose detail."""
    import openvino as ov

    samples = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    model = runtimes.Int8Network(*runtimes.quantize(network, samples, {}).__dict__.values()).model()
    assert isinstance(model, ov.Model)
    first, *others = [op for op in model.get_ordered_ops() if op.get_type_name() == "Convolution"]
    assert "FakeQuantize" not in _upstream(first) and all("FakeQuantize" in _upstream(op) for op in others)


def _upstream(op) -> list[str]:
    """The types of the operations between the network's input and `op`'s first input."""
    types, node = [], op.input_value(0).get_node()
    while node.get_type_name() != "Parameter":
        types.append(node.get_type_name())
        node = node.input_value(0).get_node()
    return types


def test_int8_needs_openvino_and_the_network_evaluate_quantized(network):
    with pytest.raises(ParamsError, match="inference.precision int8 runs on OpenVINO, not keras: set inference.runtime"):
        Inference(0.5, False, False, runtime="keras", precision="int8")
    with pytest.raises(DataError, match="models/x.keras: holds no int8 network: evaluate quantizes"):
        runtimes.runtime_network(network, "openvino", "int8", None, "models/x.keras")


def test_a_missing_runtime_package_names_the_extra(monkeypatch):
    import importlib

    original = importlib.import_module
    monkeypatch.setattr(importlib, "import_module",
                        lambda name, *a: (_ for _ in ()).throw(ImportError()) if name in ("openvino", "onnxruntime")
                        else original(name, *a))
    with pytest.raises(runtimes.MissingPackage, match=r"needs the package openvino, not installed: pip install -e \.$"):
        runtimes.needs("openvino", "inference.runtime openvino")
    with pytest.raises(runtimes.MissingPackage, match=r'needs the package onnxruntime, not installed: pip install -e "\.\[export\]"'):
        runtimes.needs("onnxruntime", "inference.runtime onnx")
