"""Evaluation of trained models: read a model and data, never reach back into training."""

from tfvae.evaluation.disentanglement import (beta_vae_score, disentanglement_scores,
                                              factor_vae_score, mutual_information_gap)
from tfvae.evaluation.latent import active_units, kl_per_dimension
from tfvae.evaluation.likelihood import log_likelihood
from tfvae.evaluation.probe import linear_probe_accuracy
from tfvae.evaluation.reconstruction import pca_baseline, reconstruction_error
from tfvae.evaluation.report import EVALUATORS, evaluate_model
from tfvae.evaluation.sparsity import code_sparsity, encode_all, sparsity

__all__ = ["EVALUATORS", "active_units", "evaluate_model", "kl_per_dimension"]
__all__ += ["log_likelihood"]
__all__ += ["code_sparsity", "encode_all", "linear_probe_accuracy", "sparsity"]
__all__ += ["pca_baseline", "reconstruction_error"]
__all__ += ["beta_vae_score", "disentanglement_scores", "factor_vae_score", "mutual_information_gap"]
