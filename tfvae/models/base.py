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
from tfvae.models.options import Option, choice, number
from tfvae.models.training import ObjectiveValue, TrainingLoop
from tfvae.networks._checks import check_shape

tfd = tfp.distributions
tfb = tfp.bijectors


def _check_likelihood(name, value):
    if isinstance(value, keras.layers.Layer):
        return value
    return validation.choice(name, value, tuple(likelihoods.names()))


def _check_network_options(name, value):
    if value is not None and not isinstance(value, dict):
        raise ValueError(f"{name} must be a dict of network builder arguments or None, got {value!r}")
    return None if not value else dict(value)


def _check_standardization(name, value):
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"mean", "scale"}:
        raise ValueError(f"{name} must be None or a dict with 'mean' and 'scale', got {value!r}")
    mean, scale = (np.asarray(value[k], np.float64) for k in ("mean", "scale"))
    if mean.shape != scale.shape or not np.all(np.isfinite(mean)) or not np.all(scale > 0):
        raise ValueError(f"{name}: 'mean' and 'scale' must have the same shape, finite values and "
                         f"scale > 0; got shapes {mean.shape} and {scale.shape}")
    return {"mean": mean.tolist(), "scale": scale.tolist()}


class VariationalModel(TrainingLoop):
    """Base class: an encoder giving q(z|x), a decoder giving p(x|z), a prior p(z).

    Subclasses override :meth:`compute_objective` (and, for other latent families,
    :meth:`posterior_params_per_latent`, :meth:`posterior_from_params` and :meth:`make_prior`).

    Args:
      input_shape: the shape of one example: ``(D,)`` for vectors (tables, embeddings, counts)
        or ``(H, W, C)`` for images (``image_shape`` is accepted as another name for it).
      latent_dim: size of the code z.
      encoder, decoder: your own Keras models instead of a named architecture. The encoder maps
        ``[batch, *input_shape]`` to ``[batch, posterior_params_per_latent() * latent_dim]``, the
        decoder maps ``[batch, latent_dim]`` to the likelihood's parameters shaped like an
        example (the last axis times the likelihood's ``params_per_pixel``).
      **options: the options declared in ``OPTIONS`` (here and in each subclass), below. Each is
        validated, saved by ``get_config`` and offered as a ``tfvae train`` flag.

    Options:
      architecture: a name from :data:`tfvae.networks.ARCHITECTURES`, used when ``encoder`` /
        ``decoder`` are not given (``conv`` needs images).
      likelihood: a name from :func:`tfvae.models.likelihoods.names` (``bernoulli`` for binary
        data, ``continuous-bernoulli`` for values in [0, 1], ``gaussian`` / ``gaussian-learned``
        for real values, ``poisson`` / ``negative-binomial`` for counts) or a likelihood layer.
      observation_scale: σ of the Gaussian likelihood (its initial value when learned).
      network_options: dict of builder overrides, e.g. ``{"hidden_units": (400,)}``.
      standardization: None, or ``{"mean": m, "scale": s}`` (lists shaped like an example): the
        networks see (x − m) / s and p(x|z) is the likelihood of the standardised values mapped
        back to x's units (``tfd.TransformedDistribution``), so log p(x|z) keeps its Jacobian
        −Σ log s and stays a density of x. Saved with the model, so ``encode``, the CLI and the
        SavedModel apply the same transform. Only for a likelihood of real values (``gaussian``,
        ``gaussian-learned``; :func:`tfvae.models.likelihoods.standardization_problem` says why
        the others refuse it). Without it the encoder sees what the likelihood's facts say
        (:func:`tfvae.models.likelihoods.facts`): x, or log(1 + x) for counts.
      validate_inputs: check that the data given to ``fit`` and ``evaluate`` are finite and in
        the likelihood's support (e.g. [0, 1] for the Bernoulli), failing with a clear message
        instead of a NaN loss; the checks run outside the compiled step (see
        :mod:`tfvae.models.training`), so they hold under XLA too.
    """

    #: metric names reported by train_step / test_step, in progress-bar order
    metric_names = ("loss", "elbo", "reconstruction", "kl")

    OPTIONS = {
        "architecture": Option("mlp", choice(*networks.ARCHITECTURES),
                               f"network: {', '.join(networks.ARCHITECTURES)}"),
        "likelihood": Option("bernoulli", _check_likelihood,
                             f"p(x|z): {', '.join(likelihoods.names())}", attribute="likelihood_option"),
        "observation_scale": Option(0.1, number(minimum=0.0, exclusive_minimum=True),
                                    "sigma of the Gaussian likelihood (initial value when learned)"),
        "network_options": Option(None, _check_network_options, "builder overrides", flag=None),
        "standardization": Option(None, _check_standardization, "feature mean and scale", flag=None),
    }

    def check_options(self):
        super().check_options()
        default = VariationalModel.OPTIONS["observation_scale"].default
        if isinstance(self.likelihood_option, str) and not self.likelihood_option.startswith("gaussian") \
                and self.observation_scale != default:
            raise ValueError(f"observation_scale applies to the gaussian likelihoods, not {self.likelihood_option!r} "
                             f"(got observation_scale={self.observation_scale})")
        if self.standardization is not None:
            problem = likelihoods.standardization_problem(self.likelihood_option)
            if problem is not None:
                raise ValueError(problem)

    def __init__(self, input_shape=None, latent_dim=None, encoder=None, decoder=None, *, image_shape=None,
                 **options):
        if (input_shape is None) == (image_shape is None):
            raise ValueError("give the shape of one example as input_shape (image_shape is another name "
                             f"for it), once; got input_shape={input_shape!r}, image_shape={image_shape!r}")
        if latent_dim is None:
            raise ValueError("latent_dim (the size of the code z) is required")
        super().__init__(**options)
        self.image_shape = check_shape("input_shape", input_shape if image_shape is None else image_shape)
        self.latent_dim = validation.positive_int("latent_dim", latent_dim)
        self.likelihood_layer = likelihoods.get(self.likelihood_option, self.observation_scale,
                                                event_ndims=len(self.image_shape))
        if (encoder is None) != (decoder is None):
            raise ValueError("give both encoder and decoder, or neither (to use `architecture`)")
        if encoder is None:
            encoder, decoder = networks.build(
                self.architecture, self.image_shape,
                encoder_outputs=self.posterior_params_per_latent() * self.latent_dim,
                latent_dim=self.latent_dim,
                decoder_channels_per_pixel=self.likelihood_layer.params_per_pixel,
                **(self.network_options or {}))
        self.encoder, self.decoder = encoder, decoder
        self._check_networks()
        self._standardizer = _standardizer(self.standardization, self.image_shape)
        self.prior = self.make_prior()
        self.built = True

    @property
    def feature_shape(self):
        """The shape of one example, ``(D,)`` or ``(H, W, C)`` (also ``image_shape``)."""
        return self.image_shape

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

    # ------------------------------------------------------------------------ capabilities

    def is_probabilistic(self):
        return True

    def plots(self):
        return ("reconstructions", "samples", "traversals", "kl")

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
        if self._standardizer is not None:
            images = self._standardizer.inverse(images)
        elif likelihoods.facts(self.likelihood_layer).encoder_input == "log1p":
            images = tf.math.log1p(tf.cast(images, tf.float32))
        return tf.cast(self.encoder(images, training=training), tf.float32)

    def likelihood(self, codes, training=False):
        """p(x|z) for codes with any leading axes ``[..., latent]``; event shape ``[H, W, C]``."""
        codes = tf.convert_to_tensor(codes, tf.float32)
        leading = tf.shape(codes)[:-1]
        flat = tf.reshape(codes, [-1, self.latent_dim])
        params = tf.cast(self.decoder(flat, training=training), tf.float32)
        params = tf.reshape(params, tf.concat([leading, tf.shape(params)[1:]], axis=0))
        distribution = self.likelihood_layer.distribution(params)
        if self._standardizer is not None:
            # a density of x, not of the standardised values: log_prob gains −Σ log s
            distribution = tfd.TransformedDistribution(distribution, self._standardizer)
        return distribution

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

    def log_weights(self, images, num_samples=None, stop_posterior_gradient=False, training=False, seed=None,
                    codes=None):
        """Importance log-weights ``w = log p(x|z) + log p(z) − log q(z|x)`` for ``z ~ q(z|x)``,
        ``[num_samples, batch]``, float32 whatever the networks' compute dtype.

        The one formula behind the IWAE-type bounds (:mod:`tfvae.objectives`) and the
        importance-sampled log-likelihood of evaluation and export (:mod:`tfvae.estimators`).

        Args:
          images: ``[batch, *input_shape]``.
          num_samples: draws per example (default 1).
          stop_posterior_gradient: evaluate log q(z|x) with the encoder's parameters held
            constant while z stays reparameterised, as doubly reparameterised gradient
            estimators (DReG) need.
          training: passed to the encoder and the decoder.
          seed: a stateless seed (int ``[2]`` tensor): the same seed gives the same draws.
          codes: draws from q(z|x) made beforehand, ``[K, batch, latent_dim]``, to weigh instead
            of drawing here (:func:`tfvae.estimators.draw_codes` draws them with one seed per
            example); give either ``codes`` or ``num_samples``/``seed``.

        Example:
          >>> w = model.log_weights(images, 64, seed=tf.constant([0, 7]))    # [64, batch]
          >>> tfvae.objectives.iwae(w)                                        # IWAE-64 bound
        """
        if codes is not None and (num_samples is not None or seed is not None):
            raise ValueError("log_weights: give codes (draws made beforehand) or num_samples/seed "
                             "(draws made here), not both")
        params = self.encode_params(images, training=training)
        q = self.posterior_from_params(params)
        if codes is None:
            z = q.sample(1 if num_samples is None else num_samples, seed=seed)
        else:
            z = tf.convert_to_tensor(codes, tf.float32)
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

    def data_problem(self, array):
        """Finite values inside the likelihood's support (e.g. [0, 1] for the Bernoulli)."""
        return self.likelihood_layer.check_data(array)

    def data_assertions(self, values):
        return self.likelihood_layer.data_assertions(values)

    def data_warnings(self, sample):
        """E.g. grey levels under a Bernoulli likelihood, whose log-likelihood is then not a
        normalised density (REFERENCES §6)."""
        warning = self.likelihood_layer.data_warning(sample)
        return [] if warning is None else [warning]

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

    def serving_decode_inputs(self):
        """The exported ``decode`` signature's inputs: ``codes [batch, latent_dim]``."""
        return {"codes": tf.TensorSpec([None, self.latent_dim], tf.float32)}

    def serving_decode(self, codes):
        """The exported ``decode``: the mean of p(x|z) for ``codes``."""
        return self.decode(codes)

    def _as_images(self, images):
        return as_images(images, self.image_shape)

    # -------------------------------------------------------------------------- saving

    def get_config(self):
        config = dict(self.options_config(), input_shape=list(self.image_shape), latent_dim=self.latent_dim,
                      encoder=keras.saving.serialize_keras_object(self.encoder),
                      decoder=keras.saving.serialize_keras_object(self.decoder), name=self.name)
        if not isinstance(self.likelihood_option, str):
            config["likelihood"] = keras.saving.serialize_keras_object(self.likelihood_layer)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        if isinstance(config.get("likelihood"), dict):
            config["likelihood"] = keras.saving.deserialize_keras_object(config["likelihood"])
        return cls(**config)


def _standardizer(standardization, feature_shape):
    """The bijector x ↦ (x − m) / s's inverse, u ↦ m + s·u, or None."""
    if standardization is None:
        return None
    mean = np.asarray(standardization["mean"], np.float32)
    scale = np.asarray(standardization["scale"], np.float32)
    try:
        mean, scale = (np.broadcast_to(v, feature_shape) for v in (mean, scale))
    except ValueError:
        raise ValueError(f"standardization: mean and scale of shape {mean.shape} do not fit examples "
                         f"of shape {tuple(feature_shape)}") from None
    return tfb.Chain([tfb.Shift(tf.constant(mean)), tfb.Scale(tf.constant(scale))])


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


__all__ = ["ObjectiveValue", "VariationalModel"]
