"""Pairing two runs image by image, merging their groups, and the paired difference with its interval."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from unetseg.compare.runs import DEFAULT_METRICS, WORKSPACE, CompareError, listed_ids, read_run
from unetseg.evaluate.intervals import paired_difference

UNCHANGED = 1e-9  # |B - A| below this is no change: the CSV holds 6 decimals, the rest is float noise


def choose_metric(a: pd.DataFrame, b: pd.DataFrame, metric: str | None = None) -> str:
    """`metric`, or original_dice (Kaggle's Carvana score) when both runs have it, else dice."""
    common = [c for c in a.columns if c in b.columns and c not in ("id", "group")]
    if metric is None:
        metric = next((m for m in DEFAULT_METRICS if m in common), None)
        if metric is None:
            raise CompareError(
                f"neither run has {' or '.join(DEFAULT_METRICS)}; choose --metric from: {', '.join(common)}"
            )
    elif metric not in common:
        raise CompareError(
            f"metric {metric!r} is not a per-image column of both runs; both have: {', '.join(common)}"
        )
    return metric


def _common_groups(a_groups: np.ndarray, b_groups: np.ndarray) -> np.ndarray:
    """The finest grouping coarser than both runs' (images together in either run stay together).

    Both runs normally group alike; if not (another group_pattern), merging is the
    conservative choice: it never treats images as independent that one run groups.
    """
    a_codes, a_names = pd.factorize(a_groups)
    b_codes = pd.factorize(b_groups)[0]
    labels = a_codes
    while True:  # each image takes the smallest A code reachable through shared groups
        merged = pd.Series(labels).groupby(b_codes).transform("min").to_numpy()
        merged = pd.Series(merged).groupby(a_codes).transform("min").to_numpy()
        if (merged == labels).all():
            return np.asarray(a_names)[labels]  # named after one of A's groups it contains
        labels = merged


def pair_runs(a: pd.DataFrame, b: pd.DataFrame, metric: str, a_name: str = "A", b_name: str = "B") -> pd.DataFrame:
    """Columns id, group, a, b (the metric per image), in A's order; refuses other validation images."""
    only_a, only_b = set(a["id"]) - set(b["id"]), set(b["id"]) - set(a["id"])
    if only_a or only_b:
        both = len(set(a["id"]) & set(b["id"]))
        raise CompareError(
            f"the runs scored different validation images: {len(only_a)} only in {a_name}"
            + (f" ({listed_ids(only_a)})" if only_a else "")
            + f", {len(only_b)} only in {b_name}" + (f" ({listed_ids(only_b)})" if only_b else "")
            + f", {both} in both; compare runs split alike (same data.*, split.* and base.seed)"
        )
    b = b.set_index("id").loc[a["id"]]
    paired = pd.DataFrame({
        "id": a["id"].to_numpy(),
        "group": a["group"].to_numpy(),
        "a": pd.to_numeric(a[metric], errors="coerce").to_numpy(),
        "b": pd.to_numeric(b[metric], errors="coerce").to_numpy(),
    })
    unscored = paired["a"].isna() & paired["b"].isna()  # every pixel ignored: nothing to score in either run
    paired, b = paired[~unscored].reset_index(drop=True), b[~unscored.to_numpy()]
    for side, name in (("a", a_name), ("b", b_name)):
        bad = paired["id"][~np.isfinite(paired[side])]
        if len(bad):
            raise CompareError(f"{name}: {len(bad)} image(s) without a numeric {metric}: {listed_ids(set(bad))}")
    paired["group"] = _common_groups(paired["group"].to_numpy(), b["group"].to_numpy())
    paired["difference"] = paired["b"] - paired["a"]
    return paired


def _counts(differences: np.ndarray) -> dict[str, int]:
    return {
        "better": int((differences >= UNCHANGED).sum()),
        "worse": int((differences <= -UNCHANGED).sum()),
        "unchanged": int((np.abs(differences) < UNCHANGED).sum()),
    }


@dataclass
class Comparison:
    """Everything `compare` reports; `as_dict` is its JSON."""

    a: str
    b: str
    metric: str
    a_score: float
    b_score: float
    difference: float
    low: float
    high: float
    confidence: float
    verdict: str
    resamples: int
    seed: int
    images: dict
    groups: dict
    lost_most: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "a": {"rev": self.a, "score": self.a_score},
            "b": {"rev": self.b, "score": self.b_score},
            "metric": self.metric,
            "difference": self.difference,
            "interval": [self.low, self.high],
            "confidence": self.confidence,
            "verdict": self.verdict,
            "resamples": self.resamples,
            "seed": self.seed,
            "images": self.images,
            "groups": self.groups,
            "lost_most": self.lost_most,
        }


def compare_paired(paired: pd.DataFrame, a: str, b: str, metric: str, resamples: int = 2000, seed: int = 0,
                   top: int = 5) -> Comparison:
    """The paired difference, its interval over groups, counts, and the `top` images that lost most."""
    result = paired_difference(paired["a"], paired["b"], paired["group"], resamples, seed)
    by_group = paired.groupby("group", sort=False)["difference"].sum().to_numpy()
    losers = paired[paired["difference"] <= -UNCHANGED].sort_values(["difference", "id"], kind="stable").head(top)
    return Comparison(
        a=a, b=b, metric=metric,
        a_score=float(paired["a"].mean()), b_score=float(paired["b"].mean()),
        difference=result.difference, low=result.low, high=result.high, confidence=result.confidence,
        verdict=result.verdict, resamples=resamples, seed=seed,
        images={"total": len(paired), **_counts(paired["difference"].to_numpy())},
        groups={"total": len(by_group), **_counts(by_group)},
        lost_most=[
            {"id": r.id, "group": r.group, "a": float(r.a), "b": float(r.b), "difference": float(r.difference)}
            for r in losers.itertuples()
        ],
    )


def compare_runs(a: str = "HEAD", b: str = WORKSPACE, repo: str | Path = ".", metric: str | None = None,
                 resamples: int = 2000, seed: int = 0, top: int = 5) -> tuple[Comparison, pd.DataFrame]:
    """Read both runs, pair them and compare; also returns the paired table (for a plot)."""
    a_table, b_table = read_run(a, repo), read_run(b, repo)
    metric = choose_metric(a_table, b_table, metric)
    paired = pair_runs(a_table, b_table, metric, a, b)
    return compare_paired(paired, a, b, metric, resamples, seed, top), paired
