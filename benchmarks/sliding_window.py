"""What the sliding window costs: `unetseg predict` on a full-resolution Carvana image, the
stitching and blending overhead against the model's own forward pass, and the peak memory of
one 10,000 x 10,000 image.

The model is the default U-Net (16 filters, 4 levels) built for any input size and saved
with a patches record (scale 1.0, 256 x 256 tiles, overlap 0.5); its weights are untrained,
which changes no timing. In one process, for the 1918 x 1280 image of
../shared/datasets/carvana-fullres: the sliding window as predict runs it, then the model
alone on exactly the same tiles in the same batches; their ratio is the overhead. Then
`unetseg predict` on a 10,000 x 10,000 image (the Carvana image resized), in a child
process whose peak resident memory is read from the kernel.

    python benchmarks/sliding_window.py [--repeats 3] [--skip-large]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FULLRES = ROOT.parent / "shared" / "datasets" / "carvana-fullres" / "train"
TILE, OVERLAP, BATCH = (256, 256), 0.5, 8


def make_model(path: Path):
    import keras

    from unetseg.core.application import Application
    from unetseg.model.modelfile import save_model
    from unetseg.model.unet import build_unet

    keras.utils.set_random_seed(0)
    model = build_unet((None, None, 3), filters=16)
    save_model(model, path, None, Application("patches", TILE, 1.0, OVERLAP))
    return model


def overhead(model, image: np.ndarray, repeats: int) -> tuple[float, float, int]:
    """(seconds of the sliding window, seconds of the model on the same tiles, tiles)."""
    from unetseg.data import tiling

    tiles = []
    original = tiling.sliding_window

    def record(tile_batch):
        tiles.append(tile_batch.copy())
        return np.asarray(model.predict_on_batch(tile_batch))

    original(image, record, TILE, OVERLAP, BATCH)  # warm-up, and the tiles it feeds the model
    window, alone = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        original(image, lambda t: np.asarray(model.predict_on_batch(t)), TILE, OVERLAP, BATCH)
        window.append(time.perf_counter() - start)
        start = time.perf_counter()
        for batch in tiles:
            np.asarray(model.predict_on_batch(batch))
        alone.append(time.perf_counter() - start)
    return float(np.median(window)), float(np.median(alone)), sum(len(t) for t in tiles)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-large", action="store_true")
    args = parser.parse_args()
    from PIL import Image

    from unetseg.cli import main as unetseg
    from unetseg.data.decoding import read_image

    cpu = next((line.partition(":")[2].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"CPU: {cpu}; tiles {TILE[0]}x{TILE[1]}, overlap {OVERLAP}, batches of {BATCH}")
    source = sorted(FULLRES.glob("*.jpg"))[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = make_model(tmp / "model.keras")
        image = read_image(source)
        window, alone, count = overhead(model, image, args.repeats)
        print(f"{source.name} {image.shape[1]}x{image.shape[0]}: {count} tiles; sliding window {window:.2f} s, "
              f"the model alone on the same tiles {alone:.2f} s: ratio {window / alone:.3f}")
        (tmp / "in").mkdir()
        Image.fromarray(image).save(tmp / "in" / source.name, quality=95)
        start = time.perf_counter()
        assert unetseg(["predict", str(tmp / "model.keras"), str(tmp / "in"), str(tmp / "out")]) == 0
        seconds = time.perf_counter() - start
        print(f"unetseg predict (read, tiles, masks and overlay written): {seconds:.2f} s = "
              f"{image.shape[0] * image.shape[1] / 1e6 / seconds:.2f} megapixels/s")
        if args.skip_large:
            return
        (tmp / "large").mkdir()
        Image.fromarray(image).resize((10_000, 10_000), Image.BILINEAR).save(tmp / "large" / "large.jpg", quality=90)
        del image
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "unetseg.cli", "predict", str(tmp / "model.keras"), str(tmp / "large"),
                        str(tmp / "large_out"), "--no-overlays"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # KiB to GiB
        print(f"10,000 x 10,000 (100 megapixels): unetseg predict --no-overlays {seconds:.0f} s, "
              f"peak resident memory {peak:.2f} GiB")


if __name__ == "__main__":
    main()
