"""Dice loss and metric in pure Keras 3 ops, registered so saved models reload."""

from __future__ import annotations

import keras
from keras import ops

PACKAGE = "unetseg"


@keras.saving.register_keras_serializable(package=PACKAGE)
def dice_coefficient(y_true, y_pred, smooth: float = 1.0):
    """Soft dice over the whole flattened batch, with the seed's smoothing of 1.

    This is the seed's training metric: it weighs images by their pixel count and
    is not the per-image thresholded dice that evaluate reports.
    """
    y_true = ops.reshape(ops.cast(y_true, y_pred.dtype), (-1,))
    y_pred = ops.reshape(y_pred, (-1,))
    intersection = ops.sum(y_true * y_pred)
    return (2.0 * intersection + smooth) / (ops.sum(y_true) + ops.sum(y_pred) + smooth)


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


LOSSES = {
    "binary_crossentropy": "binary_crossentropy",
    "dice": dice_loss,
    "bce_dice": bce_dice_loss,
}


def get_loss(name: str):
    """The loss for a `train.loss` name."""
    return LOSSES[name]


def training_metrics():
    """The metrics the seed tracks: soft batch dice and binary accuracy at 0.5."""
    return [
        keras.metrics.MeanMetricWrapper(dice_coefficient, name="dice"),
        keras.metrics.BinaryAccuracy(name="accuracy"),
    ]
