"""The base of every amortised variational model in tfvae.

A model is networks + prior + likelihood + objective:

* the **encoder** network maps images to the raw parameters of q(z|x), which
  :meth:`VariationalModel.posterior_from_params` turns into a tfd distribution;
* the **decoder** network maps codes to the raw parameters of p(x|z), which the likelihood layer
  (:mod:`tfvae.models.likelihoods`) turns into a tfd distribution over images;
* the **prior** p(z) is a tfd distribution (:meth:`VariationalModel.make_prior`);
* the **objective** is :meth:`VariationalModel.compute_objective`, a few lines per model that call
  the pure functions of :mod:`tfvae.objectives`. ``train_step`` and ``test_step`` are shared.

Shapes: images ``[batch, H, W, C]`` float32 in [0, 1]; codes ``[batch, latent_dim]``; Monte Carlo
sample axes first (``[K, batch, ...]``).
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfvae import networks, validation
from tfvae.models import likelihoods
from tfvae.models.training import ObjectiveValue, TrainingLoop
from tfvae.networks._checks import check_shape

tfd = tfp.distributions


class VariationalModel(TrainingLoop):
    """Base class: an encoder giving q(z|x), a decoder giving p(x|z), a prior p(z).

    Subclasses override :meth:`compute_objective` (and, for other latent families,
    :meth:`posterior_params_per_latent`, :meth:`posterior_from_params` and :meth:`make_prior`).

    Args:
      image_shape: ``(H, W, C)`` of the images.
      latent_dim: size of the code z.
      architecture: a name from :data:`tfvae.networks.ARCHITECTURES`, used when ``encoder`` /
        ``decoder`` are not given.
      likelihood: ``"bernoulli"``, ``"gaussian"`` or ``"gaussian-learned"``.
      observation_scale: σ of the Gaussian likelihood (its initial value when learned).
      network_options: dict of builder overrides, e.g. ``{"hidden_units": (400,)}``.
      encoder, decoder: your own Keras models instead of a named architecture. The encoder maps
        ``[batch, H, W, C]`` to ``[batch, posterior_params_per_latent() * latent_dim]``, the
        decoder maps ``[batch, latent_dim]`` to the likelihood's parameters shaped like the image.
      validate_inputs: check that the data given to ``fit`` and ``evaluate`` are finite and in
        the likelihood's support (e.g. [0, 1] for the Bernoulli), failing with a clear message
        instead of a NaN loss; the checks run outside the compiled step (see
        :mod:`tfvae.models.training`), so they hold under XLA too.
    """

    #: metric names reported by train_step / test_step, in progress-bar order
    metric_names = ("loss", "elbo", "reconstruction", "kl")

    def __init__(self, image_shape, latent_dim, architecture="mlp", likelihood="bernoulli",
                 observation_scale=0.1, network_options=None, encoder=None, decoder=None,
                 validate_inputs=True, **kwargs):
        super().__init__(validate_inputs=validate_inputs, **kwargs)
        self.image_shape = check_shape("image_shape", image_shape)
        self.latent_dim = validation.positive_int("latent_dim", latent_dim)
        if architecture not in networks.ARCHITECTURES:
            raise ValueError(f"unknown architecture {architecture!r}; "
                             f"expected one of {sorted(networks.ARCHITECTURES)}")
        self.architecture = architecture
        self.network_options = dict(network_options or {})
        self.observation_scale = float(observation_scale)
        self.likelihood_name = likelihood if isinstance(likelihood, str) else None
        self.likelihood_layer = likelihoods.get(likelihood, observation_scale)
        if (encoder is None) != (decoder is None):
            raise ValueError("give both encoder and decoder, or neither (to use `architecture`)")
        if encoder is None:
            encoder, decoder = networks.build(
                architecture, self.image_shape,
                encoder_outputs=self.posterior_params_per_latent() * self.latent_dim,
                latent_dim=self.latent_dim,
                decoder_channels_per_pixel=self.likelihood_layer.params_per_pixel,
                **self.network_options)
        self.encoder, self.decoder = encoder, decoder
        self._check_networks()
        self.prior = self.make_prior()
        self.built = True

    def _check_networks(self):
        want = self.posterior_params_per_latent() * self.latent_dim
        got = self.encoder.compute_output_shape((None,) + self.image_shape)
        if tuple(got)[1:] != (want,):
            raise ValueError(f"the encoder must output [batch, {want}] for latent_dim "
                             f"{self.latent_dim}, got {tuple(got)}")
        got = self.decoder.compute_output_shape((None, self.latent_dim))
        channels = self.image_shape[-1] * self.likelihood_layer.params_per_pixel
        want_shape = self.image_shape[:-1] + (channels,)
        if tuple(got)[1:] != want_shape:
            raise ValueError(f"the decoder must output [batch, {', '.join(map(str, want_shape))}], "
                             f"got {tuple(got)}")

    # ----------------------------------------------------------------- the probabilistic model

    def posterior_params_per_latent(self):
        """Raw encoder outputs per latent dimension (2 for a diagonal Gaussian: μ, log σ²)."""
        return 2

    def posterior_from_params(self, params):
        """q(z|x) = N(μ, diag(σ²)) from ``params = [μ, log σ²]`` (last axis)."""
        loc, log_var = tf.split(params, 2, axis=-1)
        return tfd.Independent(tfd.Normal(loc=loc, scale=tf.exp(0.5 * log_var)),
                               reinterpreted_batch_ndims=1)

    def make_prior(self):
        """p(z) = N(0, I)."""
        zeros = tf.zeros([self.latent_dim], tf.float32)
        return tfd.Independent(tfd.Normal(loc=zeros, scale=1.0), reinterpreted_batch_ndims=1)

    def posterior(self, images, training=False):
        """q(z|x) as a tfd distribution with batch shape ``[batch]``, event shape ``[latent]``."""
        return self.posterior_from_params(self.encode_params(images, training=training))

    def encode_params(self, images, training=False):
        """The encoder's raw output ``[batch, P]`` in float32 (whatever the networks' compute
        dtype under mixed precision: distributions and objectives work in float32)."""
        return tf.cast(self.encoder(images, training=training), tf.float32)

    def likelihood(self, codes, training=False):
        """p(x|z) for codes with any leading axes ``[..., latent]``; event shape ``[H, W, C]``."""
        codes = tf.convert_to_tensor(codes, tf.float32)
        leading = tf.shape(codes)[:-1]
        flat = tf.reshape(codes, [-1, self.latent_dim])
        params = tf.cast(self.decoder(flat, training=training), tf.float32)
        params = tf.reshape(params, tf.concat([leading, tf.shape(params)[1:]], axis=0))
        return self.likelihood_layer.distribution(params)

    def kl_per_dimension(self, posterior):
        """KL(q(z_j|x) ‖ p(z_j)) for each latent dimension, ``[batch, latent]``.

        Analytic through ``tfd.kl_divergence`` when a KL is registered for the per-dimension
        distributions, otherwise a one-sample Monte Carlo estimate.
        """
        q, p = _per_dimension(posterior), _per_dimension(self.prior)
        try:
            return tfd.kl_divergence(q, p)
        except NotImplementedError:
            z = q.sample()
            return q.log_prob(z) - p.log_prob(z)

    def log_weights(self, images, num_samples=1, stop_posterior_gradient=False, training=False, seed=None):
        """Importance log-weights ``log p(x|z) + log p(z) − log q(z|x)``, ``[num_samples, batch]``.

        With ``stop_posterior_gradient`` the log q(z|x) term is evaluated with the encoder's
        parameters held constant while z stays reparameterised, as doubly reparameterised
        gradient estimators (DReG) need. ``training`` reaches both networks; ``seed`` (a
        ``[2]`` int tensor) makes the draw stateless.
        """
        params = self.encode_params(images, training=training)
        q = self.posterior_from_params(params)
        z = q.sample(num_samples, seed=seed)
        if stop_posterior_gradient:
            q = self.posterior_from_params(tf.stop_gradient(params))
        return (self.likelihood(z, training=training).log_prob(images) + self.prior.log_prob(z)
                - q.log_prob(z))

    # ------------------------------------------------------------------------ the objective

    def compute_objective(self, images, training=False):
        """The ELBO with an analytic KL and one reparameterised sample.

        Returns an :class:`ObjectiveValue` of per-example values. Subclasses replace this.
        """
        q = self.posterior(images, training=training)
        reconstruction = self.likelihood(q.sample(), training=training).log_prob(images)
        kl = tf.reduce_sum(self.kl_per_dimension(q), axis=-1)
        elbo = reconstruction - kl
        return ObjectiveValue(loss=-elbo, metrics=dict(elbo=elbo, reconstruction=reconstruction, kl=kl))

    # ----------------------------------------------------------- the shared training loop

    def variable_groups(self):
        """Trainable variables by role; ``surrogates`` in an ObjectiveValue name these groups."""
        encoder = list(self.encoder.trainable_variables)
        encoder_ids = {id(v) for v in encoder}
        return {"encoder": encoder,
                "decoder": [v for v in self.trainable_variables if id(v) not in encoder_ids]}

    def prepare_inputs(self, inputs):
        return as_images(inputs, self.image_shape)

    def data_requirements(self):
        """Finite values, and the likelihood's support (e.g. [0, 1] for the Bernoulli)."""
        requirements = super().data_requirements()
        layer = self.likelihood_layer
        name = type(layer).__name__
        support = getattr(layer, "support", "unit-interval" if layer.requires_unit_interval else "real")
        if support in ("binary", "unit-interval"):
            requirements += [("min:0", f"{name} needs values in [0, 1]; got values below 0"),
                             ("max:1", f"{name} needs values in [0, 1]; got values above 1")]
        elif support == "counts":
            requirements += [("min:0", f"{name} needs counts (integers >= 0); got negative values"),
                             ("integer", f"{name} needs counts (integers >= 0); got non-integer values")]
        return requirements

    def data_warnings(self, sample):
        """A Bernoulli likelihood on grey levels is not a normalised density (REFERENCES §6)."""
        if getattr(self.likelihood_layer, "support", None) == "binary" and sample.size \
                and np.any((sample != 0) & (sample != 1)):
            return ["the Bernoulli likelihood is a density for binary data, but the data hold grey "
                    "levels between 0 and 1, so its log-likelihood is not a normalised density: "
                    "binarise the data (tfvae.data.load(..., binarize='dynamic') for training, "
                    "'threshold' or one seeded draw for evaluation) or use "
                    "likelihood='continuous-bernoulli'"]
        return []

    def call(self, images, training=False):
        """The reconstruction mean E[x | z = E_q[z]] (what ``model(images)`` returns)."""
        return self.decode(self.encode(images, training=training), training=training)

    # -------------------------------------------------------------------------- user API

    def encode(self, images, training=False):
        """The code of each image: the mean of q(z|x), ``[batch, latent]``."""
        return self.posterior(self._as_images(images), training=training).mean()

    def decode(self, codes, training=False):
        """The mean image E[x|z] for codes ``[..., latent]``."""
        codes = tf.convert_to_tensor(codes, tf.float32)
        if codes.shape.rank is not None and codes.shape[-1] is not None \
                and codes.shape[-1] != self.latent_dim:
            raise ValueError(f"codes must have {self.latent_dim} entries on the last axis, "
                             f"got shape {codes.shape}")
        return self.likelihood(codes, training=training).mean()

    def reconstruct(self, images):
        """decode(encode(x)): the mean image of p(x | z = E_q[z|x])."""
        return self.decode(self.encode(images))

    def sample(self, num_samples, seed=None):
        """``num_samples`` mean images E[x|z] for z drawn from the prior.

        An integer ``seed`` makes the draw stateless: the same seed gives the same images.
        """
        num_samples = validation.positive_int("num_samples", num_samples)
        if isinstance(seed, (int, np.integer)):
            seed = tf.constant([0, int(seed)], tf.int32)
        return self.decode(self.prior.sample(num_samples, seed=seed))

    def serving_encode(self, images):
        """What the exported ``serving_default`` signature returns (:mod:`tfvae.export`): a dict
        of named ``[batch, ...]`` float32 tensors for checked images ``[batch, H, W, C]``. Here
        the mean and standard deviation of q(z|x); a family adds its own codes by overriding
        this one method, e.g. ``dict(super().serving_encode(images), sparse_code=...)``."""
        q = self.posterior(images)
        return {"code_mean": q.mean(), "code_scale": q.stddev()}

    def _as_images(self, images):
        return as_images(images, self.image_shape)

    # -------------------------------------------------------------------------- saving

    def get_config(self):
        config = dict(
            image_shape=list(self.image_shape), latent_dim=self.latent_dim,
            architecture=self.architecture,
            likelihood=self.likelihood_name or keras.saving.serialize_keras_object(self.likelihood_layer),
            observation_scale=self.observation_scale,
            network_options=_jsonable(self.network_options),
            encoder=keras.saving.serialize_keras_object(self.encoder),
            decoder=keras.saving.serialize_keras_object(self.decoder),
            validate_inputs=self.validate_inputs,
            name=self.name,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        if isinstance(config.get("likelihood"), dict):
            config["likelihood"] = keras.saving.deserialize_keras_object(config["likelihood"])
        return cls(**config)


def as_images(images, image_shape):
    """``images`` as a float32 tensor, checked to be ``[batch, *image_shape]``."""
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape.rank is not None and tuple(images.shape[1:]) != tuple(image_shape):
        raise ValueError(f"images must have shape [batch, {', '.join(map(str, image_shape))}], "
                         f"got {images.shape}")
    return images


def _per_dimension(distribution):
    """Strips tfd.Independent so that KLs and log-probs come out per latent dimension."""
    while isinstance(distribution, tfd.Independent):
        distribution = distribution.distribution
    return distribution


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


__all__ = ["ObjectiveValue", "VariationalModel"]
