"""VAE (Kingma and Welling 2014) and β-VAE (Higgins et al. 2017; Burgess et al. 2018)."""

import functools

import keras
import tensorflow as tf

from tfvae import objectives, schedules, validation
from tfvae.models.base import ObjectiveValue, VariationalModel
from tfvae.models.options import Option, number


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

    Options (beside :class:`tfvae.models.base.VariationalModel`'s):
      beta: KL weight β ≥ 0 (β > 1 favours disentangled codes). Used when ``capacity_max`` is None.
      capacity_max: target KL C_max in nats; enables the capacity-annealed objective.
      capacity_steps: optimizer steps over which C goes from 0 to C_max.
      gamma: weight γ of |KL − C| in the capacity objective.
      capacity_warmup_steps: optimizer steps of the plain ELBO (β = 1) before the capacity
        objective takes over (C keeps its schedule from step 0). Starting at C = 0 can trap the
        encoder: it meets |KL − C| through its biases, with codes that do not depend on x, and
        the decoder learns to ignore them. On dSprites (benchmarks/RESULTS.md) a warm-up of
        2,000 steps kept the code informative where C was 12.5 nats at the switch, but not
        where C was 1.3 nats (γ then crushes the code to C, and the same trap closes), nor after
        500 steps. 0: Burgess et al.'s schedule as published.

    The schedule follows ``optimizer.iterations``, so it resumes where it left off after
    loading a saved model or restoring from ``keras.callbacks.BackupAndRestore``.

    Example:
      >>> model = BetaVAE(image_shape=(64, 64, 1), latent_dim=10, architecture="conv", beta=4.0)
      >>> annealed = BetaVAE(image_shape=(64, 64, 1), latent_dim=10, architecture="conv",
      ...                    capacity_max=25.0, capacity_steps=100_000, gamma=1000.0)
    """

    metric_names = VariationalModel.metric_names + ("capacity",)

    OPTIONS = {
        "beta": Option(4.0, number(minimum=0.0), "KL weight beta >= 0 (used without --capacity-max)"),
        "capacity_max": Option(None, validation.optional(number(minimum=0.0)), "target KL C_max in nats "
                               "(enables the capacity-annealed objective)"),
        "capacity_steps": Option(100_000, validation.positive_int, "steps over which C rises to C_max"),
        "gamma": Option(1000.0, number(minimum=0.0, exclusive_minimum=True), "weight gamma of |KL - C|"),
        "capacity_warmup_steps": Option(0, functools.partial(validation.integer, minimum=0),
                                        "steps of the plain ELBO (beta = 1) before the capacity objective"),
    }

    def check_options(self):
        super().check_options()
        if self.capacity_max is None:
            given = [f"{name}={getattr(self, name)!r}" for name in ("capacity_steps", "gamma", "capacity_warmup_steps")
                     if getattr(self, name) != BetaVAE.OPTIONS[name].default]
            if given:
                raise ValueError(f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to the capacity-annealed "
                                 "objective; give capacity_max too, or leave them at their defaults")

    def capacity(self):
        """The current target capacity C in nats (0 without a capacity schedule)."""
        step = schedules.optimizer_step(self)
        if self.capacity_max is None or step is None:
            return tf.constant(0.0)
        return schedules.linear(step, 0.0, self.capacity_max, self.capacity_steps)

    def compute_objective(self, images, training=False):
        q = self.posterior(images, training=training)
        reconstruction = self.likelihood(q.sample(), training=training).log_prob(images)
        kl = tf.reduce_sum(self.kl_per_dimension(q), axis=-1)
        capacity = self.capacity()
        elbo = objectives.elbo_from_terms(reconstruction, kl)
        if self.capacity_max is None:
            objective = objectives.beta_elbo(reconstruction, kl, self.beta)
        else:
            objective = objectives.capacity_elbo(reconstruction, kl, self.gamma, capacity)
            step = schedules.optimizer_step(self)
            if self.capacity_warmup_steps and step is not None:
                objective = tf.where(tf.less(step, self.capacity_warmup_steps), elbo, objective)
        metrics = dict(elbo=elbo, reconstruction=reconstruction, kl=kl,
                       capacity=tf.fill(tf.shape(kl), capacity))
        return ObjectiveValue(loss=-objective, metrics=metrics)


__all__ = ["BetaVAE", "VAE"]
