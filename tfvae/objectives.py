"""Variational objectives as pure functions.

Bounds on log p(x) take *log-weights* ``w = log p(x|z) + log p(z) − log q(z|x)`` for
``z ~ q(z|x)``, shaped ``[samples, batch]`` (Monte Carlo axis first), and return one value per
example, shaped ``[batch]``. Objectives are maximised; a model's loss is their negative mean.

The KL-regularised objectives of the VAE family take the reconstruction term
``E_q[log p(x|z)]`` and ``KL(q(z|x) ‖ p(z))`` per example instead, because their KL is analytic.
"""

import tensorflow as tf


def elbo(log_weights):
    """Monte Carlo ELBO: ``(1/K) Σ_k w_k``, the K = 1 case of every bound below."""
    return tf.reduce_mean(log_weights, axis=0)


def elbo_from_terms(reconstruction, kl):
    """ELBO = E_q[log p(x|z)] − KL(q(z|x) ‖ p(z))."""
    return reconstruction - kl


def beta_elbo(reconstruction, kl, beta):
    """β-VAE (Higgins et al. 2017): E_q[log p(x|z)] − β · KL. β = 1 is the ELBO."""
    return reconstruction - beta * kl


def capacity_elbo(reconstruction, kl, gamma, capacity):
    """Capacity-controlled β-VAE (Burgess et al. 2018): E_q[log p(x|z)] − γ · |KL − C|.

    The KL is pulled towards the target capacity C (in nats) from either side; C is raised from 0
    during training so that the code's information grows gradually.
    """
    return reconstruction - gamma * tf.abs(kl - capacity)
