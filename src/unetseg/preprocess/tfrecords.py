"""Sharded TFRecords at the model size: one feature schema for writer and parser.

Each record holds the image (PNG, RGB) and the mask (PNG: {0,1}, or class indices
with IGNORE for ignored pixels) resized to the model size, the id and the original height and width, so predictions can go back
to the user's resolution. A `manifest.json` per folder lists each shard's record
count and sha256, checked before training: a CRC catches a damaged record, not a
shard cut at a record boundary or an empty shard. It also records the class map the
masks were made with (null for binary masks), so training and evaluation can tell
when the params changed since.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from unetseg.core.application import RESIZE, Application, check_data_application
from unetseg.core.errors import DataError
from unetseg.data.classes import ClassMap, check_same, pixel_counts

MANIFEST = "manifest.json"

FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "mask/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/id": tf.io.FixedLenFeature([], tf.string),
    "image/original_height": tf.io.FixedLenFeature([], tf.int64),
    "image/original_width": tf.io.FixedLenFeature([], tf.int64),
}


@dataclass(frozen=True)
class Example:
    id: str
    image: np.ndarray  # (height, width, 3) uint8 at the model size
    mask: np.ndarray  # (height, width) uint8: {0, 1}, or class indices
    original_size: tuple[int, int]  # height, width of the source image


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _bytes(value: bytes) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value: int) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def serialize(example: Example) -> bytes:
    feature = {
        "image/encoded": _bytes(_png(example.image)),
        "mask/encoded": _bytes(_png(example.mask)),
        "image/id": _bytes(example.id.encode()),
        "image/original_height": _int(example.original_size[0]),
        "image/original_width": _int(example.original_size[1]),
    }
    # deterministic: map fields in a fixed order, so the same data give the same shard bytes
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def shard_name(split: str, index: int, num_shards: int) -> str:
    return f"{split}-{index:05d}-of-{num_shards:05d}.tfrecord"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_shards(records, count: int, out_dir: Path, split: str, num_shards: int) -> list[dict]:
    """Write `count` serialized examples (`serialize`) in order into contiguous shards; return their manifest rows.

    Contiguous (not round-robin) shards keep the file order when read one after the
    other, which evaluate and predict rely on. Never more shards than records.
    """
    num_shards = max(1, min(num_shards, count))
    bounds = np.linspace(0, count, num_shards + 1).round().astype(int)
    rows, iterator, written = [], iter(records), 0
    for index in range(num_shards):
        path = out_dir / shard_name(split, index, num_shards)
        with tf.io.TFRecordWriter(str(path)) as writer:
            for _ in range(bounds[index], bounds[index + 1]):
                writer.write(next(iterator))
                written += 1
        rows.append({"file": path.name, "records": int(bounds[index + 1] - bounds[index]), "sha256": _sha256(path)})
    if next(iterator, None) is not None:
        raise ValueError(f"more than the {count} records announced for split {split!r}")
    return rows


def write_manifest(
    out_dir: Path, size, shards: dict[str, list[dict]], classes: ClassMap | None = None, sizes=None
) -> None:
    """`size` is the images' size, or the `Application` that shaped them; with patches, `sizes` holds
    each split's image sizes (height, width) in record order: the patch size is checked against them,
    the validation tiles counted and the memory a cache would take known before training."""
    application = size if isinstance(size, Application) else Application(RESIZE, tuple(size))
    if application.tiled:
        manifest = {"application": application.as_record(), "sizes": sizes}
    else:
        manifest = {"image_size": list(application.size), "image_bits": application.image_bits}
    manifest.update({"splits": shards, "classes": classes and classes.as_record()})
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def read_manifest(tfrecord_dir: str | Path) -> dict:
    path = Path(tfrecord_dir) / MANIFEST
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: manifest not found; run the preprocess stage") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: manifest is not valid JSON ({error})") from None


def check_classes(tfrecord_dir: str | Path, classes: ClassMap | None) -> None:
    """Refuse TFRecords whose masks were made with another class map than the params' one."""
    made_with = ClassMap.from_record(read_manifest(tfrecord_dir).get("classes"))
    check_same(classes, made_with, "params.yaml (classes)", f"{Path(tfrecord_dir) / MANIFEST}")


def manifest_application(tfrecord_dir: str | Path) -> Application:
    """How the TFRecords' images were shaped."""
    manifest = read_manifest(tfrecord_dir)
    if "application" in manifest:
        return Application.from_record(manifest["application"])
    return Application(RESIZE, tuple(manifest["image_size"]), image_bits=manifest.get("image_bits", 16))


def check_shaping(tfrecord_dir: str | Path, application: Application) -> None:
    """Refuse TFRecords shaped otherwise than the params say (resized vs whole at a scale)."""
    found = manifest_application(tfrecord_dir)
    check_data_application(application, found, "params.yaml", str(Path(tfrecord_dir) / MANIFEST))


def shard_files(tfrecord_dir: str | Path, split: str) -> list[str]:
    """The shard paths of a split in order, after checking that each is there, not empty, and has its checksum."""
    tfrecord_dir = Path(tfrecord_dir)
    manifest = read_manifest(tfrecord_dir)
    rows = manifest["splits"].get(split)
    if not rows:
        raise DataError(f"{tfrecord_dir / MANIFEST}: no shards listed for split {split!r}")
    paths = []
    for row in rows:
        path = tfrecord_dir / row["file"]
        if not path.is_file():
            raise DataError(f"{path}: shard listed in the manifest is missing")
        if row["records"] < 1:
            raise DataError(f"{path}: shard is empty")
        if _sha256(path) != row["sha256"]:
            raise DataError(f"{path}: sha256 differs from the manifest: the shard is damaged or cut")
        paths.append(str(path))
    return paths


def count_records(tfrecord_dir: str | Path, split: str) -> int:
    return sum(row["records"] for row in read_manifest(tfrecord_dir)["splits"][split])


def parse_example(serialized):
    """A record as (image uint8 HxWx3, mask uint8 HxWx1, id, original size).

    Kept uint8 so a cache holds a quarter of the bytes; `to_float` converts after it.
    """
    features = tf.io.parse_single_example(serialized, FEATURES)
    image = tf.io.decode_png(features["image/encoded"], channels=3)
    mask = tf.io.decode_png(features["mask/encoded"], channels=1)
    original_size = tf.stack([features["image/original_height"], features["image/original_width"]])
    return image, mask, features["image/id"], original_size


def to_float(image, mask):
    """uint8 records to the model's float32 image in [0,1] and float32 mask ({0,1}, or class indices)."""
    return tf.cast(image, tf.float32) / 255.0, tf.cast(mask, tf.float32)


def class_pixels(files, num_classes: int) -> np.ndarray:
    """Pixels per class in the label maps of some shards (ignored pixels left out), counted by the
    class map's own rule (`pixel_counts`)."""
    counts = np.zeros(num_classes, np.int64)
    for _, mask, _, _ in tf.data.TFRecordDataset(files).map(parse_example, num_parallel_calls=tf.data.AUTOTUNE):
        counts += pixel_counts(mask.numpy(), num_classes)
    return counts


def records_dataset(files, batch_size: int):
    """Batched (float image, uint8 mask, id, original size) in file order, for evaluate."""
    records = tf.data.TFRecordDataset(files).map(parse_example, num_parallel_calls=tf.data.AUTOTUNE)
    return records.batch(batch_size).map(
        lambda image, mask, id_, size: (tf.cast(image, tf.float32) / 255.0, mask, id_, size)
    ).prefetch(tf.data.AUTOTUNE)
