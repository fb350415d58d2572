"""What the masks are: a census of their values becomes the task (binary, or classes by value or
colour) and the `classes.*` keys that say so.

Two values are a binary mask; many grey levels whose pixels sit near black and white
are a binary mask with JPEG noise; a few values are a label map, one class per value;
colours, one class per colour. A binary mask whose bright value covers most of the
pixels (membranes drawn dark on bright cells) is planned as two classes, so that the
thin dark structure is a class of its own and is scored. Every rule follows how
unetseg.data.masks will read the masks, so that the split stage accepts what the plan
writes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from unetseg.core.errors import DataError, listed
from unetseg.plan.fingerprint import COLOUR, FEW_IDS, GREY, INDEX, MAX_VALUES, Fingerprint

MAJORITY = 0.5  # a binary mask's bright value above this share of the pixels: plan two classes
NONBINARY_LIMIT = 0.25  # a binary mask with more ambiguous pixels than this is not a mask
NOISY_LEVELS = 16  # fewer grey levels than this over a dataset are a label map, not a noisy binary mask
MASK_LEVELS = 64  # more grey levels or colours than this in one mask, not noisy binary: not a label map
ID_MASKS = 0.9  # masks that look like object ids (fingerprint.object_ids), at least this share: instance labels
ONE_REGION = 0.8  # a few ids: at least this share of them one region each (an occluded object may be two)
VOID_SHARE = 0.05  # a label map's top value (255) on fewer pixels than this is probably void: say so


@dataclass(frozen=True)
class Decision:
    key: str  # section.key in params.yaml
    value: object
    because: str


@dataclass(frozen=True)
class Task:
    """What the masks are: binary (one object value), or several classes by value."""

    binary: bool
    values: tuple  # raw mask values in class order; binary: (background, object)
    ignore: tuple = ()
    colours: bool = False
    threshold: float | None = None  # a noisy binary mask: foreground above this level

    def class_of(self, value) -> int | None:
        """The class (binary: 1 the object) of a mask value, or of a provisional label ("low", "high")."""
        if value in ("low", "high"):  # a noisy mask thresholded by the fingerprint
            return int(value == "high")
        if self.threshold is not None:
            return int(value > self.threshold)
        if value in self.ignore or value not in self.values:
            return None
        return self.values.index(value)


def _value_totals(fp: Fingerprint) -> dict:
    """Pixels per mask value over the dataset."""
    totals = {}
    for result in fp.results:
        for value, pixels in result["values"].items():
            totals[value] = totals.get(value, 0) + pixels
    return totals


def _is_noisy_binary(fp: Fingerprint, totals: dict) -> bool:
    """Grey masks with levels just below white (fingerprint.noisy_binary), and many levels over the
    dataset: binary masks saved as JPEG or smoothed, not a label map drawn in a few grey levels."""
    return any(r["noisy"] for r in fp.results) and len(totals) > NOISY_LEVELS


def _as_colours(fp: Fingerprint) -> None:
    """Grey masks among colour masks (an empty, all-black one): their grey levels as the colours they are."""
    for result in fp.results:
        if result["kind"] != COLOUR:
            for key in ("values", "left"):
                result[key] = {value * 0x010101: n for value, n in result[key].items()}
            result["label_values"] = [value * 0x010101 for value in result.get("label_values", [])]
            result["kind"] = COLOUR


def _object_ids(fp: Fingerprint) -> bool:
    """Masks of object ids numbered 1, 2, ... in each: the largest differs from mask to mask, where a
    label map's top class (a face's 18 parts) recurs; a tile or two cut from a bigger map may hold other ids.
    Up to `FEW_IDS` ids (pedestrians, leaves) they must also be every number from 0 to the mask's
    largest and one region each, as a label map's classes seldom are in every mask."""
    maxima = [max(r["values"]) for r in fp.results]
    if max(maxima) > FEW_IDS:
        return (Counter(maxima).most_common(1)[0][1] <= len(maxima) / 2
                and sum(bool(r["ids"]) for r in fp.results) >= ID_MASKS * len(fp.results))
    # empty masks left out: slices without the organ, then with it, then with its tumour, are no numbering
    held = [r for r in fp.results if max(r["values"]) > 0]
    counts = Counter(max(r["values"]) for r in held)
    numbered = sum(r["kind"] != COLOUR and set(r["values"]) == set(range(max(r["values"]) + 1)) for r in held)
    regions = [n for r in held for n in r["regions"]]
    return (len(counts) >= 3 and counts.most_common(1)[0][1] <= len(held) / 2 and numbered >= ID_MASKS * len(held)
            and sum(n == 1 for n in regions) >= ONE_REGION * len(regions))


def _palette_conflict(fp: Fingerprint) -> str | None:
    """Where palette masks give one index different colours (a palette saved per file): the first such
    index and two masks that disagree, else None. Only where every mask is a palette mask of classes:
    object ids are objects whatever their colours, and a mix of encodings is refused as such."""
    if not all(r["kind"] == INDEX for r in fp.results) or _object_ids(fp):
        return None
    seen = {}
    for result in fp.results:
        for index, colour in result["palette"].items():
            first = seen.setdefault(index, (colour, result["mask"]))
            if first[0] != colour:
                return (f"index {index} is colour {_plain(first[0], True)} in {first[1]} but "
                        f"{_plain(colour, True)} in {result['mask']}")
    return None


def _by_palette_colours(fp: Fingerprint) -> None:
    """Palette masks' indices as the colours their own palettes give them, as classes.masks: colours reads them."""
    for result in fp.results:
        colours = result["palette"]
        for key in ("values", "left"):
            found = {}
            for index, pixels in result[key].items():
                found[colours[index]] = found.get(colours[index], 0) + pixels
            result[key] = found
        result["label_values"] = [colours.get(v, v) for v in result.get("label_values", [])]
        result["kind"] = COLOUR


def _ignored_colours(fp: Fingerprint, ignore: tuple) -> tuple:
    """--ignore values given as palette indices, as the one colour each index has in every mask that
    uses it (before `_by_palette_colours`); colours (packed above 255) as they are."""
    found = []
    for value in ignore:
        colours = {}  # each colour the index has, and the first mask that gives it that colour
        for result in fp.results:
            if value in result["palette"]:
                colours.setdefault(result["palette"][value], result["mask"])
        if value > 255 or not colours:
            found.append(value)
        elif len(colours) > 1:
            (one, first), (other, second) = list(colours.items())[:2]
            raise DataError(f"--ignore {value}: the masks' palettes differ, and index {value} is colour "
                            f"{_plain(one, True)} in {first} but {_plain(other, True)} in {second}: give the "
                            "void colour instead, as --ignore '[r, g, b]'")
        else:
            found.append(next(iter(colours)))
    return tuple(found)


def plan_task(fp: Fingerprint, ignore: tuple) -> tuple[Task, list[Decision]]:
    """What the masks are, from the census of their values; the `classes.*` and `data.*` keys that say so."""
    repainted = _palette_conflict(fp)
    if repainted:  # read by index, those masks would mean different classes in different files
        ignore = _ignored_colours(fp, ignore)
        _by_palette_colours(fp)
    kinds = sorted({r["kind"] for r in fp.results})
    # grey masks among colour masks (an empty one, all black): colours too, where the colour reader reads them
    if kinds == sorted([COLOUR, GREY]) and not any(r["noisy"] for r in fp.results) and all(
            r["rgb"] for r in fp.results):
        _as_colours(fp)
        kinds = [COLOUR]
    if len(kinds) > 1:
        examples = {r["kind"]: r["mask"] for r in reversed(fp.results)}
        raise DataError("the masks mix encodings (" + ", ".join(f"{kind}: {examples[kind]}" for kind in kinds)
                        + "): save them all one way")
    decisions, mixed = [], False
    totals = _value_totals(fp)
    top = max(max(r["values"]) for r in fp.results)
    instances = kinds != [COLOUR] and _object_ids(fp)
    if instances:  # ids 1, 2, ... of objects, differing from mask to mask: objects against background
        if ignore:
            print(f"note: --ignore {listed(ignore)} does not apply: the masks hold object ids")
        task = Task(True, (0, 1), threshold=0.5)
        share = 1 - sum(r["background"] for r in fp.results) / sum(r["pixels"] for r in fp.results)
    elif _is_noisy_binary(fp, totals):
        worst = max(r.get("nonbinary", 0.0) for r in fp.results)
        if worst > NONBINARY_LIMIT:
            raise DataError(
                f"masks with {max(r['distinct'] for r in fp.results)} grey levels and up to {worst:.0%} of their "
                f"pixels far from black and white: not binary masks, nor a label map (at most {MAX_VALUES} "
                "values); check the masks folder"
            )
        if ignore:
            print(f"note: --ignore {listed(ignore)} does not apply: the masks are binary (saved lossy)")
        full = max(r["full"] for r in fp.results)
        share = sum(r["bright"] for r in fp.results) / sum(r["pixels"] for r in fp.results)
        if share > MAJORITY:
            raise DataError(f"binary masks saved lossy (JPEG) whose bright value covers {share:.0%} of the pixels: "
                            "the dark value is the structure, a class that only lossless masks can name: save the "
                            "masks as PNG (each thresholded at half its scale) and plan again")
        limit = max(0.01, float(np.ceil(worst * 1.5 * 100) / 100))
        decisions.append(Decision("data.max_nonbinary_fraction", limit,
                                  f"masks have up to {worst:.2%} ambiguous pixels (JPEG noise); limit 1.5x that"))
        task = Task(True, ("low", "high"), threshold=full / 2)
    else:
        crowded = [r for r in fp.results if r["kind"] == COLOUR and r["distinct"] > MASK_LEVELS]
        if crowded:
            worst = max(crowded, key=lambda r: r["distinct"])
            raise DataError(
                f"{worst['mask']}: {worst['distinct']} colours in one mask ({len(crowded)} such mask(s)): more "
                "classes than a class map holds in one image (edges blended by smoothing or resizing? objects "
                "coded by colour?): save the masks with one colour a class (nearest-neighbour resizing, no "
                "antialiasing)"
            )
        crowded = [r for r in fp.results if r["kind"] != COLOUR and r["distinct"] > MASK_LEVELS]
        if crowded:
            worst = max(r["nonbinary"] for r in crowded)
            raise DataError(
                f"masks with up to {max(r['distinct'] for r in crowded)} grey levels in one mask and up to "
                f"{worst:.0%} of their pixels half way between black and white: neither binary masks nor a "
                "label map; check the masks folder"
            )
        present = tuple(v for v in ignore if v in totals)
        if len(present) < len(ignore):
            print(f"note: --ignore {listed([v for v in ignore if v not in totals])}: no mask holds that value")
        kept = sorted(v for v in totals if v not in ignore)
        if len(kept) > MAX_VALUES:
            raise DataError(f"masks with {len(kept)} different values: more than {MAX_VALUES} classes is not a "
                            "class map (lossy colour masks? photographs?); check the masks folder")
        if len(kept) < 2:
            raise DataError(f"every mask holds the one value {listed(kept)} (ignored: {list(ignore)}): nothing "
                            "to learn")
        colours = kinds == [COLOUR]
        # the binary reader takes a mask of one level as background only when that level is 0
        lone = kept[0] != 0 and any(set(r["values"]) <= {kept[0], *ignore} for r in fp.results)
        # some masks 0/1, others 0/255, none with both (where 255 would be void): binary, as each is read
        mixed = not colours and not present and kept == [0, 1, 255] and not any(
            {1, 255} <= set(r["values"]) for r in fp.results)
        if mixed:
            task, share = Task(True, (0, 1), threshold=0.5), (totals[1] + totals[255]) / sum(totals.values())
            if share > MAJORITY:
                raise DataError(f"binary masks, objects 1 in some and 255 in others, covering {share:.0%} of the "
                                "pixels: set classes.* by hand (docs/guides/classes.md)")
        elif len(kept) == 2 and not present and not lone and not repainted:
            if colours:  # two colours of any hue: the brighter is the object, as masks are read
                kept.sort(key=_luma)
            task = Task(True, tuple(kept), colours=colours)
            share = totals[kept[1]] / sum(totals.values())
        else:
            if repainted and len(kept) == 2:  # the background first: the colour of most pixels
                kept.sort(key=lambda v: -totals[v])
            task, share = Task(False, tuple(kept), present, colours), None
    if task.binary and share > MAJORITY and not instances:
        dark, bright = task.values  # the first class is the background (patches centre on the others)
        task = Task(False, (bright, dark), colours=task.colours)
        why = (f"the bright value covers {share:.0%} of the pixels: the dark one is the structure, planned as a "
               "class of its own")
    elif task.binary:
        why = f"binary masks (objects {share:.1%} of the pixels{', 1 in some masks and 255 in others' * mixed})"
    else:
        why = f"{len(task.values)} mask values: one class each"
        top = max(task.values)
        if not task.colours and top in (255, 65535) and totals[top] < VOID_SHARE * sum(totals.values()):
            why += (f"; value {top} holds {totals[top] / sum(totals.values()):.1%} of the pixels: if it marks "
                    f"void (unlabelled) pixels, plan again with --ignore {top}")
    decisions += [
        Decision("data.instance_masks", instances, f"masks of object ids (0, then ids up to {top}): every nonzero "
                 "pixel is an object" if instances else "mask values are not object ids"),
        Decision("classes.names", [] if task.binary else _names(task), why),
        Decision("classes.values", [] if task.binary else [_plain(v, task.colours) for v in task.values],
                 "the mask value of each class"),
        Decision("classes.ignore", [_plain(v, task.colours) for v in task.ignore], "--ignore"),
        Decision("classes.masks", "colours" if task.colours else "labels",
                 f"palette masks whose palettes differ ({repainted}): read by colour" if repainted
                 else "RGB colours" if task.colours else "class indices (grey or palette)"),
        Decision("classes.weights", "none", "measured on Stanford Background: balanced weights cost the large "
                 "classes more than they give the rare ones"),
    ]
    return task, decisions


def _luma(colour: int) -> int:
    """A packed colour's brightness (ITU-R 601 weights)."""
    return 299 * (colour >> 16) + 587 * ((colour >> 8) & 255) + 114 * (colour & 255)


def _plain(value, colours: bool):
    """A mask value as params hold it: an int, or an [r, g, b] colour from a packed one."""
    return [value >> 16, (value >> 8) & 255, value & 255] if colours else value


def _names(task: Task) -> list[str]:
    if task.colours:
        return [f"colour_{v >> 16}_{(v >> 8) & 255}_{v & 255}" for v in task.values]
    return [f"value_{v}" for v in task.values]
