"""The `classes` section: which mask values make which class (one value, or several merged), which
are ignored, and the loss weights, checked as a grammar of label indices or [r, g, b] colours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from unetseg.config.checks import ParamsError, Section, describe

MASK_VALUE_LIMIT = 65535  # label maps are 8 or 16 bit
MAX_CLASSES = 255  # label maps at the model size are uint8, with IGNORE (255) for ignored pixels


@dataclass(frozen=True)
class Classes(Section):
    """What the mask values mean: none named is the seed's binary task (see unetseg.data.classes).

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
                f"({count}), got {describe(self.values)}"
            )
        if not isinstance(self.ignore, tuple):
            raise ParamsError(f"{self.key('ignore')}: must be a list of mask values, got {describe(self.ignore)}")
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
                    f"{key}: a label map value is an integer 0..{MASK_VALUE_LIMIT}, got {describe(value)}"
                    + (" (a colour: set classes.masks: colours)" if isinstance(value, tuple) else "")
                )
            return value
        if (not isinstance(value, tuple) or len(value) != 3
                or any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 255 for v in value)):
            raise ParamsError(
                f"{key}: a colour is [r, g, b] with integers 0..255, got {describe(value)}"
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
                f"{key}: none, balanced, or one positive number per class ({len(self.names)}), got {describe(weights)}"
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
