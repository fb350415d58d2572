"""Patches at full resolution against the seed's resize, with the same budget of training pixels.

Runs split, preprocess, train and evaluate (the stage scripts, in a fresh process per mode)
on a real dataset from ../shared/datasets twice: every image resized to SIZE x SIZE, and
every image whole at its native size with one SIZE x SIZE patch per image per epoch. Both
see SIZE^2 training pixels per image per epoch, for the same epochs. Prints the scores at
each image's original resolution and the wall time of each mode; for ISBI also the
ceiling of the resize mode (a perfect mask at SIZE x SIZE, blown back up as predict does).

    python benchmarks/patches.py isbi [--epochs 100] [--size 128]
    python benchmarks/patches.py carvana [--epochs 20] [--size 128]
    python benchmarks/patches.py isbi --modes patches -S train.steps_per_epoch=16 --epochs 30
    python benchmarks/patches.py stanford --modes resize -S preprocess.image_size=[192,256]
    python benchmarks/patches.py carvana --modes resize -E inference.tta_flip=true

`-S key=value` changes params.yaml as `dvc exp run -S` does (after the setup's own values).
`-E key=value[,key=value]` evaluates the same trained model once more with these changes (an
inference setting, say): a paired comparison, free of training noise; repeat it for more variants.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"

SETUPS = {
    # membranes, the dark value (0), as a class of their own: scored as class "membrane"
    "isbi": {
        "data": {"images_dir": "isbi2012-membranes/images", "masks_dir": "isbi2012-membranes/masks",
                 "mask_pattern": "{stem}.png"},
        "split": {"group_pattern": ""},
        "classes": {"names": ["cell", "membrane"], "values": [255, 0], "ignore": [], "masks": "labels",
                    "weights": "none"},
        "train": {"loss": "crossentropy_dice", "monitor": "val_mean_iou"},
    },
    # the class example of docs/guides/classes.md: 8 scene classes, 15 unknown
    "stanford": {
        "data": {"images_dir": "stanford-background/images", "masks_dir": "stanford-background/masks",
                 "mask_pattern": "{stem}.png"},
        "split": {"group_pattern": ""},
        "classes": {"names": ["sky", "tree", "road", "grass", "water", "building", "mountain", "foreground object"],
                    "values": [0, 1, 2, 3, 4, 5, 6, 7], "ignore": [15], "masks": "labels", "weights": "none"},
        "train": {"loss": "crossentropy_dice", "monitor": "val_mean_iou"},
    },
    "carvana": {
        "data": {"images_dir": "carvana-sample/train", "masks_dir": "carvana-sample/train_masks",
                 "mask_pattern": "{stem}_mask.gif"},
        "split": {"group_pattern": "^([^_]+)_"},
    },
}


def params_for(setup: str, mode: str, size: int, epochs: int, overrides=()) -> dict:
    from seeds import override

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in SETUPS[setup].items():
        params[section].update(values)
    for key in ("images_dir", "masks_dir"):
        params["data"][key] = str(DATASETS / params["data"][key])
    params["train"]["epochs"] = epochs
    params["train"]["warmup_epochs"] = min(params["train"]["warmup_epochs"], epochs - 1)
    params["preprocess"]["image_size"] = [size, size]
    params["patches"].update({"enabled": mode == "patches", "scale": 1.0, "size": [size, size]})
    for assignment in overrides:  # last: they may change any of the above
        override(params, assignment)
    return params


def evaluate_args(work: Path, name: str = "evaluate") -> list[str]:
    return ["--tfrecords", f"{work}/tfrecords", "--model", f"{work}/model.keras", "--pairs", f"{work}/pairs.csv",
            "--metrics", f"{work}/{name}.json", "--per-image", f"{work}/{name}_per_image.csv",
            "--plots", f"{work}/{name}_plots", "--gallery", f"{work}/{name}_gallery.png",
            "--confusion", f"{work}/{name}_confusion.csv", "--scored", f"{work}/{name}_scored.keras"]


def run_mode(setup: str, mode: str, size: int, epochs: int, work: Path, overrides=(), variants=()) -> dict:
    """The run's metrics, with those of each variant (a list of -E assignments) under "variants"."""
    work.mkdir(parents=True)
    params = work / "params.yaml"
    params.write_text(yaml.safe_dump(params_for(setup, mode, size, epochs, overrides), sort_keys=False))
    p = ["--params", str(params)]
    steps = [
        ("split", ["--out", f"{work}/pairs.csv", "--summary", f"{work}/split.json", "--data-summary", f"{work}/data.json"]),
        ("preprocess", ["--pairs", f"{work}/pairs.csv", "--out", f"{work}/tfrecords"]),
        ("train", ["--tfrecords", f"{work}/tfrecords", "--model", f"{work}/model.keras", "--live", f"{work}/live",
                   "--backup", f"{work}/backup"]),
        ("evaluate", evaluate_args(work)),
    ]
    start, seconds = time.perf_counter(), {}
    for stage, args in steps:
        begun = time.perf_counter()
        with open(work / f"{stage}.log", "w") as log:
            subprocess.run([sys.executable, str(ROOT / "stages" / f"{stage}.py"), *p, *args], check=True,
                           stdout=log, stderr=subprocess.STDOUT)
        seconds[stage] = time.perf_counter() - begun
    metrics = json.loads((work / "evaluate.json").read_text())
    metrics["seconds"], metrics["stage_seconds"] = time.perf_counter() - start, seconds
    # training prints each epoch's split: "epoch N: T s training, V s validation (P%)"
    split = [re.match(r"epoch \d+: ([\d.]+) s training, ([\d.]+) s validation", line)
             for line in (work / "train.log").read_text().splitlines()]
    split = [(float(m[1]), float(m[2])) for m in split if m][1:]  # the first epoch also traces the graphs
    if split:
        metrics["validation_share"] = sum(v for _, v in split) / sum(t + v for t, v in split)
    metrics["variants"] = {}
    for i, variant in enumerate(variants):
        changed = work / f"variant{i}.yaml"
        changed.write_text(yaml.safe_dump(params_for(setup, mode, size, epochs, [*overrides, *variant.split(",")]),
                                          sort_keys=False))
        with open(work / f"variant{i}.log", "w") as log:
            subprocess.run([sys.executable, str(ROOT / "stages" / "evaluate.py"), "--params", str(changed),
                            *evaluate_args(work, f"variant{i}")], check=True, stdout=log, stderr=subprocess.STDOUT)
        metrics["variants"][variant] = json.loads((work / f"variant{i}.json").read_text())
    return metrics


def shown(setup: str, m: dict) -> str:
    if setup == "stanford":
        return (f"mean IoU {m['mean_iou']:.4f}, pixel accuracy {m['pixel_accuracy']:.4f} "
                f"(original resolution {m['original_mean_iou']:.4f}, {m['original_pixel_accuracy']:.4f})")
    if setup == "isbi":
        return (f"membrane dice per image {m['original_class_image_dice']['membrane']:.4f}, "
                f"pooled {m['original_class_dice']['membrane']:.4f}, mean IoU {m['original_mean_iou']:.4f}")
    return (f"dice {m['original_dice']:.4f} [{m.get('original_dice_ci_low', float('nan')):.4f}, "
            f"{m.get('original_dice_ci_high', float('nan')):.4f}]")


def resize_ceiling(size: int) -> float:
    """Mean per-image membrane dice of perfect masks through the resize mode: truth at size x size
    (nearest, as preprocess), class probabilities blown back up bilinearly, the most probable class."""
    import numpy as np

    from unetseg.config.class_values import Classes
    from unetseg.data.classes import ClassMap
    from unetseg.data.masks import read_labels
    from unetseg.data.resize import resize_probabilities, resize_truth

    classes = ClassMap.from_params(Classes(**SETUPS["isbi"]["classes"]))
    scores = []
    for mask in sorted((DATASETS / "isbi2012-membranes" / "masks").iterdir()):
        truth = read_labels(mask, classes).mask
        small = resize_truth(truth, (size, size), classes)
        one_hot = np.eye(2, dtype=np.float32)[small]
        back = np.argmax(resize_probabilities(one_hot, truth.shape), axis=-1)
        tp = np.sum((back == 1) & (truth == 1))
        scores.append(2 * tp / (np.sum(back == 1) + np.sum(truth == 1)))
    return float(np.mean(scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("setup", choices=sorted(SETUPS))
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--modes", nargs="+", choices=["resize", "patches"], default=["resize", "patches"])
    parser.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("-E", dest="variants", action="append", default=[], metavar="KEY=VALUE[,KEY=VALUE]")
    args = parser.parse_args()
    epochs = args.epochs or {"isbi": 100, "carvana": 20, "stanford": 18}[args.setup]
    cpu = next((line.partition(":")[2].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"{args.setup}: {epochs} epochs, {args.size}x{args.size} per image per epoch in both modes; CPU {cpu}")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes:
            m = run_mode(args.setup, mode, args.size, epochs, Path(tmp) / mode, args.overrides, args.variants)
            stages = ", ".join(f"{k} {v:.0f} s" for k, v in m["stage_seconds"].items())
            if "validation_share" in m:
                stages += f"; validation {m['validation_share']:.0%} of each epoch after the first"
            print(f"{mode:8} original resolution: {shown(args.setup, m)}; {m['seconds']:.0f} s ({stages})", flush=True)
            for variant, v in m["variants"].items():
                print(f"{'':8} the same model, {variant}: {shown(args.setup, v)}", flush=True)
    if args.setup == "isbi":
        print(f"resize-mode ceiling (perfect masks at {args.size}x{args.size}, blown back up): "
              f"membrane dice {resize_ceiling(args.size):.4f}")


if __name__ == "__main__":
    main()
