"""`unetseg plan` then `dvc repro`, as a new user runs them: the plan's decisions, its time and its score.

Copies the project into a temporary git repository with the real params.yaml, runs
`unetseg plan IMAGES MASKS --minutes M` there (with the dataset's void value where
it has one), then `dvc repro` with no other key touched, a stage at a time, and prints
one JSON line: the decisions that shape the run, the plan's estimate by part beside
each stage's wall time, the wall time of the plan and of `dvc repro`, and the scores
of metrics/evaluate.json. `--seed-offset N` reseeds
training alone (train.seed_offset, set after the plan) for a spread over seeds.
`--hand KEY=VALUE ...` skips the plan and runs the folders with those keys set by hand
instead (values in YAML), for the hand-set side of the comparison.

    python benchmarks/plan.py sample|carvana|isbi|kvasir|dsb|stanford [--minutes 20] [--seed-offset 0]
    python benchmarks/plan.py kvasir --hand data.mask_pattern='{stem}.jpg' model.encoder=efficientnet_lite0 ...
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
PROJECT_FILES = ["dvc.yaml", "params.yaml", "stages", "src", "weights", ".dvc/config", ".dvcignore", ".gitignore"]
SETS = {  # folders, and the void value a user would know from the dataset's documentation
    "sample": ("data/sample/train", "data/sample/train_masks", []),
    "carvana": (DATASETS / "carvana-sample/train", DATASETS / "carvana-sample/train_masks", []),
    "isbi": (DATASETS / "isbi2012-membranes/images", DATASETS / "isbi2012-membranes/masks", []),
    "kvasir": (DATASETS / "kvasir-seg/images", DATASETS / "kvasir-seg/masks", []),
    "dsb": (DATASETS / "dsb2018-nuclei/images", DATASETS / "dsb2018-nuclei/masks", []),
    "stanford": (DATASETS / "stanford-background/images", DATASETS / "stanford-background/masks", ["15"]),
}
STAGES = ("split", "preprocess", "train", "evaluate", "predict")
SHOWN = ("patches.enabled", "preprocess.image_size", "patches.scale", "patches.size", "model.encoder",
         "classes.names", "inference.tta_flip", "train.epochs", "train.steps_per_epoch")


def run(repo: Path, *args: str) -> float:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(repo / "src")}
    start = time.perf_counter()
    result = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    print(result.stdout[-4000:], file=sys.stderr)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=sorted(SETS))
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--seed-offset", type=int, default=0)
    parser.add_argument("--keep", metavar="DIR", help="run in this new folder and keep it")
    parser.add_argument("--hand", nargs="+", metavar="KEY=VALUE", default=[],
                        help="no plan: the folders with these keys set by hand")
    args = parser.parse_args()
    images, masks, ignore = SETS[args.dataset]
    repo = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix=f"plan-{args.dataset}-"))
    repo.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source, target = ROOT / name, repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "project"]):
        subprocess.run(command, cwd=repo, check=True, capture_output=True)
    repro = 0.0
    if args.dataset == "sample":  # the generated sample is the first stage's output
        repro += run(repo, "dvc", "repro", "generate")
    hand = {"data.images_dir": str(images), "data.masks_dir": str(masks),
            **dict(item.split("=", 1) for item in args.hand)} if args.hand else {}
    plan_seconds, plan = 0.0, {}
    if not hand:
        plan_seconds = run(repo, "unetseg", "plan", str(images), str(masks), "--minutes", str(args.minutes),
                           *[f"--ignore={v}" for v in ignore])
        plan = json.loads((repo / "plan.json").read_text())
    settings = {**hand, **({"train.seed_offset": str(args.seed_offset)} if args.seed_offset else {})}
    if settings:
        params = yaml.safe_load((repo / "params.yaml").read_text())
        for dotted, value in settings.items():
            section, key = dotted.split(".", 1)
            params[section][key] = yaml.safe_load(value)
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stages = {}
    for stage in STAGES:  # one at a time, in the pipeline's order, to set each beside the plan's estimate
        stages[stage] = round(run(repo, "dvc", "repro", stage))
    repro += sum(stages.values())
    metrics = json.loads((repo / "metrics" / "evaluate.json").read_text())
    decisions = {d["key"]: d["value"] for d in plan.get("decisions", [])}
    cpu = plan["machine"]["cpu"] if plan else subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout.split("Model name:")[-1].splitlines()[0].strip()
    scores = {k: round(v, 4) for k, v in metrics.items()
              if isinstance(v, float) and ("dice" in k or "iou" in k) and "baseline" not in k}
    print(json.dumps({
        "dataset": args.dataset, "minutes": args.minutes, "seed_offset": args.seed_offset,
        "cpu": cpu, "plan": {k: decisions[k] for k in SHOWN if k in decisions}, "hand": hand,
        "estimate_seconds": plan.get("estimate_seconds", {}), "stage_seconds": stages,
        "plan_seconds": round(plan_seconds),
        "repro_seconds": round(repro), "scores": scores,
        "per_class": {k: v for k, v in metrics.items() if isinstance(v, dict)},
    }))
    if not args.keep:
        shutil.rmtree(repo, ignore_errors=True)


if __name__ == "__main__":
    main()
