"""Typed, validated params: one frozen dataclass per params.yaml section, loaded once.

Every problem names the file and the key: an unknown or missing key, a wrong type
(PyYAML reads `1e-5` as a string: write `1.0e-5`), a value out of range, an image
size the model cannot halve `num_layers` times.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from unetseg.errors import UnetsegError


class ParamsError(UnetsegError, ValueError):
    """A params file that cannot be used, with the key and what is allowed."""


def _range(**bounds):
    return field(metadata=bounds)


@dataclass(frozen=True)
class Base:
    seed: int = _range(ge=0)
    deterministic: bool  # bit-identical reruns on CPU (TensorFlow op determinism)
    workers: int = _range(ge=0)  # processes that decode files; 0: one per CPU core


@dataclass(frozen=True)
class Generate:
    """The embedded default sample (see unetseg.synthetic)."""

    num_objects: int = _range(ge=1)
    views_per_object: int = _range(ge=1)
    height: int = _range(ge=16)
    width: int = _range(ge=16)
    jpeg_quality: tuple[int, int] = _range(ge=1, le=100)

    def __post_init__(self):
        _ordered(self.jpeg_quality, "jpeg_quality")


@dataclass(frozen=True)
class Data:
    """Where the data is, how files pair, and what counts as a usable file (unetseg.imaging)."""

    images_dir: str
    masks_dir: str
    mask_pattern: str
    id_pattern: str
    max_pixels: int = _range(ge=1)
    max_nonbinary_fraction: float = _range(ge=0, le=1)
    resize_masks: bool

    def __post_init__(self):
        if "{stem}" not in self.mask_pattern and "{id}" not in self.mask_pattern:
            raise ParamsError(f"mask_pattern: must contain '{{stem}}' or '{{id}}', got {self.mask_pattern!r}")
        try:
            self.mask_pattern.format(stem="x", id="x")
        except (KeyError, IndexError, ValueError) as error:
            raise ParamsError(
                f"mask_pattern: {self.mask_pattern!r} is not a valid pattern ({error!r}); "
                "the only fields allowed are {stem} and {id}"
            ) from None
        _check_group_regex(self.id_pattern, "id_pattern")


@dataclass(frozen=True)
class Split:
    val_fraction: float = _range(gt=0, lt=1)
    group_pattern: str

    def __post_init__(self):
        _check_group_regex(self.group_pattern, "group_pattern")


@dataclass(frozen=True)
class Preprocess:
    image_size: tuple[int, int] = _range(ge=1)  # height, width
    num_shards: int = _range(ge=1)


@dataclass(frozen=True)
class Augment:
    """Training-only augmentation; the seed's values are brightness 0.3, contrast and
    saturation (0.5, 0.7), no flip."""

    brightness_max_delta: float = _range(ge=0, le=1)
    contrast_range: tuple[float, float] = _range(gt=0)
    saturation_range: tuple[float, float] = _range(ge=0)
    flip_horizontal: bool

    def __post_init__(self):
        _ordered(self.contrast_range, "contrast_range")
        _ordered(self.saturation_range, "saturation_range")


@dataclass(frozen=True)
class Model:
    filters: int = _range(ge=1)
    num_layers: int = _range(ge=1, le=8)
    dropout: float = _range(ge=0, lt=1)
    batch_norm: bool


@dataclass(frozen=True)
class Train:
    epochs: int = _range(ge=1)
    batch_size: int = _range(ge=1)
    optimizer: Literal["adam", "rmsprop"]
    lr: float = _range(gt=0, le=1)
    loss: Literal["binary_crossentropy", "dice", "bce_dice"]
    shuffle_batches: int = _range(ge=1)  # shuffle buffer = batch_size * shuffle_batches
    monitor: Literal["val_loss", "val_dice", "val_accuracy"]
    keep: Literal["last", "best"]
    early_stopping_patience: int = _range(ge=0)  # 0: off
    reduce_lr_patience: int = _range(ge=0)  # 0: off
    reduce_lr_factor: float = _range(gt=0, lt=1)
    mixed_precision: bool  # float16 compute on a GPU; ignored (with a note) on a CPU
    jit_compile: bool  # XLA-compile the training step
    strategy: Literal["auto", "mirrored", "multi_worker"]  # tf.distribute; see unetseg.distribute


@dataclass(frozen=True)
class Inference:
    """How probabilities become masks, in evaluate and predict alike."""

    threshold: float = _range(gt=0, lt=1)
    tta_flip: bool  # average with the mirror image's prediction
    largest_component: bool  # keep only the largest connected region


@dataclass(frozen=True)
class Evaluate:
    gallery_size: int = _range(ge=1)  # worst and best validation images shown


@dataclass(frozen=True)
class Predict:
    montage_rows: int = _range(ge=1)


@dataclass(frozen=True)
class Params:
    base: Base
    generate: Generate
    data: Data
    split: Split
    preprocess: Preprocess
    augment: Augment
    model: Model
    train: Train
    inference: Inference
    evaluate: Evaluate
    predict: Predict

    def __post_init__(self):
        factor = 2**self.model.num_layers
        height, width = self.preprocess.image_size
        if height % factor or width % factor:
            raise ParamsError(
                f"preprocess.image_size: {height}x{width} must be divisible by "
                f"2**model.num_layers = {factor} (the U-Net halves it {self.model.num_layers} times)"
            )


def _check_group_regex(pattern: str, key: str) -> None:
    """An empty pattern, or a valid regex whose first group captures an id."""
    if not pattern:
        return
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ParamsError(f"{key}: not a valid regex ({error})") from None
    if compiled.groups < 1:
        raise ParamsError(f"{key}: {pattern!r} needs a capturing group (the id)")


def _ordered(pair, key):
    if pair[0] > pair[1]:
        raise ParamsError(f"{key}: lower bound {pair[0]} is above upper bound {pair[1]}")


def _describe(value) -> str:
    return f"{type(value).__name__} {value!r}"


def _convert(value, hint, key: str):
    """Check `value` against a type hint; ints are accepted as floats, nothing else is coerced."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ParamsError(f"{key}: must be one of {list(allowed)}, got {value!r}")
        return value
    if origin is tuple:
        items = typing.get_args(hint)
        if not isinstance(value, list) or len(value) != len(items):
            raise ParamsError(f"{key}: must be a list of {len(items)} values, got {value!r}")
        return tuple(_convert(v, t, f"{key}[{i}]") for i, (v, t) in enumerate(zip(value, items)))
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{key}: must be true or false, got {_describe(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{key}: must be an integer, got {_describe(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            hint_text = ""
            if isinstance(value, str):
                hint_text = " (PyYAML reads 1e-5 as a string: write 1.0e-5)"
            raise ParamsError(f"{key}: must be a number, got {_describe(value)}{hint_text}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ParamsError(f"{key}: must be a string, got {_describe(value)}")
        return value
    raise TypeError(f"unsupported params type {hint!r} for {key}")


def _check_range(value, bounds: dict, key: str):
    values = value if isinstance(value, tuple) else (value,)
    tests = {
        "ge": (lambda v, b: v >= b, ">="),
        "gt": (lambda v, b: v > b, ">"),
        "le": (lambda v, b: v <= b, "<="),
        "lt": (lambda v, b: v < b, "<"),
    }
    for name, bound in bounds.items():
        test, symbol = tests[name]
        for v in values:
            if not test(v, bound):
                raise ParamsError(f"{key}: must be {symbol} {bound}, got {value!r}")


def _build(cls, raw, key: str):
    if not isinstance(raw, dict):
        raise ParamsError(f"{key or 'params'}: must be a mapping of keys to values, got {_describe(raw)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(names))
    missing = [n for n in names if n not in raw]
    if unknown or missing:
        dotted = (lambda n: f"{key}.{n}") if key else str
        parts = []
        if unknown:
            parts.append(f"unknown {', '.join(map(dotted, unknown))}")
        if missing:
            parts.append(f"missing {', '.join(map(dotted, missing))}")
        raise ParamsError(f"{'; '.join(parts)} (allowed: {', '.join(names)})")
    values = {}
    for f in dataclasses.fields(cls):
        sub_key = f"{key}.{f.name}" if key else f.name
        if dataclasses.is_dataclass(hints[f.name]):
            values[f.name] = _build(hints[f.name], raw[f.name], sub_key)
        else:
            values[f.name] = _convert(raw[f.name], hints[f.name], sub_key)
            _check_range(values[f.name], f.metadata, sub_key)
    try:
        return cls(**values)
    except ParamsError as error:
        prefix = f"{key}." if key else ""
        raise ParamsError(f"{prefix}{error}") from None


def params_from_dict(raw) -> Params:
    return _build(Params, raw, "")


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate a params file; every error message starts with its path."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ParamsError(f"{path}: cannot read params ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML ({error})") from None
    try:
        return params_from_dict(raw)
    except ParamsError as error:
        raise ParamsError(f"{path}: {error}") from None
