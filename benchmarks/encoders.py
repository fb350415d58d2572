"""The U-Net trained from scratch against the U-Net under the ImageNet-pretrained EfficientNet-Lite0
encoder (model.encoder), side by side in one run on one CPU, on a real dataset from ../shared/datasets.

Each runs split, preprocess, train and evaluate as the stage scripts do (benchmarks/patches.py's
runner, resize mode unless --mode patches) and reports its score at the images' own sizes, the parameters, the training
throughput (training images, or patches, x epochs / seconds of the train stage) and the wall time of the four
stages. The encoder costs more per epoch, so compare at equal wall time: give it fewer epochs.

    python benchmarks/encoders.py stanford --epochs 15 --encoder-epochs 11 -S "preprocess.image_size=[192,256]"
    python benchmarks/encoders.py carvana --epochs 18 --encoder-epochs 13
    python benchmarks/encoders.py carvana --only encoder --encoder-epochs 13 -S model.encoder_weights=none
    python benchmarks/encoders.py isbi --mode patches --size 256 --epochs 30 --encoder-epochs 22 -S train.steps_per_epoch=16

`-S key=value` changes params.yaml for both runs, as `dvc exp run -S` does.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import yaml
from patches import SETUPS, run_mode, shown
from seeds import cpu_name

ENCODER = ["model.encoder=efficientnet_lite0"]


def parameters(model_file: Path) -> int:
    import keras

    return keras.saving.load_model(model_file, compile=False).count_params()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("setup", choices=sorted(SETUPS))
    parser.add_argument("--epochs", type=int, default=18, help="from scratch")
    parser.add_argument("--encoder-epochs", type=int, default=None, help="under the encoder (default: --epochs)")
    parser.add_argument("--size", type=int, default=128, help="the square image or patch size, unless -S changes it")
    parser.add_argument("--mode", choices=["resize", "patches"], default="resize")
    parser.add_argument("--only", choices=["scratch", "encoder"], help="run one of the two")
    parser.add_argument("-S", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out", help="JSON file for the results")
    args = parser.parse_args()
    cpu = cpu_name()
    runs = {"scratch": (args.epochs, args.overrides),
            "encoder": (args.encoder_epochs or args.epochs, [*ENCODER, *args.overrides])}
    results = {"cpu": cpu, "setup": args.setup, "overrides": args.overrides}
    print(f"{args.setup}, CPU {cpu}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (epochs, overrides) in runs.items():
            if args.only and name != args.only:
                continue
            work = Path(tmp) / name
            m = run_mode(args.setup, args.mode, args.size, epochs, work, overrides)
            train = yaml.safe_load((work / "params.yaml").read_text())["train"]
            per_epoch = (train["steps_per_epoch"] * train["batch_size"] if train["steps_per_epoch"]
                         else json.loads((work / "split.json").read_text())["train_images"])
            m["epochs"], m["parameters"] = epochs, parameters(work / "model.keras")
            m["train_images_per_second"] = per_epoch * epochs / m["stage_seconds"]["train"]
            results[name] = m
            print(f"{name:8} {epochs} epochs: {shown(args.setup, m)}; {m['parameters']:,} parameters, "
                  f"{m['train_images_per_second']:.1f} training images/s, {m['seconds']:.0f} s for the four stages "
                  f"(train {m['stage_seconds']['train']:.0f} s)", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
