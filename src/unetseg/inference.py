"""Masks for image files, at each image's own size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from unetseg.atomic import atomic_output
from unetseg.imaging import read_image, read_mask, resize_image, resize_mask, resize_probabilities
from unetseg.modelio import load_model
from unetseg.plots import montage
from unetseg.splitting import VALIDATION, read_pairs


def model_input_size(model) -> tuple[int, int]:
    height, width = model.input_shape[1:3]
    return int(height), int(width)


def predict_probabilities(model, paths: list[str | Path], batch_size: int = 8):
    """Yield (path, model-size image uint8, model-size probabilities, original (h, w)) per file."""
    size = model_input_size(model)
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        originals = [read_image(p) for p in chunk]
        small = np.stack([resize_image(image, size) for image in originals])
        probabilities = np.asarray(model.predict_on_batch(small.astype(np.float32) / 255.0))[..., 0]
        for path, image, original, p in zip(chunk, small, originals, probabilities):
            yield Path(path), image, p, original.shape[:2]


def full_size_mask(probabilities: np.ndarray, size: tuple[int, int], threshold: float) -> np.ndarray:
    """Probabilities resized (bilinear) to the original size, then thresholded: {0,1} uint8."""
    return (resize_probabilities(probabilities, size) > threshold).astype(np.uint8)


def save_mask_png(mask: np.ndarray, path: Path) -> None:
    Image.fromarray(mask.astype(np.uint8) * 255).save(path)


def predict_validation(model_path, pairs_path, out_dir, montage_path, threshold: float, montage_rows: int) -> int:
    """Masks (PNG 0/255, original size) for the validation images, and the seed's montage."""
    model = load_model(model_path)
    pairs = read_pairs(pairs_path)
    rows = pairs[pairs["split"] == VALIDATION].reset_index(drop=True)
    size = model_input_size(model)
    panels = []
    with atomic_output(out_dir) as out:
        out.mkdir()
        for index, (path, image, probabilities, original) in enumerate(predict_probabilities(model, list(rows["image"]))):
            save_mask_png(full_size_mask(probabilities, original, threshold), out / f"{rows['id'][index]}.png")
            if index < montage_rows:
                truth = resize_mask(read_mask(rows["mask"][index]), size)
                panels.append((truth, image, probabilities > threshold))
    with atomic_output(montage_path) as out:
        montage(panels).save(out, format="PNG")
    return len(rows)
