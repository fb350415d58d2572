"""The pairs table that the split stage writes and every later stage reads.

Kept apart from the splitter (scikit-learn), so that a change to how pairs are
split does not make DVC retrain the model.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from unetseg.core.errors import DataError

TRAIN, VALIDATION = "train", "validation"
PAIRS_COLUMNS = ["id", "image", "mask", "group", "split"]


def read_pairs(path: str | Path) -> pd.DataFrame:
    """The split stage's pairs table, checked for the columns every later stage needs."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(f"{path}: pairs table not found; run the split stage") from None
    missing = [c for c in PAIRS_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    return table
