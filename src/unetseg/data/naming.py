"""How a dataset's files are named, found from the two folders: the pairing patterns and the groups.

A name is read as a fixed head, a varying middle and a fixed tail, the head ending
and the tail starting at a separator (not a letter or digit), so that `21_training`
reads as `21` + `_training` and never splits a number. Images and masks pair when
the middles of the image stems and of the mask names are the same set: the mask
pattern is the masks' head, `{stem}` or `{id}`, and their tail; `data.id_pattern`
is needed only when the image stems have a head or a tail of their own. The rule
finds same names with another extension (`{stem}.png`), suffixes (`{stem}_mask.gif`,
`{stem}_L.png`), prefixes (`mask_{id}.png` for `img_7.png`) and shared ids
(`{id}_manual1.gif` for `21_training.tif`), and nothing it is not sure of.
"""

from __future__ import annotations

import fnmatch
import glob
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from unetseg.data.decoding import IMAGE_SUFFIXES, list_images, visible_files

SEPARATORS = "_-. "
SECOND_MASK = re.compile(r"(.+)[_\-. ]\(?\d+\)?")  # another file's name, then a number: a second mask
MIN_GROUPS = 5  # fewer groups than this make a validation side of one or two groups: split by image instead


@dataclass(frozen=True)
class Naming:
    mask_pattern: str
    id_pattern: str  # "" when the id is the stem

    def options(self) -> str:
        """The `unetseg check-data` options that set this naming."""
        text = f"--mask-pattern '{self.mask_pattern}'"
        return text + (f" --id-pattern '{self.id_pattern}'" if self.id_pattern else "")


def _head(names: list[str]) -> str:
    """The longest common start of the names that ends at a separator (or is empty)."""
    first, last = min(names), max(names)
    length = next((i for i, (a, b) in enumerate(zip(first, last)) if a != b), min(len(first), len(last)))
    while length and first[length - 1] not in SEPARATORS:
        length -= 1
    return first[:length]


def _tail(names: list[str]) -> str:
    return _head([n[::-1] for n in names])[::-1]


def _split(names: list[str]) -> tuple[str, list[str], str]:
    """(head, middles, tail) of names; a single name is all middle."""
    if len(names) < 2:
        return "", list(names), ""
    head = _head(names)
    tail = _tail([n[len(head):] for n in names])
    return head, [n[len(head): len(n) - len(tail)] for n in names], tail


def _mask_names(masks: list[Path]) -> tuple[list[str], str]:
    """The masks' names without their extension, and the extension part of the pattern: the one
    extension they share, or `.*` when they have several."""
    suffixes = {p.suffix for p in masks}
    ending = suffixes.pop() if len(suffixes) == 1 else ".*"
    return [p.name[: len(p.name) - len(p.suffix)] for p in masks], ending


def find_naming(images_dir, masks_dir) -> Naming | None:
    """The pairing patterns under which every image has exactly one mask and every mask an image,
    or None when the names do not show one."""
    return _find(list_images(Path(images_dir)), list_images(Path(masks_dir)), _same(images_dir, masks_dir))


def second_masks(images_dir, masks_dir) -> str | None:
    """Where the names pair but for files named as an image's second mask (`3_mask_1.png` beside
    `3_mask.png`, as some sets save a mask per object): what they are and what to do, else None."""
    images, masks = list_images(Path(images_dir)), list_images(Path(masks_dir))
    by_stem = {p.stem: p for p in masks}
    extras = {p: by_stem[m.group(1)] for p in masks
              if (m := SECOND_MASK.fullmatch(p.stem)) and m.group(1) in by_stem}
    if not extras:
        return None
    same, rest = _same(images_dir, masks_dir), [p for p in images if p not in extras]
    naming = _find(rest, [p for p in masks if p not in extras], same)
    if same and naming is not None:  # in one folder the first file must be a mask of that pairing, not an image
        patterns = [naming.mask_pattern.format(stem=glob.escape(p.stem)) for p in rest]
        extras = {extra: first for extra, first in extras.items()
                  if any(fnmatch.fnmatchcase(first.name, pattern) for pattern in patterns)}
    if naming is None or not extras:
        return None
    extra, first = next(iter(extras.items()))
    return (f"{len(extras)} file(s) in {masks_dir} named as an image's second mask ({extra.name} beside "
            f"{first.name}): unetseg reads one mask an image ({naming.options()} pairs the others): merge each "
            "into its first mask (their union) and delete it, or move it out of the folder; or, if it is a "
            "mask of its own, add its image")


def _same(images_dir, masks_dir) -> bool:
    return Path(images_dir).resolve() == Path(masks_dir).resolve()


def _find(images: list[Path], masks: list[Path], same: bool) -> Naming | None:
    if same:
        return _beside(images)
    if not images or not masks:
        return None
    stems = [p.stem for p in images]
    mask_stems, ending = _mask_names(masks)
    if len(set(stems)) != len(stems) or len(set(mask_stems)) != len(mask_stems):
        return None
    if set(stems) == set(mask_stems):  # same names, another (or the same) extension
        return _naming("", "{stem}", ending)
    whole = _by_stem(stems, mask_stems, ending)  # the image's whole name in the mask's: ids stay the stems
    if whole is not None or len(images) < 2:
        return whole
    image_head, image_middles, image_tail = _split(stems)
    mask_head, mask_middles, mask_tail = _split(mask_stems)
    if set(image_middles) != set(mask_middles) or "" in image_middles:
        return None
    field = "{id}" if image_head or image_tail else "{stem}"
    id_pattern = f"^{re.escape(image_head)}(.+){re.escape(image_tail)}$" if field == "{id}" else ""
    return _naming(mask_head, field, mask_tail + ending, id_pattern)


def _beside(files: list[Path]) -> Naming | None:
    """Masks in the images' folder, named `<stem><suffix>`: the suffix that half the files carry after
    the stem of another file (`1_1.tif`, `1_1_mask.tif`)."""
    stems = {p.stem for p in files}
    suffixes = Counter()
    for stem in stems:
        for cut, character in enumerate(stem):
            if character in SEPARATORS and stem[:cut] in stems:
                suffixes[stem[cut:]] += 1
    for suffix, count in suffixes.most_common(1):
        masks = [p for p in files if p.stem.endswith(suffix) and p.stem[: -len(suffix)] in stems]
        if 2 * count == len(files) and len(masks) == count:
            return _naming("", "{stem}", suffix + _mask_names(masks)[1])
    return None


def _naming(head: str, field: str, tail: str, id_pattern: str = "") -> Naming | None:
    """A mask pattern of fixed text around the field; None when that text holds a wildcard, which the
    pattern would read as one (`*`, `?`, `[`). Braces are doubled, as str.format reads them."""
    fixed = head + tail.removesuffix(".*")
    if any(c in fixed for c in "*?["):
        return None
    return Naming(_braces(head) + field + _braces(tail), id_pattern)


def _braces(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _stem_places(stems: list[str], mask_stems: list[str]) -> Counter:
    """How many mask names hold an image's whole stem between each (head, tail), cut at separators."""
    counts = Counter()
    stem_set = set(stems)
    for name in mask_stems:
        for start in range(len(name)):
            if start and name[start - 1] not in SEPARATORS:
                continue
            for end in range(len(name), start, -1):
                if name[start:end] in stem_set and (end == len(name) or name[end] in SEPARATORS):
                    counts[(name[:start], name[end:])] += 1
                    break
    return counts


def _by_stem(stems: list[str], mask_stems: list[str], ending: str) -> Naming | None:
    """Masks named `<head><stem><tail>` where the stems vary at both ends (`{stem}_mask`)."""
    for (head, tail), count in _stem_places(stems, mask_stems).most_common(1):
        if count == len(mask_stems) == len(stems):
            return _naming(head, "{stem}", tail + ending)
    return None


def nearest_naming(images_dir, masks_dir) -> Naming | None:
    """Where no pattern pairs every file: the one that holds the image's stem in most mask names (at
    least half the images', and more than any other), so that a message names it beside the few files it
    leaves unpaired (a mask missing, a stray legend.png) rather than giving up on the names."""
    images, masks = list_images(Path(images_dir)), list_images(Path(masks_dir))
    if _same(images_dir, masks_dir) or not images or not masks:
        return None
    names, ending = _mask_names(masks)
    ranked = _stem_places([p.stem for p in images], names).most_common(2)
    tied = len(ranked) == 2 and ranked[0][1] == ranked[1][1]  # two ways (`{stem}_mask`, `{stem}_contour`)
    if not ranked or tied or 2 * ranked[0][1] < len(images):
        return None
    (head, tail), _ = ranked[0]
    return _naming(head, "{stem}", tail + ending)


def describe_names(images_dir, masks_dir, shown: int = 2) -> str:
    """How the first files of each folder are named, for a message."""
    def first(files):
        return ", ".join(p.name for p in files[:shown]) or "nothing"

    masks = list_images(Path(masks_dir))
    others = "" if masks else f" (no image files among them: {', '.join(sorted(IMAGE_SUFFIXES))})"
    return (f"images are named like {first(list_images(Path(images_dir)))}; "
            f"masks like {first(masks or visible_files(Path(masks_dir)))}{others}")


def group_candidates(ids: list[str]) -> dict[str, int]:
    """Regexes whose first group is a group shared by several ids (a car, a sequence, a patient),
    with how many groups each gives: the text before the first separator after the head that every id
    shares (`IMG_`), or before the last."""
    found, head = {}, re.escape(_head(ids)) if len(ids) > 1 else ""
    for separator in SEPARATORS.strip():
        escaped = re.escape(separator)
        for pattern in (f"^({head}[^{escaped}]+){escaped}", f"^(.+){escaped}[^{escaped}]*$"):
            regex = re.compile(pattern)
            groups = [m.group(1) if (m := regex.search(i)) else None for i in ids]
            if None in groups:
                continue
            count = len(set(groups))
            if MIN_GROUPS <= count <= len(ids) // 2:
                found.setdefault(pattern, count)
    return found


def find_group_pattern(ids: list[str]) -> tuple[str, int]:
    """(split.group_pattern, groups): the coarsest candidate (a patient before their studies), ""
    (by image) when there is none."""
    candidates = group_candidates(ids)
    if not candidates:
        return "", len(set(ids))
    pattern = min(candidates, key=lambda p: (candidates[p], len(p)))
    return pattern, candidates[pattern]
