"""The U-Net of the seed (r-tensorflow/unet), in pure Keras 3 so it runs on any backend."""

from __future__ import annotations

import keras
from keras import layers


def _conv_block(x, filters: int, batch_norm: bool, name: str):
    """Two 3x3 'same' ReLU convolutions, as the seed's conv2d_block (he_normal init), and optionally
    batch normalisation of the block's output: once a block, not after each convolution, which costs
    a fifth of the training rate on a CPU (`benchmarks/seeds.py` for what each trains to)."""
    for i in (1, 2):
        x = layers.Conv2D(
            filters,
            3,
            padding="same",
            activation="relu",
            kernel_initializer="he_normal",
            name=f"{name}_conv{i}",
        )(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return x


def build_unet(
    input_shape=(128, 128, 3),
    num_classes: int = 1,
    filters: int = 64,
    num_layers: int = 4,
    dropout: float = 0.5,
    output_activation: str = "sigmoid",
    batch_norm: bool = False,
) -> keras.Model:
    """Build the seed's U-Net; the defaults give its network layer for layer.

    `num_layers` down blocks double the filters and halve the size, so height and
    width must be divisible by 2**num_layers. Dropout is applied once, after the
    last pooling, as in the seed. `batch_norm` (not in the seed) adds batch
    normalisation at the end of each block.
    """
    height, width = input_shape[0], input_shape[1]
    factor = 2**num_layers
    if height is not None and height % factor or width is not None and width % factor:
        raise ValueError(
            f"input size {height}x{width} is not divisible by 2**num_layers = {factor}"
        )
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    skips = []
    for level in range(num_layers):
        x = _conv_block(x, filters, batch_norm, name=f"down{level + 1}")
        skips.append(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"down{level + 1}_pool")(x)
        filters *= 2
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = _conv_block(x, filters, batch_norm, name="bottleneck")
    for level, skip in zip(range(num_layers, 0, -1), reversed(skips)):
        filters //= 2
        x = layers.Conv2DTranspose(
            filters, 2, strides=2, padding="same", name=f"up{level}_transpose"
        )(x)
        x = layers.Concatenate(name=f"up{level}_concat")([skip, x])
        x = _conv_block(x, filters, batch_norm, name=f"up{level}")
    # float32 output even under a mixed-precision policy, so losses see full precision.
    outputs = layers.Conv2D(num_classes, 1, activation=output_activation, name="mask", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="unet")
