"""What int8 costs and gives on this machine, for the plan's schedule (unetseg.plan.schedule's INT8_* constants).

For three networks as training builds them (untrained: weights change no timing) — the
default U-Net at 128 x 128 and at 256 x 256 and the EfficientNet-Lite0 encoder U-Net at
192 x 256 — in one process: seconds per image of the Keras network (batches of 8, as the
plan times it), of OpenVINO float32 and of the int8 network; and the seconds that NNCF's
quantization takes with 8, 32 and 128 calibration samples (random images), from which a
fixed part (converting, compiling) and a cost per sample follow by least squares. Prints one
JSON line per network, with the int8 speed-up over Keras and the cost of one calibration
sample in Keras inference items, and the CPU.

    python benchmarks/quantize_cost.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "benchmarks")]
CASES = [("default U-Net 128x128", "none", (128, 128)), ("default U-Net 256x256", "none", (256, 256)),
         ("efficientnet_lite0 encoder 192x256", "efficientnet_lite0", (192, 256))]
SAMPLES = (8, 32, 128)
BATCH = 8


def per_item(step, images: np.ndarray, repeats: int) -> float:
    """Seconds an image, the median of `repeats` batches after a warm-up (benchmarks/export.py's timing)."""
    from export import per_second

    return 1.0 / per_second(lambda: step(images), len(images), repeats)


def measure(encoder: str, size: tuple[int, int], repeats: int) -> dict:
    import keras

    from unetseg.config.loading import load_params
    from unetseg.model.runtimes import quantize, runtime_network
    from unetseg.train.training import build_model

    params = load_params(ROOT / "params.yaml")
    params = dataclasses.replace(
        params, model=dataclasses.replace(params.model, encoder=encoder, encoder_weights="none"),
        preprocess=dataclasses.replace(params.preprocess, image_size=list(size)),
        patches=dataclasses.replace(params.patches, enabled=False))
    model = build_model(params, None, steps_per_epoch=100)
    rng = np.random.default_rng(0)
    images = rng.random((BATCH, *size, 3), dtype=np.float32)
    seconds = {}
    int8 = None
    for count in SAMPLES:
        samples = rng.integers(0, 256, (count, *size, 3), dtype=np.uint8)
        start = time.perf_counter()
        int8 = quantize(model, samples, {"images": count})
        seconds[count] = time.perf_counter() - start
    slope, fixed = np.polyfit(list(seconds), list(seconds.values()), 1)
    keras_item = per_item(model.predict_on_batch, images, repeats)
    float_item = per_item(runtime_network(model, "openvino", "float32").predict_on_batch, images, repeats)
    int8_item = per_item(runtime_network(model, "openvino", "int8", int8).predict_on_batch, images, repeats)
    keras.backend.clear_session()
    return {"keras_item_s": round(keras_item, 4), "openvino_float32_item_s": round(float_item, 4),
            "int8_item_s": round(int8_item, 4), "int8_speedup": round(keras_item / int8_item, 2),
            "quantize_s": {n: round(s, 1) for n, s in seconds.items()}, "quantize_fixed_s": round(fixed, 1),
            "per_sample_s": round(slope, 4), "per_sample_in_keras_items": round(slope / keras_item, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from runtimes import cpu

    for name, encoder, size in CASES:
        print(json.dumps({"network": name, "cpu": cpu(), **measure(encoder, size, args.repeats)}), flush=True)


if __name__ == "__main__":
    main()
