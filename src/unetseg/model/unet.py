"""The U-Net of the seed (r-tensorflow/unet), and one under a pretrained encoder, in pure Keras 3 so
they run on any backend."""

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


DECODER_WIDTHS = (16, 8, 4, 2, 1)  # times model.filters, from the deepest skip up: 16 filters give SMP's 256 ... 16


def build_encoder_unet(
    input_shape=(128, 128, 3),
    num_classes: int = 1,
    filters: int = 16,
    dropout: float = 0.5,
    output_activation: str = "sigmoid",
    batch_norm: bool = True,
    encoder_weights=None,
) -> keras.Model:
    """A U-Net whose contracting path is EfficientNet-Lite0 (unetseg.model.efficientnet_lite).

    The model takes images in [0, 1] as every unetseg network does and applies the encoder's own
    input normalisation itself, so predict and export need no rule of their own. The encoder's
    feature maps at strides 2, 4, 8 and 16 are the skips and the one at stride 32 the bottleneck
    (after `dropout`, as the seed's); each decoder block doubles the size, joins its skip and applies
    `_conv_block` at `filters` x DECODER_WIDTHS, the last one (at full size) without a skip.
    `encoder_weights` (`efficientnet_lite.pretrained_weights`): a PyTorch state dict, as ImageNet's,
    or the path of a Keras weights file, loaded into the encoder; None leaves it random.
    """
    from unetseg.model.efficientnet_lite import build_encoder, input_normalization, load_imagenet_weights

    height, width = input_shape[0], input_shape[1]
    if height is not None and height % 32 or width is not None and width % 32:
        raise ValueError(f"input size {height}x{width} is not divisible by 32 (the encoder halves it 5 times)")
    encoder = build_encoder(tuple(input_shape))
    if isinstance(encoder_weights, dict):
        load_imagenet_weights(encoder, encoder_weights)
    elif encoder_weights is not None:
        encoder.load_weights(encoder_weights)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    *skips, x = encoder(input_normalization(max_value=1.0)(inputs))
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    for level, width_factor in enumerate(DECODER_WIDTHS):
        x = layers.UpSampling2D(2, interpolation="nearest", name=f"up{5 - level}_upsample")(x)
        if level < len(skips):
            x = layers.Concatenate(name=f"up{5 - level}_concat")([skips[-1 - level], x])
        x = _conv_block(x, filters * width_factor, batch_norm, name=f"up{5 - level}")
    outputs = layers.Conv2D(num_classes, 1, activation=output_activation, name="mask", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="unet_efficientnet_lite0")
