"""Pairing each image with its mask by a file-name pattern."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from unetseg.errors import DataError
from unetseg.imaging import IMAGE_SUFFIXES


@dataclass(frozen=True)
class Pair:
    id: str
    image: Path
    mask: Path


def _visible_files(folder: Path) -> list[Path]:
    """Files of a folder, hidden ones (".DS_Store", "._x.jpg") left out."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def pair_images_with_masks(images_dir: str | Path, masks_dir: str | Path, mask_pattern: str) -> list[Pair]:
    """Pair `<stem>.<ext>` in `images_dir` with `mask_pattern.format(stem=stem)` in `masks_dir`.

    Every image must have its mask and every file in `masks_dir` must be some image's
    mask: all unpaired files are reported together in one error.
    """
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for folder, what in ((images_dir, "images"), (masks_dir, "masks")):
        if not folder.is_dir():
            raise DataError(f"{folder}: {what} folder not found (data.{what}_dir)")
    masks = {p.name: p for p in _visible_files(masks_dir)}
    images = [p for p in _visible_files(images_dir) if p.suffix.lower() in IMAGE_SUFFIXES]
    if images_dir.resolve() == masks_dir.resolve():  # masks beside their images
        images = [p for p in images if p.name not in {mask_pattern.format(stem=i.stem) for i in images}]

    pairs, missing, seen = [], [], {}
    for image in images:
        mask_name = mask_pattern.format(stem=image.stem)
        if image.stem in seen:
            raise DataError(
                f"{image}: same id {image.stem!r} as {seen[image.stem]}; ids (file names without "
                "extension) must be unique"
            )
        seen[image.stem] = image
        if mask_name in masks:
            pairs.append(Pair(image.stem, image, masks.pop(mask_name)))
        else:
            missing.append(f"  {image} (expected {masks_dir / mask_name})")
    if images_dir.resolve() == masks_dir.resolve():
        masks = {}
    problems = []
    if missing:
        problems.append(f"{len(missing)} image(s) without a mask:\n" + "\n".join(missing))
    if masks:
        problems.append(
            f"{len(masks)} mask(s) without an image (pattern {mask_pattern!r}):\n"
            + "\n".join(f"  {p}" for p in masks.values())
        )
    if problems:
        raise DataError("unpaired files (data.mask_pattern):\n" + "\n".join(problems))
    if not pairs:
        raise DataError(
            f"{images_dir}: no images found (extensions: {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return pairs
