"""Train/validation split by group, so near-duplicates (views of one car) never leak."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit

from unetseg.core.errors import DataError, listed
from unetseg.data.pairs_table import TRAIN, VALIDATION


def group_ids(ids: list[str], group_pattern: str) -> list[str]:
    """The group of each id: the first capture of `group_pattern`, or the id itself if empty."""
    if not group_pattern:
        return list(ids)
    pattern = re.compile(group_pattern)
    groups, unmatched = [], []
    for id_ in ids:
        match = pattern.search(id_)
        if match is None or not match.group(1):
            unmatched.append(id_)
        else:
            groups.append(match.group(1))
    if unmatched:
        shown = listed(unmatched, 10)
        raise DataError(
            f"split.group_pattern {group_pattern!r} finds no group in {len(unmatched)} id(s): {shown}"
        )
    return groups


def split_pairs(pairs, val_fraction: float, seed: int, group_pattern: str) -> pd.DataFrame:
    """A table of pairs (id, image, mask, group, split); a group lies on one side only.

    `pairs` are objects with `id`, `image` and `mask` attributes (unetseg.data.pairing.Pair).

    `val_fraction` is the fraction of groups (rounded up) sent to validation: with
    equal-sized groups, as Carvana's 16 views per car, it is also the image fraction.
    """
    ids = [p.id for p in pairs]
    groups = group_ids(ids, group_pattern)
    if len(set(groups)) < 2:
        raise DataError(
            f"cannot split {len(pairs)} image(s) in {len(set(groups))} group(s): need at least 2 "
            f"(split.group_pattern {group_pattern!r})"
        )
    count = len(set(groups))
    if math.ceil(val_fraction * count) >= count:  # scikit-learn rounds the validation groups up
        raise DataError(f"split.val_fraction {val_fraction} sends all {count} groups to validation (it takes "
                        f"ceil({val_fraction} x {count}) of them), none left to train on: lower it below "
                        f"{(count - 1) / count:.3g} (split.group_pattern {group_pattern!r} found the groups)")
    splitter = GroupShuffleSplit(n_splits=1, test_size=val_fraction, random_state=seed)
    train_index, _ = next(splitter.split(np.zeros(len(ids)), groups=groups))
    side = np.full(len(ids), VALIDATION, dtype=object)
    side[train_index] = TRAIN
    if (side == TRAIN).all() or (side == VALIDATION).all():
        raise DataError(f"split.val_fraction {val_fraction} leaves one side empty with {len(set(groups))} groups")
    return pd.DataFrame(
        {
            "id": ids,
            "image": [p.image.as_posix() for p in pairs],
            "mask": [p.mask.as_posix() for p in pairs],
            "group": groups,
            "split": side,
        }
    )


def split_summary(table: pd.DataFrame) -> dict:
    """Images and groups per side, as the split stage reports them."""
    summary = {}
    for side in (TRAIN, VALIDATION):
        rows = table[table["split"] == side]
        summary[f"{side}_images"] = int(len(rows))
        summary[f"{side}_groups"] = int(rows["group"].nunique())
    return summary
