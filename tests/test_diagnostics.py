"""tfvae.diagnostics.gradient_snr and the active-units count, against independent computations:
gradients with a known mean and noise, the regulariser's closed-form gradient, Rainforth et al.'s
SNR trends, and posterior means written out by hand."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae import objectives
from tfvae.diagnostics import gradient_snr
from tfvae.evaluation import active_units
from tfvae.models import IWAE, MIWAE, PIWAE, VAE

TINY = dict(image_shape=(8, 8, 1), latent_dim=3, network_options=dict(hidden_units=(16,)))


def _known_noise(m, images):
    """A loss whose gradient for every encoder weight is ~N(2, 1) and for every decoder weight
    ~N(−0.5, 1), independently across repeats."""
    del images
    terms = [tf.reduce_sum(v * (2.0 + tf.random.normal(v.shape))) for v in m.encoder.trainable_variables]
    terms += [tf.reduce_sum(v * (-0.5 + tf.random.normal(v.shape))) for v in m.decoder.trainable_variables]
    return tf.fill([1], tf.add_n(terms))


def test_gradient_snr_matches_known_signal_and_noise(digits):
    model = IWAE(**TINY, num_samples=1)
    snr = gradient_snr(model, digits[0][:2], num_repeats=400, objective=_known_noise, seed=0)
    assert snr["encoder"] == pytest.approx(2.0, rel=0.05)
    assert snr["decoder"] == pytest.approx(0.5, rel=0.1)
    per_parameter = gradient_snr(model, digits[0][:2], num_repeats=50, objective=_known_noise, summary=None)
    assert per_parameter["encoder"].shape == (sum(v.shape.num_elements() for v in model.encoder.trainable_variables),)


def test_gradient_snr_measures_the_gradient_train_step_applies_regularisation_included(digits, tiny_model):
    # gradient_snr runs the model's own compute_gradients, so the regularisation losses are in:
    # with L2(λ) on the hidden kernels W and data gradients ~N(0, 1), the SNR of each entry of W
    # is |2λ W| / 1 (closed form). A copy of the objective without self.losses would give |E[g]|
    # ≈ 0 there.
    lam = 2.0
    model = tiny_model(VAE, kernel_regularizer=keras.regularizers.L2(lam))

    def pure_noise(m, images):
        del images
        return tf.fill([1], tf.add_n([tf.reduce_sum(v * tf.random.normal(v.shape)) for v in m.trainable_variables]))

    snr = gradient_snr(model, digits[0][:2], num_repeats=400, objective=pure_noise, seed=1, summary=None)
    kernel = model.encoder.layers[2].kernel
    assert kernel.regularizer is not None
    size = kernel.shape.num_elements()
    want = np.abs(2.0 * lam * kernel.numpy().ravel())
    got = snr["encoder"][:size]                 # the first encoder variable is this kernel
    # one SNR estimate from 400 repeats has a standard error of about 0.05 (for SNR ≲ 1.5)
    assert np.mean(np.abs(got - want)) < 0.08, np.mean(np.abs(got - want))
    assert np.mean(want) > 0.5                  # the regulariser's signal is large: the test has power
    # the unregularised output layer keeps SNR ≈ 0
    assert np.nanmean(snr["encoder"][size + 16:]) < 0.15


def test_encoder_snr_falls_and_decoder_snr_rises_with_k_under_iwae(digits):
    images = digits[0][:512]
    keras.utils.set_random_seed(0)
    model = IWAE(image_shape=(8, 8, 1), latent_dim=4, num_samples=1, network_options=dict(hidden_units=(32,)))
    model.compile(optimizer="adam", jit_compile=False)
    model.fit(images, batch_size=64, epochs=1, verbose=0)       # past the initial transient
    snr = {k: gradient_snr(model, images[:16], num_repeats=100, seed=0,
                           objective=lambda m, x, k=k: -objectives.iwae(m.log_weights(x, k)))
           for k in (1, 16, 256)}
    assert snr[1]["encoder"] > 1.3 * snr[16]["encoder"] > 1.3 * 1.3 * snr[256]["encoder"], snr
    assert snr[1]["decoder"] < snr[16]["decoder"] < snr[256]["decoder"], snr
    # DReG removes the collapse of the encoder's SNR
    dreg = gradient_snr(model, images[:16], num_repeats=100, seed=0,
                        objective=lambda m, x: -objectives.dreg_surrogate(m.log_weights(x, 256, True)))
    assert dreg["encoder"] > 3 * snr[256]["encoder"]


def test_gradient_snr_follows_piwae_surrogates(digits, tiny_model):
    # PIWAE's encoder SNR is that of the MIWAE gradient, its decoder SNR that of IWAE(M·K): the
    # same initial weights (one seed) and the same draws (one seed, six draws each).
    images = digits[0][:8]
    piwae = gradient_snr(tiny_model(PIWAE, num_estimates=2, num_samples=3), images, num_repeats=20, seed=4)
    miwae = gradient_snr(tiny_model(MIWAE, num_estimates=2, num_samples=3), images, num_repeats=20, seed=4)
    iwae = gradient_snr(tiny_model(IWAE, num_samples=6), images, num_repeats=20, seed=4)
    assert piwae["encoder"] == pytest.approx(miwae["encoder"], rel=1e-4)
    assert piwae["decoder"] == pytest.approx(iwae["decoder"], rel=1e-4)
    assert piwae["encoder"] != pytest.approx(iwae["encoder"], rel=1e-2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_repeats=1), "num_repeats must be an integer >= 2"),
    (dict(summary="max"), "summary must be one of"),
    (dict(objective="iwae"), "objective must be None or a callable"),
])
def test_gradient_snr_rejects_bad_arguments(digits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        gradient_snr(IWAE(**TINY), digits[0][:4], **kwargs)


def test_gradient_snr_rejects_bad_images():
    with pytest.raises(ValueError, match=r"\[batch, 8, 8, 1\]"):
        gradient_snr(IWAE(**TINY), np.zeros((4, 28, 28, 1), np.float32))


# ------------------------------------------------------------------------------- active units

def test_active_units_are_the_variances_of_the_posterior_means(digits):
    # Burda et al.: dimension j is active when Var_x(E_q[z_j | x]) > 0.01. The means written out
    # by hand: the first half of the encoder's output. This untrained encoder has σ ≈ 1, so the
    # variance of a *sample* of q would be about 1 larger and count every dimension.
    images = digits[0][:300]
    model = VAE(image_shape=(8, 8, 1), latent_dim=6, network_options=dict(hidden_units=(16,)))
    params = model.encoder(images).numpy().astype(np.float64)
    means = params[:, :6]
    assert np.all(np.exp(0.5 * params[:, 6:]) > 0.3)                     # samples would be noisy
    want = means.var(axis=0)
    threshold = float(np.median(want))                                  # some dimensions each side
    count, variances = active_units(model, images, threshold=threshold)
    np.testing.assert_allclose(variances, want, rtol=1e-4, atol=1e-8)
    assert count == int((want > threshold).sum()) and 0 < count < 6
    # datasets (of (x, y) pairs) give the same answer
    dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(300))).batch(64)
    np.testing.assert_allclose(active_units(model, dataset, threshold=threshold)[1], want, rtol=1e-4, atol=1e-8)
