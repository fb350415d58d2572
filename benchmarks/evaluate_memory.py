"""Evaluate's peak memory against the number of validation images, at Carvana's 1918x1280.

For each count N: the default params with the generated sample blown up to 1918x1280,
2N images split 50/50 (N validation images), the generate, split and preprocess stages,
an untrained default network saved as the train stage saves it (evaluate's memory does
not depend on what the weights learned), then the evaluate stage alone in its own
process; its peak resident memory (ru_maxrss of that process) is printed as one JSON
line per count, beside the ratio to the first count's.

    python benchmarks/evaluate_memory.py [--counts 40 160] [--keep DIR]

With evaluate holding every image's masks, the peak grew by about 5.6 MB an image at
this size; scored image by image (unetseg.evaluate.scoring) it should not grow with N.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
VIEWS = 8


def stage(name: str, *args: str, cwd: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "stages" / f"{name}.py"), *args], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)


def peak_of(command: list[str], cwd: Path) -> float:
    """Peak resident MiB of one child process (measured by a fresh Python that runs only it)."""
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", probe, *command], cwd=cwd, check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1]) / 1024


def measure(count: int, work: Path) -> dict:
    work.mkdir(parents=True)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["generate"].update(num_objects=2 * count // VIEWS, views_per_object=VIEWS, height=1280, width=1918)
    params["split"]["val_fraction"] = 0.5
    params["data"].update(images_dir="sample/train", masks_dir="sample/train_masks")
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    p = ["--params", "params.yaml"]
    stage("generate", *p, "--out", "sample", cwd=work)
    stage("split", *p, "--out", "pairs.csv", "--summary", "split.json", "--data-summary", "data.json", cwd=work)
    stage("preprocess", *p, "--pairs", "pairs.csv", "--out", "tfrecords", cwd=work)  # its progress bars: stderr
    code = ("import sys; from unetseg.config.loading import load_params; from unetseg.train.training import build_model;"
            "from unetseg.model.modelfile import save_model; save_model(build_model(load_params('params.yaml'), None, 1), 'model.keras')")
    subprocess.run([sys.executable, "-c", code], cwd=work, check=True)
    peak = peak_of([sys.executable, str(ROOT / "stages" / "evaluate.py"), *p, "--tfrecords", "tfrecords",
                    "--model", "model.keras", "--pairs", "pairs.csv", "--metrics", "evaluate.json",
                    "--per-image", "per_image.csv", "--plots", "plots", "--gallery", "gallery.png",
                    "--confusion", "confusion.csv", "--scored", "scored.keras"], work)
    images = json.loads((work / "evaluate.json").read_text())["images"]
    return {"validation_images": images, "size": "1918x1280", "peak_mib": round(peak, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="+", default=[40, 160])
    parser.add_argument("--keep", help="keep the work folders here")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="evaluate-memory-"))
    first = None
    try:
        for count in args.counts:
            row = measure(count, root / f"n{count}")
            first = first or row["peak_mib"]
            row["ratio_to_first"] = round(row["peak_mib"] / first, 3)
            print(json.dumps(row), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
