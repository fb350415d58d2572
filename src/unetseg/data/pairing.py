"""Pairing each image with its mask by a file-name pattern.

The mask of image `<stem>.<ext>` is `data.mask_pattern` with `{stem}` replaced by
the stem and `{id}` by the image's id: the first group of `data.id_pattern` matched
in the stem, or the whole stem when that is empty. So `{stem}_mask.gif` pairs
Carvana, `{stem}.png` same-name masks, and id pattern `^(\\d+)_` with mask pattern
`{id}_manual1.gif` pairs `21_training.tif` with `21_manual1.gif`. The pattern may
hold `*` and `?` wildcards; it must then match exactly one file. Only image files
count in either folder: hidden files (".DS_Store", "._x.jpg") and files of other
kinds (a README, Thumbs.db) are left out.
"""

from __future__ import annotations

import fnmatch
import glob
import re
from dataclasses import dataclass
from pathlib import Path

from unetseg.core.errors import DataError
from unetseg.data.decoding import list_images, no_images_found


@dataclass(frozen=True)
class Pair:
    id: str
    image: Path
    mask: Path


def _listing(title: str, lines: list[str]) -> str:
    return f"{len(lines)} {title}:\n" + "\n".join(f"  {line}" for line in lines)


def find_pairs(images_dir, masks_dir, mask_pattern: str, id_pattern: str = "") -> tuple[list[Pair], list[str]]:
    """(pairs, problems): every image without a mask, every mask without an image, every id
    with two candidate masks or two images, each described in the problems."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for folder, what in ((images_dir, "images"), (masks_dir, "masks")):
        if not folder.is_dir():
            raise DataError(f"{folder}: {what} folder not found (data.{what}_dir)")
    id_regex = re.compile(id_pattern) if id_pattern else None
    mask_files = {p.name: p for p in list_images(masks_dir)}  # a README or Thumbs.db beside them is no mask
    images = list_images(images_dir)

    wildcard = any(c in mask_pattern for c in "*?[")
    expected = {}  # image -> (id, mask name pattern)
    no_id = []
    for image in images:
        match = id_regex.search(image.stem) if id_regex else None
        if id_regex and (match is None or not match.group(1)):
            no_id.append(f"{image} (data.id_pattern {id_pattern!r})")
            continue
        id_ = match.group(1) if match else image.stem
        # names are literal text inside a wildcard pattern ("scan[1].png" is no character class)
        stem, literal = (glob.escape(image.stem), glob.escape(id_)) if wildcard else (image.stem, id_)
        expected[image] = (id_, mask_pattern.format(stem=stem, id=literal))
    if images_dir.resolve() == masks_dir.resolve():  # masks beside their images are not images
        expected = {
            i: e for i, e in expected.items()
            if not any(fnmatch.fnmatchcase(i.name, other) if wildcard else i.name == other
                       for j, (_, other) in expected.items() if j != i)
        }

    pairs, missing, ambiguous, duplicate, ids = [], [], [], [], {}
    claimed = set()  # masks that some image matches, alone or among others
    for image, (id_, pattern) in expected.items():
        if id_ in ids:
            duplicate.append(f"{image} and {ids[id_]} share the id {id_!r}")
            continue
        ids[id_] = image
        candidates = fnmatch.filter(mask_files, pattern) if wildcard else (
            [pattern] if pattern in mask_files else []
        )
        claimed.update(candidates)
        if not candidates:
            missing.append(f"{image} (expected {masks_dir / pattern})")
        elif len(candidates) > 1:
            ambiguous.append(f"{image}: {', '.join(sorted(candidates))}")
        else:
            pairs.append(Pair(id_, image, mask_files[candidates[0]]))
    orphans = [] if images_dir.resolve() == masks_dir.resolve() else [
        str(p) for name, p in mask_files.items() if name not in claimed
    ]
    problems = []
    for title, lines in (
        ("image(s) without a mask", missing),
        (f"mask(s) without an image (data.mask_pattern {mask_pattern!r})", orphans),
        ("image(s) with more than one candidate mask", ambiguous),
        ("image(s) with an id that another image has", duplicate),
        ("image(s) in which data.id_pattern finds no id", no_id),
    ):
        if lines:
            problems.append(_listing(title, lines))
    if not images:
        problems.append(no_images_found(images_dir, "images"))
    return pairs, problems


def pair_images_with_masks(images_dir, masks_dir, mask_pattern: str, id_pattern: str = "") -> list[Pair]:
    """The pairs of `find_pairs`, or one error that lists every pairing problem."""
    pairs, problems = find_pairs(images_dir, masks_dir, mask_pattern, id_pattern)
    if problems:
        raise DataError("unpaired files:\n" + "\n".join(problems))
    return pairs
