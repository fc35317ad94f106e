"""The metrics `tfvae train` and `tfvae evaluate` write into a run's metrics.json.

:func:`evaluate_model` computes what applies to every model and then asks each function in
:data:`EVALUATORS` for more; a model family adds its own measures (sparsity, log-likelihood,
...) by appending one function here, without touching the command line.
"""

import numpy as np

from tfvae import progress
from tfvae.evaluation.disentanglement import disentanglement_metrics
from tfvae.evaluation.latent import active_units, kl_per_dimension
from tfvae.evaluation.likelihood import log_likelihood_metrics
from tfvae.evaluation.probe import probe_metrics
from tfvae.evaluation.reconstruction import reconstruction_metrics
from tfvae.evaluation.sparsity import sparsity_metrics
from tfvae.models import likelihoods


def _test_objective(model, context):
    """The mean of every metric test_step reports (ELBO, reconstruction, KL, ...), as test_*."""
    logs = model.evaluate(context["test_data"], verbose=0, return_dict=True)
    return {f"test_{name}": float(value) for name, value in logs.items()}


def _latent_usage(model, context):
    """Active units and the KL each latent dimension carries."""
    if not model.is_probabilistic():
        return {}
    count, variances = active_units(model, context["test_data"])
    kl = kl_per_dimension(model, context["test_data"])
    return {"active_units": count, "kl_per_dimension": np.round(kl, 5).tolist()}


#: functions ``(model, context) -> dict`` run in order; ``context`` holds ``test_data`` (a batched
#: tf.data.Dataset of (image, label)), ``dataset`` (its name), ``data_dir`` and ``options`` (a dict
#: of evaluation options such as ``log_likelihood_samples``, and ``verbose``: 0, 1 or 2, which an
#: evaluator that takes seconds passes on to show its progress, see :mod:`tfvae.progress`).
EVALUATORS = [_test_objective, _latent_usage, log_likelihood_metrics]
EVALUATORS += [sparsity_metrics, probe_metrics]  # sparse-code models (VSC)
EVALUATORS += [disentanglement_metrics]  # data sets of known factors (shapes2d, dsprites)
EVALUATORS += [reconstruction_metrics]  # every model: centered_l2_255 of reconstruct (LLGAE scale)


def evaluate_model(model, test_data, dataset=None, data_dir=None, verbose="auto", **options):
    """All metrics that apply to ``model`` on ``test_data``, as a JSON-ready dict.

    ``verbose`` (Keras' meaning: 0 silent, 1 progress bars, 2 lines, ``"auto"`` 1 on a terminal
    and 2 otherwise; :mod:`tfvae.progress`) reaches every evaluator as ``options["verbose"]``:
    the long stages (log-likelihood, disentanglement metrics, probe) show their progress and the
    time left.

    Example:
      >>> evaluate_model(model, test_data, dataset="mnist", log_likelihood_samples=500, verbose=0)
    """
    options["verbose"] = progress.check_verbose(verbose)
    context = dict(test_data=test_data, dataset=dataset, data_dir=data_dir, options=options)
    metrics = {}
    for evaluator in EVALUATORS:
        metrics.update(evaluator(model, context))
    metrics.update(_likelihood_units(model, metrics))
    return metrics


def _likelihood_units(model, metrics):
    """Names the likelihood and the units of every log-density in metrics.json: nats per example
    and, for discrete data (:attr:`tfvae.models.likelihoods.Facts.discrete`: log p(x) is then a
    log-probability), bits per dimension (−log₂ p(x) / D)."""
    if not model.is_probabilistic():
        return {}
    facts = likelihoods.facts(model.likelihood_layer)
    units = {"likelihood": facts.name, "likelihood_support": facts.support,
             "log_density_units": "nats per example"}
    if model.get_config().get("standardization") is not None:
        units["log_density_units"] += " (of the data in their own units: the standardisation's Jacobian included)"
    if "test_log_likelihood" in metrics and facts.discrete:
        dimensions = int(np.prod(model.feature_shape))
        units["test_bits_per_dim"] = -metrics["test_log_likelihood"] / (dimensions * np.log(2.0))
    return units
