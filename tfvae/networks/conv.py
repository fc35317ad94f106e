"""Convolutional encoders and (transposed-convolution) decoders for square-ish images.

Each stride-2 layer halves the image, so an image of side S supports as many layers as S can be
halved exactly: 28x28 takes two (28 -> 14 -> 7), 64x64 takes four (64 -> 32 -> 16 -> 8 -> 4, the
disentanglement_lib network).
"""

import math

import keras

from tfvae.networks._checks import check_positive_ints, check_shape


def default_filters(image_shape):
    """The filter widths used when none are given: (32, 32, 64, 64) trimmed to what fits.

    >>> default_filters((64, 64, 1)), default_filters((28, 28, 1)), default_filters((8, 8, 1))
    ((32, 32, 64, 64), (32, 64), (32,))
    """
    height, width = image_shape[:2]
    n = 0
    while n < 4 and height % 2 ** (n + 1) == 0 and width % 2 ** (n + 1) == 0 \
            and min(height, width) // 2 ** (n + 1) >= 4:
        n += 1
    return {0: (), 1: (32,), 2: (32, 64), 3: (32, 64, 64), 4: (32, 32, 64, 64)}[n]


def _check_halvable(image_shape, filters):
    height, width = image_shape[:2]
    factor = 2 ** len(filters)
    if height % factor or width % factor:
        raise ValueError(
            f"{len(filters)} stride-2 layers need the image sides divisible by {factor}, "
            f"got {height}x{width}; use fewer filters")


def conv_encoder(input_shape, output_dim, filters=None, kernel_size=4, dense_units=256,
                 activation="relu", name="encoder"):
    """Stride-2 convolutions, then a dense layer, then the posterior's parameters.

    Example:
      >>> enc = conv_encoder((64, 64, 1), 20)   # disentanglement_lib's encoder, 10 latents
      >>> enc.output_shape
      (None, 20)
    """
    input_shape = check_shape("input_shape", input_shape, ranks=(3,))
    output_dim = check_positive_ints("output_dim", [output_dim])[0]
    filters = default_filters(input_shape) if filters is None else check_positive_ints("filters", filters)
    _check_halvable(input_shape, filters)
    inputs = keras.Input(shape=input_shape, name="images")
    h = inputs
    for i, f in enumerate(filters):
        h = keras.layers.Conv2D(f, kernel_size, strides=2, padding="same", activation=activation,
                                name=f"conv_{i}")(h)
    h = keras.layers.Flatten()(h)
    if dense_units:
        h = keras.layers.Dense(dense_units, activation=activation, name="dense")(h)
    outputs = keras.layers.Dense(output_dim, name="posterior_params")(h)
    return keras.Model(inputs, outputs, name=name)


def conv_decoder(latent_dim, output_shape, filters=None, kernel_size=4, dense_units=256,
                 activation="relu", output_channels_per_pixel=1, name="decoder"):
    """The mirror of :func:`conv_encoder`: dense layers, then stride-2 transposed convolutions.

    ``filters`` are given in the encoder's order and used reversed, so the same tuple builds a
    matching pair.
    """
    latent_dim = check_positive_ints("latent_dim", [latent_dim])[0]
    output_shape = check_shape("output_shape", output_shape, ranks=(3,))
    filters = default_filters(output_shape) if filters is None else check_positive_ints("filters", filters)
    _check_halvable(output_shape, filters)
    height, width, channels = output_shape
    factor = 2 ** len(filters)
    start = (height // factor, width // factor, filters[-1] if filters else channels)
    inputs = keras.Input(shape=(latent_dim,), name="codes")
    h = inputs
    if dense_units:
        h = keras.layers.Dense(dense_units, activation=activation, name="dense")(h)
    h = keras.layers.Dense(math.prod(start), activation=activation, name="dense_to_grid")(h)
    h = keras.layers.Reshape(start)(h)
    upsampling = list(reversed(filters))[1:] + [channels * output_channels_per_pixel]
    for i, f in enumerate(upsampling[:-1]):
        h = keras.layers.Conv2DTranspose(f, kernel_size, strides=2, padding="same",
                                         activation=activation, name=f"deconv_{i}")(h)
    outputs = keras.layers.Conv2DTranspose(upsampling[-1], kernel_size, strides=2 if filters else 1,
                                           padding="same", name="likelihood_params")(h)
    return keras.Model(inputs, outputs, name=name)
