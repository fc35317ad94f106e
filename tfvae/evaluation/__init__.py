"""Evaluation of trained models: read a model and data, never reach back into training."""

from tfvae.evaluation.latent import active_units, kl_per_dimension
from tfvae.evaluation.likelihood import log_likelihood
from tfvae.evaluation.report import EVALUATORS, evaluate_model

__all__ = ["EVALUATORS", "active_units", "evaluate_model", "kl_per_dimension"]
__all__ += ["log_likelihood"]
