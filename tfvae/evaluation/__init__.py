"""Evaluation of trained models: read a model and data, never reach back into training."""

from tfvae.evaluation.latent import active_units, kl_per_dimension, mean_objective

__all__ = ["active_units", "kl_per_dimension", "mean_objective"]
