"""The importance-weighted objectives as pure functions, against independent computations
(numpy/scipy log-mean-exp, explicit loops over the estimates, closed-form expectations)."""

import math

import numpy as np
import pytest
import tensorflow as tf
from scipy.special import logsumexp, softmax

from tfvae import objectives


def _log_mean_exp(values, axis=0):
    return logsumexp(values, axis=axis) - math.log(values.shape[axis])


@pytest.fixture
def log_weights():
    # Large, spread-out log-weights as a real model gives them (−100s of nats): a naive
    # log(mean(exp(w))) underflows to −inf here, so the checks also cover the log-space numerics.
    rng = np.random.default_rng(0)
    return (-300.0 + 20.0 * rng.standard_normal((12, 5))).astype(np.float32)


def test_iwae_is_log_mean_exp_over_samples(log_weights):
    expected = _log_mean_exp(log_weights.astype(np.float64))
    np.testing.assert_allclose(objectives.iwae(log_weights).numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(objectives.iwae(tf.math.log([[1.0], [3.0]])).numpy(), [math.log(2.0)], rtol=1e-6)


def test_iwae_with_one_sample_is_the_elbo(log_weights):
    one = log_weights[:1]
    np.testing.assert_allclose(objectives.iwae(one).numpy(), objectives.elbo(one).numpy())
    np.testing.assert_allclose(objectives.elbo(log_weights).numpy(), log_weights.mean(axis=0), rtol=1e-6)


def test_miwae_averages_the_m_estimates_of_consecutive_k_rows(log_weights):
    num_estimates, num_samples = 3, 4
    # Layout: estimate m is rows m*K ... m*K + K - 1.
    expected = np.mean([_log_mean_exp(log_weights[m * num_samples:(m + 1) * num_samples].astype(np.float64))
                        for m in range(num_estimates)], axis=0)
    got = objectives.miwae(log_weights, num_estimates).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # Peer bug (a): normalising over the M axis and averaging over K (M and K swapped) gives a
    # different number; this test would catch it.
    grouped = log_weights.astype(np.float64).reshape(num_estimates, num_samples, -1)
    swapped = np.mean(_log_mean_exp(grouped, axis=0), axis=0)
    assert np.max(np.abs(swapped - got)) > 1.0


def test_miwae_special_cases(log_weights):
    np.testing.assert_allclose(objectives.miwae(log_weights, 1).numpy(), objectives.iwae(log_weights).numpy())
    np.testing.assert_allclose(objectives.miwae(log_weights, 12).numpy(), objectives.elbo(log_weights).numpy(),
                               rtol=1e-6)


def test_miwae_with_unknown_sample_count_in_a_graph(log_weights):
    compiled = tf.function(lambda w: objectives.miwae(w, 3),
                           input_signature=[tf.TensorSpec([None, None], tf.float32)])
    np.testing.assert_allclose(compiled(log_weights).numpy(), objectives.miwae(log_weights, 3).numpy())
    with pytest.raises(tf.errors.InvalidArgumentError, match="must divide"):
        tf.function(lambda w: objectives.miwae(w, 5),
                    input_signature=[tf.TensorSpec([None, None], tf.float32)])(log_weights)


def test_ciwae_interpolates_elbo_and_iwae(log_weights):
    w = log_weights.astype(np.float64)
    np.testing.assert_allclose(objectives.ciwae(log_weights, 1.0).numpy(), w.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(objectives.ciwae(log_weights, 0.0).numpy(), _log_mean_exp(w), rtol=1e-6)
    np.testing.assert_allclose(objectives.ciwae(log_weights, 0.3).numpy(),
                               0.3 * w.mean(axis=0) + 0.7 * _log_mean_exp(w), rtol=1e-6)


def test_piwae_gives_miwae_to_the_encoder_and_iwae_to_the_decoder(log_weights):
    bounds = objectives.piwae(log_weights, 4)
    assert set(bounds) == {"encoder", "decoder"}
    np.testing.assert_allclose(bounds["encoder"].numpy(), objectives.miwae(log_weights, 4).numpy())
    np.testing.assert_allclose(bounds["decoder"].numpy(), _log_mean_exp(log_weights.astype(np.float64)),
                               rtol=1e-6)


def test_bounds_are_ordered_in_expectation_and_below_log_mean_weight():
    # Log-normal weights: w ~ N(mu, s^2), so log E[e^w] = mu + s^2 / 2 plays log p(x). Jensen:
    # E[ELBO] = mu <= E[IWAE_K] <= E[IWAE_K'] <= mu + s^2/2 for K < K'. Each bound is averaged
    # over 20,000 independent columns and the gaps are compared with their standard errors.
    rng = np.random.default_rng(1)
    mu, s, columns = -2.0, 1.0, 20_000
    means, errors = {}, {}
    for k in (1, 4, 32, 256):
        bound = objectives.iwae(rng.normal(mu, s, size=(k, columns)).astype(np.float32)).numpy()
        means[k], errors[k] = bound.mean(), bound.std() / math.sqrt(columns)
    assert abs(means[1] - mu) < 4 * errors[1]
    for small, large in ((1, 4), (4, 32), (32, 256)):
        gap = means[large] - means[small]
        assert gap > 4 * math.hypot(errors[small], errors[large]), (small, large, means)
    assert means[256] < mu + s ** 2 / 2
    # and the large-K bound is close to log E[e^w]: its bias is about (e^{s^2} - 1) / (2K).
    assert abs(means[256] - (mu + s ** 2 / 2)) < (math.exp(s ** 2) - 1) / 256 + 4 * errors[256]


def test_iwae_gradient_is_the_normalised_weights(log_weights):
    # The IWAE gradient estimator: d IWAE / d w_k = softmax(w)_k, positive and summing to one
    # (peer bug (c): weights from per-sample *losses* flip the sign and favour the worst samples).
    w = tf.constant(log_weights)
    with tf.GradientTape() as tape:
        tape.watch(w)
        total = tf.reduce_sum(objectives.iwae(w))
    np.testing.assert_allclose(tape.gradient(total, w).numpy(), softmax(log_weights.astype(np.float64), axis=0),
                               rtol=1e-4, atol=1e-7)


def test_normalized_weights_sum_to_one_in_each_estimate(log_weights):
    weights = objectives.normalized_weights(log_weights, 3).numpy()
    assert weights.shape == log_weights.shape
    np.testing.assert_allclose(weights.reshape(3, 4, -1).sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(weights[:4], softmax(log_weights[:4].astype(np.float64), axis=0), rtol=1e-4)


def test_effective_sample_size():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(10, 6)) * 2
    expected = 1.0 / np.sum(softmax(w, axis=0) ** 2, axis=0)
    np.testing.assert_allclose(objectives.effective_sample_size(w.astype(np.float32)).numpy(), expected, rtol=1e-4)
    np.testing.assert_allclose(objectives.effective_sample_size(np.zeros((7, 2), np.float32)).numpy(), 7.0, rtol=1e-6)
    one_dominant = np.array([[0.0], [-200.0], [-200.0]], np.float32)
    np.testing.assert_allclose(objectives.effective_sample_size(one_dominant).numpy(), 1.0, rtol=1e-6)


def test_dreg_surrogate_value_and_detached_squared_weights(log_weights):
    w = tf.constant(log_weights)
    with tf.GradientTape() as tape:
        tape.watch(w)
        surrogate = objectives.dreg_surrogate(w, num_estimates=3)
        total = tf.reduce_sum(surrogate)
    squared = softmax(log_weights.astype(np.float64).reshape(3, 4, -1), axis=1).reshape(12, -1) ** 2
    np.testing.assert_allclose(surrogate.numpy(), (squared * log_weights).sum(axis=0) / 3, rtol=1e-4)
    # The weights are constants of the surrogate: its gradient with respect to w is exactly w̃² / M
    # (not detaching them would add the derivative of the weights themselves).
    np.testing.assert_allclose(tape.gradient(total, w).numpy(), squared / 3, rtol=1e-4, atol=1e-9)


def test_dreg_gradient_matches_its_closed_form_on_a_gaussian_toy():
    # p(z) = N(0, 1), p(x|z) = N(x; z, 1), q(z) = N(m, s^2), z_k = m + s * eps_k. With q's
    # parameters held constant inside log q, dw/dz = (x - z) - z + (z - m) / s^2, and Tucker et
    # al.'s estimator is dIWAE/dm = sum_k w̃_k^2 dw_k/dz_k, dIWAE/ds = sum_k w̃_k^2 dw_k/dz_k eps_k.
    rng = np.random.default_rng(3)
    x, eps = 1.3, rng.standard_normal(6)
    m, s = tf.Variable(0.2, dtype=tf.float64), tf.Variable(0.7, dtype=tf.float64)

    def log_normal(value, loc, scale):
        scale = tf.convert_to_tensor(scale, tf.float64)
        return -0.5 * ((value - loc) / scale) ** 2 - tf.math.log(scale) - 0.5 * math.log(2 * math.pi)

    with tf.GradientTape() as tape:
        z = m + s * eps
        log_w = log_normal(x, z, 1.0) + log_normal(z, 0.0, 1.0) - log_normal(z, tf.stop_gradient(m),
                                                                              tf.stop_gradient(s))
        surrogate = objectives.dreg_surrogate(log_w[:, None])[0]
    grad_m, grad_s = tape.gradient(surrogate, [m, s])

    z = 0.2 + 0.7 * eps
    log_w = -0.5 * (x - z) ** 2 - 0.5 * z ** 2 + 0.5 * eps ** 2 + math.log(0.7) - 0.5 * math.log(2 * math.pi)
    squared = softmax(log_w) ** 2
    dw_dz = (x - z) - z + (z - 0.2) / 0.7 ** 2
    np.testing.assert_allclose(grad_m.numpy(), np.sum(squared * dw_dz), rtol=1e-10)
    np.testing.assert_allclose(grad_s.numpy(), np.sum(squared * dw_dz * eps), rtol=1e-10)


@pytest.mark.parametrize("bad", [np.zeros(4, np.float32), np.zeros((2, 3, 4), np.float32)])
def test_log_weights_must_be_samples_by_batch(bad):
    with pytest.raises(ValueError, match=r"\[samples, batch\]"):
        objectives.iwae(bad)


def test_at_least_one_sample():
    with pytest.raises(ValueError, match="K >= 1"):
        objectives.iwae(np.zeros((0, 3), np.float32))


@pytest.mark.parametrize("num_estimates", [0, -2, 1.5, True, "4"])
def test_num_estimates_must_be_a_positive_integer(log_weights, num_estimates):
    with pytest.raises(ValueError, match="num_estimates must be a positive integer"):
        objectives.miwae(log_weights, num_estimates)


def test_num_estimates_must_divide_the_samples(log_weights):
    with pytest.raises(ValueError, match="M=5 must divide .* got 12 samples"):
        objectives.miwae(log_weights, 5)
    with pytest.raises(ValueError, match="must divide"):
        objectives.dreg_surrogate(log_weights, 5)


@pytest.mark.parametrize("beta", [-0.1, 1.5, float("nan"), "0.5", True, None])
def test_ciwae_beta_must_be_in_the_unit_interval(log_weights, beta):
    with pytest.raises(ValueError, match=r"beta must be a number in \[0, 1\]"):
        objectives.ciwae(log_weights, beta)
