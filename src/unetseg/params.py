"""Typed, validated params: one frozen dataclass per params.yaml section, loaded once.

Every section checks itself when it is built, wherever that happens (the params
file, the `unetseg` command, a test), and every problem names the key: an unknown
or missing key, a wrong type, a value out of range, options that cannot work
together. The file is read as DVC reads it (YAML 1.2: `1e-3` is a float, `yes` a
string), so the two never disagree about a value.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from ruamel.yaml import YAML, YAMLError

from unetseg.errors import UnetsegError


class ParamsError(UnetsegError, ValueError):
    """A params file that cannot be used, with the key and what is allowed."""


def _range(**bounds):
    return field(metadata=bounds)


class _Section:
    """Checks every field's type and range, and then the section's own rules, on construction."""

    SECTION: ClassVar[str] = ""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            key = f"{self.SECTION}.{f.name}"
            value = _convert(getattr(self, f.name), hints[f.name], key)
            _check_range(value, f.metadata, key)
            object.__setattr__(self, f.name, value)  # ints as floats, lists as tuples
        self.check()

    def check(self) -> None:
        """Rules between the section's own keys."""

    def key(self, name: str) -> str:
        return f"{self.SECTION}.{name}"


@dataclass(frozen=True)
class Base(_Section):
    SECTION = "base"
    seed: int = _range(ge=0)
    deterministic: bool  # bit-identical reruns on CPU (TensorFlow op determinism)
    workers: int = _range(ge=0)  # processes that decode files; 0: one per CPU core


def worker_count(workers: int) -> int:
    """The processes that `base.workers` asks for: 0 means one per CPU core."""
    return workers or os.cpu_count() or 1


@dataclass(frozen=True)
class Generate(_Section):
    """The embedded default sample (see unetseg.synthetic)."""

    SECTION = "generate"
    num_objects: int = _range(ge=1)
    views_per_object: int = _range(ge=1)
    height: int = _range(ge=16)
    width: int = _range(ge=16)
    jpeg_quality: tuple[int, int] = _range(ge=1, le=100)

    def check(self):
        _ordered(self.jpeg_quality, self.key("jpeg_quality"))


@dataclass(frozen=True)
class Data(_Section):
    """Where the data is, how files pair, and what counts as a usable file (unetseg.imaging)."""

    SECTION = "data"
    images_dir: str
    masks_dir: str
    mask_pattern: str
    id_pattern: str
    max_pixels: int = _range(ge=1)
    max_nonbinary_fraction: float = _range(ge=0, le=1)
    resize_masks: bool

    def check(self):
        key = self.key("mask_pattern")
        if "{stem}" not in self.mask_pattern and "{id}" not in self.mask_pattern:
            raise ParamsError(f"{key}: must contain '{{stem}}' or '{{id}}', got {self.mask_pattern!r}")
        try:
            self.mask_pattern.format(stem="x", id="x")
        except (KeyError, IndexError, ValueError) as error:
            raise ParamsError(
                f"{key}: {self.mask_pattern!r} is not a valid pattern ({error!r}); "
                "the only fields allowed are {stem} and {id}"
            ) from None
        _check_group_regex(self.id_pattern, self.key("id_pattern"))


MASK_VALUE_LIMIT = 65535  # label maps are 8 or 16 bit
MAX_CLASSES = 255  # label maps at the model size are uint8, with IGNORE (255) for ignored pixels


@dataclass(frozen=True)
class Classes(_Section):
    """What the mask values mean: none named is the seed's binary task (see unetseg.classes).

    `values` holds, per class, one mask value or a list of values merged into it: a
    label index with `masks: labels`, an [r, g, b] colour with `masks: colours`.
    """

    SECTION = "classes"
    names: tuple[str, ...]
    values: object  # checked below: its shape depends on `masks`
    ignore: object
    masks: Literal["labels", "colours"]
    weights: object  # "none" | "balanced" | one positive number per class

    def check(self):
        if not self.names:
            for name, empty in (("values", self.values == ()), ("ignore", self.ignore == ()),
                                ("weights", self.weights == "none")):
                if not empty:
                    raise ParamsError(
                        f"{self.key(name)}: needs {self.key('names')}; with no class named the masks are binary "
                        f"(foreground is the brighter value), got {self.key(name)} {getattr(self, name)!r}"
                    )
            return
        count = len(self.names)
        if not 2 <= count <= MAX_CLASSES:
            raise ParamsError(f"{self.key('names')}: name 2 to {MAX_CLASSES} classes, got {count}")
        if any(not name.strip() for name in self.names):
            raise ParamsError(f"{self.key('names')}: every name must be non-empty, got {list(self.names)!r}")
        _no_duplicates(self.names, self.key("names"), "name")
        if not isinstance(self.values, tuple) or len(self.values) != count:
            raise ParamsError(
                f"{self.key('values')}: one value (or list of merged values) per class in {self.key('names')} "
                f"({count}), got {_describe(self.values)}"
            )
        if not isinstance(self.ignore, tuple):
            raise ParamsError(f"{self.key('ignore')}: must be a list of mask values, got {_describe(self.ignore)}")
        for index, value in enumerate(self.ignore):
            self.mask_value(value, f"{self.key('ignore')}[{index}]")
        seen = {}
        for index, entry in enumerate(self.values):
            for value in self.merged(entry, f"{self.key('values')}[{index}] ({self.names[index]})"):
                if value in seen:
                    raise ParamsError(
                        f"{self.key('values')}: mask value {_shown(value)} is given to both {seen[value]!r} "
                        f"and {self.names[index]!r}"
                    )
                seen[value] = self.names[index]
        for value in self.ignore:
            if value in seen:
                raise ParamsError(
                    f"{self.key('ignore')}: mask value {_shown(value)} is both ignored and the class {seen[value]!r}"
                )
        _no_duplicates(self.ignore, self.key("ignore"), "value")
        self.check_weights()

    def mask_value(self, value, key: str):
        """One mask value as the masks kind wants it: an index, or an (r, g, b) colour."""
        if self.masks == "labels":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MASK_VALUE_LIMIT:
                raise ParamsError(
                    f"{key}: a label map value is an integer 0..{MASK_VALUE_LIMIT}, got {_describe(value)}"
                    + (" (a colour: set classes.masks: colours)" if isinstance(value, tuple) else "")
                )
            return value
        if (not isinstance(value, tuple) or len(value) != 3
                or any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 255 for v in value)):
            raise ParamsError(
                f"{key}: a colour is [r, g, b] with integers 0..255, got {_describe(value)}"
                + (" (a label index: set classes.masks: labels)" if isinstance(value, int) else "")
            )
        return value

    def merged(self, entry, key: str) -> tuple:
        """A class's mask values: one value, or a list of values merged into the class."""
        nested = isinstance(entry, tuple) and entry and isinstance(entry[0], tuple)
        if self.masks == "labels" and isinstance(entry, tuple) or self.masks == "colours" and nested:
            if not entry:
                raise ParamsError(f"{key}: an empty list of values")
            return tuple(self.mask_value(v, f"{key}[{i}]") for i, v in enumerate(entry))
        return (self.mask_value(entry, key),)

    def check_weights(self):
        key, weights = self.key("weights"), self.weights
        if weights in ("none", "balanced"):
            return
        if (not isinstance(weights, tuple) or len(weights) != len(self.names)
                or any(isinstance(w, bool) or not isinstance(w, (int, float)) or not w > 0 for w in weights)):
            raise ParamsError(
                f"{key}: none, balanced, or one positive number per class ({len(self.names)}), got {_describe(weights)}"
            )
        object.__setattr__(self, "weights", tuple(float(w) for w in weights))

    @property
    def several(self) -> bool:
        """Whether classes are named: a softmax over them instead of the seed's one sigmoid channel."""
        return bool(self.names)


def _shown(value) -> str:
    """A mask value as params write it: 15, or [r, g, b]."""
    return str(list(value) if isinstance(value, tuple) else value)


def _no_duplicates(items, key: str, what: str) -> None:
    repeated = sorted({_shown(i) for i in items if items.count(i) > 1})
    if repeated:
        raise ParamsError(f"{key}: repeated {what}(s) {', '.join(repeated)}")


@dataclass(frozen=True)
class Split(_Section):
    SECTION = "split"
    val_fraction: float = _range(gt=0, lt=1)
    group_pattern: str

    def check(self):
        _check_group_regex(self.group_pattern, self.key("group_pattern"))


@dataclass(frozen=True)
class Preprocess(_Section):
    SECTION = "preprocess"
    image_size: tuple[int, int] = _range(ge=1)  # height, width
    num_shards: int = _range(ge=1)


@dataclass(frozen=True)
class Patches(_Section):
    """Full-resolution detail: images kept whole at a working scale, training on random patches,
    prediction by overlapping tiles (unetseg.tiling). Off: the seed's resize to preprocess.image_size."""

    SECTION = "patches"
    enabled: bool
    scale: float = _range(gt=0, le=4)  # working scale of every image, aspect kept (1.0: native)
    size: tuple[int, int] = _range(ge=1)  # height, width of a training patch and of a sliding-window tile
    foreground_share: float = _range(ge=0, le=1)  # patches centred on a foreground pixel (nnU-Net: 1/3)
    overlap: float = _range(ge=0, lt=1)  # of neighbouring tiles, as a fraction of the tile (inference only)
    validation_tiles: int = _range(ge=1)  # validation during training: a fixed, seeded sample of this many tiles


@dataclass(frozen=True)
class Augment(_Section):
    """Training-only augmentation; the seed's values are brightness 0.3, contrast and
    saturation (0.5, 0.7), no flip."""

    SECTION = "augment"
    brightness_max_delta: float = _range(ge=0, le=1)
    contrast_range: tuple[float, float] = _range(gt=0)
    saturation_range: tuple[float, float] = _range(ge=0)
    flip_horizontal: bool

    def check(self):
        _ordered(self.contrast_range, self.key("contrast_range"))
        _ordered(self.saturation_range, self.key("saturation_range"))


@dataclass(frozen=True)
class Model(_Section):
    SECTION = "model"
    filters: int = _range(ge=1)
    num_layers: int = _range(ge=1, le=8)
    dropout: float = _range(ge=0, lt=1)
    batch_norm: bool


@dataclass(frozen=True)
class Train(_Section):
    SECTION = "train"
    epochs: int = _range(ge=1)
    steps_per_epoch: int = _range(ge=0)  # batches an epoch; 0: one pass over the training images
    batch_size: int = _range(ge=1)
    optimizer: Literal["adam", "rmsprop"]
    lr: float = _range(gt=0, le=1)  # the peak, with a schedule
    schedule: Literal["constant", "cosine", "poly"]  # after the warm-up; the decays end at 0 (unetseg.schedule)
    warmup_epochs: float = _range(ge=0)  # linear rise from 0 to lr over this many epochs
    loss: Literal["crossentropy", "dice", "crossentropy_dice", "binary_crossentropy", "bce_dice"]
    shuffle_batches: int = _range(ge=1)  # shuffle buffer = batch_size * shuffle_batches
    monitor: Literal["val_image_dice", "val_loss", "val_dice", "val_accuracy", "val_mean_iou"]
    keep: Literal["last", "best"]
    ema: bool  # validate and save the moving average of the weights (Keras' optimizer EMA, momentum 0.99)
    early_stopping_patience: int = _range(ge=0)  # 0: off
    reduce_lr_patience: int = _range(ge=0)  # 0: off
    reduce_lr_factor: float = _range(gt=0, lt=1)
    mixed_precision: bool  # float16 compute on a GPU; ignored (with a note) on a CPU
    jit_compile: bool  # XLA-compile the training step
    strategy: Literal["auto", "mirrored", "multi_worker"]  # tf.distribute; see unetseg.distribute
    seed_offset: int = _range(ge=0)  # training draws from base.seed + this: reseed training alone

    def check(self):
        """Refuse patience settings that can never take effect, and two rules for the learning rate."""
        if self.warmup_epochs >= self.epochs:
            raise ParamsError(
                f"{self.key('warmup_epochs')} {self.warmup_epochs:g} with {self.key('epochs')} {self.epochs}: "
                "the warm-up must be shorter than the training"
            )
        if self.reduce_lr_patience and (self.schedule != "constant" or self.warmup_epochs):
            raise ParamsError(
                f"{self.key('reduce_lr_patience')} {self.reduce_lr_patience} with {self.key('schedule')} "
                f"{self.schedule} and {self.key('warmup_epochs')} {self.warmup_epochs:g}: the schedule sets the "
                "learning rate at every step; use one or the other (reduce_lr_patience 0, or schedule constant "
                "with warmup_epochs 0)"
            )
        if self.ema and self.keep == "best":
            raise ParamsError(
                f"{self.key('keep')} best with {self.key('ema')} true: the best epoch's weights are the trained "
                "ones, not their average, which is what is validated; use keep last, or ema false"
            )
        stop, reduce = self.early_stopping_patience, self.reduce_lr_patience
        for name, patience in (("early_stopping_patience", stop), ("reduce_lr_patience", reduce)):
            if patience >= self.epochs:
                raise ParamsError(
                    f"{self.key(name)} {patience} with {self.key('epochs')} {self.epochs}: "
                    "the patience must be below the number of epochs to ever take effect (0: off)"
                )
        if stop and reduce >= stop:
            raise ParamsError(
                f"{self.key('reduce_lr_patience')} {reduce} with {self.key('early_stopping_patience')} {stop}: "
                "training would stop before the learning rate is ever reduced; make it smaller, or 0 (off)"
            )


THRESHOLD = 0.5  # inference.threshold's default: the seed's, and the only value a class model accepts


@dataclass(frozen=True)
class Inference(_Section):
    """How probabilities become masks, in evaluate and predict alike."""

    SECTION = "inference"
    threshold: float = _range(gt=0, lt=1)
    tta_flip: bool  # average with the mirror image's prediction
    largest_component: bool  # keep only the largest connected region


@dataclass(frozen=True)
class Evaluate(_Section):
    SECTION = "evaluate"
    gallery_size: int = _range(ge=1)  # worst and best validation images shown
    bootstrap_resamples: int = _range(ge=100)  # for the 95 % intervals over validation groups
    bootstrap_seed: int = _range(ge=0)


@dataclass(frozen=True)
class Predict(_Section):
    SECTION = "predict"
    montage_rows: int = _range(ge=1)


@dataclass(frozen=True)
class Params:
    base: Base
    generate: Generate
    data: Data
    classes: Classes
    split: Split
    preprocess: Preprocess
    patches: Patches
    augment: Augment
    model: Model
    train: Train
    inference: Inference
    evaluate: Evaluate
    predict: Predict

    @property
    def training_seed(self) -> int:
        """What training's randomness (weights, shuffling, augmentation, dropout) draws from.

        Apart from base.seed, which also draws the sample and the split, so that
        training alone can be reseeded on the same data (`unetseg spread`).
        """
        return self.base.seed + self.train.seed_offset

    def __post_init__(self):
        hints = typing.get_type_hints(Params)
        for f in dataclasses.fields(self):
            if not isinstance(getattr(self, f.name), hints[f.name]):
                raise ParamsError(f"{f.name}: must be a {hints[f.name].__name__} section")
        factor = 2**self.model.num_layers
        key, (height, width) = (
            ("patches.size", self.patches.size) if self.patches.enabled else ("preprocess.image_size", self.preprocess.image_size)
        )
        if height % factor or width % factor:
            raise ParamsError(
                f"{key}: {height}x{width} must be divisible by "
                f"2**model.num_layers = {factor} (the U-Net halves it {self.model.num_layers} times)"
            )
        if self.train.jit_compile and self.base.deterministic:
            raise ParamsError(
                "train.jit_compile true does nothing with base.deterministic true (Keras turns XLA off under "
                "TensorFlow's op determinism): set base.deterministic false to compile, or jit_compile false"
            )
        self._check_classes()

    def _check_classes(self):
        """Options that hold for one kind of task only, named with the setting that excludes them."""
        several = self.classes.several
        kind = "with classes.names set (several classes)" if several else "with binary masks (no classes.names)"
        rules = (
            ("train.loss", self.train.loss, several and self.train.loss in ("binary_crossentropy", "bce_dice"),
             "use crossentropy, dice or crossentropy_dice"),
            ("train.monitor", self.train.monitor, not several and self.train.monitor == "val_mean_iou",
             "use val_image_dice, val_dice, val_loss or val_accuracy"),
            ("train.monitor", self.train.monitor, several and self.train.monitor == "val_image_dice",
             "use val_mean_iou (evaluate's mean_iou), val_dice, val_loss or val_accuracy"),
            ("inference.largest_component", True, several and self.inference.largest_component,
             "it keeps one foreground region of a binary mask; set it false"),
            ("inference.threshold", self.inference.threshold, several and self.inference.threshold != THRESHOLD,
             f"each pixel takes its most probable class; leave it at {THRESHOLD}"),
        )
        for key, value, refused, hint in rules:
            if refused:
                raise ParamsError(f"{key} {value!r} does not apply {kind}: {hint}")


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
    if hint is object:  # checked by its section: lists become tuples, all the way down
        return _tuples(value)
    if origin is tuple and typing.get_args(hint)[-1] is Ellipsis:
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{key}: must be a list, got {_describe(value)}")
        return tuple(_convert(v, typing.get_args(hint)[0], f"{key}[{i}]") for i, v in enumerate(value))
    if origin is tuple:
        items = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(items):
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
            raise ParamsError(f"{key}: must be a number, got {_describe(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ParamsError(f"{key}: must be a string, got {_describe(value)}")
        return value
    raise TypeError(f"unsupported params type {hint!r} for {key}")


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


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
    """A section (or the whole Params) from a mapping; unknown and missing keys named together."""
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
            parts.append(f"unknown {', '.join(map(dotted, map(str, unknown)))}")
        if missing:
            parts.append(f"missing {', '.join(map(dotted, missing))}")
        raise ParamsError(f"{'; '.join(parts)} (allowed: {', '.join(names)})")
    values = {
        name: _build(hints[name], raw[name], name) if dataclasses.is_dataclass(hints[name]) else raw[name]
        for name in names
    }
    return cls(**values)


def params_from_dict(raw) -> Params:
    return _build(Params, raw, "")


def argument(cls, name: str):
    """An argparse `type` that checks a command-line option by the rule of params key `cls.name`."""
    hint = typing.get_type_hints(cls)[name]
    (bounds,) = [f.metadata for f in dataclasses.fields(cls) if f.name == name]
    key = f"{cls.SECTION}.{name}"

    def parse(text: str):
        try:
            value = hint(text)
            _check_range(value, bounds, key)
        except ValueError as error:  # argparse shows an ArgumentTypeError's message as it is
            raise argparse.ArgumentTypeError(str(error) if isinstance(error, ParamsError) else
                                             f"{key}: must be {hint.__name__}, got {text!r}") from None
        return value

    return parse


def read_yaml(path: str | Path):
    """A YAML file as DVC reads it (YAML 1.2, plain dicts and lists)."""
    return YAML(typ="safe", pure=True).load(Path(path).read_text())


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate a params file; every error message starts with its path."""
    path = Path(path)
    try:
        raw = read_yaml(path)
    except OSError as error:
        raise ParamsError(f"{path}: cannot read params ({error.strerror})") from None
    except YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML ({error})") from None
    try:
        return params_from_dict(raw)
    except ParamsError as error:
        raise ParamsError(f"{path}: {error}") from None
