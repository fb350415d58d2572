"""How far training lands from one seed to the next: one configuration trained over several
`train.seed_offset`s on the pipeline's TFRecords, each scored by evaluate's own function.

Prints and writes (JSON) each run's dice (evaluate's `dice`, or `--metric`), the
seconds spent in `train()`, and the mean, standard deviation and range over runs.
Configurations are params.yaml changed by `-S key=value` (as `dvc exp run -S`), so
two recipes can be measured side by side in one session on one CPU:

    dvc repro preprocess
    python benchmarks/seeds.py --seeds 0 1 2 3 4 -S train.schedule=cosine --out seeds.json
    python benchmarks/seeds.py --seeds 0 1 2 3 4 -E inference.tta_flip=true

`-E key=value[,key=value]` scores each trained model once more with these changes (an
inference setting): a paired comparison, the same five trainings; repeat it for more variants.

Runs one training at a time (the machine's cores all go to it); uses the TFRecords
in data/tfrecords and the pairs in data/split/pairs.csv, writes nothing else.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[1]


def override(raw: dict, assignment: str) -> None:
    key, _, text = assignment.partition("=")
    section, _, name = key.partition(".")
    if section not in raw or name not in raw[section]:
        raise SystemExit(f"error: -S {assignment}: no params key {key}")
    raw[section][name] = YAML(typ="safe", pure=True).load(text)


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--tfrecords", default=str(ROOT / "data/tfrecords"))
    parser.add_argument("--pairs", default=str(ROOT / "data/split/pairs.csv"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("-E", dest="variants", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]")
    parser.add_argument("--metric", default="dice")
    parser.add_argument("--out", help="JSON file for the results")
    args = parser.parse_args(argv)

    from unetseg.config.loading import params_from_dict, read_yaml
    from unetseg.core.application import Application
    from unetseg.data.classes import ClassMap
    from unetseg.evaluate.evaluation import evaluate_model
    from unetseg.train.training import train

    raw = read_yaml(args.params)
    for assignment in args.overrides:
        override(raw, assignment)
    runs = []
    for offset in args.seeds:
        raw["train"]["seed_offset"] = offset
        params = params_from_dict(raw)
        with tempfile.TemporaryDirectory() as work:
            work = Path(work)
            start = time.perf_counter()
            logs = train(params, args.tfrecords, work / "model.keras", work / "live", work / "backup")
            seconds = time.perf_counter() - start
            scores = {}
            for variant in ["", *args.variants]:
                changed = params
                if variant:
                    changed_raw = copy.deepcopy(raw)
                    for assignment in variant.split(","):
                        override(changed_raw, assignment)
                    changed = params_from_dict(changed_raw)
                evaluation = evaluate_model(
                    work / "model.keras", args.tfrecords, args.pairs, changed.inference, changed.data,
                    changed.evaluate, ClassMap.from_params(changed.classes), Application.from_params(changed),
                )
                scores[variant] = float(evaluation.metrics[args.metric])
        value = scores.pop("")
        runs.append({"seed_offset": offset, args.metric: value, "variants": scores,
                     "train_seconds": round(seconds, 1), "last_epoch": {k: float(v) for k, v in logs.items()}})
        extra = "".join(f", {v}: {x:.4f}" for v, x in scores.items())
        print(f"seed_offset {offset}: {args.metric} {value:.4f}{extra}, train {seconds:.0f} s", flush=True)
    values = [r[args.metric] for r in runs]
    summary = {
        "cpu": cpu_name(),
        "overrides": args.overrides,
        "runs": runs,
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "mean_train_seconds": statistics.fmean(r["train_seconds"] for r in runs),
    }
    print(f"{' '.join(args.overrides) or 'params.yaml'}: {args.metric} mean {summary['mean']:.4f}, std "
          f"{summary['std']:.4f}, range {summary['min']:.4f}-{summary['max']:.4f}; "
          f"train {summary['mean_train_seconds']:.0f} s a run ({summary['cpu']})")
    for variant in args.variants:
        varied = [r["variants"][variant] for r in runs]
        summary.setdefault("variants", {})[variant] = {
            "mean": statistics.fmean(varied), "std": statistics.stdev(varied) if len(varied) > 1 else 0.0,
            "min": min(varied), "max": max(varied)}
        print(f"  with {variant}: mean {statistics.fmean(varied):.4f}, std {summary['variants'][variant]['std']:.4f}, "
              f"range {min(varied):.4f}-{max(varied):.4f}")
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
