"""From a model and image files to masks at each image's own size, in batches, by the rules of
unetseg.model.applying: what the predict stage and `unetseg predict` iterate over (evaluate reads
the TFRecords instead)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from unetseg.config.params import Inference
from unetseg.core.application import RESIZE, Application
from unetseg.core.errors import DataError
from unetseg.data.decoding import DEFAULT_MAX_PIXELS, Decoded, read_image
from unetseg.model.applying import mask_at, model_input, model_input_size, probabilities, tiled_probabilities


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
    (the model file's, `modelfile.model_application`) says how the model meets an image:
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
                    prediction.image = read_image(path, max_pixels, bits=application.image_bits)
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
