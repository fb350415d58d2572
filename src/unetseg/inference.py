"""Masks for image files at each image's own size, with optional refinements.

The model sees each image resized to its input size; its probabilities are resized
back (bilinear) to the image's size and thresholded there. Two refinements, each a
param: `tta_flip` averages the probabilities of the image and of its mirror image;
`largest_component` keeps only the largest connected region of the mask (right for
one object per image, as Carvana; wrong for many, as cells).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from tqdm import tqdm

from unetseg.atomic import atomic_output
from unetseg.errors import DataError
from unetseg.imaging import IMAGE_SUFFIXES, read_image, read_mask, resize_image, resize_mask, resize_probabilities
from unetseg.modelio import load_model
from unetseg.params import Inference
from unetseg.plots import montage
from unetseg.rle import rle_encode, write_submission
from unetseg.splitting import VALIDATION, read_pairs

OVERLAY_COLOUR = np.array([255, 40, 40], np.float32)


def model_input_size(model) -> tuple[int, int]:
    height, width = model.input_shape[1:3]
    return int(height), int(width)


def probabilities(model, images: np.ndarray, tta_flip: bool) -> np.ndarray:
    """Foreground probabilities (N, H, W) for float images (N, H, W, 3) at the model's size."""
    p = np.asarray(model.predict_on_batch(images))[..., 0]
    if tta_flip:
        mirrored = np.asarray(model.predict_on_batch(images[:, :, ::-1]))[..., 0][:, :, ::-1]
        p = (p + mirrored) / 2
    return p


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Only the largest 8-connected foreground region of a {0,1} mask."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    return (labels == 1 + int(np.argmax(sizes))).astype(np.uint8)


def binarize(p: np.ndarray, inference: Inference) -> np.ndarray:
    """A {0,1} uint8 mask from a probability map, refined as the params say."""
    mask = (p > inference.threshold).astype(np.uint8)
    return largest_component(mask) if inference.largest_component else mask


def mask_at(p: np.ndarray, size: tuple[int, int], inference: Inference) -> np.ndarray:
    """The mask at `size` (height, width) from model-size probabilities."""
    return binarize(resize_probabilities(p, size), inference)


@dataclass
class Prediction:
    path: Path
    image: np.ndarray | None = None  # the original image, RGB uint8
    small: np.ndarray | None = None  # the image at the model's size
    probabilities: np.ndarray | None = None  # at the model's size
    mask: np.ndarray | None = None  # {0,1} at the original size
    error: DataError | None = None


def predict_paths(model, paths, inference: Inference, batch_size: int = 8):
    """Yield a Prediction per path, in order; an unreadable file gives one with `error` set."""
    size = model_input_size(model)
    for start in range(0, len(paths), batch_size):
        batch = []
        for path in paths[start : start + batch_size]:
            try:
                batch.append(Prediction(Path(path), image=read_image(path)))
            except DataError as error:
                batch.append(Prediction(Path(path), error=error))
        readable = [b for b in batch if b.error is None]
        if readable:
            small = np.stack([resize_image(b.image, size) for b in readable])
            for b, s, p in zip(readable, small, probabilities(model, small.astype(np.float32) / 255.0, inference.tta_flip)):
                b.small, b.probabilities = s, p
                b.mask = mask_at(p, b.image.shape[:2], inference)
        yield from batch


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image with the mask tinted red."""
    tinted = image.astype(np.float32)
    tinted[mask > 0] = 0.55 * tinted[mask > 0] + 0.45 * OVERLAY_COLOUR
    return tinted.round().astype(np.uint8)


def write_prediction(prediction: Prediction, out_dir: Path, overlays: bool) -> None:
    """`masks/<stem>.png` (0/255) and `overlays/<stem>.jpg`, each written atomically."""
    stem = prediction.path.stem
    with atomic_output(out_dir / "masks" / f"{stem}.png") as path:
        Image.fromarray(prediction.mask * 255).save(path, format="PNG")
    if overlays:
        with atomic_output(out_dir / "overlays" / f"{stem}.jpg") as path:
            Image.fromarray(overlay(prediction.image, prediction.mask)).save(path, format="JPEG", quality=90)


def list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: input folder not found")
    images = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
                    and p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise DataError(f"{folder}: no images (extensions: {', '.join(sorted(IMAGE_SUFFIXES))})")
    return images


def predict_validation(model_path, pairs_path, out_dir, montage_path, inference: Inference, montage_rows: int) -> int:
    """Masks and overlays (original size) for the validation images, and the seed's montage."""
    model = load_model(model_path)
    pairs = read_pairs(pairs_path)
    rows = pairs[pairs["split"] == VALIDATION].reset_index(drop=True)
    size = model_input_size(model)
    panels = []
    with atomic_output(out_dir) as out:
        for index, prediction in enumerate(predict_paths(model, list(rows["image"]), inference)):
            if prediction.error is not None:
                raise prediction.error
            write_prediction(prediction, out, overlays=True)
            if index < montage_rows:
                truth = resize_mask(read_mask(rows["mask"][index]).mask, size)
                panels.append((truth, prediction.small, binarize(prediction.probabilities, inference)))
    with atomic_output(montage_path) as out:
        montage(panels).save(out, format="PNG")
    return len(rows)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def predict_folder(
    model_path, input_dir, output_dir, inference: Inference, rle_path=None, keep_going=False, overlays=True,
    progress=True,
) -> list[str]:
    """Masks (and overlays, and a Kaggle RLE CSV) for every image of a folder; returns the problems.

    Without `keep_going` the first unreadable file stops the run with its error;
    with it, every unreadable file is skipped and listed. Inputs are never
    overwritten: the output folder and the CSV must lie outside the input folder.
    """
    input_dir, output_dir = Path(input_dir).resolve(), Path(output_dir).resolve()
    for target, what in ((output_dir, "output folder"), (Path(rle_path).resolve() if rle_path else None, "RLE file")):
        if target is not None and _inside(target, input_dir):
            raise DataError(f"{target}: the {what} must lie outside the input folder {input_dir}")
    paths = list_images(input_dir)
    model = load_model(model_path)
    problems, rows = [], []
    for prediction in tqdm(predict_paths(model, paths, inference), total=len(paths), unit="image", disable=not progress):
        if prediction.error is not None:
            if not keep_going:
                raise prediction.error
            problems.append(str(prediction.error))
            continue
        write_prediction(prediction, output_dir, overlays)
        if rle_path:
            rows.append((prediction.path.name, rle_encode(prediction.mask)))
    if rle_path:
        write_submission(rows, rle_path)
    return problems
