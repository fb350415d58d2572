"""Losses and training metrics in pure Keras 3 ops: binary (the seed's) and for several classes.

The binary ones are registered so saved models reload. Those for several classes
take label maps (class indices, IGNORE for ignored pixels) against a softmax, and
count ignored pixels nowhere.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from unetseg.core.constants import IGNORE

PACKAGE = "unetseg"
EPSILON = 1e-7


@keras.saving.register_keras_serializable(package=PACKAGE)
def dice_coefficient(y_true, y_pred, smooth: float = 1.0):
    """Soft dice over the whole flattened batch, with the seed's smoothing of 1.

    This is the seed's training metric: it weighs images by their pixel count and
    is not the per-image thresholded dice that evaluate reports.
    """
    return soft_dice(ops.reshape(ops.cast(y_true, y_pred.dtype), (-1,)), ops.reshape(y_pred, (-1,)), smooth=smooth)


def soft_dice(truth, predicted, axis=None, smooth: float = 1.0):
    """(2 * sum(truth * predicted) + smooth) / (sum(truth) + sum(predicted) + smooth): every soft dice
    here (binary, over labelled pixels, per class), summed over `axis` (all of it by default)."""
    return (2.0 * ops.sum(truth * predicted, axis=axis) + smooth) / (
        ops.sum(truth, axis=axis) + ops.sum(predicted, axis=axis) + smooth
    )


@keras.saving.register_keras_serializable(package=PACKAGE)
def image_dice(y_true, y_pred, threshold: float = 0.5):
    """Each image's dice of the mask thresholded at 0.5, ignored pixels left out; 1 for an empty mask
    predicted empty. Averaged over images by Keras, this is evaluate's `dice` (docs/guides/metrics.md), so
    the monitored value and the reported one are of one kind."""
    valid = ops.cast(ops.not_equal(y_true, IGNORE), "float32")
    truth = ops.cast(ops.equal(y_true, 1), "float32") * valid
    predicted = ops.cast(y_pred > threshold, "float32") * valid
    axes = tuple(range(1, len(y_pred.shape)))
    overlap = 2.0 * ops.sum(truth * predicted, axis=axes)
    total = ops.sum(truth, axis=axes) + ops.sum(predicted, axis=axes)
    return ops.where(total > 0, overlap / ops.maximum(total, 1.0), 1.0)


def _per_example(batch_loss, y_pred):
    """A batch-level loss given to each example of the batch, whose mean it stays.

    Keras averages a loss's per-example values and divides by the replicas under
    tf.distribute, but passes a scalar through undivided: the gradients summed over
    replicas would then be too large by their number.
    """
    return ops.broadcast_to(batch_loss, ops.shape(y_pred)[:1])


@keras.saving.register_keras_serializable(package=PACKAGE)
def dice_loss(y_true, y_pred):
    return _per_example(1.0 - dice_coefficient(y_true, y_pred), y_pred)


@keras.saving.register_keras_serializable(package=PACKAGE)
def bce_dice_loss(y_true, y_pred):
    """Binary cross-entropy plus dice loss: BCE's stable gradients, dice's focus on overlap."""
    bce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred))
    return _per_example(bce + 1.0 - dice_coefficient(y_true, y_pred), y_pred)


# Each `train.loss` name is one of three losses; the seed's names are aliases of the general ones.
KINDS = {"crossentropy": "crossentropy", "binary_crossentropy": "crossentropy", "dice": "dice",
         "crossentropy_dice": "crossentropy_dice", "bce_dice": "crossentropy_dice"}
SEED_LOSSES = {"crossentropy": "binary_crossentropy", "dice": dice_loss, "crossentropy_dice": bce_dice_loss}


def _one_hot(y_true, num_classes: int, dtype):
    """(one-hot classes, valid) of a label map batch (B, H, W, 1); ignored pixels are all zeros and not valid."""
    labels = ops.cast(y_true[..., 0], "int32")
    ignored = ops.equal(labels, IGNORE)
    valid = ops.cast(ops.logical_not(ignored), dtype)
    one_hot = ops.one_hot(ops.where(ignored, 0, labels), num_classes, dtype=dtype) * valid[..., None]
    return one_hot, valid


class _MaskedLosses:
    """A `train.loss` name as a loss, from a subclass's `crossentropy` and `dice` over labelled pixels."""

    def loss(self, name: str):
        def crossentropy(t, p):
            return self.crossentropy(t, p)

        def dice(t, p):
            return 1.0 - self.dice(t, p)

        def crossentropy_dice(t, p):
            return self.crossentropy(t, p) + 1.0 - self.dice(t, p)

        chosen = {"crossentropy": crossentropy, "dice": dice, "crossentropy_dice": crossentropy_dice}[KINDS[name]]

        def masked_loss(y_true, y_pred):
            return _per_example(chosen(y_true, y_pred), y_pred)

        masked_loss.__name__ = name
        return masked_loss


class ClassLosses(_MaskedLosses):
    """Cross-entropy, soft dice and accuracy over K softmax channels, with optional class weights.

    Cross-entropy is the weighted mean over labelled pixels (each pixel weighs its
    class's weight). Soft dice is computed per class over the whole batch, with the
    seed's smoothing of 1, and averaged over all K classes (weighted by the class
    weights when given). A class absent from a batch scores 1 / (Σp + 1), Σp the
    probability the network gives it over the batch: near 1 only when it predicts
    almost none of it, so a class predicted where it is absent pulls the mean down.
    """

    def __init__(self, num_classes: int, weights: np.ndarray | None = None):
        self.num_classes = num_classes
        self.weights = None if weights is None else np.asarray(weights, np.float32)

    def crossentropy(self, y_true, y_pred):
        one_hot, valid = _one_hot(y_true, self.num_classes, y_pred.dtype)
        pixel = -ops.sum(one_hot * ops.log(ops.clip(y_pred, EPSILON, 1.0)), axis=-1)
        weight = valid if self.weights is None else ops.sum(one_hot * ops.convert_to_tensor(self.weights), axis=-1)
        return ops.sum(pixel * weight) / ops.maximum(ops.sum(weight), EPSILON)

    def dice(self, y_true, y_pred, smooth: float = 1.0):
        one_hot, valid = _one_hot(y_true, self.num_classes, y_pred.dtype)
        per_class = soft_dice(one_hot, y_pred * valid[..., None], tuple(range(len(y_pred.shape) - 1)), smooth)
        if self.weights is None:
            return ops.mean(per_class)
        weights = ops.convert_to_tensor(self.weights)
        return ops.sum(per_class * weights) / ops.sum(weights)

    def accuracy(self, y_true, y_pred):
        """Pixel accuracy of the argmax over labelled pixels."""
        _, valid = _one_hot(y_true, self.num_classes, y_pred.dtype)
        hit = ops.cast(ops.equal(ops.argmax(y_pred, axis=-1), ops.cast(y_true[..., 0], "int32")), y_pred.dtype)
        return ops.sum(hit * valid) / ops.maximum(ops.sum(valid), 1.0)

    def metrics(self):
        return [
            keras.metrics.MeanMetricWrapper(self.dice, name="dice"),
            keras.metrics.MeanMetricWrapper(self.accuracy, name="accuracy"),
            keras.metrics.MeanIoU(self.num_classes, ignore_class=IGNORE, sparse_y_pred=False, name="mean_iou"),
        ]


class IgnoringBinaryLosses(_MaskedLosses):
    """The binary losses and metrics over labelled pixels only, for masks with ignored pixels (the
    padding of patches cut from images smaller than a patch): the same definitions as the seed's,
    with ignored pixels in no sum and no count."""

    @staticmethod
    def _labelled(y_true, y_pred):
        valid = ops.cast(ops.not_equal(y_true, IGNORE), y_pred.dtype)
        return ops.cast(y_true, y_pred.dtype) * valid, valid

    def crossentropy(self, y_true, y_pred):
        """Keras' binary cross-entropy per pixel, as resize mode's: from the sigmoid's logits where the
        prediction carries them (a model's output does), so a saturated pixel costs what it should."""
        truth, valid = self._labelled(y_true, y_pred)
        pixel = keras.losses.binary_crossentropy(truth, y_pred)  # (B, H, W): the mean over the one channel
        return ops.sum(pixel * valid[..., 0]) / ops.maximum(ops.sum(valid), 1.0)

    def dice(self, y_true, y_pred, smooth: float = 1.0):
        truth, valid = self._labelled(y_true, y_pred)
        return soft_dice(truth, y_pred * valid, smooth=smooth)

    def accuracy(self, y_true, y_pred):
        truth, valid = self._labelled(y_true, y_pred)
        hit = ops.cast(ops.equal(ops.cast(y_pred > 0.5, y_pred.dtype), truth), y_pred.dtype)
        return ops.sum(hit * valid) / ops.maximum(ops.sum(valid), 1.0)

    def metrics(self):
        return [keras.metrics.MeanMetricWrapper(self.dice, name="dice"),
                keras.metrics.MeanMetricWrapper(self.accuracy, name="accuracy"),
                keras.metrics.MeanMetricWrapper(image_dice, name="image_dice")]


def get_loss(name: str, num_classes: int = 1, weights: np.ndarray | None = None, ignoring: bool = False):
    """The loss for a `train.loss` name: binary with one channel (`ignoring` masks with ignored
    pixels), over classes with several."""
    if num_classes > 1:
        return ClassLosses(num_classes, weights).loss(name)
    return IgnoringBinaryLosses().loss(name) if ignoring else SEED_LOSSES[KINDS[name]]


def training_metrics(num_classes: int = 1, ignoring: bool = False):
    """The seed's soft batch dice and accuracy (binary at 0.5, or of the argmax), and evaluate's
    per-image dice (binary) or mean IoU (classes)."""
    if num_classes > 1:
        return ClassLosses(num_classes).metrics()
    if ignoring:
        return IgnoringBinaryLosses().metrics()
    return [
        keras.metrics.MeanMetricWrapper(dice_coefficient, name="dice"),
        keras.metrics.BinaryAccuracy(name="accuracy"),
        keras.metrics.MeanMetricWrapper(image_dice, name="image_dice"),
    ]
