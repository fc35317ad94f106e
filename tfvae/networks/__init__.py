"""Encoder and decoder builders made of Keras 3 layers, with explicit input shapes.

Encoders map images ``[batch, H, W, C]`` to the raw parameters of q(z|x) (``[batch, P]``);
decoders map codes ``[batch, latent_dim]`` to the raw parameters of p(x|z), shaped like the image.
The models in :mod:`tfvae.models` turn these raw outputs into distributions.

Named architectures (``build("iwae-mlp", ...)``, ``tfvae train --architecture``):

========== ==========================================================================
``mlp``    two ReLU hidden layers (256, 128), mirrored in the decoder
``iwae-mlp`` the IWAE paper's network: 784-200-200-50 with tanh (Burda et al. 2015)
``conv``   stride-2 convolutions (32, 32, 64, 64 as the image allows) + dense 256
========== ==========================================================================
"""

from tfvae.networks.conv import conv_decoder, conv_encoder, default_filters
from tfvae.networks.mlp import mlp_decoder, mlp_encoder

ARCHITECTURES = {
    "mlp": dict(kind="mlp", hidden_units=(256, 128), activation="relu"),
    "iwae-mlp": dict(kind="mlp", hidden_units=(200, 200), activation="tanh"),
    "conv": dict(kind="conv", activation="relu"),
}


def build(architecture, input_shape, encoder_outputs, latent_dim, decoder_channels_per_pixel=1,
          **overrides):
    """Builds a matching ``(encoder, decoder)`` pair by architecture name.

    Args:
      architecture: one of ``ARCHITECTURES``.
      input_shape: feature shape: ``(D,)`` vectors (MLPs only) or ``(H, W, C)`` images.
      encoder_outputs: the posterior's parameter count (e.g. ``2 * latent_dim``).
      latent_dim: code size.
      decoder_channels_per_pixel: likelihood parameters per pixel.
      **overrides: builder arguments that replace the architecture's defaults, e.g.
        ``hidden_units=(400,)`` or ``filters=(32, 64)``.

    Example:
      >>> encoder, decoder = build("iwae-mlp", (28, 28, 1), encoder_outputs=100, latent_dim=50)
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; expected one of {sorted(ARCHITECTURES)}")
    spec = dict(ARCHITECTURES[architecture], **overrides)
    kind = spec.pop("kind")
    if kind == "conv" and len(tuple(input_shape)) != 3:
        raise ValueError(f"architecture {architecture!r} is convolutional and needs images (height, width, "
                         f"channels); got the feature shape {tuple(input_shape)}: use 'mlp' or 'iwae-mlp'")
    if kind == "mlp":
        hidden = tuple(spec.pop("hidden_units"))
        encoder = mlp_encoder(input_shape, encoder_outputs, hidden_units=hidden, **spec)
        decoder = mlp_decoder(latent_dim, input_shape, hidden_units=hidden[::-1],
                              output_channels_per_pixel=decoder_channels_per_pixel, **spec)
    else:
        encoder = conv_encoder(input_shape, encoder_outputs, **spec)
        decoder = conv_decoder(latent_dim, input_shape,
                               output_channels_per_pixel=decoder_channels_per_pixel, **spec)
    return encoder, decoder


__all__ = ["ARCHITECTURES", "build", "conv_decoder", "conv_encoder", "default_filters",
           "mlp_decoder", "mlp_encoder"]
