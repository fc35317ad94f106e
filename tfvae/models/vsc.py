"""Variational Sparse Coding, VSC (Tonolini, Jensen and Murray-Smith)."""

import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfvae import objectives
from tfvae.distributions import SpikeAndSlab
from tfvae.models.base import ObjectiveValue, VariationalModel

tfd = tfp.distributions


def linear_schedule(step, start, end, steps):
    """``start`` at step 0, rising (or falling) linearly to ``end`` at ``steps``, then ``end``."""
    progress = tf.minimum(tf.cast(step, tf.float32) / float(steps), 1.0)
    return start + (end - start) * progress


@keras.saving.register_keras_serializable("tfvae")
class VSC(VariationalModel):
    """Variational Sparse Coding: a VAE with a spike-and-slab prior and posterior.

    Per latent dimension j (:class:`tfvae.distributions.SpikeAndSlab`):

        p(z_j)   = α N(z_j; 0, 1) + (1 − α) δ(z_j)
        q(z_j|x) = γ_j N(z_j; μ_j, σ_j²) + (1 − γ_j) δ(z_j),   log γ_j = −ReLU(−v_j)

    with μ, log σ² and the spike logit v from the encoder (so γ ≤ 1, and γ = 1 exactly when
    v ≥ 0). The objective is the ELBO with the closed-form KL summed over latents,

        ELBO = E_q[log p(x|z)] − Σ_j [γ_j KL(N(μ_j, σ_j²) ‖ N(0, 1))
                                      + γ_j log(γ_j/α) + (1 − γ_j) log((1 − γ_j)/(1 − α))],

    whose reconstruction term is estimated in training with VSC's relaxed sample
    z = sigmoid(c (η − 1 + γ)) ⊙ (μ + σ ⊙ ε), η ~ U(0, 1), ε ~ N(0, I). The sharpness c rises
    linearly from ``sharpness_start`` to ``sharpness_end`` over ``sharpness_steps`` optimizer steps
    (50 → 200 in the paper's supplement). Evaluation (``training=False``: ``test_step``,
    ``model.evaluate``, the importance-sampled log-likelihood) samples q *exactly*, so the
    reported ELBO there is an unbiased estimate of a true lower bound.

    With a spike warm-up (``warmup_end > 0``, the authors' code) the slab is pinned to the prior,
    N(λμ, σ^{2λ}) with λ = 0 before ``warmup_start``, rising linearly to 1 at ``warmup_end``: the
    model first learns which dimensions to switch on, then what to put in them.

    Schedules follow ``optimizer.iterations``, so they resume after loading a saved model; a model
    without an optimizer (not compiled) uses their final values.

    Args:
      alpha: prior slab probability α in (0, 1) (0.01 for the paper's classification study,
        0.2 / 0.5 for its ELBO study).
      sharpness_start, sharpness_end: the relaxation's sharpness c (1 / temperature), > 0.
      sharpness_steps: optimizer steps over which c goes from start to end.
      warmup_start, warmup_end: spike warm-up steps (0 ≤ start ≤ end; end = 0 turns it off).
      threshold: γ below which :meth:`encode` returns an exact zero, in (0, 1].
      **kwargs: as :class:`tfvae.models.base.VariationalModel`.

    Metrics: ``loss``, ``elbo``, ``reconstruction``, ``kl``, ``nonzero`` (the fraction of
    entries of :meth:`encode`'s codes that are not zero) and ``sharpness`` (the current c).

    Example:
      >>> model = VSC(image_shape=(28, 28, 1), latent_dim=200, alpha=0.01,
      ...             network_options={"hidden_units": (400,)})
      >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
      >>> history = model.fit(tfvae.data.load("mnist", "train", batch_size=32, shuffle=True,
      ...                                     seed=0), epochs=11)
      >>> codes = model.encode(images)     # mostly exact zeros
    """

    metric_names = VariationalModel.metric_names + ("nonzero", "sharpness")

    def __init__(self, image_shape, latent_dim, alpha=0.5, sharpness_start=50.0,
                 sharpness_end=200.0, sharpness_steps=20_000, warmup_start=0, warmup_end=0,
                 threshold=0.5, **kwargs):
        if not _is_number(alpha) or not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha (the prior slab probability) must be a number in (0, 1), "
                             f"got {alpha!r}")
        for name, value in (("sharpness_start", sharpness_start), ("sharpness_end", sharpness_end)):
            if not _is_number(value) or value <= 0:
                raise ValueError(f"{name} must be a number > 0 (the sharpness c = 1/temperature), "
                                 f"got {value!r}")
        if not _is_int(sharpness_steps) or sharpness_steps <= 0:
            raise ValueError(f"sharpness_steps must be a positive integer, got {sharpness_steps!r}")
        for name, value in (("warmup_start", warmup_start), ("warmup_end", warmup_end)):
            if not _is_int(value) or value < 0:
                raise ValueError(f"{name} must be an integer number of steps >= 0, got {value!r}")
        if warmup_end and warmup_start > warmup_end:
            raise ValueError(f"warmup_start must not exceed warmup_end, got {warmup_start!r} > "
                             f"{warmup_end!r}")
        if not _is_number(threshold) or not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be a number in (0, 1], got {threshold!r}")
        self.alpha = float(alpha)
        self.sharpness_start, self.sharpness_end = float(sharpness_start), float(sharpness_end)
        self.sharpness_steps = int(sharpness_steps)
        self.warmup_start, self.warmup_end = int(warmup_start), int(warmup_end)
        self.threshold = float(threshold)
        super().__init__(image_shape, latent_dim, **kwargs)

    # --------------------------------------------------------------------- schedules

    def _step(self):
        optimizer = getattr(self, "optimizer", None)  # absent until compile()
        return None if optimizer is None else optimizer.iterations

    def sharpness(self):
        """The current sharpness c of the relaxed sample (the temperature is 1 / c)."""
        step = self._step()
        if step is None:
            return tf.constant(self.sharpness_end)
        return linear_schedule(step, self.sharpness_start, self.sharpness_end, self.sharpness_steps)

    def warmup(self):
        """The spike warm-up factor λ in [0, 1] (1 without warm-up)."""
        step = self._step()
        if not self.warmup_end or step is None:
            return tf.constant(1.0)
        if self.warmup_end == self.warmup_start:
            return tf.cast(step >= self.warmup_end, tf.float32)
        return linear_schedule(tf.maximum(step - self.warmup_start, 0), 0.0, 1.0,
                               self.warmup_end - self.warmup_start)

    # ------------------------------------------------------------- the probabilistic model

    def posterior_params_per_latent(self):
        """μ, log σ² and the spike logit v."""
        return 3

    def _split(self, params):
        loc, log_var, spike_logit = tf.split(params, 3, axis=-1)
        warmup = self.warmup()
        slab_probs = tf.exp(-tf.nn.relu(-spike_logit))  # log γ = −ReLU(−v): γ ≤ 1
        return warmup * loc, tf.exp(0.5 * warmup * log_var), slab_probs

    def posterior_from_params(self, params, relaxed=False):
        """q(z|x), Independent SpikeAndSlab over the latents; ``relaxed`` attaches the current
        temperature 1 / c so that ``sample`` draws VSC's reparameterised relaxed sample."""
        loc, scale, slab_probs = self._split(params)
        temperature = 1.0 / self.sharpness() if relaxed else None
        return tfd.Independent(SpikeAndSlab(loc, scale, probs=slab_probs, temperature=temperature),
                               reinterpreted_batch_ndims=1)

    def posterior(self, images, training=False):
        """q(z|x); relaxed samples when ``training``, exact ones otherwise."""
        return self.posterior_from_params(self.encoder(images, training=training), relaxed=training)

    def make_prior(self):
        """p(z): independent spike and slab, slab N(0, 1) with probability α."""
        zeros = tf.zeros([self.latent_dim], tf.float32)
        return tfd.Independent(SpikeAndSlab(zeros, 1.0, probs=self.alpha),
                               reinterpreted_batch_ndims=1)

    # ------------------------------------------------------------------------ objective

    def compute_objective(self, images, training=False):
        q = self.posterior(images, training=training)
        reconstruction = self.likelihood(q.sample(), training=training).log_prob(images)
        kl = tf.reduce_sum(self.kl_per_dimension(q), axis=-1)
        elbo = objectives.elbo_from_terms(reconstruction, kl)
        active = tf.cast(q.distribution.probs >= self.threshold, tf.float32)
        metrics = dict(elbo=elbo, reconstruction=reconstruction, kl=kl,
                       nonzero=tf.reduce_mean(active, axis=-1),
                       sharpness=tf.fill(tf.shape(kl), self.sharpness()))
        return ObjectiveValue(loss=-elbo, metrics=metrics)

    # ------------------------------------------------------------------------- user API

    def slab_probabilities(self, images, training=False):
        """γ, the posterior probability that each code entry is non-zero, ``[batch, latent]``."""
        params = self.encoder(self._as_images(images), training=training)
        return self._split(params)[2]

    def encode(self, images, training=False):
        """Sparse codes ``[batch, latent]``: the posterior means γ ⊙ μ, with exact zeros wherever
        γ < ``threshold``."""
        params = self.encoder(self._as_images(images), training=training)
        loc, _, slab_probs = self._split(params)
        return tf.where(slab_probs >= self.threshold, slab_probs * loc, tf.zeros_like(loc))

    def serving_encode(self, images):
        """The base signature's code mean and scale, plus ``sparse_code`` and ``slab_probability``."""
        return dict(super().serving_encode(images), sparse_code=self.encode(images),
                    slab_probability=self.slab_probabilities(images))

    def get_config(self):
        return dict(super().get_config(), alpha=self.alpha, sharpness_start=self.sharpness_start,
                    sharpness_end=self.sharpness_end, sharpness_steps=self.sharpness_steps,
                    warmup_start=self.warmup_start, warmup_end=self.warmup_end,
                    threshold=self.threshold)


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


__all__ = ["VSC", "linear_schedule"]
