"""The U-Net trained from scratch against the U-Net under the ImageNet-pretrained EfficientNet-Lite0
encoder (model.encoder), side by side in one run on one CPU, on a real dataset from ../shared/datasets.

Each runs split, preprocess, train and evaluate as the stage scripts do (benchmarks/patches.py's
runner, resize mode unless --mode patches) and reports its score at the images' own sizes, the parameters, the training
throughput (training images, or patches, x epochs / seconds of the train stage) and the wall time of the four
stages. The encoder costs more per epoch, so compare at equal wall time: give it fewer epochs.

    python benchmarks/encoders.py stanford --epochs 15 --encoder-epochs 11 -S "preprocess.image_size=[192,256]" --seeds 0 1 2
    python benchmarks/encoders.py carvana --epochs 18 --encoder-epochs 11 --seeds 0 1 2
    python benchmarks/encoders.py carvana --only encoder --encoder-epochs 11 -S model.encoder_weights=none
    python benchmarks/encoders.py isbi --mode patches --epochs 30 --encoder-epochs 20 -S train.steps_per_epoch=16 --seeds 0 1 2

`-S key=value` changes params.yaml for both runs, as `dvc exp run -S` does. `--seeds` repeats the pair
with each train.seed_offset and prints each one's mean, std and range, and the per-seed differences.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import yaml
from patches import SETUPS, run_mode, shown
from seeds import cpu_name

ENCODER = ["model.encoder=efficientnet_lite0"]


def parameters(model_file: Path) -> int:
    import keras

    return keras.saving.load_model(model_file, compile=False).count_params()


def score(setup: str, m: dict) -> float:
    """The number the comparison is about: mean IoU (at the model's size, as "Several classes" reports
    it), the membranes' dice per image, or dice (both at the images' own sizes)."""
    if setup == "stanford":
        return m["mean_iou"]
    return m["original_class_image_dice"]["membrane"] if setup == "isbi" else m["original_dice"]


def run_one(args, name: str, epochs: int, overrides: list, work: Path) -> dict:
    m = run_mode(args.setup, args.mode, args.size, epochs, work, overrides)
    train = yaml.safe_load((work / "params.yaml").read_text())["train"]
    per_epoch = (train["steps_per_epoch"] * train["batch_size"] if train["steps_per_epoch"]
                 else json.loads((work / "split.json").read_text())["train_images"])
    m["epochs"], m["parameters"] = epochs, parameters(work / "model.keras")
    m["train_images_per_second"] = per_epoch * epochs / m["stage_seconds"]["train"]
    print(f"{name:8} {epochs} epochs: {shown(args.setup, m)}; {m['parameters']:,} parameters, "
          f"{m['train_images_per_second']:.1f} training images/s, {m['seconds']:.0f} s for the four stages "
          f"(train {m['stage_seconds']['train']:.0f} s)", flush=True)
    return m


def summary(setup: str, runs: list[dict]) -> dict:
    """Per network over the seeds: the score's mean, std and range, the mean four-stage time."""
    out = {}
    for name in ("scratch", "encoder"):
        done = [run[name] for run in runs if name in run]
        if done:
            values = [score(setup, m) for m in done]
            out[name] = {"values": values, "mean": statistics.fmean(values),
                         "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                         "min": min(values), "max": max(values),
                         "mean_seconds": statistics.fmean(m["seconds"] for m in done)}
    if len(out) == 2:
        out["differences"] = [score(setup, run["encoder"]) - score(setup, run["scratch"]) for run in runs]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("setup", choices=sorted(SETUPS))
    parser.add_argument("--epochs", type=int, default=18, help="from scratch")
    parser.add_argument("--encoder-epochs", type=int, default=None, help="under the encoder (default: --epochs)")
    parser.add_argument("--size", type=int, default=128, help="the square image or patch size, unless -S changes it")
    parser.add_argument("--mode", choices=["resize", "patches"], default="resize")
    parser.add_argument("--only", choices=["scratch", "encoder"], help="run one of the two")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="train.seed_offset of each pair")
    parser.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", help="JSON file for the results")
    args = parser.parse_args()
    if any(o.startswith("train.seed_offset=") for o in args.overrides):
        parser.error("train.seed_offset: give it with --seeds")
    cpu = cpu_name()
    print(f"{args.setup}, CPU {cpu}")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            seeded = [*args.overrides, f"train.seed_offset={seed}"]
            networks = {"scratch": (args.epochs, seeded),
                        "encoder": (args.encoder_epochs or args.epochs, [*ENCODER, *seeded])}
            run = {"seed_offset": seed}
            for name, (epochs, overrides) in networks.items():
                if not args.only or name == args.only:
                    run[name] = run_one(args, name, epochs, overrides, Path(tmp) / f"{name}{seed}")
            runs.append(run)
    total = summary(args.setup, runs)
    if len(runs) > 1:
        for name in ("scratch", "encoder"):
            if name in total:
                t = total[name]
                print(f"{name:8} over seeds {' '.join(map(str, args.seeds))}: mean {t['mean']:.4f}, std {t['std']:.4f}, "
                      f"range {t['min']:.4f}-{t['max']:.4f}; {t['mean_seconds']:.0f} s a run")
        if "differences" in total:
            print("encoder - scratch, seed by seed: " + ", ".join(f"{d:+.4f}" for d in total["differences"]))
    if args.out:
        Path(args.out).write_text(json.dumps({"cpu": cpu, "setup": args.setup, "overrides": args.overrides,
                                              "runs": runs, "summary": total}, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
