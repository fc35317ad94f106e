"""The parameters RelaxedBernoulli and SpikeAndSlab share (private).

Both are scalar distributions around a Bernoulli probability given as `probs` or `logits`, with a
relaxation `temperature` (required by RelaxedBernoulli, optional in SpikeAndSlab, whose relaxed
mask is a RelaxedBernoulli draw). Their handling lives here, once: the check that exactly one of
`probs`, `logits` is given, the conversion, the `_parameter_properties` entries, the properties
and the run-time checks.
"""

import tensorflow as tf
from tensorflow_probability.python.bijectors import sigmoid as sigmoid_bijector
from tensorflow_probability.python.bijectors import softplus as softplus_bijector
from tensorflow_probability.python.internal import assert_util
from tensorflow_probability.python.internal import dtype_util
from tensorflow_probability.python.internal import parameter_properties
from tensorflow_probability.python.internal import tensor_util


def positive_parameter(dtype):
    """`ParameterProperties` of a positive parameter (a scale, a temperature)."""
    return parameter_properties.ParameterProperties(
        default_constraining_bijector_fn=(
            lambda: softplus_bijector.Softplus(low=dtype_util.eps(dtype))))


def bernoulli_parameter_properties(dtype):
    """The `_parameter_properties` entries of `temperature`, `logits` and `probs`."""
    return dict(
        temperature=positive_parameter(dtype),
        logits=parameter_properties.ParameterProperties(),
        probs=parameter_properties.ParameterProperties(
            default_constraining_bijector_fn=sigmoid_bijector.Sigmoid,
            is_preferred=False))


class BernoulliParameters:
    """Mixin for a scalar `tfd.Distribution` with `probs` / `logits` and `temperature`.

    The class calls `_init_bernoulli_parameters` in its constructor and adds
    `_bernoulli_parameter_assertions(is_init)` to its `_parameter_control_dependencies`.
    """

    def _init_bernoulli_parameters(self, probs, logits, temperature, dtype):
        """Converts and stores the parameters; `ValueError` unless exactly one of `probs`,
        `logits` is given."""
        if (probs is None) == (logits is None):
            raise ValueError(f"{type(self).__name__}: pass exactly one of `probs` or `logits`, "
                             f"got probs={probs!r}, logits={logits!r}")
        self._probs = tensor_util.convert_nonref_to_tensor(probs, name="probs", dtype=dtype)
        self._logits = tensor_util.convert_nonref_to_tensor(logits, name="logits", dtype=dtype)
        self._temperature = tensor_util.convert_nonref_to_tensor(
            temperature, name="temperature", dtype=dtype)

    @property
    def probs(self):
        """Input argument `probs` (`None` if `logits` was given)."""
        return self._probs

    @property
    def logits(self):
        """Input argument `logits` (`None` if `probs` was given)."""
        return self._logits

    @property
    def temperature(self):
        """The relaxation's temperature, the VSC paper's `1 / c` (`None`: exact sampling)."""
        return self._temperature

    def probs_parameter(self, name=None):
        """The Bernoulli probability, from whichever of `probs` / `logits` was given."""
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

    def _bernoulli_parameter_assertions(self, is_init):
        """Run-time checks (for `validate_args`): temperature > 0, probs in [0, 1]."""
        owner = type(self).__name__
        assertions = []
        if self._temperature is not None and is_init != tensor_util.is_ref(self._temperature):
            assertions.append(assert_util.assert_positive(
                self._temperature, message=f"{owner}: argument `temperature` must be positive"))
        if self._probs is not None and is_init != tensor_util.is_ref(self._probs):
            probs = tf.convert_to_tensor(self._probs)
            assertions.append(assert_util.assert_non_negative(
                probs, message=f"{owner}: argument `probs` has components below 0"))
            assertions.append(assert_util.assert_less_equal(
                probs, tf.ones([], probs.dtype),
                message=f"{owner}: argument `probs` has components above 1"))
        return assertions
