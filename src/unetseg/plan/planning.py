"""`unetseg plan`: two folders and a time budget in; the params that train on them, and why, out.

The plan reads every pair once (unetseg.plan.fingerprint), decides from what it
measured (unetseg.plan.decisions), times the planned network on this machine
(unetseg.plan.throughput) to size the schedule (unetseg.plan.schedule), and then
writes the keys it decided into the params file, comments and every other key
kept, and the same decisions with the fingerprint into `plan.json` beside it. Every
problem is found before anything is written: a refused plan leaves both files as
they were.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetseg.config.loading import load_params
from unetseg.config.params import worker_count
from unetseg.config.presets import set_params
from unetseg.core.atomic import atomic_output
from unetseg.core.errors import DataError
from unetseg.data.decoding import image_bits_for, list_images, no_images_found
from unetseg.data.masks import turned
from unetseg.data.naming import (
    Naming,
    describe_names,
    find_group_pattern,
    find_naming,
    nearest_naming,
    second_masks,
)
from unetseg.data.pairing import find_pairs
from unetseg.data.splitting import split_pairs
from unetseg.plan import decisions as rules
from unetseg.plan.fingerprint import Fingerprint, fingerprint
from unetseg.plan.schedule import Workload, plan_schedule
from unetseg.plan.task import Decision, Task, plan_task
from unetseg.plan.throughput import cpu_name, measure_throughput, rounded

PLAN_FILE = "plan.json"
MIN_PAIRS = 4


@dataclass
class Plan:
    decisions: list[Decision]
    record: dict  # what plan.json holds

    def sections(self) -> dict:
        """{section: {key: value}} for set_params."""
        sections = {}
        for decision in self.decisions:
            section, _, key = decision.key.partition(".")
            sections.setdefault(section, {})[key] = decision.value
        return sections


def _relative(folder, params_path: Path) -> str:
    """A folder as params.yaml names it: relative to the params file's folder when inside it or beside it
    (`../shared/datasets/...`), so that a clone elsewhere finds it; else absolute."""
    absolute = Path(folder).resolve()
    relative = Path(os.path.relpath(absolute, params_path.resolve().parent))
    return (relative if relative.parts[:2].count("..") < 2 else absolute).as_posix()


def plan_pairing(images_dir, masks_dir, naming: Naming | None) -> tuple[Naming, list]:
    """The pairing patterns (found, or as given) and the pairs; any unpaired file is an error."""
    for folder, what in ((images_dir, "images"), (masks_dir, "masks")):
        if not Path(folder).is_dir():
            raise DataError(f"{folder}: {what} folder not found")
        if not list_images(Path(folder)):
            raise DataError(no_images_found(folder, what))
    if naming is None:
        naming = find_naming(images_dir, masks_dir)
        if naming is None and (second := second_masks(images_dir, masks_dir)):
            raise DataError(second)
        naming = naming or nearest_naming(images_dir, masks_dir)  # pairs most files: the rest are named below
        if naming is None:
            raise DataError(
                f"cannot tell how the files of {images_dir} and {masks_dir} pair "
                f"({describe_names(images_dir, masks_dir)}): give --mask-pattern (data.mask_pattern) and, if the "
                "names share only an id, --id-pattern (data.id_pattern)"
            )
    pairs, problems = find_pairs(images_dir, masks_dir, naming.mask_pattern, naming.id_pattern)
    if problems:
        second = second_masks(images_dir, masks_dir)
        raise DataError(f"{naming.options()} pairs {len(pairs)} of {len(list_images(Path(images_dir)))} images and "
                        "leaves files unpaired: give each its mask or image, or move it out of the folder, and plan "
                        "again:\n" + "\n".join(problems)
                        + (f"\nhint: {second}" if second else ""))
    if len(pairs) < MIN_PAIRS:
        raise DataError(f"{images_dir}: {len(pairs)} pair(s); a plan needs at least {MIN_PAIRS} (a training side "
                        "and a validation side)")
    return naming, pairs


def _fingerprint_record(fp: Fingerprint, task: Task) -> dict:
    sizes = fp.counter(lambda r: f"{r['size'][1]}x{r['size'][0]}")
    widths = [r["width"] for r in fp.results if r.get("width")]
    values = {}
    for result in fp.results:
        for value, pixels in result["values"].items():
            seen = values.setdefault(value, [0, 0])
            seen[0] += pixels
            seen[1] += 1
    total = sum(pixels for pixels, _ in values.values())
    shown = sorted(values.items(), key=lambda item: -item[1][0])[:16]
    record = {
        "pairs": fp.pairs,
        "image_sizes": {"distinct": len(sizes), "most_common": dict(sizes.most_common(5)),
                        "median": [int(np.median([r["size"][i] for r in fp.results])) for i in (0, 1)]},
        "masks": {"kind": sorted({r["kind"] for r in fp.results}), "distinct_values": len(values),
                  "values": {str(v): {"pixel_share": round(p / total, 5), "masks": n} for v, (p, n) in shown},
                  "other_size_than_image": sum(r["mask_size"] != r["size"] for r in fp.results)},
        "coloured_pixels_median": round(float(np.median([r["colour_share"] for r in fp.results])), 3),
        "ceilings": {
            "resize": {f"{h}x{w}": round(rules.ceiling(fp, task, "resize", f"{h}x{w}"), 4) for h, w in fp.sizes},
            "scale": {key: round(rules.ceiling(fp, task, "scales", key), 4) for key in fp.results[0]["scales"]},
        },
    }
    if widths:
        record["structure_width_px"] = {"p10": round(float(np.percentile(widths, 10)), 1),
                                        "median": round(float(np.median(widths)), 1)}
    return record


def _planned_params(params_path: Path, decisions: list[Decision]):
    """The params as the plan would leave them, loaded from a scratch copy (the file is not touched)."""
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "params.yaml"
        shutil.copyfile(params_path, copy)
        set_params(copy, Plan(decisions, {}).sections())
        return load_params(copy)


def make_plan(images_dir, masks_dir, params_path, minutes: float, ignore=(), naming: Naming | None = None) -> Plan:
    """Decide every planned key for the two folders; write nothing."""
    params_path = Path(params_path)
    params = load_params(params_path)
    given, ignore = list(ignore), tuple((v[0] << 16) | (v[1] << 8) | v[2] if isinstance(v, list) else v
                                        for v in ignore)  # colours packed, as the fingerprint reads masks
    naming, pairs = plan_pairing(images_dir, masks_dir, naming)
    if params.split.groups:  # the user's groups are kept; the split is tried before anything is written
        group_pattern = ""
        groups = len(set(split_pairs(pairs, params.split.val_fraction, params.base.seed, "", params.split.groups)
                         ["group"]))
        by = f"{groups} groups from split.groups ({params.split.groups}), kept"
    else:
        group_pattern, groups = find_group_pattern([p.id for p in pairs])
        by = f"{groups} groups by {group_pattern!r} (e.g. {pairs[0].id!r})" if group_pattern else \
            "no group shared by several names (a car, a sequence, a patient): split by image"
    decisions = [
        Decision("data.images_dir", _relative(images_dir, params_path), f"{len(pairs)} pairs"),
        Decision("data.masks_dir", _relative(masks_dir, params_path), f"{len(pairs)} pairs"),
        Decision("data.mask_pattern", naming.mask_pattern, f"found from the names: {pairs[0].image.name} ↔ "
                 f"{pairs[0].mask.name}"),
        Decision("data.id_pattern", naming.id_pattern, "the image stem is the id" if not naming.id_pattern
                 else "the part of the image name that the mask name shares"),
        Decision("split.group_pattern", group_pattern, by),
    ]
    fp = fingerprint(pairs, params.data.max_pixels, tuple(ignore), params.base.workers)
    if fp.problems:
        raise DataError(f"{len(fp.problems)} file(s) cannot be read:\n" + "\n".join(f"  {p}" for p in fp.problems))
    quarter = [r for r in fp.results if turned(r["mask_size"], r["size"])]
    if quarter:  # as the reader refuses them
        raise DataError(f"{len(quarter)} mask(s) turned a quarter against their image, as by the image's EXIF "
                        f"orientation (unetseg applies it to images), e.g. {quarter[0]['mask']}: save the images "
                        "and masks the same way up")
    other_size = [r for r in fp.results if r["mask_size"] != r["size"]]
    decisions.append(Decision("data.resize_masks", bool(other_size), f"{len(other_size)} mask(s) of another size "
                              "than their image" if other_size else "every mask has its image's size"))
    decisions.append(_image_bits(fp))
    task, found = plan_task(fp, tuple(ignore))
    application, mode = rules.plan_mode(fp, task)
    mirroring = rules.plan_mirroring(fp, task)
    decisions += found + mode + rules.plan_encoder(fp) + mirroring + rules.plan_training(task)
    planned = _planned_params(params_path, decisions)
    throughput = measure_throughput(planned, application["size"])
    work = _workload(fp, planned, application)
    schedule = plan_schedule(work, throughput, minutes, application["mode"] == "patches")
    estimate = f"about {math.ceil(schedule.total / 60)} of {minutes:g} minutes"
    decisions += [
        Decision("train.epochs", schedule.epochs, f"{estimate}: a training step of {throughput.train_step:g} s "
                 f"on this machine ({work.train_images} training images, batch {work.batch_size}){throughput.busy_note()}"),
        Decision("train.steps_per_epoch", schedule.steps_per_epoch,
                 "one pass over the training images" if schedule.steps_per_epoch * work.batch_size
                 >= work.train_images and application["mode"] == "resize" else "batches an epoch, to fit the time"),
    ]
    _planned_params(params_path, decisions)  # every decision together passes the params checks
    record = {
        "inputs": {"images_dir": str(images_dir), "masks_dir": str(masks_dir), "minutes": minutes,
                   "ignore": given},
        "machine": {"cpu": cpu_name(), **throughput.as_record()},
        "estimate_seconds": schedule.seconds,
        "decisions": [{"key": d.key, "value": d.value, "because": d.because} for d in decisions],
        "fingerprint": _fingerprint_record(fp, task),
    }
    return Plan(decisions, record)


def _image_bits(fp: Fingerprint) -> Decision:
    """The camera depth that holds every 16-bit image's levels: a 12-bit micrograph read as 16-bit keeps
    17 grey levels."""
    tops = [r["image_top"] for r in fp.results if r["image_top"] is not None]
    if not tops:
        return Decision("data.image_bits", 16, "no 16-bit images (the key reads only those)")
    bits = image_bits_for(max(tops))
    return Decision("data.image_bits", bits, f"{len(tops)} 16-bit image(s), levels up to {max(tops)}: "
                    f"{bits} bits hold them (white at {2**bits - 1})")


def _workload(fp: Fingerprint, params, application: dict) -> Workload:
    count = fp.pairs
    validation = max(1, math.ceil(count * params.split.val_fraction))
    patches = application["mode"] == "patches"
    if patches:
        side = application["size"][0] / 2  # tiles at half overlap
        per_image = float(np.mean([math.ceil(r["size"][0] * application["scale"] / side) *
                                   math.ceil(r["size"][1] * application["scale"] / side) for r in fp.results]))
    else:
        per_image = 1.0
    return Workload(
        train_images=count - validation, validation_images=validation, batch_size=params.train.batch_size,
        read_seconds=rounded(float(np.median([r["read_seconds"] for r in fp.results]))),
        workers=worker_count(params.base.workers),
        validation_items=params.patches.validation_tiles if patches else validation,
        items_per_image=per_image, mirror=params.inference.tta_flip,
        calibration_items=params.inference.calibration_images if patches  # tiles drawn across the images
        else min(params.inference.calibration_images, count - validation),
    )


def write_plan(plan: Plan, params_path) -> dict:
    """Write the planned keys into the params file (comments kept) and plan.json beside it; return what changed."""
    params_path = Path(params_path)
    changed = set_params(params_path, plan.sections())
    with atomic_output(params_path.with_name(PLAN_FILE)) as out:
        out.write_text(json.dumps(plan.record, indent=2, ensure_ascii=False) + "\n")
    return changed


def format_plan(plan: Plan) -> str:
    """The decisions as a table: key, value, and the measurement behind it."""
    rows = [(d.key, json.dumps(d.value, ensure_ascii=False), d.because) for d in plan.decisions]
    key_width = max(len(r[0]) for r in rows)
    value_width = min(28, max(len(r[1]) for r in rows))
    return "\n".join(f"{k:<{key_width}}  {v:<{value_width}}  {b}" for k, v, b in rows)

