"""Writing predictions: a mask and an overlay per image, the seed's montage, a Kaggle RLE file.

Outputs are named after the image file's stem: `masks/<stem>.png` (at the image's
own size: 0/255 for a binary model; for several classes a palette PNG whose pixel
values are the class indices and whose palette holds the class colours, so it opens
as a colour picture and reads back as indices) and `overlays/<stem>.jpg` (with a
legend of the class colours). Two inputs with the same stem (`a.jpg`
and `a.png`) would write the same files, so they are refused before anything is
written.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from unetseg.config.params import Data
from unetseg.core.application import Application
from unetseg.core.atomic import atomic_output
from unetseg.core.errors import DataError
from unetseg.data.classes import ClassMap
from unetseg.data.decoding import IMAGE_SUFFIXES, list_images
from unetseg.data.masks import read_truth
from unetseg.data.pairs_table import VALIDATION, read_pairs
from unetseg.data.resize import resize_truth
from unetseg.infer.inference import Prediction, predict_paths
from unetseg.infer.pictures import colourize, legend, montage, tint
from unetseg.infer.rle import rle_encode, write_submission
from unetseg.model.applied import load_applied
from unetseg.model.applying import to_mask
from unetseg.model.modelfile import NO_ENCODER

OVERLAY_COLOUR = (255, 40, 40)


def check_output_names(paths) -> None:
    """Refuse inputs whose outputs would overwrite each other (same stem, other extension)."""
    by_stem = defaultdict(list)
    for path in paths:
        by_stem[Path(path).stem].append(Path(path).name)
    clashes = {stem: names for stem, names in by_stem.items() if len(names) > 1}
    if clashes:
        listed = "; ".join(f"{', '.join(names)} -> masks/{stem}.png" for stem, names in sorted(clashes.items()))
        raise DataError(f"{len(clashes)} output name(s) shared by several inputs, nothing written: {listed}")


def check_output_folder(folder: Path) -> None:
    """Refuse to replace anything but an earlier output of `unetseg predict` (masks/ and overlays/)."""
    if not folder.exists():
        return
    others = sorted(p.name for p in folder.iterdir() if p.name not in ("masks", "overlays")) if folder.is_dir() else []
    if not folder.is_dir() or others:
        held = f"holds {', '.join(others[:3])}{'…' if len(others) > 3 else ''}" if others else "is a file"
        raise DataError(f"{folder}: the output folder {held}: it would be replaced whole; name a new folder "
                        "(or one that unetseg predict wrote)")


def overlay(image: np.ndarray, mask: np.ndarray, classes: ClassMap | None = None) -> np.ndarray:
    """The image with a binary mask tinted red, or each class tinted its colour above a legend."""
    if classes is None:
        return tint(image, mask > 0, OVERLAY_COLOUR, 0.45)
    blended = (0.55 * image + 0.45 * colourize(mask, classes.colours)).round().astype(np.uint8)
    return np.concatenate([blended, legend(classes.names, classes.colours, image.shape[1])])


def mask_picture(mask: np.ndarray, classes: ClassMap | None) -> Image.Image:
    """A predicted mask as saved: 0/255 greyscale, or a palette PNG of class indices in the class colours."""
    if classes is None:
        return Image.fromarray(mask * np.uint8(255))
    picture = Image.fromarray(mask)
    picture.putpalette(classes.palette())  # an "L" image becomes "P", its values the palette indices
    return picture


def write_prediction(prediction: Prediction, out_dir: Path, overlays: bool, classes: ClassMap | None = None) -> None:
    """`masks/<stem>.png` and `overlays/<stem>.jpg`, each written atomically."""
    stem = prediction.path.stem
    with atomic_output(out_dir / "masks" / f"{stem}.png") as path:
        mask_picture(prediction.mask, classes).save(path, format="PNG")
    if overlays:
        with atomic_output(out_dir / "overlays" / f"{stem}.jpg") as path:
            Image.fromarray(overlay(prediction.image, prediction.mask, classes)).save(path, format="JPEG", quality=90)


def predict_validation(
    model_path, pairs_path, out_dir, montage_path, data: Data, montage_rows: int,
    classes: ClassMap | None = None, application: Application | None = None, encoder: str = NO_ENCODER,
) -> int:
    """Masks and overlays (original size) for the validation images, and the seed's montage, by the
    inference settings evaluate scored the model file with (models/scored.keras).

    `classes`, `application` and `encoder` (model.encoder), from the params, must be those the model
    was trained with.
    """
    resolved = load_applied(model_path, (classes, application, encoder))
    if resolved.scored is None:
        raise DataError(f"{model_path}: no inference settings recorded: the predict stage applies the model as "
                        "the evaluate stage scored it (its --scored file, models/scored.keras)")
    applied, inference = resolved.application, resolved.inference()
    model = resolved.runner(inference)  # the runtime and precision evaluate scored
    pairs = read_pairs(pairs_path)
    rows = pairs[pairs["split"] == VALIDATION].reset_index(drop=True)
    check_output_names(rows["image"])
    panels = []
    with atomic_output(out_dir) as out:
        predictions = predict_paths(model, list(rows["image"]), inference, with_images=True,
                                    max_pixels=data.max_pixels, application=applied)
        for row, prediction in zip(rows.itertuples(), predictions):
            if prediction.error is not None:
                raise prediction.error
            write_prediction(prediction, out, overlays=True, classes=classes)
            if len(panels) < montage_rows:
                truth = read_truth(row.mask, prediction.info.size, data, row.image, classes).mask
                truth = resize_truth(truth, prediction.small.shape[:2], classes)
                predicted = to_mask(prediction.probabilities, inference)
                if classes is not None:
                    truth, predicted = colourize(truth, classes.colours), colourize(predicted, classes.colours)
                panels.append((truth, prediction.small, predicted))
    with atomic_output(montage_path) as out:
        montage(panels).save(out, format="PNG")
    return len(rows)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def predict_folder(
    model_path, input_dir, output_dir, options: dict | None = None, rle_path=None, keep_going=False, overlays=True,
    progress=True, overlap: float | None = None,
) -> list[str]:
    """Masks (and overlays, and a Kaggle RLE CSV) for every image of a folder; returns the problems.

    The model file's inference settings hold (those evaluate scored, in models/scored.keras),
    each of `options` (threshold, tta_flip, largest_component, runtime, precision; None: the
    file's) replacing its own, and `overlap` the tiles' of a patch model. The output folder is replaced whole
    when the run ends (only an earlier output of this command: a folder holding anything else
    is refused). Without `keep_going` the first unreadable file stops the run with its error,
    the old folder left as it was; with it, every unreadable file is skipped and listed. Inputs are never
    overwritten: the output folder and the CSV must lie outside the input folder.
    """
    input_dir, output_dir = Path(input_dir).resolve(), Path(output_dir).resolve()
    for target, what in ((output_dir, "output folder"), (Path(rle_path).resolve() if rle_path else None, "RLE file")):
        if target is not None and _inside(target, input_dir):
            raise DataError(f"{target}: the {what} must lie outside the input folder {input_dir}")
    if rle_path and _inside(Path(rle_path).resolve(), output_dir):
        raise DataError(f"{rle_path}: the RLE file must lie outside the output folder {output_dir}, which is replaced "
                        "whole")
    if not input_dir.is_dir():
        raise DataError(f"{input_dir}: input folder not found")
    check_output_folder(output_dir)
    paths = list_images(input_dir)
    if not paths:
        raise DataError(f"{input_dir}: no images (extensions: {', '.join(sorted(IMAGE_SUFFIXES))})")
    check_output_names(paths)
    resolved = load_applied(model_path, overlap=overlap)
    classes, applied, inference = resolved.classes, resolved.application, resolved.inference(**(options or {}))
    if classes is not None and rle_path:
        raise DataError(f"{model_path}: a model of {classes.num_classes} classes, but the RLE file (Kaggle's format) "
                        "holds binary masks only: leave out --rle")
    model = resolved.runner(inference)
    problems, rows = [], []
    predictions = predict_paths(model, paths, inference, with_images=overlays, application=applied)
    with atomic_output(output_dir) as out:  # replaced whole: no partial folder, no masks of earlier inputs
        out.mkdir()  # there even when no file could be read (--keep-going)
        for prediction in tqdm(predictions, total=len(paths), unit="image", disable=not progress):
            if prediction.error is not None:
                if not keep_going:
                    raise prediction.error
                problems.append(str(prediction.error))
                continue
            write_prediction(prediction, out, overlays, classes)
            if rle_path:
                rows.append((prediction.path.name, rle_encode(prediction.mask)))
    if rle_path:
        write_submission(rows, rle_path)
    return problems
