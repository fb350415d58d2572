"""Images/s of each runtime for the network step (`inference.runtime`, `inference.precision`), side by
side in one process: Keras, onnxruntime and OpenVINO in float32, OpenVINO in int8 (NNCF's
post-training quantization, as evaluate makes it).

Rows, each through unetseg's own path (unetseg.model.runtimes.runtime_network):
- the default model (models/model.keras after `dvc repro`, else the default U-Net untrained):
  the bare network on float images at its size, batches of 1 and 8, and predict's rules from
  decoded 288 x 192 images to masks at their size, batch 8;
- the seed's network (64 filters, 4 levels) and the EfficientNet-Lite0 encoder U-Net, untrained
  (weights change no timing), bare, batch 8;
- a 1918 x 1280 Carvana image (../shared/datasets/carvana-fullres) by the sliding window (the
  default U-Net untrained, 256 x 256 tiles, overlap 0.5), predict's rules.
int8 is calibrated on 300 training images of data/tfrecords (the default model), else on the
images at hand. Prints images/s, the median of the repeats after a warm-up, its ratio to
Keras on the same row, and the CPU with its vector instructions. Accuracy: `python
benchmarks/seeds.py -E inference.runtime=openvino,inference.precision=int8` (paired, per seed).

    python benchmarks/runtimes.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
FULLRES = ROOT.parent / "shared" / "datasets" / "carvana-fullres" / "train"
RUNTIMES = [("keras", "float32"), ("onnx", "float32"), ("openvino", "float32"), ("openvino", "int8")]


def cpu() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    name = next((line.partition(":")[2].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = set(next((line.partition(":")[2].split() for line in info.splitlines() if line.startswith("flags")), []))
    vector = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    return f"{name}, {os.cpu_count()} cores, {' '.join(vector) or 'no AVX2'}"


def networks(network, samples: np.ndarray) -> dict:
    """(runtime, precision) -> the network step as unetseg runs it."""
    from unetseg.model.runtimes import quantize, runtime_network

    int8 = quantize(network, samples, {"images": len(samples)})
    return {key: runtime_network(network, *key, int8) for key in RUNTIMES}


def rows_for(case: str, network, samples, run, count: int, repeats: int) -> list[tuple[str, str, float]]:
    from export import per_second

    return [(f"{runtime} {precision}", case, per_second(lambda: run(step), count, repeats))
            for (runtime, precision), step in networks(network, samples).items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from export import python_rule
    from sliding_window import make_model

    from unetseg.core.application import Application
    from unetseg.data.decoding import list_images, read_image
    from unetseg.data.resize import resize_image
    from unetseg.data.synthetic import generate_sample
    from unetseg.evaluate.calibration import calibration_samples
    from unetseg.model.modelfile import load_model
    from unetseg.model.unet import build_encoder_unet, build_unet
    from unetseg.preprocess.tfrecords import shard_files

    print(f"CPU {cpu()}; images/s, median of {args.repeats} after a warm-up")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sample = ROOT / "data" / "sample" / "train"
        if not sample.is_dir():
            sample = generate_sample(tmp / "sample", seed=0, num_objects=2, views_per_object=4, height=192,
                                     width=288, jpeg_quality=(60, 95)) / "train"
        images = np.stack([read_image(p) for p in list_images(sample)[:8]])
        trained = ROOT / "models" / "model.keras"
        default = load_model(trained) if trained.is_file() else build_unet((128, 128, 3), filters=16, batch_norm=True)
        size = tuple(default.input_shape[1:3])
        records = ROOT / "data" / "tfrecords"
        if trained.is_file() and records.is_dir():
            import pandas as pd

            pairs = pd.read_csv(ROOT / "data" / "split" / "pairs.csv")
            samples, _ = calibration_samples(shard_files(records, "train"), list(pairs.id[pairs.split == "train"]),
                                             Application("resize", size), 300, 0)
        else:
            samples = np.stack([resize_image(image, size) for image in images])
        floats = samples[:8].astype(np.float32) / 255
        for batch in (1, 8):
            rows += rows_for(f"default network, batch {batch}", default, samples,
                             lambda step, b=batch: step.predict_on_batch(floats[:b]), batch, args.repeats)
        resized = Application("resize", size)
        rows += rows_for("default, predict's rules, batch 8", default, samples,
                         lambda step: python_rule(step, resized, images), len(images), args.repeats)
        for case, network in (("seed network (64 filters), batch 8", build_unet((128, 128, 3))),
                              ("encoder network, batch 8", build_encoder_unet((128, 128, 3)))):
            rows += rows_for(case, network, samples, lambda step: step.predict_on_batch(floats), 8, args.repeats)
        if FULLRES.is_dir():
            tiled = make_model(tmp / "tiled.keras")
            application = Application("patches", (256, 256), 1.0, 0.5)
            image = read_image(list_images(FULLRES)[0])
            tiles = np.stack([image[y:y + 256, x:x + 256] for y in (0, 512, 1000) for x in (0, 600, 1200, 1600)])
            rows += rows_for(f"{image.shape[1]}x{image.shape[0]}, sliding window", tiled, tiles,
                             lambda step: python_rule(step, application, image[None]), 1, max(1, args.repeats // 2))
        else:
            print(f"{FULLRES} absent: no sliding-window rows")
    keras_rate = {case: rate for runtime, case, rate in rows if runtime == "keras float32"}
    print(f"| case | {' | '.join(f'{r} {p}' for r, p in RUNTIMES)} |")
    print(f"|---|{'---|' * len(RUNTIMES)}")
    for case in keras_rate:
        cells = [f"{rate:.2f} ({rate / keras_rate[case]:.2f}×)" for _, c, rate in rows if c == case]
        print(f"| {case} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
