"""Validation dice with and without each inference refinement (flip TTA, largest component).

Runs in a project whose pipeline has run: scores models/model.keras on the
validation split of data/tfrecords, at the model's and the original resolution,
for the four combinations, side by side, with the time each evaluation took.

    python benchmarks/refinements.py [--threshold 0.5]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from unetseg.config.loading import load_params
from unetseg.config.params import Inference
from unetseg.evaluate.evaluation import evaluate_model

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args()
    params = load_params(ROOT / "params.yaml")
    settings = replace(params.evaluate, gallery_size=1)
    print("tta_flip largest_component   dice    iou  original_dice  original_iou  seconds")
    for tta_flip in (False, True):
        for largest in (False, True):
            start = time.perf_counter()
            m = evaluate_model(
                ROOT / "models/model.keras", ROOT / "data/tfrecords", ROOT / "data/split/pairs.csv",
                Inference(args.threshold, tta_flip, largest), params.data, settings,
            ).metrics
            print(f"{tta_flip!s:>8} {largest!s:>17}  {m['dice']:.4f} {m['iou']:.4f}  {m['original_dice']:13.4f}"
                  f"  {m['original_iou']:12.4f}  {time.perf_counter() - start:7.1f}")


if __name__ == "__main__":
    main()
