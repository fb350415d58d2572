"""`unetseg compare A B`: is the change between two runs real, or the luck of the validation draw?

Each run is a git revision, branch, tag or `dvc exp` name, or the workspace. Its
per-image scores (`eval/per_image.csv`, written by the evaluate stage and kept in git,
so a fresh clone compares with no cache or remote) are read at that revision through
DVC, with the group of each image (the per-image table's
`group` column, else the split's `data/split/pairs.csv` at the same revision).
The two runs must have scored the same validation images; the scores are then
paired image by image, and the mean difference B - A gets a bootstrap interval that
redraws groups (unetseg.evaluate.intervals). No model is loaded and TensorFlow is not
imported, so a comparison takes a few seconds.
"""

from __future__ import annotations

import argparse
import json
import sys

from unetseg.compare.pairing import compare_runs
from unetseg.compare.report import format_comparison, write_scatter
from unetseg.compare.runs import WORKSPACE
from unetseg.config.checks import argument
from unetseg.config.params import Evaluate
from unetseg.evaluate.intervals import WORSE


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
        "difference B - A with a 95% bootstrap interval that redraws validation groups (objects), the "
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
