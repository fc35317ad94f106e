"""The uniform-noise relaxed Bernoulli of Variational Sparse Coding (Tonolini et al.)."""

import ml_dtypes
import numpy as np
import tensorflow as tf
from tensorflow_probability.python.bijectors import sigmoid as sigmoid_bijector
from tensorflow_probability.python.distributions import distribution
from tensorflow_probability.python.internal import assert_util
from tensorflow_probability.python.internal import dtype_util
from tensorflow_probability.python.internal import prefer_static as ps
from tensorflow_probability.python.internal import reparameterization
from tensorflow_probability.python.internal import samplers

from tfvae.distributions import _parameters

__all__ = ["RelaxedBernoulli", "relaxed_selection"]

# How many units in the last place a float sample may stray outside the support computed in
# the same dtype: TF's float32 sigmoid is not monotone to the last bit (measured on CPU: up to
# 3 ulps backwards for inputs in (-3.5, 12)), so a draw next to an end of the support can land
# a few ulps beyond the end computed by the same function.
_SUPPORT_SLACK_ULPS = 4


class RelaxedBernoulli(_parameters.BernoulliParameters,
                       distribution.AutoCompositeTensorDistribution):
    r"""VSC's relaxed Bernoulli: a sharpened sigmoid of shifted uniform noise, on (0, 1).

    The selection function of Variational Sparse Coding (Tonolini, Jensen and Murray-Smith)
    turns a Bernoulli(p) draw into a differentiable one:

    ```none
    Y = sigmoid((eta - 1 + p) / temperature),    eta ~ Uniform(0, 1).
    ```

    `1 / temperature` is the paper's sharpness `c` (its supplement anneals c from 50 to 200). As
    `temperature -> 0`, `Y -> 1[eta > 1 - p]`, which is 1 with probability `p`: the exact
    Bernoulli. The sample is reparameterized in `p` (and in the temperature).

    #### Density

    `S = eta - 1 + p` is uniform on `(p - 1, p)` and `y = sigmoid(s / t)` (t = temperature) is
    increasing, so by change of variables, with `s = t * logit(y)` and `ds/dy = t / (y (1 - y))`:

    ```none
    pdf(y) = t / (y (1 - y))            for sigmoid((p - 1) / t) < y <= sigmoid(p / t),
    pdf(y) = 0                          elsewhere;
    cdf(y) = clip(t * logit(y) + 1 - p, 0, 1).
    ```

    (The logit `U = S / t` is uniform on `((p - 1) / t, p / t)` with density `t`.) The support
    is a sub-interval of (0, 1) that moves with `p`. Mean and variance in closed form, with
    `a = (p - 1) / t` and `b = p / t` (from `integral sigmoid = softplus` and
    `integral sigmoid^2 = softplus - sigmoid`):

    ```none
    E[Y]   = t * (softplus(b) - softplus(a))
    Var[Y] = E[Y] (1 - E[Y]) - t * (sigmoid(b) - sigmoid(a))
    ```

    #### Floating point

    At the paper's sharpness the logit `(eta - 1 + p) / t` spans `c` (200) units, far beyond
    where the sigmoid rounds to exactly 0 or 1 (in float32: below -87.3 and from 16.6 on); at
    `c = 200` about half or more of the raw float32 draws would be exactly 0 or 1 (48 % at p = 0.5,
    92 % at p = 1), where `log y` or `log1p(-y)` is -inf. `sample` therefore moves such draws to
    the nearest float inside (0, 1) on their side (the smallest normal number, or the largest
    float below 1; see `relaxed_selection`). Every sample is then strictly inside (0, 1) and
    inside the support as rounded to the dtype, and `log_prob` is finite on all of them at any
    temperature (tested up to c = 1000). It is computed from `y` as `log t - log y - log1p(-y)`,
    each term accurate to rounding for every float in (0, 1). The support test compares `y` with
    the ends of the support computed by the sampler's own arithmetic (with a few ulps of slack
    for the sigmoid's last-bit errors). It is not made in logit space: near 1 the float `y` is
    coarse, and `logit(y)` of a draw just inside the support can land beyond its end (at
    `c = 50, p = 0.3` that made 0.13 % of float32 draws -inf).

    #### How this differs from `tfp.distributions.RelaxedBernoulli`

    TFP's `RelaxedBernoulli` is the Concrete / Gumbel-softmax relaxation (Maddison et al. 2016;
    Jang et al. 2016): `sigmoid((logits + L) / temperature)` with *logistic* noise `L` added to
    the *logits*; its support is all of (0, 1). This one adds *uniform* noise to the
    *probability* `p` itself: its support is a bounded sub-interval of (0, 1), its density is
    flat in logit space, `p = 0` gives only samples in `(0, 1/2]` and `p = 1` only samples in
    `[1/2, 1)`. The two are different distributions with different samples and densities;
    VSC's ELBO is defined with this one.

    #### Examples

    ```python
    from tfvae.distributions import RelaxedBernoulli
    dist = RelaxedBernoulli(temperature=1. / 50., probs=[0.1, 0.5, 0.9])
    masks = dist.sample(1000, seed=(0, 1))   # nearly binary; the mean of each column ~ probs
    dist.mean()                              # ~ [0.1, 0.5, 0.9]
    dist.log_prob(masks)                     # finite, also at temperature 1 / 200 and below
    ```
    """

    def __init__(self,
                 temperature,
                 probs=None,
                 logits=None,
                 validate_args=False,
                 allow_nan_stats=True,
                 name="RelaxedBernoulli"):
        """Constructs VSC relaxed Bernoulli distributions.

        Args:
          temperature: positive float `Tensor`; the paper's `1 / c`.
          probs: float `Tensor` in [0, 1], the probability `p` of the Bernoulli being relaxed.
          logits: float `Tensor`, `log(p / (1 - p))`. Pass exactly one of `probs`, `logits`.
          validate_args: Python `bool`; check the parameters at run time, and that the values
            given to `log_prob`, `prob`, `cdf` and friends are in (0, 1).
          allow_nan_stats: Python `bool`, kept for TFP's interface: every statistic this
            distribution implements is defined, so it changes nothing.
          name: name prefixed to the ops created by this class.

        Raises:
          ValueError: if both or neither of `probs` and `logits` are given.
        """
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            dtype = dtype_util.common_dtype([temperature, probs, logits], tf.float32)
            self._init_bernoulli_parameters(probs, logits, temperature, dtype)
            super().__init__(
                dtype=dtype,
                reparameterization_type=reparameterization.FULLY_REPARAMETERIZED,
                validate_args=validate_args,
                allow_nan_stats=allow_nan_stats,
                parameters=parameters,
                name=name)

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return _parameters.bernoulli_parameter_properties(dtype)

    def _params(self):
        return self._probs_parameter_no_checks(), tf.convert_to_tensor(self._temperature)

    def _sample_n(self, n, seed=None):
        probs, temperature = self._params()
        shape = ps.concat(
            [[n], self._batch_shape_tensor(temperature=temperature, probs=probs)], axis=0)
        uniform = samplers.uniform(shape, minval=0., maxval=1., dtype=self.dtype, seed=seed)
        # `probs - uniform` has the law of `eta - 1 + p` (eta = 1 - uniform). Written this way
        # the zero-temperature limit is the event `uniform < p`, the one SpikeAndSlab's exact
        # sampler uses, so equal seeds give relaxed and exact masks that agree as t -> 0.
        return relaxed_selection(probs - uniform, temperature)

    def _log_prob(self, y):
        probs, temperature = self._params()
        low, high = _rounded_support(probs, temperature)
        slack = _SUPPORT_SLACK_ULPS * dtype_util.eps(self.dtype)
        # `low * (1 - slack)` may underflow to 0, hence the separate test y > 0.
        inside = ((y > 0.) & (y < 1.) & (y >= low * (1. - slack)) & (y <= high * (1. + slack)))
        log_density = tf.math.log(temperature) - tf.math.log(y) - tf.math.log1p(-y)
        return tf.where(inside, log_density, dtype_util.as_numpy_dtype(self.dtype)(-np.inf))

    def _cdf(self, y):
        probs, temperature = self._params()
        shifted = temperature * (tf.math.log(y) - tf.math.log1p(-y))
        return tf.clip_by_value(shifted + 1. - probs, 0., 1.)

    def _quantile(self, q):
        probs, temperature = self._params()
        return relaxed_selection(q - 1. + probs, temperature)

    def _mean(self):
        probs, temperature = self._params()
        return temperature * (tf.math.softplus(probs / temperature)
                              - tf.math.softplus((probs - 1.) / temperature))

    def _variance(self):
        probs, temperature = self._params()
        mean = self._mean()
        # E[Y^2] - E[Y]^2, rearranged so that no two O(1 / t) terms cancel.
        return mean * (1. - mean) - temperature * (
            tf.math.sigmoid(probs / temperature) - tf.math.sigmoid((probs - 1.) / temperature))

    def _default_event_space_bijector(self):
        low, high = _rounded_support(*self._params())
        return sigmoid_bijector.Sigmoid(low=low, high=high, validate_args=self.validate_args)

    def _parameter_control_dependencies(self, is_init):
        if not self.validate_args:
            return []
        return self._bernoulli_parameter_assertions(is_init)

    def _sample_control_dependencies(self, y):
        if not self.validate_args:
            return []
        return [
            assert_util.assert_positive(
                y, message="RelaxedBernoulli: a sample must be above 0"),
            assert_util.assert_less(
                y, tf.ones([], y.dtype), message="RelaxedBernoulli: a sample must be below 1"),
        ]


def _rounded_support(probs, temperature):
    """The ends of the support, `T(p - 1)` and `T(p)`, made by the sampler's own arithmetic:
    a draw is `T(fl(p - u))` with `0 <= u < 1`, and `fl(p - 1) <= fl(p - u) <= p`."""
    return relaxed_selection(probs - 1., temperature), relaxed_selection(probs, temperature)


def _open_unit_interval(dtype):
    """`(smallest normal, largest float below 1)` of `dtype`, as exact Python floats."""
    finfo = ml_dtypes.finfo(dtype_util.as_numpy_dtype(dtype))  # np.finfo lacks bfloat16
    return float(finfo.tiny), 1.0 - float(finfo.epsneg)


def relaxed_selection(shifted_noise, temperature):
    """VSC's selection function `T(s) = sigmoid(s / temperature)`, for `s = eta - 1 + p`,
    kept strictly inside (0, 1).

    The sigmoid saturates: TF's float32 sigmoid returns exactly 0 for inputs below -87.34 and
    exactly 1 from 16.64 on (float64: about -708 and 36.7), so at `c = 1 / temperature = 200`
    about half or more of all draws would be exactly 0 or 1, where `log(y)` or `log1p(-y)` is
    -inf and the density `t / (y (1 - y))` infinite. Such a value is moved to the nearest float
    inside (0, 1) on its side: the smallest *normal* number (TF's CPU kernels flush denormal
    results to zero, so a denormal would not survive the next op; GPUs may too) or the largest
    float below 1. Only exact 1s and values below the smallest normal (on CPU: exact 0s) move,
    by one representable step (denormals counted as flushed), and no gradient is lost: TF
    computes the sigmoid's gradient `y (1 - y) / t` from the rounded `y`, so it was already 0
    there.
    """
    low, high = _open_unit_interval(shifted_noise.dtype)
    return tf.clip_by_value(tf.math.sigmoid(shifted_noise / temperature), low, high)
