"""Checking a whole dataset before any training: every problem at once, and a summary.

Each pair is decoded as preprocess will decode it (unetseg.imaging's rules, the
size check), in worker processes; every file that fails is listed with its problem
in one error, and nothing is skipped silently. The summary counts formats, modes and
sizes, and describes the masks' foreground fractions and non-binary pixels.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from unetseg.errors import DataError
from unetseg.imaging import load_pair
from unetseg.pairing import find_pairs
from unetseg.params import Data, worker_count


def _check_pair(job) -> dict:
    image_path, mask_path, data = job
    try:
        pair = load_pair(image_path, mask_path, data)
    except DataError as error:
        return {"problem": str(error)}
    return {
        "image": pair.image_info,
        "mask": pair.mask_info,
        "foreground": float(pair.mask.mean()),
        "nonbinary": pair.nonbinary,
        "pixels": int(pair.mask.size),
    }


def check_pairs(pairs, data: Data, workers: int = 0) -> tuple[dict, list[str]]:
    """(summary, problems) of decoding every pair, in `workers` processes (0: one per core)."""
    jobs = [(str(p.image), str(p.mask), data) for p in pairs]
    count = worker_count(workers)
    if count == 1 or len(jobs) < 8:
        results = list(map(_check_pair, jobs))
    else:
        with ProcessPoolExecutor(count) as pool:
            results = list(pool.map(_check_pair, jobs, chunksize=max(1, len(jobs) // (8 * count))))
    problems = [r["problem"] for r in results if "problem" in r]
    return summarize(r for r in results if "problem" not in r), problems


def _counts(infos, key) -> dict:
    return dict(sorted(Counter(key(i) for i in infos).items()))


def summarize(results) -> dict:
    """Counts per format, mode and size; foreground fractions; non-binary pixels."""
    results = list(results)
    summary = {"pairs": len(results)}
    for side in ("image", "mask"):
        infos = [r[side] for r in results]
        summary[f"{side}s"] = {
            "formats": _counts(infos, lambda i: i.format),
            "modes": _counts(infos, lambda i: i.mode),
            "sizes": _counts(infos, lambda i: f"{i.size[1]}x{i.size[0]}"),
        }
    if results:
        foreground = np.array([r["foreground"] for r in results])
        nonbinary = np.array([r["nonbinary"] for r in results])
        pixels = np.array([r["pixels"] for r in results])
        summary["foreground_fraction"] = {
            "min": float(foreground.min()),
            "mean": float(foreground.mean()),
            "max": float(foreground.max()),
            "empty_masks": int((foreground == 0).sum()),
        }
        summary["nonbinary_pixels"] = {
            "total": int(nonbinary.sum()),
            "masks_with_any": int((nonbinary > 0).sum()),
            "max_fraction": float((nonbinary / pixels).max()),
        }
    return summary


def check_data(images_dir, masks_dir, data: Data, workers: int = 0):
    """(pairs, summary, problems) of a dataset: pairing problems and file problems together."""
    pairs, problems = find_pairs(images_dir, masks_dir, data.mask_pattern, data.id_pattern)
    summary, file_problems = check_pairs(pairs, data, workers)
    return pairs, summary, problems + ([f"{len(file_problems)} file problem(s):"] if file_problems else []) + [
        f"  {p}" for p in file_problems
    ]


def raise_problems(problems: list[str]) -> None:
    if problems:
        raise DataError("the dataset has problems; nothing was written:\n" + "\n".join(problems))
