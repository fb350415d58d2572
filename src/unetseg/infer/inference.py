"""From a model and image files to masks at each image's own size: the one rule that
evaluate, predict and `unetseg predict` apply.

Each file becomes model input by `resize.model_input` (the preprocess rule); the
model's probabilities are resized back (bilinear, each class's channel) to the
image's size and made a mask there by `to_mask`: thresholded for a binary model,
the most probable class for one of several classes. Two refinements, each a param: `tta_flip` averages
the probabilities of the image and of its mirror image; `largest_component` keeps
only the largest connected region of the mask (right for one object per image, as
Carvana; wrong for many, as cells; binary models only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from unetseg.config.params import Inference
from unetseg.core.application import RESIZE, Application
from unetseg.core.errors import DataError
from unetseg.data.decoding import DEFAULT_MAX_PIXELS, Decoded, read_image
from unetseg.data.resize import model_input, resize_probabilities
from unetseg.data.tiling import sliding_window


def model_input_size(model) -> tuple[int, int]:
    height, width = model.input_shape[1:3]
    return int(height), int(width)


def _squeezed(p: np.ndarray) -> np.ndarray:
    return p[..., 0] if p.shape[-1] == 1 else p


def probabilities(model, images: np.ndarray, tta_flip: bool) -> np.ndarray:
    """For float images (N, H, W, 3) at the model's size: foreground probabilities (N, H, W) of a
    binary model, class probabilities (N, H, W, K) of a model of K classes."""
    p = _squeezed(np.asarray(model.predict_on_batch(images)))
    if tta_flip:
        mirrored = _squeezed(np.asarray(model.predict_on_batch(images[:, :, ::-1])))[:, :, ::-1]
        p = (p + mirrored) / 2
    return p


def tiled_probabilities(model, image: np.ndarray, application: Application, tta_flip: bool, batch: int = 8):
    """`probabilities` of one (H, W, 3) image (float, or uint8) of any size at the working scale, by
    the sliding window (unetseg.data.tiling) with the application's tile and overlap."""
    def predict(tiles):
        p = probabilities(model, tiles, tta_flip)
        return p[..., None] if p.ndim == 3 else p

    p = sliding_window(image, predict, application.size, application.overlap, batch)
    return p[..., 0] if p.shape[-1] == 1 else p


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Only the largest 8-connected foreground region of a {0,1} mask."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count <= 1:
        return mask
    sizes = np.bincount(labels.ravel())[1:]
    return (labels == 1 + int(np.argmax(sizes))).astype(np.uint8)


def binarize(p: np.ndarray, inference: Inference, threshold: float | None = None) -> np.ndarray:
    """A {0,1} uint8 mask: foreground where p > threshold (`inference.threshold` unless given), refined as the params say."""
    mask = (p > (inference.threshold if threshold is None else threshold)).astype(np.uint8)
    return largest_component(mask) if inference.largest_component else mask


def to_mask(p: np.ndarray, inference: Inference, threshold: float | None = None) -> np.ndarray:
    """An image's mask from its probabilities: `binarize`d (H, W) foreground probabilities, or
    the most probable class of (H, W, K) class probabilities, as uint8 class indices."""
    if p.ndim == 3:
        return np.argmax(p, axis=-1).astype(np.uint8)
    return binarize(p, inference, threshold)


def mask_at(p: np.ndarray, size: tuple[int, int], inference: Inference) -> np.ndarray:
    """The mask at `size` (height, width) from model-size probabilities."""
    return to_mask(resize_probabilities(p, size), inference)


@dataclass
class Prediction:
    path: Path
    info: Decoded | None = None  # what reading the file found: its full size
    small: np.ndarray | None = None  # the model's input, uint8 at the model's size (or the working scale)
    image: np.ndarray | None = None  # the original image, RGB uint8, when asked for
    probabilities: np.ndarray | None = None  # at the model's size
    mask: np.ndarray | None = None  # {0,1} or class indices, at the original size
    error: DataError | None = None


def predict_paths(
    model, paths, inference: Inference, batch_size: int = 8, with_images: bool = False,
    max_pixels: int = DEFAULT_MAX_PIXELS, application: Application | None = None,
):
    """Yield a Prediction per path, in order; an unreadable file gives one with `error` set.

    `with_images` also decodes each image at full size (for overlays). `application`
    (the model file's, `modelio.model_application`) says how the model meets an image:
    resized to its input size (the default), or at a working scale by tiles, one image
    at a time.
    """
    application = application or Application(RESIZE, model_input_size(model))
    if application.tiled:
        batch_size = 1
    for start in range(0, len(paths), batch_size):
        batch = []
        for path in paths[start : start + batch_size]:
            prediction = Prediction(Path(path))
            try:
                prediction.small, prediction.info = model_input(path, application, max_pixels)
                if with_images:
                    prediction.image = read_image(path, max_pixels)
            except DataError as error:
                prediction.error = error
            batch.append(prediction)
        readable = [b for b in batch if b.error is None]
        if readable:
            if application.tiled:  # uint8 in: the sliding window scales tile by tile
                found = [tiled_probabilities(model, b.small, application, inference.tta_flip) for b in readable]
            else:
                small = np.stack([b.small for b in readable]).astype(np.float32) / 255.0
                found = probabilities(model, small, inference.tta_flip)
            for b, p in zip(readable, found):
                b.probabilities = p
                b.mask = mask_at(p, b.info.size, inference)
        yield from batch
