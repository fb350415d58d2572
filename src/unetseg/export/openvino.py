"""`unetseg export --format openvino [--int8]`: OpenVINO's IR with the rules from image to mask inside.

float32: the TensorFlow function that the other formats hold (unetseg.export.graph),
converted. int8: the network evaluate quantized and scored (in models/scored.keras), with
the same rules around it: the rules before the network (resize, scale, and the mirror
image) and after it (the mirror average, the resize back, the threshold) are converted
from TensorFlow on their own, and the quantized network is joined between them, once
for the image and once for its mirror image. Quantizing the whole graph instead would
calibrate the resize's matrix products too, and on images the export never saw.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from unetseg.core.application import Application
from unetseg.model.runtimes import IMAGES, Int8Network, needs


def write_openvino(saved_model, path: Path) -> None:
    """OpenVINO's IR (model.xml, its weights in model.bin beside) of a function: `saved_model(folder)` writes
    it as a SavedModel."""
    ov = needs("openvino", "--format openvino")
    with tempfile.TemporaryDirectory() as tmp:
        saved_model(Path(tmp) / "saved")
        ov.save_model(ov.convert_model(str(Path(tmp) / "saved")), path, compress_to_fp16=False)


def write_int8(int8: Int8Network, application: Application, threshold: float | None, tta_flip: bool,
               channels: int, path: Path) -> None:
    """The int8 network between the rules before it and after it, as one IR."""
    import tensorflow as tf

    from unetseg.export.graph import mask_of, mirror_average, network_input

    ov = needs("openvino", "--format openvino --int8")
    images = tf.TensorSpec((None, None, None, 3) if not application.tiled else (None, *application.size, 3),
                           tf.uint8, name=IMAGES)
    probabilities = tf.TensorSpec((None, *application.size, channels), tf.float32)

    def before(images):
        x = tf.cast(images, tf.float32) / 255.0 if application.tiled else network_input(images, application.size)
        return (x, tf.reverse(x, [2])) if tta_flip else (x,)

    def after(*args):
        p = mirror_average(args[0], args[1]) if tta_flip else args[0]
        return p if application.tiled else mask_of(p, tf.shape(args[-1]), threshold)

    runs = 2 if tta_flip else 1
    pre = ov.convert_model(tf.function(before).get_concrete_function(images))
    post_inputs = [probabilities] * runs + ([] if application.tiled else [images])
    post = ov.convert_model(tf.function(after).get_concrete_function(*post_inputs))
    network, source = int8.model(), pre.get_parameters()[0]
    feeds = [_joined(network.clone(), result.input_value(0)) for result in pre.get_results()]
    for parameter, feed in zip(post.get_parameters(), feeds + [source.output(0)]):
        for target in list(parameter.output(0).get_target_inputs()):
            target.replace_source_output(feed)
    ov.save_model(ov.Model(post.get_results(), [source], "unetseg"), path, compress_to_fp16=False)


def _joined(network, feed):
    """The network's output, its input taken from `feed` (an output of another graph)."""
    for target in list(network.get_parameters()[0].output(0).get_target_inputs()):
        target.replace_source_output(feed)
    return network.get_results()[0].input_value(0)
