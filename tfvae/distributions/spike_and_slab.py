"""The spike-and-slab distribution of Variational Sparse Coding, with its closed-form KL."""

import tensorflow as tf
from tensorflow_probability.python.distributions import distribution
from tensorflow_probability.python.distributions import kullback_leibler
from tensorflow_probability.python.distributions import normal
from tensorflow_probability.python.internal import assert_util
from tensorflow_probability.python.internal import dtype_util
from tensorflow_probability.python.internal import parameter_properties
from tensorflow_probability.python.internal import prefer_static as ps
from tensorflow_probability.python.internal import reparameterization
from tensorflow_probability.python.internal import samplers
from tensorflow_probability.python.internal import tensor_util

from tfvae.distributions import _parameters
from tfvae.distributions import relaxed_bernoulli

__all__ = ["SpikeAndSlab"]


class SpikeAndSlab(_parameters.BernoulliParameters,
                   distribution.AutoCompositeTensorDistribution):
    r"""Spike and slab: `Normal(loc, scale)` with probability `probs`, else exactly 0.

    Each batch member is an independent scalar with law

    ```none
    P = gamma * Normal(loc, scale^2) + (1 - gamma) * delta_0,       gamma = probs = sigmoid(logits)
    ```

    `gamma` is the probability of the *slab* (of being non-zero). This is the prior
    (`loc = 0, scale = 1, probs = alpha`) and the posterior of Variational Sparse Coding
    (Tonolini, Jensen and Murray-Smith).

    #### `log_prob` convention for the mixed measure

    `P` has an atom at 0 and a density elsewhere, so it has no density with respect to Lebesgue
    measure. `log_prob` is the log-density with respect to the reference measure
    `Lebesgue + delta_0` (Lebesgue measure plus a unit point mass at 0):

    ```none
    log_prob(0) = log(1 - gamma)                                     (the spike's mass)
    log_prob(x) = log(gamma) + Normal(loc, scale).log_prob(x),  x != 0   (the slab's density)
    ```

    Every SpikeAndSlab shares that reference measure, so ratios such as
    `exp(p.log_prob(z) - q.log_prob(z))` are proper Radon-Nikodym derivatives: importance
    weights, Monte Carlo KL estimates and likelihood ratios computed from `log_prob` are correct.
    (The slab's own density at exactly 0 is ignored; the slab puts no mass there.) `prob` and
    `log_prob` are therefore *not* densities that integrate to 1 over the real line.

    #### Statistics

    ```none
    mean     = gamma * loc
    variance = gamma * scale^2 + gamma * (1 - gamma) * loc^2
    entropy  = -gamma log gamma - (1 - gamma) log(1 - gamma) + gamma * H(Normal(loc, scale))
    ```

    (the entropy relative to the reference measure above).

    #### Sampling

    Without a `temperature`, `sample` is exact: `z = m * (loc + scale * eps)` with
    `m ~ Bernoulli(gamma)`, `eps ~ Normal(0, 1)`; it is reparameterized in `loc` and `scale` but
    not in `gamma` (`reparameterization_type` is `NOT_REPARAMETERIZED`).

    With a `temperature` the sample is VSC's relaxed, fully reparameterized one,

    ```none
    z = T(eta - 1 + gamma) * (loc + scale * eps),   T(s) = sigmoid(s / temperature),
    ```

    where `T(eta - 1 + gamma)` is a `tfvae.distributions.RelaxedBernoulli(temperature, gamma)`
    draw. The relaxed law has no atom at 0, so relaxed samples are *not* draws from `P`: the
    temperature changes `sample` only, while `log_prob`, `mean`, `variance`, `entropy` and the
    KL stay those of the exact `P` (`log_prob` of a relaxed sample is `P`'s, not the relaxed
    law's density). As the temperature falls to 0 the relaxed sample converges to the exact
    sample made from the same seed.

    In floating point, relaxed samples *can* be exactly 0. The mask is never below the smallest
    normal float (about 1.2e-38 in float32; see `RelaxedBernoulli`), but `mask * slab` is
    flushed to exactly 0 when it falls below that. The smallest masks are near
    `exp(-c * (1 - gamma))` (c = 1 / temperature), so in float32 this starts once
    `c * (1 - gamma)` exceeds about 87 (a little less for slab values near 0). Measured in
    float32 with `loc = 0, scale = 1`: no exact zeros at c = 50; at c = 100, 2.6 % for
    `gamma = 0.1`; at c = 200, 32 % for `gamma = 0.1` and 4.7 % for `gamma = 0.5`. Such a sample
    is numerically a switched-off unit, and `log_prob` scores it as the spike. Nothing in the
    relaxed objective (VSC's ELBO uses the closed-form KL) depends on it being non-zero.

    #### KL divergence (registered with `tfd.RegisterKL`)

    For `q = SpikeAndSlab(mu_1, sigma_1, gamma)` and `p = SpikeAndSlab(mu_2, sigma_2, alpha)`,

    ```none
    KL(q || p) = gamma * KL(Normal(mu_1, sigma_1) || Normal(mu_2, sigma_2))
                 + gamma log(gamma / alpha) + (1 - gamma) log((1 - gamma) / (1 - alpha))
               = gamma * KL(slab_q || slab_p) + KL(Bernoulli(gamma) || Bernoulli(alpha)),
    ```

    with `0 log 0 = 0`. With `p`'s slab `Normal(0, 1)` the slab term is
    `gamma * (mu^2 + sigma^2 - 1 - log sigma^2) / 2`, VSC's prior term.

    #### Examples

    ```python
    import tensorflow_probability as tfp
    from tfvae.distributions import SpikeAndSlab
    prior = SpikeAndSlab(loc=0., scale=1., probs=0.01)
    q = SpikeAndSlab(loc=[1., -2.], scale=[0.5, 0.1], probs=[0.9, 0.05], temperature=1. / 50.)
    tfp.distributions.kl_divergence(q, prior)   # shape [2]
    z = q.sample(seed=(0, 1))                   # relaxed, differentiable in loc, scale, probs
    ```
    """

    def __init__(self,
                 loc,
                 scale,
                 probs=None,
                 logits=None,
                 temperature=None,
                 validate_args=False,
                 allow_nan_stats=True,
                 name="SpikeAndSlab"):
        """Constructs spike-and-slab distributions.

        Args:
          loc: float `Tensor`, the slab's mean.
          scale: positive float `Tensor`, the slab's standard deviation.
          probs: float `Tensor` in [0, 1], the slab probability `gamma` (of being non-zero).
          logits: float `Tensor`, `log(gamma / (1 - gamma))`. Pass exactly one of `probs`,
            `logits`.
          temperature: `None` for exact samples, or a positive float `Tensor` for VSC's relaxed,
            reparameterized samples (the paper's sharpness `c` is `1 / temperature`).
          validate_args: Python `bool`; check the parameters at run time.
          allow_nan_stats: Python `bool`, kept for TFP's interface and passed on to `slab()`:
            every statistic this distribution implements is defined, so it changes nothing.
          name: name prefixed to the ops created by this class.

        Raises:
          ValueError: if both or neither of `probs` and `logits` are given.
        """
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            dtype = dtype_util.common_dtype([loc, scale, probs, logits, temperature], tf.float32)
            self._loc = tensor_util.convert_nonref_to_tensor(loc, name="loc", dtype=dtype)
            self._scale = tensor_util.convert_nonref_to_tensor(scale, name="scale", dtype=dtype)
            self._init_bernoulli_parameters(probs, logits, temperature, dtype)
            super().__init__(
                dtype=dtype,
                reparameterization_type=(
                    reparameterization.NOT_REPARAMETERIZED if temperature is None
                    else reparameterization.FULLY_REPARAMETERIZED),
                validate_args=validate_args,
                allow_nan_stats=allow_nan_stats,
                parameters=parameters,
                name=name)

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict(loc=parameter_properties.ParameterProperties(),
                    scale=_parameters.positive_parameter(dtype),
                    **_parameters.bernoulli_parameter_properties(dtype))

    @property
    def loc(self):
        """The slab's mean."""
        return self._loc

    @property
    def scale(self):
        """The slab's standard deviation."""
        return self._scale

    def slab(self):
        """The slab, `tfd.Normal(loc, scale)`."""
        return normal.Normal(self._loc, self._scale, validate_args=self.validate_args,
                             allow_nan_stats=self.allow_nan_stats)

    def _sample_n(self, n, seed=None):
        mask_seed, slab_seed = samplers.split_seed(seed, salt="SpikeAndSlab")
        loc = tf.convert_to_tensor(self._loc)
        scale = tf.convert_to_tensor(self._scale)
        probs = self._probs_parameter_no_checks()
        batch_shape = self._batch_shape_tensor(loc=loc, scale=scale, probs=probs)
        shape = ps.concat([[n], batch_shape], axis=0)
        slab = loc + scale * samplers.normal(shape, dtype=self.dtype, seed=slab_seed)
        probs = tf.broadcast_to(probs, batch_shape)
        if self._temperature is None:
            # Same uniform draw and event as RelaxedBernoulli._sample_n at temperature -> 0.
            uniform = samplers.uniform(shape, dtype=self.dtype, seed=mask_seed)
            return tf.where(uniform < probs, slab, tf.zeros([], self.dtype))
        mask = relaxed_bernoulli.RelaxedBernoulli(
            self._temperature, probs=probs, validate_args=self.validate_args,
        ).sample(n, seed=mask_seed)
        return mask * slab

    def _log_prob(self, x):
        is_spike = tf.equal(x, 0.)
        if self._logits is None:
            probs = tf.convert_to_tensor(self._probs)
            # Each branch reads probs only where it is used, so that probs = 0 or 1 gives the
            # value -inf in the branch not taken without a NaN gradient leaking out of it.
            zero, one = tf.zeros([], probs.dtype), tf.ones([], probs.dtype)
            log_spike = tf.math.log1p(-tf.where(is_spike, probs, zero))
            log_slab = tf.math.log(tf.where(is_spike, one, probs))
        else:
            logits = tf.convert_to_tensor(self._logits)
            log_spike, log_slab = -tf.math.softplus(logits), -tf.math.softplus(-logits)
        return tf.where(is_spike, log_spike, log_slab + self.slab().log_prob(x))

    def _mean(self):
        probs = self._probs_parameter_no_checks()
        return tf.broadcast_to(probs * self._loc, self._batch_shape_tensor(probs=probs))

    def _variance(self):
        probs = self._probs_parameter_no_checks()
        loc = tf.convert_to_tensor(self._loc)
        variance = probs * tf.square(self._scale) + probs * (1. - probs) * tf.square(loc)
        return tf.broadcast_to(variance, self._batch_shape_tensor(loc=loc, probs=probs))

    def _entropy(self):
        probs = self._probs_parameter_no_checks()
        bernoulli_entropy = -tf.math.xlogy(probs, probs) - tf.math.xlogy(1. - probs, 1. - probs)
        entropy = bernoulli_entropy + probs * self.slab().entropy()
        return tf.broadcast_to(entropy, self._batch_shape_tensor(probs=probs))

    def _parameter_control_dependencies(self, is_init):
        assertions = []
        if is_init:
            try:
                self._batch_shape()
            except ValueError:
                raise ValueError(
                    "SpikeAndSlab: arguments `loc`, `scale`, `probs`/`logits` and `temperature` "
                    "must have broadcastable shapes; got loc.shape={}, scale.shape={}, "
                    "probs/logits.shape={}, temperature.shape={}".format(
                        self._loc.shape, self._scale.shape,
                        (self._probs if self._logits is None else self._logits).shape,
                        None if self._temperature is None else self._temperature.shape))
        if not self.validate_args:
            return []
        if is_init != tensor_util.is_ref(self._scale):
            assertions.append(assert_util.assert_positive(
                self._scale, message="SpikeAndSlab: argument `scale` must be positive"))
        assertions.extend(self._bernoulli_parameter_assertions(is_init))
        return assertions


@kullback_leibler.RegisterKL(SpikeAndSlab, SpikeAndSlab)
def _kl_spike_and_slab(q, p, name=None):
    """KL(q ‖ p) for two SpikeAndSlab distributions, in closed form (batchwise).

    ```none
    KL = gamma * KL(Normal(q.loc, q.scale) || Normal(p.loc, p.scale))
         + gamma log(gamma / alpha) + (1 - gamma) log((1 - gamma) / (1 - alpha))
    ```

    with `gamma`, `alpha` the slab probabilities of `q`, `p` and `0 log 0 = 0`. It is infinite
    when `q` puts mass where `p` has none (`alpha = 0 < gamma` or `gamma < 1 = alpha`). The
    temperatures play no part: they change only how `sample` draws.
    """
    with tf.name_scope(name or "kl_spike_and_slab"):
        gamma = q._probs_parameter_no_checks()  # pylint: disable=protected-access
        alpha = p._probs_parameter_no_checks()  # pylint: disable=protected-access
        slab_kl = kullback_leibler.kl_divergence(q.slab(), p.slab())
        # xlogy gives 0 log 0 = 0 and, unlike log, a zero (not NaN) gradient at gamma = 0 or 1:
        # VSC's encoder reaches gamma = 1 exactly (log gamma = -relu(-v)).
        selection_kl = (tf.math.xlogy(gamma, gamma) - tf.math.xlogy(gamma, alpha)
                        + tf.math.xlogy(1. - gamma, 1. - gamma)
                        - tf.math.xlogy(1. - gamma, 1. - alpha))
        # gamma = 0 switches the slab off whatever its KL (0 * inf would be NaN).
        return tf.math.multiply_no_nan(slab_kl, gamma) + selection_kl
