"""What several classes cost in training: the default model at K = 1 (sigmoid, BCE + dice) against
K = 8 (softmax, cross-entropy + dice, mean IoU tracked), same size, same batch, in one process.

Both models compile with unetseg's own losses and training metrics, train on the same
in-memory batches (the K = 8 labels with 1 % ignored pixels), and are timed in
alternating rounds after warm-up, so drifts of a shared machine hit both alike.

    python benchmarks/classes.py [--rounds 5] [--steps 4] [--size 128]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def compiled(num_classes: int, size: int):
    import keras

    from unetseg.model.unet import build_unet
    from unetseg.train.losses import get_loss, training_metrics

    keras.utils.set_random_seed(0)
    model = build_unet((size, size, 3), num_classes=num_classes, filters=16,
                       output_activation="sigmoid" if num_classes == 1 else "softmax")
    loss = "bce_dice" if num_classes == 1 else "crossentropy_dice"
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=get_loss(loss, num_classes),
                  metrics=training_metrics(num_classes))
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    from unetseg.data.classes import IGNORE

    rng = np.random.default_rng(0)
    x = rng.random((args.batch, args.size, args.size, 3), dtype=np.float32)
    binary = (rng.random((args.batch, args.size, args.size, 1)) > 0.5).astype(np.float32)
    labels = rng.integers(0, 8, (args.batch, args.size, args.size, 1)).astype(np.float32)
    labels[rng.random(labels.shape) < 0.01] = IGNORE
    runs = {1: (compiled(1, args.size), binary), 8: (compiled(8, args.size), labels)}
    for model, y in runs.values():
        for _ in range(2):  # trace and warm up
            model.train_on_batch(x, y)
    seconds = {k: [] for k in runs}
    for _ in range(args.rounds):
        for k, (model, y) in runs.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                model.train_on_batch(x, y)
            seconds[k].append(time.perf_counter() - start)
    images = args.steps * args.batch
    rates = {k: images / np.median(s) for k, s in seconds.items()}
    cpu = next((line.partition(":")[2].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"CPU: {cpu}, {os.cpu_count()} cores; {args.size}x{args.size}, batch {args.batch}, 16 filters; "
          f"median of {args.rounds} rounds of {args.steps} steps")
    for k, rate in rates.items():
        print(f"K = {k}: {rate:6.1f} training images/s  (rounds: {', '.join(f'{images / s:.1f}' for s in seconds[k])})")
    print(f"time per image, K = 8 / K = 1: {rates[1] / rates[8]:.3f}")


if __name__ == "__main__":
    main()
