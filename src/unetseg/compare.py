"""`unetseg compare A B`: is the change between two runs real, or the luck of the validation draw?

Each run is a git revision, branch, tag or `dvc exp` name, or the workspace. Its
per-image scores (`eval/per_image.csv`, written by the evaluate stage and kept in git,
so a fresh clone compares with no cache or remote) are read at that revision through
DVC, with the group of each image (the per-image table's
`group` column, else the split's `data/split/pairs.csv` at the same revision).
The two runs must have scored the same validation images; the scores are then
paired image by image, and the mean difference B - A gets a bootstrap interval that
redraws groups (unetseg.uncertainty). No model is loaded and TensorFlow is not
imported, so a comparison takes a few seconds.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from unetseg.errors import UnetsegError
from unetseg.params import Evaluate, argument
from unetseg.uncertainty import WORSE, paired_difference

WORKSPACE = "workspace"
PER_IMAGE = "eval/per_image.csv"
PAIRS = "data/split/pairs.csv"
DEFAULT_METRICS = ("original_dice", "dice")  # the first that both runs have
UNCHANGED = 1e-9  # |B - A| below this is no change: the CSV holds 6 decimals, the rest is float noise
SHOWN_IDS = 5  # ids listed in an error message


class CompareError(UnetsegError):
    """A run that cannot be compared: missing results, unknown revision, other validation images."""


def _listed(ids) -> str:
    ids = sorted(ids)
    return ", ".join(ids[:SHOWN_IDS]) + (f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else "")


class _Revision:
    """Text of the project's files at one revision: from disk for the workspace, else through DVC.

    DVC's file system sees git-tracked files and DVC outputs alike, resolves experiment
    names, and reads outputs from the local cache, else from the default remote that the
    revision's own .dvc/config names.
    """

    def __init__(self, repo: str | Path, rev: str):
        self.repo, self.rev = Path(repo), rev
        self.fs = None
        if rev != WORKSPACE:
            from dvc.api import DVCFileSystem
            from dvc.exceptions import DvcException

            self.fs = DVCFileSystem(str(self.repo), rev=rev)
            try:  # the repo opens lazily: an unknown revision would otherwise read as missing files
                _ = self.fs.repo
            except DvcException as error:  # unknown revision, not a git or DVC repository
                self.close()
                raise CompareError(f"revision {rev!r} in {self.repo}: {error}") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self) -> None:
        if self.fs is not None:
            self.fs.close()

    def read(self, path: str) -> str | None:
        """The file's text, or None when the revision has no such file."""
        if self.fs is None:
            file = self.repo / path
            return file.read_text() if file.is_file() else None
        if not self.fs.exists(path):
            return None
        try:
            return self.fs.read_text(path)
        except FileNotFoundError:
            raise CompareError(
                f"{path} at {self.rev!r} is kept in the DVC cache (a dvc.yaml of before it was kept in git), and "
                f"its data is neither in the local cache nor in the remote configured at that revision: fetch it "
                f"(`dvc fetch --all-commits`; `dvc exp pull <git remote> <experiment>` for an experiment)"
            ) from None


def read_run(rev: str = WORKSPACE, repo: str | Path = ".", per_image: str = PER_IMAGE,
             pairs: str = PAIRS) -> pd.DataFrame:
    """A run's per-image table at `rev`, with a `group` column (from the table or the pairs file)."""
    with _Revision(repo, rev) as revision:
        text = revision.read(per_image)
        if text is None:
            where = "in the workspace (run `dvc repro`)" if rev == WORKSPACE else (
                "at that revision (no evaluate results were committed there)")
            raise CompareError(f"{rev!r} has no per-image results: {per_image} is missing {where}")
        table = pd.read_csv(io.StringIO(text), dtype={"id": str, "group": str}, keep_default_na=False)
        if "id" not in table.columns:
            raise CompareError(f"{per_image} at {rev!r}: no `id` column (columns: {', '.join(table.columns)})")
        duplicated = set(table["id"][table["id"].duplicated()])
        if duplicated:
            raise CompareError(f"{per_image} at {rev!r}: repeated id(s): {_listed(duplicated)}")
        if "group" in table.columns:
            return table
        pairs_text = revision.read(pairs)
    if pairs_text is None:
        raise CompareError(
            f"{per_image} at {rev!r} has no `group` column and {pairs} is missing there: "
            f"the groups to resample are unknown"
        )
    groups = pd.read_csv(io.StringIO(pairs_text), dtype=str, keep_default_na=False)
    if not {"id", "group"} <= set(groups.columns):
        raise CompareError(f"{pairs} at {rev!r}: needs columns `id` and `group`")
    group_of = groups.set_index("id")["group"]
    unknown = set(table["id"]) - set(group_of.index)
    if unknown:
        raise CompareError(f"{len(unknown)} id(s) of {per_image} at {rev!r} are not in {pairs}: {_listed(unknown)}")
    return table.assign(group=table["id"].map(group_of).to_numpy())


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
            + (f" ({_listed(only_a)})" if only_a else "")
            + f", {len(only_b)} only in {b_name}" + (f" ({_listed(only_b)})" if only_b else "")
            + f", {both} in both; compare runs split alike (same data.*, split.* and base.seed)"
        )
    b = b.set_index("id").loc[a["id"]]
    paired = pd.DataFrame({
        "id": a["id"].to_numpy(),
        "group": a["group"].to_numpy(),
        "a": pd.to_numeric(a[metric], errors="coerce").to_numpy(),
        "b": pd.to_numeric(b[metric], errors="coerce").to_numpy(),
    })
    for side, name in (("a", a_name), ("b", b_name)):
        bad = paired["id"][~np.isfinite(paired[side])]
        if len(bad):
            raise CompareError(f"{name}: {len(bad)} image(s) without a numeric {metric}: {_listed(set(bad))}")
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


def _verdict_line(c: Comparison) -> str:
    level = f"{c.confidence:.0%}"
    if c.verdict == WORSE:
        return f"verdict: {c.b} is worse than {c.a} ({c.metric}; the {level} interval of B - A lies below 0)"
    if c.verdict == "better":
        return f"verdict: {c.b} is better than {c.a} ({c.metric}; the {level} interval of B - A lies above 0)"
    return (f"verdict: no detectable difference between {c.a} and {c.b} ({c.metric}; the {level} interval "
            f"of B - A contains 0)")


def format_comparison(c: Comparison) -> str:
    """The human-readable report."""
    width = max(len(c.a), len(c.b), 5)
    lines = [
        f"{c.metric}, mean over {c.images['total']} validation images in {c.groups['total']} groups",
        f"  A {c.a:<{width}}  {c.a_score:.4f}",
        f"  B {c.b:<{width}}  {c.b_score:.4f}",
        f"  B - A {'':<{width - 4}}  {c.difference:+.4f}   {c.confidence:.0%} interval [{c.low:+.4f}, {c.high:+.4f}] "
        f"(bootstrap over groups, {c.resamples} resamples, seed {c.seed})",
        "  images: {better} better, {worse} worse, {unchanged} unchanged".format(**c.images),
        "  groups: {better} better, {worse} worse, {unchanged} unchanged".format(**c.groups),
    ]
    if c.lost_most:
        id_width = max(len(row["id"]) for row in c.lost_most)
        lines.append(f"  lost most:  {'id':<{id_width}}  {'A':>7}  {'B':>7}  {'B - A':>7}")
        lines += [f"              {row['id']:<{id_width}}  {row['a']:7.4f}  {row['b']:7.4f}  {row['difference']:+7.4f}"
                  for row in c.lost_most]
    lines.append(_verdict_line(c))
    return "\n".join(lines)


def write_scatter(path: str | Path, paired: pd.DataFrame, a: str, b: str, metric: str) -> None:
    """Per-image score A vs B: a CSV (id, group, a, b, difference) for `dvc plots`, or a PNG.

    The extension chooses: `.csv`, or `.png` (drawn with Pillow: points above the
    diagonal gained, green; below it lost, red; on it, grey).
    """
    from unetseg.atomic import atomic_output

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".png"):
        raise CompareError(f"--plot {path}: the name must end in .csv or .png")
    with atomic_output(path) as out:
        if suffix == ".csv":
            paired[["id", "group", "a", "b", "difference"]].to_csv(out, index=False, float_format="%.6f")
        else:
            _scatter_png(paired, a, b, metric).save(out, format="PNG")


def _scatter_png(paired: pd.DataFrame, a: str, b: str, metric: str):
    from PIL import Image, ImageDraw

    size, margin = 480, 48
    low = float(min(paired["a"].min(), paired["b"].min()))
    high = float(max(paired["a"].max(), paired["b"].max()))
    pad = (high - low) * 0.05 or 0.01
    low, high = low - pad, high + pad
    span = size - 2 * margin

    def xy(x, y):
        return margin + (x - low) / (high - low) * span, size - margin - (y - low) / (high - low) * span

    canvas = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(canvas)
    draw.rectangle([margin, margin, size - margin, size - margin], outline="black")
    draw.line([xy(low, low), xy(high, high)], fill=(170, 170, 170))
    for x, y, d in paired[["a", "b", "difference"]].itertuples(index=False):
        colour = (40, 160, 40) if d >= UNCHANGED else (220, 40, 40) if d <= -UNCHANGED else (120, 120, 120)
        px, py = xy(x, y)
        draw.ellipse([px - 2.5, py - 2.5, px + 2.5, py + 2.5], fill=colour)
    draw.text((margin, 8), f"{metric} per image   green: B gained   red: B lost   grey: same", fill="black")
    draw.text((margin, 24), f"y (B): {b}", fill="black")
    draw.text((margin, size - margin + 20), f"x (A): {a}", fill="black")
    for value in (low, high):
        x, y = xy(value, value)
        draw.text((x - 10, size - margin + 4), f"{value:.3f}", fill="black")
        draw.text((4, y - 6), f"{value:.3f}", fill="black")
    return canvas


def run_compare(args) -> int:
    """The `compare` command: print the report (or JSON); status 1 with --fail-if-worse on a worse B."""
    comparison, paired = compare_runs(args.a, args.b, args.repo, args.metric, args.resamples, args.seed, args.top)
    if args.plot:
        write_scatter(args.plot, paired, args.a, args.b, comparison.metric)
    if args.json:
        print(json.dumps(comparison.as_dict(), indent=2))
    else:
        print(format_comparison(comparison))
        if args.plot:
            print(f"{args.plot}: per-image {comparison.metric}, A vs B")
    if args.fail_if_worse and comparison.verdict == WORSE:
        print(f"error: {args.b} is detectably worse than {args.a} (--fail-if-worse)", file=sys.stderr)
        return 1
    return 0


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def add_compare_parser(subparsers):
    """Register `compare` on an argparse subparsers object; its `run` default is run_compare."""
    parser = subparsers.add_parser(
        "compare", help="is B better or worse than A, beyond the luck of the validation draw?",
        description="Pair the per-image scores (eval/per_image.csv) of two runs and report the mean "
        "difference B - A with a 95%% bootstrap interval that redraws validation groups (objects), the "
        "images and groups that got better or worse, the images that lost most, and a verdict: better "
        "or worse when the interval excludes 0, else no detectable difference. Training randomness is "
        "not in the interval: see `unetseg spread`.",
    )
    parser.add_argument("a", nargs="?", default="HEAD",
                        help="git revision, branch, tag or dvc exp name (default: HEAD, the last commit)")
    parser.add_argument("b", nargs="?", default=WORKSPACE,
                        help=f"the same, or '{WORKSPACE}' (default: the workspace)")
    parser.add_argument("--metric", help="per-image column (default: original_dice if both runs have it, else dice)")
    parser.add_argument("--resamples", type=argument(Evaluate, "bootstrap_resamples"), default=2000,
                        help="bootstrap resamples, as evaluate.bootstrap_resamples (default 2000)")
    parser.add_argument("--seed", type=argument(Evaluate, "bootstrap_seed"), default=0,
                        help="bootstrap seed, as evaluate.bootstrap_seed (default 0)")
    parser.add_argument("--top", type=_count, default=5, help="images that lost most to list (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    parser.add_argument("--fail-if-worse", action="store_true",
                        help="exit with status 1 when B is detectably worse than A (for CI)")
    parser.add_argument("--plot", metavar="PATH",
                        help="write per-image A vs B: .csv (for `dvc plots show PATH -x a -y b -t scatter`) or .png")
    parser.add_argument("--repo", default=".", help="the project's root (default: the current directory)")
    parser.set_defaults(run=run_compare)
    return parser
