"""What mask values mean: the class map, and the one rule from mask values to class indices.

Without named classes the task is the seed's binary one (unetseg.data.masks reads
masks as {0,1}). With `classes.names`, every mask becomes a map of class indices
0..K-1, with IGNORE for the values listed in `classes.ignore`: ignored pixels
count in no loss and no metric. A mask value that is neither a class nor ignored is
an error naming the file, the value and its pixel count. The class map travels
with the data it shaped (the TFRecords' manifest) and the model it trained (the
model file), so a later stage can tell when it changed, and `unetseg predict`
needs no params.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetseg.config.checks import ParamsError
from unetseg.config.class_values import Classes
from unetseg.core.constants import IGNORE
from unetseg.core.errors import DataError, listed

SHOWN_VALUES = 8  # unknown values listed in an error


def _bits_palette(count: int) -> list[tuple[int, int, int]]:
    """Distinct colours: each index's bits spread over the high bits of r, g and b (VOC's scheme)."""
    colours = []
    for index in range(count):
        r = g = b = 0
        code = index + 1  # index 0 would be black, too close to the background of a picture
        for shift in range(7, -1, -1):
            r |= (code & 1) << shift
            g |= ((code >> 1) & 1) << shift
            b |= ((code >> 2) & 1) << shift
            code >>= 3
        colours.append((r, g, b))
    return colours


def _key(value):
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class ClassMap:
    names: tuple[str, ...]
    values: tuple[tuple, ...]  # per class, the mask values merged into it (ints, or (r, g, b) colours)
    ignore: tuple
    masks: str  # "labels" | "colours"

    @classmethod
    def from_params(cls, classes: Classes) -> ClassMap | None:
        """The class map of the params, or None for the seed's binary masks."""
        if not classes.several:
            return None
        values = tuple(classes.merged(entry, f"classes.values[{i}]") for i, entry in enumerate(classes.values))
        return cls(tuple(classes.names), values, tuple(classes.ignore), classes.masks)

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def colours(self) -> list[tuple[int, int, int]]:
        """A display colour per class: a colour mask's own (its first value), else a fixed palette."""
        if self.masks == "colours":
            return [tuple(values[0]) for values in self.values]
        return _bits_palette(self.num_classes)

    def palette(self) -> list[int]:
        """A PNG palette (768 values): the class colours, then black."""
        flat = [channel for colour in self.colours for channel in colour]
        return flat + [0] * (768 - len(flat))

    def encode(self, values: np.ndarray, path) -> np.ndarray:
        """A mask's values, (H, W) indices or (H, W, 3) colours, as uint8 class indices (IGNORE for ignored).

        Every value that is neither a class nor ignored is named, with its pixel count.
        """
        if self.masks == "colours":
            packed = (values[..., 0].astype(np.int64) << 16) | (values[..., 1].astype(np.int64) << 8) | values[..., 2]
            lookup = {(r << 16) | (g << 8) | b: index for (r, g, b), index in self._coded()}
        else:
            packed = values.astype(np.int64)
            lookup = dict(self._coded())
        found, inverse, counts = np.unique(packed.ravel(), return_inverse=True, return_counts=True)
        codes = np.array([lookup.get(int(v), -1) for v in found], dtype=np.int16)
        unknown = codes < 0
        if unknown.any():
            by_count = sorted(zip(counts[unknown], found[unknown]), reverse=True)
            described = listed((f"{self._show(int(v))} ({int(n):,} pixels)" for n, v in by_count), SHOWN_VALUES)
            raise DataError(
                f"{path}: mask value(s) {described} are neither a class nor ignored "
                f"(classes.values, classes.ignore; masks read as {self.masks})"
            )
        return codes[inverse].reshape(packed.shape).astype(np.uint8)

    def _coded(self):
        for index, values in enumerate(self.values):
            for value in values:
                yield value, index
        for value in self.ignore:
            yield value, IGNORE

    def _show(self, packed: int) -> str:
        if self.masks == "colours":
            return f"[{packed >> 16}, {(packed >> 8) & 255}, {packed & 255}]"
        return str(packed)

    def as_record(self) -> dict:
        """JSON for the manifest and the model file."""
        return {
            "names": list(self.names),
            "values": [[_key(v) for v in values] for values in self.values],
            "ignore": [_key(v) for v in self.ignore],
            "masks": self.masks,
            "colours": [list(c) for c in self.colours],
        }

    @classmethod
    def from_record(cls, record: dict | None) -> ClassMap | None:
        if record is None:
            return None
        tupled = lambda v: tuple(v) if isinstance(v, list) else v  # noqa: E731
        return cls(
            tuple(record["names"]),
            tuple(tuple(tupled(v) for v in values) for values in record["values"]),
            tuple(tupled(v) for v in record["ignore"]),
            record["masks"],
        )


def describe(class_map: ClassMap | None) -> str:
    if class_map is None:
        return "binary masks (no classes named)"
    return f"{class_map.num_classes} classes ({', '.join(class_map.names)}), masks read as {class_map.masks}"


def check_same(expected: ClassMap | None, found: ClassMap | None, expected_from: str, found_from: str) -> None:
    """Refuse to go on when the class map of the params differs from the one the data or model was made with."""
    if expected != found:
        raise DataError(
            f"the class map changed: {expected_from} has {describe(expected)}, but {found_from} was made with "
            f"{describe(found)}; rerun the stages before this one (dvc repro)"
        )


def pixel_counts(label_map: np.ndarray, num_classes: int) -> np.ndarray:
    """Pixels per class of a label map (ignored pixels left out)."""
    return np.bincount(label_map.ravel(), minlength=256)[:num_classes]


def loss_weights(classes: Classes, train_pixels: np.ndarray) -> np.ndarray | None:
    """Per-class loss weights: none, `balanced` (total / (K * pixels of the class), scikit-learn's
    rule, 0 for a class with no training pixel) or the given list."""
    if classes.weights == "none":
        return None
    if classes.weights == "balanced":
        total, count = train_pixels.sum(), len(train_pixels)
        safe = np.where(train_pixels > 0, train_pixels, 1)
        return np.where(train_pixels > 0, total / (count * safe), 0.0).astype(np.float32)
    return np.array(classes.weights, np.float32)


def read_class_csv(path: str | Path) -> tuple[list[str], list, str]:
    """(names, values, masks) of a class table: `value,name` (label maps) or `name,r,g,b` (colour masks),
    columns in any order, as datasets ship them (Stanford Background's classes.csv, CamVid's class_dict.csv)."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as error:
        raise ParamsError(f"{path}: cannot read the class table ({error.strerror})") from None
    columns = {c.strip().lower(): c for c in (rows[0].keys() if rows else [])}
    if "name" not in columns or not ({"value"} <= set(columns) or {"r", "g", "b"} <= set(columns)):
        raise ParamsError(f"{path}: a class table has the columns value,name or name,r,g,b; got {list(columns)}")
    masks = "labels" if "value" in columns else "colours"
    wanted = ["value"] if masks == "labels" else ["r", "g", "b"]
    names, values = [], []
    for line, row in enumerate(rows, start=2):
        try:
            numbers = [int(row[columns[c]]) for c in wanted]
        except (TypeError, ValueError):
            raise ParamsError(f"{path}:{line}: {', '.join(wanted)} must be integers, got {row}") from None
        names.append(row[columns["name"]].strip())
        values.append(numbers[0] if masks == "labels" else numbers)
    return names, values, masks


def classes_from_table(path, ignore: list) -> dict:
    """The `classes` params of a class table; rows whose value is in `ignore` are ignored, not classes."""
    names, values, masks = read_class_csv(path)
    kept = [(n, v) for n, v in zip(names, values) if v not in ignore]
    return {"names": [n for n, _ in kept], "values": [v for _, v in kept], "ignore": list(ignore), "masks": masks}
