"""Training under tf.distribute.MirroredStrategy equals single-device training.

conftest.py splits the CPU into two logical devices, so the strategy has two replicas, each of
which sees half of every batch. Sampling z ~ q(z|x) would differ between the two runs (each
replica draws its own noise), so the encoder here pins log σ² at −30: z = μ + σε with
σ ≈ 3e-7 equals μ to float precision, and the only remaining difference between the runs is how
each batch is split, how the losses are scaled and how gradients and metrics are summed.

The importance-weighted models cannot use that trick (their weights depend on the noise through
log q(z|x), and DReG differentiates log q at z), so they train with ``tiny_model(...,
fixed_noise=True)`` from conftest.py: draws that are a fixed function of each example, the same on
one device and on either replica.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae.models import IWAE, PIWAE, VAE, BetaVAE

LATENT = 3


def _near_deterministic_networks():
    images = keras.Input((8, 8, 1))
    h = keras.layers.Flatten()(images)
    h = keras.layers.Dense(16, activation="tanh")(h)
    loc = keras.layers.Dense(LATENT)(h)
    log_var = keras.layers.Dense(LATENT, kernel_initializer="zeros",
                                 bias_initializer=keras.initializers.Constant(-30.0), trainable=False)(h)
    encoder = keras.Model(images, keras.layers.Concatenate()([loc, log_var]))
    decoder = keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(16, activation="tanh"),
                                keras.layers.Dense(64), keras.layers.Reshape((8, 8, 1))])
    return encoder, decoder


def _train(cls, strategy, weights, images, **kwargs):
    with strategy.scope():
        encoder, decoder = _near_deterministic_networks()
        model = cls(image_shape=(8, 8, 1), latent_dim=LATENT, encoder=encoder, decoder=decoder, **kwargs)
        if weights is not None:
            model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
    data = tf.data.Dataset.from_tensor_slices(images).batch(32)
    history = model.fit(data, epochs=2, verbose=0, shuffle=False).history
    return model, history


def test_mirrored_training_matches_single_device(digits, mirrored_strategy):
    images, _ = digits
    images = images[:256]
    keras.utils.set_random_seed(0)
    encoder, decoder = _near_deterministic_networks()
    initial = VAE(image_shape=(8, 8, 1), latent_dim=LATENT, encoder=encoder, decoder=decoder).get_weights()

    single, single_history = _train(VAE, tf.distribute.get_strategy(), initial, images)
    mirrored, mirrored_history = _train(VAE, mirrored_strategy, initial, images)

    for a, b in zip(single.get_weights(), mirrored.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for name in ("loss", "elbo", "reconstruction", "kl"):
        np.testing.assert_allclose(single_history[name], mirrored_history[name], rtol=1e-4)
    # the weights moved, so the comparison above is not between two untrained models
    assert max(np.abs(a - b).max() for a, b in zip(initial, single.get_weights())) > 1e-3


def test_mirrored_capacity_schedule_matches_single_device(digits, mirrored_strategy):
    images, _ = digits
    images = images[:128]
    keras.utils.set_random_seed(1)
    encoder, decoder = _near_deterministic_networks()
    kwargs = dict(capacity_max=5.0, capacity_steps=6, gamma=2.0)
    initial = BetaVAE(image_shape=(8, 8, 1), latent_dim=LATENT, encoder=encoder, decoder=decoder,
                      **kwargs).get_weights()
    single, single_history = _train(BetaVAE, tf.distribute.get_strategy(), initial, images, **kwargs)
    mirrored, mirrored_history = _train(BetaVAE, mirrored_strategy, initial, images, **kwargs)
    np.testing.assert_allclose(single_history["capacity"], mirrored_history["capacity"], rtol=1e-6)
    np.testing.assert_allclose(single_history["loss"], mirrored_history["loss"], rtol=1e-4)
    for a, b in zip(single.get_weights(), mirrored.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls, options", [(PIWAE, dict(num_estimates=2, num_samples=3)),
                                          (IWAE, dict(num_samples=4, dreg=True))], ids=["PIWAE", "IWAE-dreg"])
def test_mirrored_surrogate_training_matches_single_device(digits, mirrored_strategy, tiny_model, cls, options):
    # Surrogate groups (each differentiated w.r.t. its own variables) must be averaged over the
    # global batch like the loss: a per-replica mean would double every gradient here.
    images = (digits[0][:128] > 0.5).astype("float32")
    initial = tiny_model(cls, fixed_noise=True, **options).get_weights()
    runs = {}
    for name, strategy in (("single", tf.distribute.get_strategy()), ("mirrored", mirrored_strategy)):
        with strategy.scope():
            model = tiny_model(cls, fixed_noise=True, **options)
            model.set_weights(initial)
            model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
        history = model.fit(tf.data.Dataset.from_tensor_slices(images).batch(32), epochs=2, verbose=0,
                            shuffle=False).history
        runs[name] = model.get_weights(), history
    (single, single_history), (mirrored, mirrored_history) = runs["single"], runs["mirrored"]
    for a, b in zip(single, mirrored):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for name in ("loss", "iwae", "elbo", "ess"):
        np.testing.assert_allclose(single_history[name], mirrored_history[name], rtol=1e-4)
    assert max(np.abs(a - b).max() for a, b in zip(initial, single)) > 1e-3
