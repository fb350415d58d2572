"""Training and inference throughput with TensorFlow's CPU kernel settings off and on, side by side.

For the seed model (64 filters, batch 32), 16 filters at batch 16 without batch
normalisation (the default before the training recipe), and the default model (16
filters, batch normalisation once a block, batch 8) at 128x128, times training steps
on in-memory batches (after warm-up) and reports images/s and GFLOP/s, counting a training step as 3x the forward pass's
floating-point operations (forward, and backward for inputs and weights), with the
convolutions' multiply-adds counted analytically from the layers; and the default
model's inference rate (batches of 16, as evaluate predicts). The reference is a
large float32 matrix product (NumPy's sgemm) on the same machine, in the same run.
Each setting runs in its own process, since TensorFlow reads it when it loads:
TF_ENABLE_ONEDNN_OPTS=0 (TensorFlow's slow path) and =1 (what unetseg chooses on an
x86-64 CPU with AVX2 and FMA; see unetseg.core.cpu).

    python benchmarks/train.py [--steps 6]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

VECTOR_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")


def forward_flops(model) -> float:
    """Floating-point operations of one forward pass of one image: 2 per multiply-add of the convolutions."""
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Conv2D":
            _, height, width, channels_out = layer.output.shape
            kernel = np.prod(layer.kernel_size) * layer.input.shape[-1]
            total += 2 * height * width * channels_out * kernel
        elif kind == "Conv2DTranspose":
            _, height, width, channels_in = layer.input.shape
            total += 2 * height * width * channels_in * np.prod(layer.kernel_size) * layer.filters
    return float(total)


def sgemm_gflops(n: int = 4096, repeats: int = 3) -> float:
    a, b = np.random.rand(n, n).astype(np.float32), np.random.rand(n, n).astype(np.float32)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def _rates(filters: int, batch: int, steps: int, size: int = 128, batch_norm: bool = False) -> dict:
    import keras

    from unetseg.model.unet import build_unet

    keras.utils.set_random_seed(0)
    model = build_unet((size, size, 3), filters=filters, batch_norm=batch_norm)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    x = np.random.rand(batch, size, size, 3).astype(np.float32)
    y = (np.random.rand(batch, size, size, 1) > 0.5).astype(np.float32)
    for _ in range(2):  # trace and warm up
        model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    train = steps * batch / (time.perf_counter() - start)
    x16 = x[:16] if batch >= 16 else np.concatenate([x] * (16 // batch))
    for _ in range(2):
        model.predict_on_batch(x16)
    start = time.perf_counter()
    for _ in range(steps * 2):
        model.predict_on_batch(x16)
    infer = steps * 2 * len(x16) / (time.perf_counter() - start)
    flops = forward_flops(model)
    return {"train": train, "train_gflops": train * 3 * flops / 1e9, "infer": infer, "infer_gflops": infer * flops / 1e9}


def worker(steps: int) -> None:
    import tensorflow as tf

    result = {"onednn_env": os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "tf": tf.__version__,
              "seed": _rates(64, 32, max(2, steps // 2)), "plain": _rates(16, 16, steps),
              "default": _rates(16, 8, steps, batch_norm=True)}
    print("RESULT " + json.dumps(result))


def _cpu() -> tuple[str, list[str]]:
    from unetseg.core.cpu import cpu_flags

    name = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    flags = cpu_flags()
    return name, [f for f in VECTOR_FLAGS if f in flags]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.steps)
    name, flags = _cpu()
    print(f"CPU: {name}, {os.cpu_count()} cores; vector features: {' '.join(flags) or 'none found'}")
    peak = sgemm_gflops()
    print(f"float32 matrix product (NumPy sgemm, 4096^2): {peak:.0f} GFLOP/s")
    results = {}
    for setting in ("0", "1"):
        env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": setting}
        out = subprocess.run([sys.executable, __file__, "--worker", "--steps", str(args.steps)], env=env,
                             capture_output=True, text=True, check=True).stdout
        results[setting] = json.loads(out.split("RESULT ", 1)[1])
    print(f"{'':38} {'oneDNN off (=0)':>22} {'oneDNN on (=1)':>22}  on/off")
    rows = (("seed model, training", "seed", "train"), ("16 filters, batch 16, training", "plain", "train"),
            ("default model, training", "default", "train"),
            ("default model, inference (batch 16)", "default", "infer"))
    for label, model, kind in rows:
        cells = []
        for setting in ("0", "1"):
            r = results[setting][model]
            cells.append(f"{r[kind]:6.1f} img/s {r[kind + '_gflops'] / peak:4.0%} sgemm")
        ratio = results["1"][model][kind] / results["0"][model][kind]
        print(f"{label:38} {cells[0]:>22} {cells[1]:>22}  {ratio:5.2f}x")
    print(f"float32 matrix product again: {sgemm_gflops():.0f} GFLOP/s")


if __name__ == "__main__":
    main()
