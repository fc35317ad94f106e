"""Variational objectives as pure functions.

Bounds on log p(x) take *log-weights* ``w = log p(x|z) + log p(z) − log q(z|x)`` for
``z ~ q(z|x)``, shaped ``[samples, batch]`` (Monte Carlo axis first), and return one value per
example, shaped ``[batch]``. Objectives are maximised; a model's loss is their negative mean.

The KL-regularised objectives of the VAE family take the reconstruction term
``E_q[log p(x|z)]`` and ``KL(q(z|x) ‖ p(z))`` per example instead, because their KL is analytic.
"""

import math
import numbers

import tensorflow as tf


def elbo(log_weights):
    """Monte Carlo ELBO: ``(1/K) Σ_k w_k``, the K = 1 case of every bound below."""
    return tf.reduce_mean(log_weights, axis=0)


def elbo_from_terms(reconstruction, kl):
    """ELBO = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z))."""
    return reconstruction - kl


def beta_elbo(reconstruction, kl, beta):
    """β-VAE (Higgins et al. 2017): E_q[log p(x|z)] − β · KL. β = 1 is the ELBO."""
    return reconstruction - beta * kl


def capacity_elbo(reconstruction, kl, gamma, capacity):
    """Capacity-controlled β-VAE (Burgess et al. 2018): E_q[log p(x|z)] − γ · |KL − C|.

    The KL is pulled towards the target capacity C (in nats) from either side; C is raised from 0
    during training so that the code's information grows gradually.
    """
    return reconstruction - gamma * tf.abs(kl - capacity)


# ---------------------------------------------------------------- importance-weighted bounds
#
# Layout of the sample axis for the grouped bounds (MIWAE, PIWAE, grouped DReG): the
# ``M · K`` rows of ``log_weights [M*K, batch]`` are read as ``[M, K, batch]`` by a row-major
# reshape, so estimate m uses rows ``m*K … m*K + K − 1``. Since the rows are i.i.d. draws from
# q(z|x), any fixed grouping gives the same distribution; what matters is that the weights are
# normalised over the K samples of one estimate and the M estimates are averaged, never the
# reverse (the M/K swap is a known bug of public implementations).


def _check_log_weights(log_weights):
    log_weights = tf.convert_to_tensor(log_weights)
    if not log_weights.dtype.is_floating:
        log_weights = tf.cast(log_weights, tf.float32)
    if log_weights.shape.rank is not None and log_weights.shape.rank != 2:
        raise ValueError(f"log_weights must be shaped [samples, batch], got shape {log_weights.shape}")
    samples = log_weights.shape[0]
    if samples is not None and samples < 1:
        raise ValueError("log_weights must hold at least one sample (K >= 1) on axis 0, "
                         f"got shape {log_weights.shape}")
    return log_weights


def _check_count(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _group(log_weights, num_estimates):
    """``[M*K, batch]`` -> ``[M, K, batch]`` (estimate-major, see the layout note above)."""
    log_weights = _check_log_weights(log_weights)
    num_estimates = _check_count("num_estimates", num_estimates)
    samples = log_weights.shape[0]
    if samples is not None:
        if samples % num_estimates:
            raise ValueError(f"num_estimates M={num_estimates} must divide the number of samples "
                             f"M*K on axis 0 of log_weights, got {samples} samples")
        return tf.reshape(log_weights, [num_estimates, samples // num_estimates, -1])
    with tf.control_dependencies([tf.debugging.assert_equal(
            tf.shape(log_weights)[0] % num_estimates, 0,
            message=f"num_estimates M={num_estimates} must divide the number of samples")]):
        return tf.reshape(log_weights, [num_estimates, -1, tf.shape(log_weights)[1]])


def _log_mean_exp(log_weights, axis):
    count = tf.cast(tf.shape(log_weights)[axis], log_weights.dtype)
    return tf.reduce_logsumexp(log_weights, axis=axis) - tf.math.log(count)


def iwae(log_weights):
    """The importance-weighted bound (Burda et al. 2015) from K samples of one estimate:

        IWAE_K = log (1/K) Σ_k exp(w_k),   w_k = log p(x, z_k) − log q(z_k|x),  z_k ~ q(z|x).

    ``IWAE_1`` is the ELBO and ``E[IWAE_K] ≤ E[IWAE_{K+1}] ≤ log p(x)``. Computed with
    ``reduce_logsumexp``, whose gradient is Σ_k w̃_k ∇w_k with the normalised weights
    w̃_k = softmax(w)_k, the IWAE gradient estimator.

    Args:
      log_weights: ``[K, batch]``.
    Returns:
      ``[batch]``.

    Example:
      >>> iwae(tf.math.log([[1.0], [3.0]])).numpy()   # log((1 + 3) / 2)
      array([0.6931472], dtype=float32)
    """
    return _log_mean_exp(_check_log_weights(log_weights), axis=0)


def miwae(log_weights, num_estimates):
    """MIWAE(M, K) (Rainforth et al. 2018): the mean of M independent IWAE_K bounds,

        MIWAE = (1/M) Σ_m log (1/K) Σ_k exp(w_{m,k}).

    Args:
      log_weights: ``[M*K, batch]``, read as ``[M, K, batch]`` (row ``m*K + k`` is sample k of
        estimate m); normalised over K, averaged over M.
      num_estimates: M, which must divide the number of rows.
    Returns:
      ``[batch]``. ``miwae(w, 1) == iwae(w)``; ``miwae(w, M*K)`` is the M·K-sample ELBO.
    """
    return tf.reduce_mean(_log_mean_exp(_group(log_weights, num_estimates), axis=1), axis=0)


def ciwae(log_weights, beta):
    """CIWAE(β) (Rainforth et al. 2018): β · ELBO + (1 − β) · IWAE_K on the same K samples,

        CIWAE = β · (1/K) Σ_k w_k + (1 − β) · log (1/K) Σ_k exp(w_k).

    β = 1 is the (K-sample Monte Carlo) ELBO, β = 0 is IWAE_K.

    Args:
      log_weights: ``[K, batch]``.
      beta: weight of the ELBO, a number in [0, 1].
    Returns:
      ``[batch]``.
    """
    beta = check_unit_interval("beta", beta)
    log_weights = _check_log_weights(log_weights)
    return beta * elbo(log_weights) + (1.0 - beta) * iwae(log_weights)


def piwae(log_weights, num_estimates):
    """PIWAE(M, K) (Rainforth et al. 2018): the encoder maximises MIWAE(M, K) and the decoder
    IWAE_{M·K}, both from the same M·K samples.

    Returns:
      dict ``{"encoder": MIWAE(M, K), "decoder": IWAE_{M·K}}``, each ``[batch]``. Each value must
      only be differentiated with respect to its own group's parameters (see
      ``ObjectiveValue.surrogates``); summing them would leak one objective into the other's
      gradient.
    """
    return {"encoder": miwae(log_weights, num_estimates), "decoder": iwae(log_weights)}


def normalized_weights(log_weights, num_estimates=1):
    """The self-normalised importance weights w̃ = softmax over the K samples of each estimate,
    shaped like ``log_weights`` (``[M*K, batch]``, each group of K rows summing to 1)."""
    grouped = _group(log_weights, num_estimates)
    return tf.reshape(tf.nn.softmax(grouped, axis=1), tf.shape(log_weights))


def effective_sample_size(log_weights):
    """Kish's effective sample size of the K importance weights, ``(Σ_k e^{w_k})² / Σ_k e^{2 w_k}
    = 1 / Σ_k w̃_k²``, in [1, K]; ``[K, batch]`` -> ``[batch]``. K means q matches the posterior,
    1 means a single sample carries all the weight."""
    log_weights = _check_log_weights(log_weights)
    return tf.exp(2.0 * tf.reduce_logsumexp(log_weights, axis=0)
                  - tf.reduce_logsumexp(2.0 * log_weights, axis=0))


def dreg_surrogate(log_weights, num_estimates=1):
    """Surrogate whose encoder gradient is the doubly reparameterised (DReG) estimator
    (Tucker, Lawson, Gu and Maddison 2018, eq. 5) of the gradient of MIWAE(M, K) (IWAE_K for
    M = 1):

        ∇_φ IWAE_K ≈ Σ_k w̃_k² ∂w_k/∂z_k ∂z_k/∂φ,
        surrogate = (1/M) Σ_m Σ_k stop_gradient(w̃_{m,k}²) · w_{m,k}.

    ``log_weights`` must be computed with the posterior's parameters held constant inside
    log q(z|x) while z = z(ε, φ) stays reparameterised
    (``model.log_weights(x, K, stop_posterior_gradient=True)``), so that φ reaches w only
    through z. The squared weights are detached. The value is not a bound; only its gradient
    with respect to the encoder's parameters is meaningful (the decoder keeps the ordinary
    IWAE gradient, e.g. of ``iwae(log_weights)``, which stopping q does not change).

    Args:
      log_weights: ``[M*K, batch]`` with the layout of :func:`miwae`.
      num_estimates: M.
    Returns:
      ``[batch]``.
    """
    log_weights = _check_log_weights(log_weights)
    weights = tf.stop_gradient(normalized_weights(log_weights, num_estimates))
    num_estimates = float(num_estimates)
    return tf.reduce_sum(tf.square(weights) * log_weights, axis=0) / num_estimates


def check_unit_interval(name, value):
    """``value`` as a float, or a ValueError unless it is a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)
