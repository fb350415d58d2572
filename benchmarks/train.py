"""Training throughput of the seed model and the default model, and the FLOP rate it reaches.

For each model, times training steps on in-memory batches (after warm-up) and
reports images/s and GFLOP/s, counting a training step as 3x the forward pass's
floating-point operations (forward, and backward for inputs and weights), with the
convolutions' multiply-adds counted analytically from the layers. The reference is
a large float32 matrix product (NumPy's sgemm) on the same machine, in the same run.

    python benchmarks/train.py [--steps 6]
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np

from unetseg.model import build_unet


def forward_flops(model: keras.Model) -> float:
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


def training_rate(filters: int, batch: int, steps: int, size: int = 128) -> tuple[float, float]:
    keras.utils.set_random_seed(0)
    model = build_unet((size, size, 3), filters=filters)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    x = np.random.rand(batch, size, size, 3).astype(np.float32)
    y = (np.random.rand(batch, size, size, 1) > 0.5).astype(np.float32)
    model.train_on_batch(x, y)  # trace and warm up
    model.train_on_batch(x, y)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    rate = steps * batch / (time.perf_counter() - start)
    return rate, rate * 3 * forward_flops(model) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    peak = sgemm_gflops()
    print(f"float32 matrix product (NumPy sgemm, 4096^2): {peak:.0f} GFLOP/s")
    for name, filters, batch in (("seed model (64 filters, batch 32)", 64, 32), ("default (16 filters, batch 16)", 16, 16)):
        rate, gflops = training_rate(filters, batch, args.steps)
        print(f"{name}: {rate:.1f} images/s, {gflops:.0f} GFLOP/s = {gflops / peak:.0%} of the matrix product")
    print(f"float32 matrix product again: {sgemm_gflops():.0f} GFLOP/s")


if __name__ == "__main__":
    main()
