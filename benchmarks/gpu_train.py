"""Seed-model training images/s in float32 and in mixed precision, on whatever Keras backend runs.

Made for the lent GPU machine, which has JAX but no TensorFlow: `benchmarks/gpu.sh`
runs it under KERAS_BACKEND=jax. The model, loss and metrics are unetseg's own (pure
Keras 3); the data are in-memory arrays, so this measures the model, not the input
pipeline (whose CPU throughput `benchmarks/input_pipeline.py` reports).

    KERAS_BACKEND=jax python benchmarks/gpu_train.py [--images 1024] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from unetseg.model.unet import build_unet  # noqa: E402
from unetseg.train.losses import training_metrics  # noqa: E402


def images_per_second(policy: str, images: int, batch: int, epochs: int) -> float:
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    model = build_unet((128, 128, 3), filters=64)  # the seed's network
    model.compile(optimizer=keras.optimizers.RMSprop(1e-5), loss="binary_crossentropy", metrics=training_metrics())
    x = np.random.rand(images, 128, 128, 3).astype(np.float32)
    y = (np.random.rand(images, 128, 128, 1) > 0.5).astype(np.float32)
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # compile and warm up
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0)
    return images * epochs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = {"backend": keras.backend.backend(), "keras": keras.__version__, "batch": args.batch}
    try:
        import jax

        result["devices"] = [str(d) for d in jax.devices()]
    except ImportError:
        pass
    for policy in ("float32", "mixed_float16"):
        result[f"{policy}_images_per_s"] = round(images_per_second(policy, args.images, args.batch, args.epochs), 1)
        print(json.dumps(result), flush=True)
    if args.out:
        (args.out / "gpu.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
