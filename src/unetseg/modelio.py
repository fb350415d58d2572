"""Loading saved models: safe mode always, errors that name the file."""

from __future__ import annotations

from pathlib import Path

import keras

from unetseg.errors import DataError


def load_model(path: str | Path) -> keras.Model:
    """A `.keras` file, loaded in safe mode (no Lambda layers, no arbitrary code) and uncompiled."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: model file not found; run the train stage")
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except (ValueError, TypeError, OSError, KeyError) as error:
        raise DataError(f"{path}: cannot load model: {error}") from None
