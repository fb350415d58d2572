"""One process against two tf.distribute workers on this machine: wall time and validation scores.

Trains the project's model on its TFRecords (run `dvc repro preprocess` first) twice
with the project's params: once in one process (train.strategy auto), once as two
MultiWorkerMirroredStrategy workers on 127.0.0.1 (train.strategy multi_worker, same
global batch), then scores both models with the evaluate stage. On one machine the
two workers share its cores: the point is the result and the overhead, not a speed-up.

    python benchmarks/multi_worker.py [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the loopback TF_CONFIGs, a helper of the tests
from loopback import loopback_tf_configs  # noqa: E402


def train(work: Path, params: dict, name: str, workers: int) -> float:
    params_file = work / f"{name}.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    command = [sys.executable, str(ROOT / "stages" / "train.py"), "--params", str(params_file),
               "--tfrecords", str(ROOT / "data" / "tfrecords"), "--model", str(work / f"{name}.keras"),
               "--live", str(work / f"live-{name}"), "--backup", str(work / f"backup-{name}")]
    configs = loopback_tf_configs(workers) if workers > 1 else [None]
    start = time.perf_counter()
    processes = [
        subprocess.Popen(command, cwd=ROOT, stdout=(work / f"{name}-{i}.log").open("w"), stderr=subprocess.STDOUT,
                         env={**os.environ, **({"TF_CONFIG": config} if config else {})})
        for i, config in enumerate(configs)
    ]
    codes = [p.wait() for p in processes]
    seconds = time.perf_counter() - start
    if any(codes):
        sys.exit(f"{name} failed; see {work}/{name}-*.log")
    return seconds


def evaluate(work: Path, name: str) -> dict:
    out = work / f"eval-{name}"
    subprocess.run([sys.executable, str(ROOT / "stages" / "evaluate.py"), "--params", str(work / f"{name}.yaml"),
                    "--tfrecords", str(ROOT / "data" / "tfrecords"), "--model", str(work / f"{name}.keras"),
                    "--pairs", str(ROOT / "data" / "split" / "pairs.csv"), "--metrics", str(out / "metrics.json"),
                    "--per-image", str(out / "per_image.csv"), "--plots", str(out / "plots"),
                    "--gallery", str(out / "gallery.png")], cwd=ROOT, check=True, capture_output=True)
    return json.loads((out / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, help="override train.epochs")
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    if args.epochs:
        params["train"]["epochs"] = args.epochs
        params["train"]["warmup_epochs"] = min(params["train"]["warmup_epochs"], args.epochs - 1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = []
        for name, strategy, workers in (("one-process", "auto", 1), ("two-workers", "multi_worker", 2)):
            params["train"]["strategy"] = strategy
            seconds = train(work, params, name, workers)
            metrics = evaluate(work, name)
            rows.append((name, seconds, metrics))
            print(f"{name:12s} {seconds:7.1f} s  validation dice {metrics['dice']:.4f}  "
                  f"original-resolution dice {metrics['original_dice']:.4f}  accuracy {metrics['accuracy']:.4f}")
        print(f"two workers / one process wall time: {rows[1][1] / rows[0][1]:.2f}; "
              f"dice difference {rows[1][2]['dice'] - rows[0][2]['dice']:+.4f}")


if __name__ == "__main__":
    main()
