"""Encoder and decoder builders."""

import keras
import numpy as np
import pytest

from tfvae import networks


def test_iwae_mlp_is_the_papers_network():
    encoder, decoder = networks.build("iwae-mlp", (28, 28, 1), encoder_outputs=100, latent_dim=50)
    dense = [layer for layer in encoder.layers if isinstance(layer, keras.layers.Dense)]
    assert [tuple(layer.kernel.shape) for layer in dense] == [(784, 200), (200, 200), (200, 100)]
    assert all(layer.activation.__name__ == "tanh" for layer in dense[:-1])
    dense = [layer for layer in decoder.layers if isinstance(layer, keras.layers.Dense)]
    assert [tuple(layer.kernel.shape) for layer in dense] == [(50, 200), (200, 200), (200, 784)]
    assert decoder.output_shape == (None, 28, 28, 1)


@pytest.mark.parametrize("shape,halvings", [((28, 28, 1), 2), ((64, 64, 1), 4), ((8, 8, 1), 1), ((32, 32, 3), 3)])
def test_conv_networks_fit_the_image(shape, halvings):
    encoder, decoder = networks.build("conv", shape, encoder_outputs=20, latent_dim=10)
    assert len(networks.default_filters(shape)) == halvings
    assert encoder.output_shape == (None, 20)
    assert decoder.output_shape == (None,) + shape
    x = np.zeros((2,) + shape, np.float32)
    assert encoder(x).shape == (2, 20)
    assert decoder(np.zeros((2, 10), np.float32)).shape == (2,) + shape


def test_decoder_emits_extra_parameters_per_pixel():
    _, decoder = networks.build("mlp", (8, 8, 1), encoder_outputs=4, latent_dim=2, decoder_channels_per_pixel=2)
    assert decoder.output_shape == (None, 8, 8, 2)


def test_overrides_replace_the_architecture_defaults():
    encoder, _ = networks.build("mlp", (8, 8, 1), encoder_outputs=4, latent_dim=2, hidden_units=(7,),
                                activation="elu")
    hidden = [layer for layer in encoder.layers if isinstance(layer, keras.layers.Dense)][0]
    assert hidden.units == 7 and hidden.activation.__name__ == "elu"


def test_networks_accept_extra_leading_batch_entries():
    """Explicit input shapes: a network first called on one batch size works on another."""
    encoder, _ = networks.build("mlp", (8, 8, 1), encoder_outputs=4, latent_dim=2)
    assert encoder(np.zeros((3, 8, 8, 1), np.float32)).shape == (3, 4)
    assert encoder(np.zeros((7, 8, 8, 1), np.float32)).shape == (7, 4)


@pytest.mark.parametrize("call,message", [
    (lambda: networks.build("resnet", (8, 8, 1), 4, 2), "unknown architecture 'resnet'"),
    (lambda: networks.mlp_encoder((8, 8), 4), "image shape"),
    (lambda: networks.mlp_encoder((8, 8, 1), 0), "output_dim must be positive"),
    (lambda: networks.mlp_decoder(2, (8, 8, 1), hidden_units=(16, -1)), "hidden_units must be positive"),
    (lambda: networks.conv_encoder((28, 28, 1), 4, filters=(8, 8, 8)), "divisible by 8"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
