"""Typed, validated params: one frozen dataclass per params.yaml section, loaded once.

Every section checks itself when it is built, wherever that happens (the params
file, the `unetseg` command, a test), and every problem names the key: an unknown
or missing key, a wrong type, a value out of range, options that cannot work
together. The file is read as DVC reads it (YAML 1.2: `1e-3` is a float, `yes` a
string), so the two never disagree about a value.
"""

from __future__ import annotations

import dataclasses
import os
import re
import typing
from dataclasses import dataclass
from typing import Literal

from unetseg.config.checks import ParamsError, Section, bounds
from unetseg.config.class_values import Classes
from unetseg.core.constants import WEIGHTS_DIR


@dataclass(frozen=True)
class Base(Section):
    SECTION = "base"
    seed: int = bounds(ge=0)
    deterministic: bool  # bit-identical reruns on CPU (TensorFlow op determinism)
    workers: int = bounds(ge=0, default=0)  # processes that decode files; 0: one per CPU core (the CLI default)


def worker_count(workers: int) -> int:
    """The processes that `base.workers` asks for: 0 means one per CPU core."""
    return workers or os.cpu_count() or 1


@dataclass(frozen=True)
class Generate(Section):
    """The embedded default sample (see unetseg.data.synthetic)."""

    SECTION = "generate"
    num_objects: int = bounds(ge=1)
    views_per_object: int = bounds(ge=1)
    height: int = bounds(ge=16)
    width: int = bounds(ge=16)
    jpeg_quality: tuple[int, int] = bounds(ge=1, le=100)

    def check(self):
        _ordered(self.jpeg_quality, self.key("jpeg_quality"))


@dataclass(frozen=True)
class Data(Section):
    """Where the data is, how files pair, and what counts as a usable file (unetseg.data.masks)."""

    SECTION = "data"
    images_dir: str
    masks_dir: str
    # defaults: `unetseg check-data`'s, when not told (params.yaml names every key)
    mask_pattern: str = "{stem}_mask.gif"
    id_pattern: str = ""
    max_pixels: int = bounds(ge=1, default=100_000_000)
    max_nonbinary_fraction: float = bounds(ge=0, le=1, default=0.05)
    resize_masks: bool = False
    instance_masks: bool = False  # binary masks of object ids (instance labels): every nonzero pixel is an object
    image_bits: int = bounds(ge=8, le=16, default=16)  # the levels of 16-bit grey images (12: a 12-bit camera's)

    def check(self):
        key = self.key("mask_pattern")
        if "{stem}" not in self.mask_pattern and "{id}" not in self.mask_pattern:
            raise ParamsError(f"{key}: must contain '{{stem}}' or '{{id}}', got {self.mask_pattern!r}")
        try:
            self.mask_pattern.format(stem="x", id="x")
        except (KeyError, IndexError, ValueError) as error:
            raise ParamsError(f"{key}: {self.mask_pattern!r} is not a valid pattern ({error!r}); "
                              "the only fields allowed are {stem} and {id}") from None
        _check_group_regex(self.id_pattern, self.key("id_pattern"))


@dataclass(frozen=True)
class Split(Section):
    SECTION = "split"
    val_fraction: float = bounds(gt=0, lt=1)
    group_pattern: str
    groups: str = ""  # a CSV of id,group (unetseg.data.splitting.read_groups)

    def check(self):
        _check_group_regex(self.group_pattern, self.key("group_pattern"))
        if self.groups and self.group_pattern:
            raise ParamsError('split.groups and split.group_pattern both give the groups: set one of them to ""')


@dataclass(frozen=True)
class Preprocess(Section):
    SECTION = "preprocess"
    image_size: tuple[int, int] = bounds(ge=1)  # height, width
    num_shards: int = bounds(ge=1)


@dataclass(frozen=True)
class Patches(Section):
    """Full-resolution detail: images kept whole at a working scale, training on random patches,
    prediction by overlapping tiles (unetseg.model.applying). Off: the seed's resize to preprocess.image_size."""

    SECTION = "patches"
    enabled: bool
    scale: float = bounds(gt=0, le=4)  # working scale of every image, aspect kept (1.0: native)
    size: tuple[int, int] = bounds(ge=1)  # height, width of a training patch and of a sliding-window tile
    foreground_share: float = bounds(ge=0, le=1)  # patches centred on a foreground pixel (nnU-Net: 1/3)
    overlap: float = bounds(ge=0, lt=1)  # of neighbouring tiles, as a fraction of the tile (inference only)
    validation_tiles: int = bounds(ge=1)  # validation during training: a fixed, seeded sample of this many tiles


@dataclass(frozen=True)
class Augment(Section):
    """Training-only augmentation; the seed's: brightness 0.3, contrast and saturation (0.5, 0.7), no flip."""

    SECTION = "augment"
    brightness_max_delta: float = bounds(ge=0, le=1)
    contrast_range: tuple[float, float] = bounds(gt=0)
    saturation_range: tuple[float, float] = bounds(ge=0)
    flip_horizontal: bool

    def check(self):
        _ordered(self.contrast_range, self.key("contrast_range"))
        _ordered(self.saturation_range, self.key("saturation_range"))


@dataclass(frozen=True)
class Model(Section):
    SECTION = "model"
    filters: int = bounds(ge=1)
    num_layers: int = bounds(ge=1, le=8)  # halvings of the plain U-Net; an encoder has its own five
    dropout: float = bounds(ge=0, lt=1)
    batch_norm: bool
    encoder: Literal["none", "efficientnet_lite0"]  # none: the seed's U-Net (unetseg.model.unet)
    encoder_weights: str  # imagenet | none | a .pth state dict or a Keras .weights.h5 file under WEIGHTS_DIR

    def check(self):
        weights, key = self.encoder_weights, self.key("encoder_weights")
        parts, own = os.path.normpath(weights).replace(os.sep, "/").split("/"), weights not in ("imagenet", "none")
        if own and not weights.endswith((".pth", ".weights.h5")):
            raise ParamsError(f"{key}: imagenet, none, or a path to a .pth or .weights.h5 file, got {weights!r}")
        if own and self.encoder != "none" and parts[0] != WEIGHTS_DIR:  # where DVC would not see it replaced
            raise ParamsError(f"{key}: {weights} is not in {WEIGHTS_DIR}/, the folder the train stage depends on: "
                              f"put the file there (e.g. {WEIGHTS_DIR}/{parts[-1]}), so that replacing it retrains")

    @property
    def halvings(self) -> int:
        """How often the network halves an image: an input side must be divisible by 2 to this power."""
        return 5 if self.encoder != "none" else self.num_layers


@dataclass(frozen=True)
class Train(Section):
    SECTION = "train"
    epochs: int = bounds(ge=1)
    steps_per_epoch: int = bounds(ge=0)  # batches an epoch; 0: one pass over the training images
    batch_size: int = bounds(ge=1)
    optimizer: Literal["adam", "rmsprop"]
    lr: float = bounds(gt=0, le=1)  # the peak, with a schedule
    schedule: Literal["constant", "cosine", "poly"]  # after the warm-up; the decays end at 0 (unetseg.train.schedule)
    warmup_epochs: float = bounds(ge=0)  # linear rise from 0 to lr over this many epochs
    loss: Literal["crossentropy", "dice", "crossentropy_dice", "binary_crossentropy", "bce_dice"]
    shuffle_batches: int = bounds(ge=1)  # shuffle buffer = batch_size * shuffle_batches
    monitor: Literal["val_image_dice", "val_loss", "val_dice", "val_accuracy", "val_mean_iou"]
    keep: Literal["last", "best"]
    ema: bool  # validate and save the moving average of the weights (Keras' optimizer EMA, momentum 0.99)
    early_stopping_patience: int = bounds(ge=0)  # 0: off
    reduce_lr_patience: int = bounds(ge=0)  # 0: off
    reduce_lr_factor: float = bounds(gt=0, lt=1)
    mixed_precision: bool  # float16 compute on a GPU; ignored (with a note) on a CPU
    jit_compile: bool  # XLA-compile the training step
    strategy: Literal["auto", "mirrored", "multi_worker"]  # tf.distribute; see unetseg.train.distribute
    seed_offset: int = bounds(ge=0)  # training draws from base.seed + this: reseed training alone

    def check(self):
        """Refuse patience settings that can never take effect, and two rules for the learning rate."""
        if self.warmup_epochs >= self.epochs:
            raise ParamsError(f"{self.key('warmup_epochs')} {self.warmup_epochs:g} with {self.key('epochs')} "
                              f"{self.epochs}: the warm-up must be shorter than the training")
        if self.reduce_lr_patience and (self.schedule != "constant" or self.warmup_epochs):
            raise ParamsError(
                f"{self.key('reduce_lr_patience')} {self.reduce_lr_patience} with {self.key('schedule')} "
                f"{self.schedule} and {self.key('warmup_epochs')} {self.warmup_epochs:g}: the schedule sets the "
                "learning rate at every step; use one or the other (reduce_lr_patience 0, or schedule constant "
                "with warmup_epochs 0)"
            )
        if self.ema and self.keep == "best":
            raise ParamsError(f"{self.key('keep')} best with {self.key('ema')} true: the best epoch's weights are the "
                              "trained ones, not their average, which is what is validated; use keep last, or ema false")
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
TTA_FLIP = True  # inference.tta_flip's default where no params are read (unetseg predict and export)


@dataclass(frozen=True)
class Inference(Section):
    """How probabilities become masks, in evaluate and predict alike."""

    SECTION = "inference"
    threshold: float = bounds(gt=0, lt=1)
    tta_flip: bool  # average with the mirror image's prediction
    largest_component: bool  # keep only the largest connected region
    runtime: Literal["keras", "onnx", "openvino"] = "keras"  # what runs the network (unetseg.model.runtimes)
    precision: Literal["float32", "int8"] = "float32"  # int8: OpenVINO, quantized by evaluate
    calibration_images: int = bounds(ge=1, default=300)  # training images (or tiles) that calibrate int8

    def check(self):
        if self.precision == "int8" and self.runtime != "openvino":
            raise ParamsError(f"inference.precision int8 runs on OpenVINO, not {self.runtime}: set inference.runtime openvino")


@dataclass(frozen=True)
class Evaluate(Section):
    SECTION = "evaluate"
    gallery_size: int = bounds(ge=1)  # worst and best validation images shown
    bootstrap_resamples: int = bounds(ge=100)  # for the 95 % intervals over validation groups
    bootstrap_seed: int = bounds(ge=0)


@dataclass(frozen=True)
class Predict(Section):
    SECTION = "predict"
    montage_rows: int = bounds(ge=1)


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
        """What training's randomness (weights, shuffling, augmentation, dropout) draws from: apart from
        base.seed, which also draws the sample and the split, so that training alone can be reseeded on
        the same data (`unetseg spread`)."""
        return self.base.seed + self.train.seed_offset

    def __post_init__(self):
        hints = typing.get_type_hints(Params)
        for f in dataclasses.fields(self):
            if not isinstance(getattr(self, f.name), hints[f.name]):
                raise ParamsError(f"{f.name}: must be a {hints[f.name].__name__} section")
        factor = 2**self.model.halvings
        key, (height, width) = (("patches.size", self.patches.size) if self.patches.enabled
                                else ("preprocess.image_size", self.preprocess.image_size))
        if height % factor or width % factor:
            why = (f"2**model.num_layers = {factor} (the U-Net halves it {self.model.num_layers} times)"
                   if self.model.encoder == "none" else f"{factor} (model.encoder {self.model.encoder} halves it 5 times)")
            raise ParamsError(f"{key}: {height}x{width} must be divisible by {why}")
        if self.train.jit_compile and self.base.deterministic:
            raise ParamsError("train.jit_compile true does nothing with base.deterministic true (Keras turns XLA off "
                              "under TensorFlow's op determinism): set base.deterministic false to compile, or "
                              "jit_compile false")
        if self.inference.tta_flip and not self.augment.flip_horizontal:
            raise ParamsError("inference.tta_flip true averages with the mirror image, which training never shows "
                              "the network (augment.flip_horizontal false: mirrored data may mean something else, as "
                              "text or left and right organs do): set inference.tta_flip false, or "
                              "augment.flip_horizontal true")
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
            ("data.instance_masks", True, several and self.data.instance_masks, "it reads object ids as objects"),
            ("inference.threshold", self.inference.threshold, several and self.inference.threshold != THRESHOLD,
             f"each pixel takes its most probable class; leave it at {THRESHOLD}"),
        )
        for key, value, refused, hint in rules:
            if refused:
                raise ParamsError(f"{key} {value!r} does not apply {kind}: {hint}")


def _check_group_regex(pattern: str, key: str) -> None:  # an empty pattern, or a regex whose first group is an id
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ParamsError(f"{key}: not a valid regex ({error})") from None
    if pattern and compiled.groups < 1:
        raise ParamsError(f"{key}: {pattern!r} needs a capturing group (the id)")


def _ordered(pair, key):
    if pair[0] > pair[1]:
        raise ParamsError(f"{key}: lower bound {pair[0]} is above upper bound {pair[1]}")
