"""The cost of `base.deterministic: true`: training time with and without, side by side.

Trains the project's model (params.yaml, fewer epochs) on the TFRecords of the last
`dvc repro`, alternating deterministic on and off, each in a fresh process, and
prints wall times and their ratio. Also checks that two deterministic runs give
bit-identical weights.

    python benchmarks/determinism.py [--epochs 4] [--repeats 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]


def run(work: Path, params: dict, deterministic: bool, name: str) -> float:
    params = {**params, "base": {**params["base"], "deterministic": deterministic}}
    params_file = work / f"{name}.yaml"
    params_file.write_text(yaml.safe_dump(params))
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, str(ROOT / "stages/train.py"), "--params", str(params_file),
         "--tfrecords", str(ROOT / "data/tfrecords"), "--model", str(work / f"{name}.keras"),
         "--live", str(work / f"live-{name}"), "--backup", str(work / f"backup-{name}")],
        check=True, capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["epochs"] = args.epochs
    params["train"]["warmup_epochs"] = min(params["train"]["warmup_epochs"], args.epochs - 1)
    times = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for repeat in range(args.repeats):
            for deterministic in (True, False) if repeat % 2 == 0 else (False, True):
                name = f"{'det' if deterministic else 'free'}-{repeat}"
                times[deterministic].append(run(work, params, deterministic, name))
                print(f"{name}: {times[deterministic][-1]:.1f} s", flush=True)
        import keras

        a, b = (keras.saving.load_model(work / f"det-{r}.keras").get_weights() for r in (0, 1))
        identical = all(np.array_equal(x, y) for x, y in zip(a, b)) if args.repeats > 1 else None
    det, free = np.median(times[True]), np.median(times[False])
    print(f"deterministic {det:.1f} s, not {free:.1f} s (median of {args.repeats}, {args.epochs} epochs); "
          f"ratio {det / free:.3f}; deterministic runs bit-identical: {identical}")


if __name__ == "__main__":
    main()
