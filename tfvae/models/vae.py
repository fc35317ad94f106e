"""VAE (Kingma and Welling 2014) and β-VAE (Higgins et al. 2017; Burgess et al. 2018)."""

import math

import keras
import tensorflow as tf

from tfvae import objectives
from tfvae.models.base import ObjectiveValue, VariationalModel


@keras.saving.register_keras_serializable("tfvae")
class VAE(VariationalModel):
    """The variational autoencoder: maximise ELBO = E_q[log p(x|z)] − KL(q(z|x) ‖ N(0, I)).

    q(z|x) = N(μ(x), diag σ²(x)), sampled by reparameterisation z = μ + σ ⊙ ε; the KL is
    analytic (``tfd.kl_divergence``). See :class:`tfvae.models.base.VariationalModel` for the
    arguments.

    Example:
      >>> import tfvae
      >>> train = tfvae.data.load("digits", "train", batch_size=64, shuffle=True, seed=0)
      >>> model = tfvae.models.VAE(image_shape=(8, 8, 1), latent_dim=8)
      >>> model.compile(optimizer="adam")
      >>> history = model.fit(train, epochs=2, verbose=0)
    """


@keras.saving.register_keras_serializable("tfvae")
class BetaVAE(VariationalModel):
    """β-VAE: maximise E_q[log p(x|z)] − β · KL, or with a capacity schedule
    E_q[log p(x|z)] − γ · |KL − C| where C rises linearly from 0 to ``capacity_max`` nats over
    ``capacity_steps`` optimizer steps (Burgess et al. 2018).

    Args:
      beta: KL weight β ≥ 0 (β > 1 favours disentangled codes). Used when ``capacity_max`` is None.
      capacity_max: target KL C_max in nats; enables the capacity-annealed objective.
      capacity_steps: optimizer steps over which C goes from 0 to C_max.
      gamma: weight γ of |KL − C| in the capacity objective.
      **kwargs: as :class:`tfvae.models.base.VariationalModel`.

    The schedule follows ``optimizer.iterations``, so it resumes where it left off after
    loading a saved model or restoring from ``keras.callbacks.BackupAndRestore``.

    Example:
      >>> model = BetaVAE(image_shape=(64, 64, 1), latent_dim=10, architecture="conv", beta=4.0)
      >>> annealed = BetaVAE(image_shape=(64, 64, 1), latent_dim=10, architecture="conv",
      ...                    capacity_max=25.0, capacity_steps=100_000, gamma=1000.0)
    """

    metric_names = VariationalModel.metric_names + ("capacity",)

    def __init__(self, image_shape, latent_dim, beta=4.0, capacity_max=None, capacity_steps=100_000,
                 gamma=1000.0, **kwargs):
        if not _is_number(beta) or beta < 0:
            raise ValueError(f"beta must be a number >= 0, got {beta!r}")
        if capacity_max is not None and (not _is_number(capacity_max) or capacity_max < 0):
            raise ValueError(f"capacity_max must be a number of nats >= 0 or None, got {capacity_max!r}")
        if not isinstance(capacity_steps, int) or isinstance(capacity_steps, bool) or capacity_steps <= 0:
            raise ValueError(f"capacity_steps must be a positive integer, got {capacity_steps!r}")
        if not _is_number(gamma) or gamma <= 0:
            raise ValueError(f"gamma must be a number > 0, got {gamma!r}")
        super().__init__(image_shape, latent_dim, **kwargs)
        self.beta = float(beta)
        self.capacity_max = None if capacity_max is None else float(capacity_max)
        self.capacity_steps = capacity_steps
        self.gamma = float(gamma)

    def capacity(self):
        """The current target capacity C in nats (0 without a capacity schedule)."""
        if self.capacity_max is None or self.optimizer is None:
            return tf.constant(0.0)
        progress = tf.cast(self.optimizer.iterations, tf.float32) / float(self.capacity_steps)
        return self.capacity_max * tf.minimum(progress, 1.0)

    def compute_objective(self, images, training=False):
        q = self.posterior(images, training=training)
        reconstruction = self.likelihood(q.sample(), training=training).log_prob(images)
        kl = tf.reduce_sum(self.kl_per_dimension(q), axis=-1)
        capacity = self.capacity()
        if self.capacity_max is None:
            objective = objectives.beta_elbo(reconstruction, kl, self.beta)
        else:
            objective = objectives.capacity_elbo(reconstruction, kl, self.gamma, capacity)
        metrics = dict(elbo=objectives.elbo_from_terms(reconstruction, kl),
                       reconstruction=reconstruction, kl=kl,
                       capacity=tf.fill(tf.shape(kl), capacity))
        return ObjectiveValue(loss=-objective, metrics=metrics)

    def get_config(self):
        return dict(super().get_config(), beta=self.beta, capacity_max=self.capacity_max,
                    capacity_steps=self.capacity_steps, gamma=self.gamma)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
