"""Time of the validation pass (`unetseg check-data`, split's check) per 1,000 pairs.

Checks a dataset folder, or N copies (links) of the Carvana full-resolution pair,
with 1 worker and with all cores, and prints seconds per 1,000 pairs.

    python benchmarks/check_data.py                      # ../shared carvana-sample, isbi, and fullres x 200
    python benchmarks/check_data.py --copies 500
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from unetseg.config.params import Data
from unetseg.data.checking import check_data

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def data(images, masks, pattern) -> Data:
    return Data(str(images), str(masks), pattern, "", 100_000_000, 0.05, False)


def measure(name, images, masks, pattern) -> None:
    for workers in (1, os.cpu_count()):
        start = time.perf_counter()
        check = check_data(images, masks, data(images, masks, pattern), workers)
        pairs, problems = check.pairs, check.problems
        seconds = time.perf_counter() - start
        print(f"{name}: {len(pairs)} pairs, {workers} worker(s): {seconds:.2f} s = "
              f"{1000 * seconds / len(pairs):.1f} s per 1,000 pairs; problems: {len(problems)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=200, help="copies of the full-resolution pair")
    args = parser.parse_args()
    measure("carvana-sample 512x512", SHARED / "carvana-sample/train", SHARED / "carvana-sample/train_masks",
            "{stem}_mask.gif")
    measure("isbi2012 512x512", SHARED / "isbi2012-membranes/images", SHARED / "isbi2012-membranes/masks",
            "{stem}.png")
    full = SHARED / "carvana-fullres"
    image, mask = next((full / "train").iterdir()), next((full / "train_masks").iterdir())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "train").mkdir()
        (root / "train_masks").mkdir()
        for i in range(args.copies):
            (root / "train" / f"car{i:04d}_01.jpg").symlink_to(image)
            (root / "train_masks" / f"car{i:04d}_01_mask.gif").symlink_to(mask)
        measure("carvana 1918x1280", root / "train", root / "train_masks", "{stem}_mask.gif")


if __name__ == "__main__":
    main()
