"""Fully connected encoders and decoders."""

import math

import keras

from tfvae.networks._checks import check_positive_ints, check_shape


def mlp_encoder(input_shape, output_dim, hidden_units=(256, 128), activation="relu", name="encoder"):
    """An MLP from features (vectors or images) to the parameters of q(z|x).

    Args:
      input_shape: feature shape, e.g. ``(30,)`` or ``(28, 28, 1)``; flattened on entry.
      output_dim: number of outputs (the posterior's parameter count, e.g. ``2 * latent_dim``).
      hidden_units: widths of the hidden layers.
      activation: a Keras activation name for the hidden layers.

    Example:
      >>> enc = mlp_encoder((28, 28, 1), 100, hidden_units=(200, 200), activation="tanh")
      >>> enc.output_shape
      (None, 100)
    """
    input_shape = check_shape("input_shape", input_shape)
    output_dim = check_positive_ints("output_dim", [output_dim])[0]
    hidden_units = check_positive_ints("hidden_units", hidden_units)
    inputs = keras.Input(shape=input_shape, name="features")
    h = keras.layers.Flatten()(inputs)
    for i, units in enumerate(hidden_units):
        h = keras.layers.Dense(units, activation=activation, name=f"hidden_{i}")(h)
    outputs = keras.layers.Dense(output_dim, name="posterior_params")(h)
    return keras.Model(inputs, outputs, name=name)


def mlp_decoder(latent_dim, output_shape, hidden_units=(128, 256), activation="relu",
                output_channels_per_pixel=1, name="decoder"):
    """An MLP from codes to the parameters of p(x|z), shaped like the features.

    Args:
      latent_dim: size of the code z.
      output_shape: feature shape ``(D,)`` or ``(H, W, C)``.
      hidden_units: widths of the hidden layers, from the code outwards.
      activation: a Keras activation name for the hidden layers.
      output_channels_per_pixel: parameters per feature (1 for Bernoulli logits or a Gaussian
        mean; 2 for the negative binomial); the last axis is multiplied by it:
        ``(D * P,)`` or ``(H, W, C * P)``.
    """
    latent_dim = check_positive_ints("latent_dim", [latent_dim])[0]
    output_shape = check_shape("output_shape", output_shape)
    hidden_units = check_positive_ints("hidden_units", hidden_units)
    out_shape = output_shape[:-1] + (output_shape[-1] * output_channels_per_pixel,)
    inputs = keras.Input(shape=(latent_dim,), name="codes")
    h = inputs
    for i, units in enumerate(hidden_units):
        h = keras.layers.Dense(units, activation=activation, name=f"hidden_{i}")(h)
    h = keras.layers.Dense(math.prod(out_shape), name="likelihood_params")(h)
    outputs = keras.layers.Reshape(out_shape)(h)
    return keras.Model(inputs, outputs, name=name)
