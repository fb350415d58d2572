"""Train/validation split by group, so near-duplicates (views of one car) never leak."""

from __future__ import annotations

import math
import re
from pathlib import Path

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


def read_groups(path: str, pairs) -> list[str]:
    """Each pair's group from a CSV with the columns id and group, for groups the names do not carry
    (patients, sequences). An id is the pair's id or its image's file name; rows of other files are
    allowed, so one table can serve several folders."""
    key = f"split.groups: {path}"
    try:
        table = pd.read_csv(Path(path), dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise DataError(f"{key}: file not found") from None
    except (OSError, ValueError, pd.errors.ParserError) as error:  # EmptyDataError and decoding errors too
        raise DataError(f"{key}: not a CSV of id,group ({' '.join(str(error).split())})") from None
    missing = [column for column in ("id", "group") if column not in table.columns]
    if missing:
        raise DataError(f"{key}: no column {' or '.join(missing)}; the first line must name the columns id,group")
    table = table.assign(id=table["id"].str.strip(), group=table["group"].str.strip())
    if (table["group"] == "").any():
        rows = [str(row + 2) for row in table.index[table["group"] == ""]]  # line numbers, the header is line 1
        raise DataError(f"{key}: an empty group on line(s) {listed(rows, 10)}")
    conflicting = table.groupby("id")["group"].nunique()
    conflicting = sorted(conflicting[conflicting > 1].index)
    if conflicting:
        raise DataError(f"{key}: {len(conflicting)} id(s) in two groups: {listed(conflicting, 10)}")
    group_of = dict(zip(table["id"], table["group"]))
    groups = [group_of.get(p.id, group_of.get(Path(p.image).name)) for p in pairs]
    unknown = [p.id for p, group in zip(pairs, groups) if group is None]
    if unknown:
        raise DataError(f"{key}: no group for {len(unknown)} image(s) (by their id or file name): "
                        f"{listed(unknown, 10)}")
    return groups


def pair_groups(pairs, group_pattern: str, groups_file: str = "") -> tuple[list[str], str]:
    """Each pair's group and the key that gave it: the groups file when there is one, else the pattern."""
    if groups_file:
        return read_groups(groups_file, pairs), f"split.groups {groups_file}"
    return group_ids([p.id for p in pairs], group_pattern), f"split.group_pattern {group_pattern!r}"


def split_pairs(pairs, val_fraction: float, seed: int, group_pattern: str, groups_file: str = "") -> pd.DataFrame:
    """A table of pairs (id, image, mask, group, split); a group lies on one side only.

    `pairs` are objects with `id`, `image` and `mask` attributes (unetseg.data.pairing.Pair).
    The groups come from `groups_file` (read_groups) when given, else from `group_pattern`.

    `val_fraction` is the fraction of groups (rounded up) sent to validation: with
    equal-sized groups, as Carvana's 16 views per car, it is also the image fraction.
    """
    ids = [p.id for p in pairs]
    groups, source = pair_groups(pairs, group_pattern, groups_file)
    if len(set(groups)) < 2:
        raise DataError(
            f"cannot split {len(pairs)} image(s) in {len(set(groups))} group(s): need at least 2 ({source})"
        )
    count = len(set(groups))
    if math.ceil(val_fraction * count) >= count:  # scikit-learn rounds the validation groups up
        raise DataError(f"split.val_fraction {val_fraction} sends all {count} groups to validation (it takes "
                        f"ceil({val_fraction} x {count}) of them), none left to train on: lower it below "
                        f"{(count - 1) / count:.3g} ({source} found the groups)")
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
