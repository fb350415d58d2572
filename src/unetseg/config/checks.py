"""The params' own type and range checker: each section a frozen dataclass whose fields are checked
against their type hints and bounds when it is built, every problem named by its key."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import field
from typing import ClassVar, Literal

from unetseg.core.errors import UnetsegError


class ParamsError(UnetsegError, ValueError):
    """A params file that cannot be used, with the key and what is allowed."""


def bounds(default=dataclasses.MISSING, **bounds):
    return field(default=default, metadata=bounds)


def default(cls, name: str):
    """A section's default for key `name`: the command line's, where a command takes the key as an option."""
    (found,) = [f.default for f in dataclasses.fields(cls) if f.name == name]
    return found


class Section:
    """Checks every field's type and range, and then the section's own rules, on construction."""

    SECTION: ClassVar[str] = ""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            key = f"{self.SECTION}.{f.name}"
            value = convert(getattr(self, f.name), hints[f.name], key)
            _checkbounds(value, f.metadata, key)
            object.__setattr__(self, f.name, value)  # ints as floats, lists as tuples
        self.check()

    def check(self) -> None:
        """Rules between the section's own keys."""

    def key(self, name: str) -> str:
        return f"{self.SECTION}.{name}"


def describe(value) -> str:
    return f"{type(value).__name__} {value!r}"


def convert(value, hint, key: str):
    """Check `value` against a type hint; ints are accepted as floats, nothing else is coerced."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ParamsError(f"{key}: must be one of {list(allowed)}, got {value!r}")
        return value
    if hint is object:  # checked by its section: lists become tuples, all the way down
        return tuples(value)
    if origin is tuple and typing.get_args(hint)[-1] is Ellipsis:
        if not isinstance(value, (list, tuple)):
            raise ParamsError(f"{key}: must be a list, got {describe(value)}")
        return tuple(convert(v, typing.get_args(hint)[0], f"{key}[{i}]") for i, v in enumerate(value))
    if origin is tuple:
        items = typing.get_args(hint)
        if not isinstance(value, (list, tuple)) or len(value) != len(items):
            raise ParamsError(f"{key}: must be a list of {len(items)} values, got {value!r}")
        return tuple(convert(v, t, f"{key}[{i}]") for i, (v, t) in enumerate(zip(value, items)))
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{key}: must be true or false, got {describe(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{key}: must be an integer, got {describe(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParamsError(f"{key}: must be a number, got {describe(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ParamsError(f"{key}: must be a string, got {describe(value)}")
        return value
    raise TypeError(f"unsupported params type {hint!r} for {key}")


def tuples(value):
    return tuple(tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def _checkbounds(value, bounds: dict, key: str):
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


def build(cls, raw, key: str):
    """A section (or the whole Params) from a mapping; unknown and missing keys named together."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{key or 'params'}: must be a mapping of keys to values, got {describe(raw)}")
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
        name: build(hints[name], raw[name], name) if dataclasses.is_dataclass(hints[name]) else raw[name]
        for name in names
    }
    return cls(**values)


def argument(cls, name: str):
    """An argparse `type` that checks a command-line option by the rule of params key `cls.name`."""
    hint = typing.get_type_hints(cls)[name]
    (bounds,) = [f.metadata for f in dataclasses.fields(cls) if f.name == name]
    key = f"{cls.SECTION}.{name}"

    def parse(text: str):
        try:
            value = hint(text)
            _checkbounds(value, bounds, key)
        except ValueError as error:  # argparse shows an ArgumentTypeError's message as it is
            raise argparse.ArgumentTypeError(str(error) if isinstance(error, ParamsError) else
                                             f"{key}: must be {hint.__name__}, got {text!r}") from None
        return value

    return parse
