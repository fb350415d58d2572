"""Params loaded once: a file read as DVC reads it (YAML 1.2: `1e-3` is a float, `yes` a string),
so the two never disagree about a value, then built and checked section by section."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML, YAMLError

from unetseg.config.checks import ParamsError, build
from unetseg.config.params import Params


def params_from_dict(raw) -> Params:
    return build(Params, raw, "")


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
        raise ParamsError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from None
    try:
        return params_from_dict(raw)
    except ParamsError as error:
        raise ParamsError(f"{path}: {error}") from None
