"""Variational objectives as pure functions.

Bounds on log p(x) take *log-weights* ``w = log p(x|z) + log p(z) − log q(z|x)`` for
``z ~ q(z|x)``, shaped ``[samples, batch]`` (Monte Carlo axis first), and return one value per
example, shaped ``[batch]``. Objectives are maximised; a model's loss is their negative mean.

The KL-regularised objectives of the VAE family take the reconstruction term
``E_q[log p(x|z)]`` and ``KL(q(z|x) ‖ p(z))`` per example instead, because their KL is analytic.
"""

import collections
import math
import numbers

import tensorflow as tf

from tfvae import validation


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


# ---------------------------------------------------------- β-TCVAE: the decomposed KL
#
# Chen, Li, Grosse and Duvenaud (2018), "Isolating sources of disentanglement in VAEs". With
# q(z) = (1/N) Σ_n q(z|x_n) the aggregate posterior of a data set of N examples, the average KL
# splits into three terms that the minibatch estimates below compute per example:
#
#     E_x KL(q(z|x) ‖ p(z)) = I(x; z)                       E[log q(z|x) − log q(z)]
#                           + KL(q(z) ‖ Π_j q(z_j))   (TC)  E[log q(z) − Σ_j log q(z_j)]
#                           + Σ_j KL(q(z_j) ‖ p(z_j))       E[Σ_j log q(z_j) − log p(z)]
#
# The three per-example terms telescope to log q(z|x) − log p(z) exactly, whatever estimate of
# log q(z) is used; the estimator only decides how that total is shared out.

#: estimators of log q(z) on a minibatch (Chen et al. 2018, appendix C)
TC_ESTIMATORS = ("mss", "mws")


class KLDecomposition(collections.namedtuple("KLDecomposition", [
        "mutual_information", "total_correlation", "dimension_kl",
        "log_q_z_given_x", "log_q_z", "log_prod_q_z_j", "log_p_z"])):
    """Per-example terms of the β-TCVAE decomposition, each ``[batch]`` (see
    :func:`total_correlation_terms`). Their batch means estimate I(x; z), the total correlation and
    the dimension-wise KL; ``mutual_information + total_correlation + dimension_kl`` equals
    ``log_q_z_given_x − log_p_z`` example by example."""


def _check_dataset_size(dataset_size):
    return validation.positive_int("dataset_size", dataset_size)


def _check_estimator(estimator):
    return validation.choice("estimator", estimator, TC_ESTIMATORS)


def log_importance_weight_matrix(batch_size, dataset_size, estimator="mss"):
    """Log-weights ``W[i, j]`` of the minibatch estimate ``q(z_i) ≈ Σ_j W[i, j] q(z_i | x_j)`` of
    the aggregate posterior at code z_i ~ q(z|x_i), for a batch of B examples drawn from a data set
    of N (Chen et al. 2018, appendix C; M = B − 1 below):

    * ``"mss"``, minibatch stratified sampling: the example's own posterior weighs 1/N, one other
      example (the next one, cyclically) (N − M)/(N M), the remaining M − 1 weigh 1/M each; every
      row sums to 1. This is the paper's formula. (The reference code's
      ``_log_importance_weight_matrix`` writes it with strides ``[::M+1]`` / ``[1::M+1]``, which
      run down columns 0 and 1 instead of along the diagonal, so its own-posterior weight lands on
      example 0 for every row; its pull request #1 reports this. Here the own weight is on the
      diagonal.) A batch of one gives W = [[1/N]].
    * ``"mws"``, minibatch weighted sampling: every entry is 1/(N B), as in the paper and its code.
      The rows sum to 1/N, so log q(z) and each log q(z_j) come out about log N too low; the
      constant does not change gradients, but it shifts the reported terms: the TC by about
      +(D − 1) log N, the mutual information by +log N, the dimension-wise KL by −D log N.

    Args:
      batch_size: B, a Python int or a scalar int tensor (dynamic batch sizes are fine).
      dataset_size: N >= B − 1, a positive Python int.
      estimator: ``"mss"`` or ``"mws"``.
    Returns:
      float32 ``[B, B]``: row i is the code z_i, column j the posterior q(·|x_j).

    Example:
      >>> np.exp(log_importance_weight_matrix(3, 10).numpy())
      array([[0.1 , 0.4 , 0.5 ],
             [0.5 , 0.1 , 0.4 ],
             [0.4 , 0.5 , 0.1 ]], dtype=float32)
    """
    dataset_size = float(_check_dataset_size(dataset_size))
    estimator = _check_estimator(estimator)
    batch = tf.convert_to_tensor(batch_size, tf.int32)
    message = ("minibatch stratified sampling needs dataset_size N >= B - 1 for a batch of B "
               f"(the batch is drawn from the data set); got N={int(dataset_size)}")
    static_batch = tf.get_static_value(batch)
    if estimator == "mss" and static_batch is not None and dataset_size < int(static_batch) - 1:
        raise ValueError(f"{message}, B={int(static_batch)}")
    if estimator == "mss" and static_batch is None:
        with tf.control_dependencies([tf.debugging.assert_less_equal(
                tf.cast(batch - 1, tf.float32), dataset_size, message=message)]):
            batch = tf.identity(batch)
    if estimator == "mws":
        return tf.fill([batch, batch], -math.log(dataset_size) - tf.math.log(tf.cast(batch, tf.float32)))
    others = tf.cast(tf.maximum(batch - 1, 1), tf.float32)  # M; max() only guards B = 1
    rows, columns = tf.range(batch)[:, None], tf.range(batch)[None, :]
    # (N − M)/(N M) is 0 for N = M; log(0) = −inf is a weight of zero, which logsumexp handles
    strat = tf.math.log(dataset_size - others) - tf.math.log(dataset_size * others)
    log_weights = tf.where(tf.equal(columns, (rows + 1) % batch), strat, -tf.math.log(others))
    return tf.where(tf.equal(rows, columns), tf.fill([batch, batch], -math.log(dataset_size)), log_weights)


def total_correlation_terms(log_q_pairs, log_prior, dataset_size, estimator="mss", mask=None, rows=None):
    """Minibatch estimates of the β-TCVAE terms (Chen et al. 2018) for a batch of B codes
    z_i ~ q(z|x_i) of D dimensions, from a factorised posterior and prior:

        log q(z_i)          ≈ logsumexp_j (W[i, j] + Σ_d log q(z_{i,d} | x_j))
        Σ_d log q(z_{i,d})  ≈ Σ_d logsumexp_j (W[i, j] + log q(z_{i,d} | x_j))
        mutual_information  = log q(z_i|x_i) − log q(z_i)
        total_correlation   = log q(z_i) − Σ_d log q(z_{i,d})
        dimension_kl        = Σ_d log q(z_{i,d}) − log p(z_i)

    with W from :func:`log_importance_weight_matrix` (N the data set's size, ``estimator`` "mss"
    or "mws"). The batch means estimate I(x; z), KL(q(z) ‖ Π_d q(z_d)) and Σ_d KL(q(z_d) ‖ p(z_d));
    the estimates of log q(z) are biased low for small batches (Jensen), less so as B grows.

    With ``mask``, the batch is its real examples only: W is the matrix of those n examples (in
    their order), and padding columns weigh 0, so the real examples' terms are those of the batch
    without the padding. With ``rows``, the codes are some of the batch's (one replica's share of
    a batch gathered across replicas): row i is the code of example ``rows[i]``, and gets that
    example's row of W.

    Args:
      log_q_pairs: ``[R, B, D]``, entry ``[i, j, d] = log q(z_{i,d} | x_j)``: dimension d of code
        i under example j's posterior (R = B without ``rows``). For a tfd distribution ``q_d``
        with batch shape ``[B, D]`` (the posterior without its ``Independent`` wrapper):
        ``q_d.log_prob(z[:, None, :])``.
      log_prior: ``[R, D]``, ``log p(z_{i,d})``.
      dataset_size: N, a positive int (>= n − 1 for "mss", n the real examples of the batch).
      estimator: ``"mss"`` (stratified) or ``"mws"`` (weighted; its terms carry the constant
        offsets described in :func:`log_importance_weight_matrix`).
      mask: optional ``[B]``, nonzero for real examples, 0 for padding (whose own terms are
        finite but meaningless: weigh them 0).
      rows: optional int ``[R]``, the batch positions of the codes (default ``0 … B − 1``).
    Returns:
      :class:`KLDecomposition` of ``[R]`` float32 tensors.

    Example:
      >>> q = tfd.Normal(loc, scale)                      # batch shape [B, D]
      >>> z = q.sample()
      >>> terms = total_correlation_terms(q.log_prob(z[:, None, :]), p.log_prob(z), 60000)
      >>> tc = tf.reduce_mean(terms.total_correlation)
    """
    log_q_pairs = tf.cast(tf.convert_to_tensor(log_q_pairs), tf.float32)
    log_prior = tf.cast(tf.convert_to_tensor(log_prior), tf.float32)
    if log_q_pairs.shape.rank is not None and log_q_pairs.shape.rank != 3:
        raise ValueError("log_q_pairs must be shaped [batch, batch, latent] (or [codes, batch, latent] with rows), "
                         f"got {log_q_pairs.shape}")
    if log_prior.shape.rank is not None and log_prior.shape.rank != 2:
        raise ValueError(f"log_prior must be shaped [codes, latent], got {log_prior.shape}")
    dataset_size = _check_dataset_size(dataset_size)
    estimator = _check_estimator(estimator)
    batch = log_q_pairs.shape[1] if log_q_pairs.shape[1] is not None else tf.shape(log_q_pairs)[1]
    positions = tf.range(batch) if rows is None else tf.cast(rows, tf.int32)
    if mask is None:
        log_weights = log_importance_weight_matrix(batch, dataset_size, estimator)
    else:
        real = tf.not_equal(mask, 0)
        # the weights of the n real examples, read at each example's rank among them (a padding
        # example reads its predecessor's: any finite row does); padding columns weigh 0
        rank = tf.maximum(tf.cumsum(tf.cast(real, tf.int32)) - 1, 0)
        count = tf.reduce_sum(tf.cast(real, tf.int32))
        log_weights = tf.gather(log_importance_weight_matrix(count, dataset_size, estimator), rank)
        log_weights = tf.where(real[None, :], tf.gather(log_weights, rank, axis=1), -math.inf)
    if rows is not None:
        log_weights = tf.gather(log_weights, positions)
    log_q_z = tf.reduce_logsumexp(log_weights + tf.reduce_sum(log_q_pairs, axis=-1), axis=1)
    log_prod_q_z_j = tf.reduce_sum(
        tf.reduce_logsumexp(log_weights[:, :, None] + log_q_pairs, axis=1), axis=-1)
    # log q(z_i | x_i): code i under its own example's posterior
    log_q_z_given_x = tf.reduce_sum(tf.gather(log_q_pairs, positions, axis=1, batch_dims=1), axis=-1)
    log_p_z = tf.reduce_sum(log_prior, axis=-1)
    return KLDecomposition(
        mutual_information=log_q_z_given_x - log_q_z,
        total_correlation=log_q_z - log_prod_q_z_j,
        dimension_kl=log_prod_q_z_j - log_p_z,
        log_q_z_given_x=log_q_z_given_x, log_q_z=log_q_z, log_prod_q_z_j=log_prod_q_z_j,
        log_p_z=log_p_z)


def beta_tc_elbo(reconstruction, terms, beta):
    """β-TCVAE (Chen et al. 2018): E_q[log p(x|z)] − I(x; z) − β · TC − Σ_d KL(q(z_d) ‖ p(z_d)),
    per example, with ``terms`` a :class:`KLDecomposition` (:func:`total_correlation_terms`).

    β weights only the total correlation. β = 1 gives
    ``reconstruction + log p(z) − log q(z|x)``, the one-sample Monte Carlo ELBO.
    """
    return (reconstruction - terms.mutual_information - beta * terms.total_correlation
            - terms.dimension_kl)
