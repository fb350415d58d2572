"""`unetseg spread`: how much a metric moves over experiments, e.g. reseeds of one configuration.

`unetseg compare`'s interval covers the draw of validation objects, not training
randomness (initial weights, shuffling, augmentation). To see the latter, run the
same configuration with several seeds and summarise the metric over them:

    for s in 1 2 3 4 5; do dvc exp run --queue -S train.seed_offset=$s; done
    dvc exp run --run-all
    unetseg spread

The experiments are read from `dvc exp show --json` (DVC 3: a list of baselines,
each with `experiments`, each with `revs[0]` holding `name`, `data.params` and
`data.metrics`). Params other than the seed that differ between the experiments are
named, since their effect then shows up in the spread too. `train.seed_offset` reseeds
training alone; `base.seed` also redraws the split (other validation images), which
mixes the luck of the draw into the spread: a note says so.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from unetseg.core.errors import UnetsegError

METRICS_FILE = "metrics/evaluate.json"
SPLIT_SEED = "params.yaml:base.seed"


class SpreadError(UnetsegError):
    """Experiments that cannot be summarised: `dvc exp show` failed, or too few have the metric."""


def experiments_json(repo: str | Path = ".", all_commits: bool = False) -> list:
    """The output of `dvc exp show --json` in `repo` (run with this Python's DVC)."""
    command = [sys.executable, "-m", "dvc", "exp", "show", "--json"] + (["--all-commits"] if all_commits else [])
    result = subprocess.run(command, cwd=repo, capture_output=True, text=True)
    if result.returncode != 0:
        raise SpreadError(f"`dvc exp show --json` failed in {repo}: {result.stderr.strip()[-500:]}")
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError as error:
        raise SpreadError(f"`dvc exp show --json` in {repo} printed no JSON ({error})") from None


def _flatten(tree, prefix: str = "") -> dict:
    if not isinstance(tree, dict):
        return {prefix: json.dumps(tree)}
    flat = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _runs(baselines: list, include_baseline: bool):
    """(name, data, error) of each finished experiment (and of each committed baseline if asked)."""
    for baseline in baselines:
        if baseline.get("rev") == "workspace":
            continue  # the workspace repeats the last experiment run in it
        if include_baseline:
            yield baseline.get("name") or baseline["rev"][:7], baseline.get("data") or {}, baseline.get("error")
        for experiment in baseline.get("experiments") or []:
            rev = experiment["revs"][0]
            name = rev.get("name") or experiment.get("name") or rev["rev"][:7]
            yield name, rev.get("data") or {}, rev.get("error")


def summarize_seeds(baselines: list, metric: str = "dice", metrics_file: str = METRICS_FILE,
                    include_baseline: bool = False) -> dict:
    """Mean, sample std and range of `metric` over the experiments of `dvc exp show --json`.

    Experiments without the metric (queued, failed) are counted and named as skipped.
    `varying` lists params (file:key) that take more than one value among the
    summarised experiments: normally only the seed.
    """
    values, skipped, params = {}, [], {}
    for name, data, error in _runs(baselines, include_baseline):
        value = ((data.get("metrics") or {}).get(metrics_file) or {}).get("data", {}).get(metric)
        if error or not isinstance(value, (int, float)):
            skipped.append(name)
            continue
        values[name] = float(value)
        params[name] = {
            f"{file}:{key}": text
            for file, content in (data.get("params") or {}).items()
            for key, text in _flatten((content or {}).get("data") or {}).items()
        }
    if len(values) < 2:
        raise SpreadError(
            f"{len(values)} experiment(s) with {metrics_file}:{metric} (skipped without it: "
            f"{', '.join(skipped) or 'none'}); the spread needs at least 2"
        )
    keys = sorted(set().union(*params.values()))
    varying = [k for k in keys if len({p.get(k) for p in params.values()}) > 1]
    array = np.array(list(values.values()))
    return {
        "metric": f"{metrics_file}:{metric}",
        "experiments": len(values),
        "mean": float(array.mean()),
        "std": float(array.std(ddof=1)),
        "min": float(array.min()),
        "max": float(array.max()),
        "range": float(array.max() - array.min()),
        "values": values,
        "skipped": skipped,
        "varying": varying,
    }


def format_spread(summary: dict) -> str:
    lines = [
        f"{summary['metric']} over {summary['experiments']} experiments: mean {summary['mean']:.4f}, "
        f"std {summary['std']:.4f}, range {summary['min']:.4f} .. {summary['max']:.4f} ({summary['range']:.4f})",
    ]
    width = max(len(name) for name in summary["values"])
    lines += [f"  {name:<{width}}  {value:.4f}" for name, value in sorted(summary["values"].items())]
    if summary["skipped"]:
        lines.append(f"  skipped (no {summary['metric']}: queued or failed): {', '.join(summary['skipped'])}")
    if summary["varying"]:
        lines.append(f"  params that differ between them: {', '.join(summary['varying'])}")
    if SPLIT_SEED in summary["varying"]:
        lines.append("  note: base.seed also redraws the split, so the spread mixes in other validation images; "
                     "reseed training alone with train.seed_offset")
    return "\n".join(lines)


def run_spread(args) -> int:
    summary = summarize_seeds(experiments_json(args.repo, args.all_commits), args.metric, args.metrics_file,
                              args.include_baseline)
    print(json.dumps(summary, indent=2) if args.json else format_spread(summary))
    return 0


def add_spread_parser(subparsers):
    """Register `spread` on an argparse subparsers object; its `run` default is run_spread."""
    parser = subparsers.add_parser(
        "spread", help="mean, std and range of a metric over dvc experiments (e.g. reseeds)",
        description="Summarise a metric over the experiments that `dvc exp show` lists, to measure how "
        "much training randomness alone moves it: queue the same configuration with several "
        "train.seed_offset values, run them, then run this (base.seed would also redraw the split). "
        "Params other than the seed that differ "
        "between the experiments are named.",
    )
    parser.add_argument("--metric", default="dice", help="key in the metrics file (default: dice)")
    parser.add_argument("--metrics-file", default=METRICS_FILE, help=f"default: {METRICS_FILE}")
    parser.add_argument("--include-baseline", action="store_true",
                        help="also count the committed run(s) the experiments start from")
    parser.add_argument("--all-commits", action="store_true", help="experiments of every commit, not only HEAD's")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repo", default=".", help="the project's root (default: the current directory)")
    parser.set_defaults(run=run_spread)
    return parser
