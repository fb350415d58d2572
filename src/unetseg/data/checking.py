"""Checking a whole dataset before any training: every problem at once, and a summary.

Each pair is decoded as preprocess will decode it (unetseg.data.masks's rules, the
size check), in worker processes; every file that fails is listed with its problem
in one error, and nothing is skipped silently. The summary counts formats, modes and
sizes, and describes the masks' foreground fractions and non-binary pixels, or, with
named classes, each class's pixels and images per split (the class census).
"""

from __future__ import annotations

import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from unetseg.config.params import Data, worker_count
from unetseg.core.constants import IGNORE
from unetseg.core.errors import DataError, listed
from unetseg.data.classes import ClassMap, pixel_counts
from unetseg.data.decoding import list_images, nested_images, no_images_found
from unetseg.data.masks import load_pair
from unetseg.data.naming import describe_names, find_naming, nearest_naming, second_masks
from unetseg.data.pairing import find_pairs


def _check_pair(job) -> dict:
    image_path, mask_path, data, classes = job
    try:
        pair = load_pair(image_path, mask_path, data, classes)
    except DataError as error:
        return {"problem": str(error)}
    result = {
        "image": pair.image_info, "mask": pair.mask_info, "nonbinary": pair.nonbinary, "pixels": int(pair.mask.size)
    }
    if classes is None:
        result["foreground"] = float(pair.mask.mean())
        result["bright_background"] = pair.bright_background
    else:
        result["class_pixels"] = pixel_counts(pair.mask, classes.num_classes)
        result["ignored"] = int(np.count_nonzero(pair.mask == IGNORE))
    return result


@dataclass
class DataCheck:
    pairs: list
    summary: dict
    problems: list[str]
    class_pixels: dict[str, np.ndarray] = field(default_factory=dict)  # pair id -> pixels per class


def map_in_workers(function, jobs: list, workers: int = 0, desc: str | None = None) -> list:
    """`function` of each job, in order, in `workers` processes (0: one per core; a few jobs: here); with
    `desc`, a progress bar on a terminal (a large dataset takes minutes to read)."""
    count = worker_count(workers)
    bar = partial(tqdm, total=len(jobs), desc=desc, unit="pair", disable=None if desc else True)  # None: a tty only
    if count == 1 or len(jobs) < 8:
        return list(bar(map(function, jobs)))
    try:
        with ProcessPoolExecutor(count) as pool:
            return list(bar(pool.map(function, jobs, chunksize=max(1, len(jobs) // (8 * count)))))
    except BrokenProcessPool:  # killed by the system, most often for memory: large images in many processes
        raise DataError(f"a process of the {count} reading the data died (out of memory, or a file that crashes "
                        f"its decoder): set base.workers below {count}, so that fewer images are read at once, "
                        "or 1 to see the file") from None


def check_pairs(pairs, data: Data, workers: int = 0, classes: ClassMap | None = None) -> DataCheck:
    """Decode every pair, in `workers` processes (0: one per core); the pairs that failed are problems."""
    results = map_in_workers(_check_pair, [(str(p.image), str(p.mask), data, classes) for p in pairs], workers,
                             "checking pairs")
    problems = [r["problem"] for r in results if "problem" in r]
    good = [(pair, r) for pair, r in zip(pairs, results) if "problem" not in r]
    class_pixels = {pair.id: r["class_pixels"] for pair, r in good if "class_pixels" in r}
    summary = summarize([r for _, r in good], classes)
    inverted = [str(pair.mask) for pair, r in good if r.get("bright_background")]
    if inverted:
        warning = (f"{len(inverted)} palette mask(s) whose background index (the lower, normally 0) has the "
                   f"brighter colour: if the objects are drawn in the bright colour, the model learns them "
                   f"inverted: {listed(inverted)}")
        summary["warnings"] = [warning]
        print(f"warning: {warning}", file=sys.stderr)
    return DataCheck(list(pairs), summary, problems, class_pixels)



def _counts(infos, key) -> dict:
    return dict(sorted(Counter(key(i) for i in infos).items()))


def summarize(results: list[dict], classes: ClassMap | None = None) -> dict:
    """Counts per format, mode and size; foreground fractions and non-binary pixels, or with classes
    the ignored pixels (the census per class comes with the split: `class_census`)."""
    summary = {"pairs": len(results)}
    for side in ("image", "mask"):
        infos = [r[side] for r in results]
        summary[f"{side}s"] = {
            "formats": _counts(infos, lambda i: i.format),
            "modes": _counts(infos, lambda i: i.mode),
            "sizes": _counts(infos, lambda i: f"{i.size[1]}x{i.size[0]}"),
        }
    if results and classes is not None:
        ignored = np.array([r["ignored"] for r in results])
        summary["ignored_pixels"] = {
            "fraction": float(ignored.sum() / sum(r["pixels"] for r in results)),
            "masks_with_any": int((ignored > 0).sum()),
        }
    elif results:
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


def check_data(images_dir, masks_dir, data: Data, workers: int = 0, classes: ClassMap | None = None) -> DataCheck:
    """A dataset's pairs, summary and problems: pairing problems and file problems together, with the
    patterns that would pair the names when these do not."""
    pairs, problems = find_pairs(images_dir, masks_dir, data.mask_pattern, data.id_pattern)
    naming = find_naming(images_dir, masks_dir) if problems else None
    if naming is not None and not find_pairs(images_dir, masks_dir, naming.mask_pattern, naming.id_pattern)[1]:
        problems.append(f"hint: {describe_names(images_dir, masks_dir, 1)}: {naming.options()} pairs every file "
                        f"(data.mask_pattern {naming.mask_pattern!r}, data.id_pattern {naming.id_pattern!r})")
    elif problems and (second := second_masks(images_dir, masks_dir)):
        problems.append(f"hint: {second}")
    elif problems and (near := nearest_naming(images_dir, masks_dir)) and near.mask_pattern != data.mask_pattern:
        paired = len(find_pairs(images_dir, masks_dir, near.mask_pattern)[0])
        problems.append(f"hint: {describe_names(images_dir, masks_dir, 1)}: {near.options()} pairs {paired} of "
                        f"{len(list_images(Path(images_dir)))} images (run check-data with it to list the rest)")
    elif problems and list_images(Path(images_dir)) and not list_images(Path(masks_dir)):
        # none but in subfolders (a README beside them), or masks of a format unetseg does not read
        problems.append(no_images_found(masks_dir, "masks") if nested_images(masks_dir)
                        else f"hint: {describe_names(images_dir, masks_dir)}")
    check = check_pairs(pairs, data, workers, classes)
    file_problems = check.problems
    check.problems = problems + ([f"{len(file_problems)} file problem(s):"] if file_problems else []) + [
        f"  {p}" for p in file_problems
    ]
    return check


def class_census(class_pixels: dict[str, np.ndarray], splits: dict[str, str], classes: ClassMap) -> dict:
    """Per split and class: the fraction of the split's labelled pixels, and the images that have it.

    `splits` maps each pair id to its split. A class with no pixel in the validation
    split cannot be scored there: it is listed under "warnings" (and printed).
    """
    census, warnings = {}, []
    for split in sorted(set(splits.values())):
        counts = np.stack([class_pixels[i] for i, s in splits.items() if s == split])
        total = max(int(counts.sum()), 1)
        census[split] = {
            name: {"pixel_fraction": float(counts[:, k].sum() / total), "images": int((counts[:, k] > 0).sum())}
            for k, name in enumerate(classes.names)
        }
    for split, classes_of_split in census.items():
        for name, found in classes_of_split.items():
            if found["images"] == 0:
                warnings.append(f"class {name!r} has no pixel in the {split} split")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return {"classes": census, **({"warnings": warnings} if warnings else {})}


def raise_problems(problems: list[str]) -> None:
    if problems:
        raise DataError("the dataset has problems; nothing was written:\n" + "\n".join(problems))
