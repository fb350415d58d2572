"""Shared fixtures: the real params.yaml shrunk to tiny sizes, and tiny real files."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = ROOT.parent / "shared" / "datasets"

# The project's params with everything that costs time made tiny.
TINY = {
    "generate": {"num_objects": 4, "views_per_object": 3, "height": 48, "width": 64},
    "preprocess": {"image_size": [32, 32], "num_shards": 2},
    "model": {"filters": 4, "num_layers": 2},
    "train": {"epochs": 1, "batch_size": 4, "warmup_epochs": 0},  # a warm-up must end before the last epoch
    "predict": {"montage_rows": 2},
    # Keras in float32: tests hold evaluate's numbers to Keras's own; int8 has tests of its own
    "inference": {"runtime": "keras", "precision": "float32"},
}


def merge(base: dict, overrides: dict) -> dict:
    result = copy.deepcopy(base)
    for section, values in overrides.items():
        result.setdefault(section, {}).update(values)
    return result


@contextlib.contextmanager
def interrupted_at_epoch(epoch: int):
    """The training run inside stops with KeyboardInterrupt as `epoch` begins, after the previous
    epoch's callbacks (its backup among them) have run: as a Ctrl-C between epochs."""
    import keras

    from unetseg.train import training

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, index, logs=None):
            if index == epoch:
                raise KeyboardInterrupt

    make = training.make_callbacks
    training.make_callbacks = lambda *args: make(*args) + [Interrupt()]
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        training.make_callbacks = make


def real_params() -> dict:
    from unetseg.config.loading import read_yaml

    return read_yaml(ROOT / "params.yaml")


def tiny_params(**overrides) -> dict:
    """The real params shrunk by TINY, then changed by `section={key: value}` overrides."""
    return merge(merge(real_params(), TINY), overrides)


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def tiny_params_file(tmp_path) -> Path:
    return write_yaml(tmp_path / "params.yaml", tiny_params())


def shared_dataset(name: str) -> Path:
    """A real dataset from ../shared/datasets, or a clean skip saying why."""
    path = SHARED_DATASETS / name
    if not path.is_dir():
        pytest.skip(f"real dataset {name} not available: {path} is absent (../shared is not beside the checkout)")
    return path


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """A tiny generated sample (Carvana layout), made once per test session."""
    from unetseg.data.synthetic import generate_sample

    out = tmp_path_factory.mktemp("sample") / "sample"
    g = TINY["generate"]
    generate_sample(out, seed=0, num_objects=g["num_objects"], views_per_object=g["views_per_object"],
                    height=g["height"], width=g["width"], jpeg_quality=(60, 95))
    return out


LEARNING_SAMPLE = {"num_objects": 60, "views_per_object": 2, "height": 64, "width": 96}


@pytest.fixture(scope="session")
def cars(tmp_path_factory) -> Path:
    """The generated Carvana-style sample, a few more objects than the tiny one: for tests that show
    training learns. Made as the generate stage makes it from the project's params."""
    from unetseg.data.synthetic import generate_sample

    out = tmp_path_factory.mktemp("cars") / "sample"
    generate_sample(out, real_params()["base"]["seed"], **{**real_params()["generate"], **LEARNING_SAMPLE})
    return out


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tiny_tfrecords(tmp_path_factory, sample_dir) -> Path:
    """TFRecords of the tiny sample at 32x32, split by object."""
    from unetseg.config.loading import params_from_dict
    from unetseg.core.application import RESIZE, Application
    from unetseg.data.pairing import pair_images_with_masks
    from unetseg.data.splitting import split_pairs
    from unetseg.preprocess.preprocessing import write_tfrecords

    pairs = pair_images_with_masks(sample_dir / "train", sample_dir / "train_masks", "{stem}_mask.gif")
    table = split_pairs(pairs, 0.25, seed=0, group_pattern=r"^([^_]+)_")
    out = tmp_path_factory.mktemp("tfrecords") / "tfrecords"
    write_tfrecords(table, out, Application(RESIZE, (32, 32)), num_shards=2, data=params_from_dict(tiny_params()).data)
    return out


CLASSES = {"names": ["background", "box", "disc"], "values": [0, 1, 2], "ignore": [255], "masks": "labels",
           "weights": "none"}


def make_classes_sample(folder: Path, count: int = 12, size=(48, 64), seed: int = 0) -> Path:
    """Scenes of a box (class 1) and a disc (class 2) on a background (0), as JPEG images and palette
    PNG label maps whose shapes have a 1-pixel border of 255 (ignored, as in PASCAL VOC)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    height, width = size
    for index in range(count):
        labels = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(labels)
        x, y = int(rng.integers(2, width // 2 - 4)), int(rng.integers(2, height // 2 - 4))
        draw.rectangle((x, y, x + width // 3, y + height // 3), fill=1, outline=255)
        cx, cy, r = int(rng.integers(width // 2, width - 10)), int(rng.integers(height // 2, height - 10)), 8
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=2, outline=255)
        indices = np.asarray(labels)
        colours = np.array([[40, 120, 40], [200, 60, 50], [60, 70, 210]], np.float32)
        image = colours[np.where(indices == 255, 0, indices)] + rng.normal(0, 12, (height, width, 3))
        stem = f"g{index // 2}_{index % 2}"
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / "images" / f"{stem}.jpg", quality=90)
        mask = Image.fromarray(indices, mode="L").convert("P")
        mask.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [255, 255, 255] * 253)
        mask.save(folder / "masks" / f"{stem}.png")
    return folder


def classes_params(folder: Path, **overrides) -> dict:
    """Tiny params for the sample of `make_classes_sample`."""
    return tiny_params(**merge({
        "data": {"images_dir": str(folder / "images"), "masks_dir": str(folder / "masks"), "mask_pattern": "{stem}.png"},
        "classes": CLASSES,
        "train": {"loss": "crossentropy_dice", "monitor": "val_mean_iou", "epochs": 2},
        "split": {"val_fraction": 0.34},
    }, overrides))


def make_blobs(folder, count: int = 16, size=(64, 96), seed: int = 0, instances: bool = False):
    """Grey images of bright discs, masks 0/255 PNG named `<group>_<n>_mask.png`: groups of 2. With
    `instances`, many small discs an image, their masks 16-bit instance label maps (ids 1, 2, ...)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    height, width = size
    rows, columns = np.mgrid[:height, :width]
    for index in range(count):
        ids = np.zeros(size, np.uint16)
        for object_id in range(1, int(rng.integers(14, 22)) + 1 if instances else 2):
            margin, radii = (4, (3, 6)) if instances else (16, (8, 14))
            cy, cx, radius = rng.integers(margin, height - margin), rng.integers(margin, width - margin), rng.integers(*radii)
            ids[(rows - cy) ** 2 + (columns - cx) ** 2 < radius**2] = object_id
        mask = ids > 0
        image = np.clip(60 + 120 * mask + rng.normal(0, 20, mask.shape), 0, 255).astype(np.uint8)
        stem = f"s{index // 2}_{index % 2}"
        Image.fromarray(image).save(folder / "images" / f"{stem}.png")
        Image.fromarray(ids if instances else mask.astype(np.uint8) * 255).save(folder / "masks" / f"{stem}_mask.png")
    return folder / "images", folder / "masks"
