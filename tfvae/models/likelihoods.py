"""Observation models p(x|z): turn the decoder's raw output into a tfd distribution over images.

Each likelihood is a small Keras layer (so a learned scale is a tracked, saved weight) with a
``distribution(params)`` method; ``params`` has the image's shape times
``params_per_pixel`` channels, with any leading sample/batch axes. The returned distribution is
``tfd.Independent`` over the image axes ``[H, W, C]``, so ``log_prob(x)`` is one number per image.
"""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions

_REGISTRY = {}


def _register(name):
    def wrap(cls):
        _REGISTRY[name] = cls
        return keras.saving.register_keras_serializable("tfvae")(cls)
    return wrap


@_register("bernoulli")
class BernoulliLikelihood(keras.layers.Layer):
    """p(x|z) = Π Bernoulli(x_i; sigmoid(logit_i)); for grey levels in [0, 1] log_prob is the
    negative binary cross-entropy, the usual choice for MNIST-like data."""

    params_per_pixel = 1
    requires_unit_interval = True

    def distribution(self, params):
        return tfd.Independent(tfd.Bernoulli(logits=params, dtype=tf.float32),
                               reinterpreted_batch_ndims=3)


@_register("gaussian")
class GaussianLikelihood(keras.layers.Layer):
    """p(x|z) = Π N(x_i; μ_i, σ²) with the decoder giving μ and σ fixed (``learn_scale=False``)
    or one learned σ shared by all pixels (``learn_scale=True``, floored at ``min_scale`` so that
    constant background pixels cannot drive the likelihood to infinity)."""

    params_per_pixel = 1
    requires_unit_interval = False

    def __init__(self, scale=0.1, learn_scale=False, min_scale=1e-3, **kwargs):
        super().__init__(**kwargs)
        if not scale > 0 or not math.isfinite(scale):
            raise ValueError(f"observation scale must be a positive number, got {scale!r}")
        self.scale, self.learn_scale, self.min_scale = float(scale), bool(learn_scale), float(min_scale)
        if self.learn_scale:
            self.log_scale = self.add_weight(
                name="log_scale", shape=(), initializer=keras.initializers.Constant(math.log(scale)))
        self.built = True

    def current_scale(self):
        if self.learn_scale:
            return self.min_scale + tf.exp(self.log_scale)
        return tf.constant(self.scale, tf.float32)

    def distribution(self, params):
        return tfd.Independent(tfd.Normal(loc=params, scale=self.current_scale()),
                               reinterpreted_batch_ndims=3)

    def get_config(self):
        return dict(super().get_config(), scale=self.scale, learn_scale=self.learn_scale,
                    min_scale=self.min_scale)


def get(likelihood, observation_scale=0.1):
    """A likelihood layer from a name: ``bernoulli``, ``gaussian`` (fixed scale) or
    ``gaussian-learned`` (one learned scale)."""
    if isinstance(likelihood, keras.layers.Layer):
        return likelihood
    names = ("bernoulli", "gaussian", "gaussian-learned")
    if likelihood == "bernoulli":
        return BernoulliLikelihood(name="likelihood")
    if likelihood in ("gaussian", "gaussian-learned"):
        return GaussianLikelihood(observation_scale, learn_scale=likelihood == "gaussian-learned",
                                  name="likelihood")
    raise ValueError(f"unknown likelihood {likelihood!r}; expected one of {names}")
