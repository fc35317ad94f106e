"""The uniform-noise relaxed Bernoulli of Variational Sparse Coding (Tonolini et al.)."""

import numpy as np
import tensorflow as tf
from tensorflow_probability.python.bijectors import sigmoid as sigmoid_bijector
from tensorflow_probability.python.bijectors import softplus as softplus_bijector
from tensorflow_probability.python.distributions import distribution
from tensorflow_probability.python.internal import assert_util
from tensorflow_probability.python.internal import dtype_util
from tensorflow_probability.python.internal import parameter_properties
from tensorflow_probability.python.internal import prefer_static as ps
from tensorflow_probability.python.internal import reparameterization
from tensorflow_probability.python.internal import samplers
from tensorflow_probability.python.internal import tensor_util

__all__ = ["RelaxedBernoulli", "relaxed_selection"]


class RelaxedBernoulli(distribution.AutoCompositeTensorDistribution):
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

    The support is a sub-interval of (0, 1) that moves with `p`. Mean and variance in closed
    form, with `a = (p - 1) / t` and `b = p / t` (from `integral sigmoid = softplus` and
    `integral sigmoid^2 = softplus - sigmoid`):

    ```none
    E[Y]   = t * (softplus(b) - softplus(a))
    Var[Y] = E[Y] (1 - E[Y]) - t * (sigmoid(b) - sigmoid(a))
    ```

    #### How this differs from `tfp.distributions.RelaxedBernoulli`

    TFP's `RelaxedBernoulli` is the Concrete / Gumbel-softmax relaxation (Maddison et al. 2016;
    Jang et al. 2016): `sigmoid((logits + L) / temperature)` with *logistic* noise `L` added to
    the *logits*; its support is all of (0, 1). This one adds *uniform* noise to the
    *probability* `p` itself: its support is a bounded sub-interval of (0, 1), its density is
    flat in logit space, `p = 0` gives only samples below 1/2 and `p = 1` only samples above 1/2.
    The two are different distributions with different samples and densities; VSC's ELBO is
    defined with this one.

    #### Examples

    ```python
    from tfvae.distributions import RelaxedBernoulli
    dist = RelaxedBernoulli(temperature=1. / 50., probs=[0.1, 0.5, 0.9])
    masks = dist.sample(1000, seed=(0, 1))   # nearly binary; the mean of each column ~ probs
    dist.mean()                              # ~ [0.1, 0.5, 0.9]
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
          validate_args: Python `bool`; check the parameters (and sample values) at run time.
          allow_nan_stats: Python `bool`; statistics return NaN instead of raising when undefined.
          name: name prefixed to the ops created by this class.

        Raises:
          ValueError: if both or neither of `probs` and `logits` are given.
        """
        parameters = dict(locals())
        if (probs is None) == (logits is None):
            raise ValueError("RelaxedBernoulli: pass exactly one of `probs` or `logits`, got "
                             f"probs={probs!r}, logits={logits!r}")
        with tf.name_scope(name) as name:
            dtype = dtype_util.common_dtype([temperature, probs, logits], tf.float32)
            self._temperature = tensor_util.convert_nonref_to_tensor(
                temperature, name="temperature", dtype=dtype)
            self._probs = tensor_util.convert_nonref_to_tensor(probs, name="probs", dtype=dtype)
            self._logits = tensor_util.convert_nonref_to_tensor(logits, name="logits", dtype=dtype)
            super().__init__(
                dtype=dtype,
                reparameterization_type=reparameterization.FULLY_REPARAMETERIZED,
                validate_args=validate_args,
                allow_nan_stats=allow_nan_stats,
                parameters=parameters,
                name=name)

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict(
            temperature=parameter_properties.ParameterProperties(
                default_constraining_bijector_fn=(
                    lambda: softplus_bijector.Softplus(low=dtype_util.eps(dtype)))),
            logits=parameter_properties.ParameterProperties(),
            probs=parameter_properties.ParameterProperties(
                default_constraining_bijector_fn=sigmoid_bijector.Sigmoid,
                is_preferred=False))

    @property
    def temperature(self):
        """The temperature (`1 / c` in the paper)."""
        return self._temperature

    @property
    def probs(self):
        """Input argument `probs`."""
        return self._probs

    @property
    def logits(self):
        """Input argument `logits`."""
        return self._logits

    def probs_parameter(self, name=None):
        """`p`, computed from whichever of `probs` / `logits` was given."""
        with self._name_and_control_scope(name or "probs_parameter"):
            return self._probs_parameter_no_checks()

    def _probs_parameter_no_checks(self):
        if self._probs is None:
            return tf.math.sigmoid(self._logits)
        return tensor_util.identity_as_tensor(self._probs)

    def _event_shape_tensor(self):
        return tf.constant([], dtype=tf.int32)

    def _event_shape(self):
        return tf.TensorShape([])

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
        logit_y = tf.math.log(y) - tf.math.log1p(-y)
        # The support test is done in logit space, p - 1 < t * logit(y) <= p, where it is exact.
        shifted = temperature * logit_y
        inside = (shifted > probs - 1.) & (shifted <= probs)
        log_density = tf.math.log(temperature) - tf.math.log(y) - tf.math.log1p(-y)
        return tf.where(inside, log_density, dtype_util.as_numpy_dtype(self.dtype)(-np.inf))

    def _cdf(self, y):
        probs, temperature = self._params()
        shifted = temperature * (tf.math.log(y) - tf.math.log1p(-y))
        return tf.clip_by_value(shifted + 1. - probs, 0., 1.)

    def _quantile(self, q):
        probs, temperature = self._params()
        return tf.math.sigmoid((q - 1. + probs) / temperature)

    def _mean(self):
        probs, temperature = self._params()
        return temperature * (tf.math.softplus(probs / temperature)
                              - tf.math.softplus((probs - 1.) / temperature))

    def _variance(self):
        probs, temperature = self._params()
        mean = self._mean()
        # E[Y^2] - E[Y]^2, rearranged so that no two O(1 / t) terms cancel.
        low, high = _support_bounds(probs, temperature)
        return mean * (1. - mean) - temperature * (high - low)

    def _default_event_space_bijector(self):
        low, high = _support_bounds(*self._params())
        return sigmoid_bijector.Sigmoid(low=low, high=high, validate_args=self.validate_args)

    def _parameter_control_dependencies(self, is_init):
        if not self.validate_args:
            return []
        assertions = []
        if is_init != tensor_util.is_ref(self._temperature):
            assertions.append(assert_util.assert_positive(
                self._temperature,
                message="RelaxedBernoulli: argument `temperature` must be positive"))
        if self._probs is not None and is_init != tensor_util.is_ref(self._probs):
            probs = tf.convert_to_tensor(self._probs)
            assertions.append(assert_util.assert_non_negative(
                probs, message="RelaxedBernoulli: argument `probs` has components below 0"))
            assertions.append(assert_util.assert_less_equal(
                probs, tf.ones([], probs.dtype),
                message="RelaxedBernoulli: argument `probs` has components above 1"))
        return assertions

    def _sample_control_dependencies(self, y):
        if not self.validate_args:
            return []
        return [
            assert_util.assert_positive(
                y, message="RelaxedBernoulli: a sample must be above 0"),
            assert_util.assert_less(
                y, tf.ones([], y.dtype), message="RelaxedBernoulli: a sample must be below 1"),
        ]


def _support_bounds(probs, temperature):
    """`(sigmoid((p - 1) / t), sigmoid(p / t))`, the ends of the support."""
    return tf.math.sigmoid((probs - 1.) / temperature), tf.math.sigmoid(probs / temperature)


def relaxed_selection(shifted_noise, temperature):
    """The VSC selection function `T(s) = sigmoid(s / temperature)`, for `s = eta - 1 + p`."""
    return tf.math.sigmoid(shifted_noise / temperature)
