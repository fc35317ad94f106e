"""The metrics `tfvae train` and `tfvae evaluate` write into a run's metrics.json.

:func:`evaluate_model` computes what applies to every model and then asks each function in
:data:`EVALUATORS` for more; a model family adds its own measures (sparsity, log-likelihood,
...) by appending one function here, without touching the command line. The evaluators read the
data through a :class:`tfvae.data.Source` when there is one: labels give the linear probe,
ground-truth factors the disentanglement metrics; nothing asks for a data set by name.

Every estimate comes with its standard error (``*_se``) and the number of examples and samples
it used, so a figure from a short, sized evaluation (:mod:`tfvae.evaluation.budget`) can be read
for what it is.
"""

import time

import numpy as np
import tensorflow as tf

from tfvae import progress
from tfvae.evaluation import budget, examples
from tfvae.evaluation.disentanglement import disentanglement_metrics
from tfvae.evaluation.latent import _image_batches, active_units_of
from tfvae.evaluation.likelihood import log_likelihood_metrics
from tfvae.evaluation.probe import probe_metrics
from tfvae.evaluation.reconstruction import reconstruction_metrics
from tfvae.evaluation.sparsity import sparsity_metrics
from tfvae.models import likelihoods

def _test_objective(model, context):
    """The mean and standard error over the test examples of every metric the model reports
    (ELBO, reconstruction, KL, ...), as ``test_*`` and ``test_*_se``, and ``test_examples``.

    The objective runs eagerly with its draws seeded per batch (``tf.random.set_seed(seed +
    batch index)``): reproducible, and the same on the parts of several workers as on one process
    (whose parts are whole batches)."""
    batch_size, seed = context["batch_size"], context["options"]["seed"]
    data, first = examples.local_data(context, batch_size=batch_size)
    values = {}
    for index, item in enumerate([] if data is None else data):
        tf.random.set_seed(seed + first // batch_size + index)
        result = model.compute_objective(model.prepare_inputs(_images_of(item)), training=False)
        for name, value in dict(result.metrics, loss=result.loss).items():
            values.setdefault(name, []).append(np.atleast_1d(value.numpy()))
    if context.get("part") is not None:  # every worker gathers the same metrics, an empty part too
        result = model.compute_objective(model.prepare_inputs(_images_of(next(iter(context["test_data"])))))
        names = set(result.metrics) | {"loss"}
    else:
        names = values.keys()
    metrics = {}
    for name in [n for n in model.metric_names if n in names]:
        local = np.concatenate(values[name]).astype(np.float64) if values.get(name) else None
        column = examples.gathered(context, local, first)
        metrics[f"test_{name}"] = float(column.mean())
        if len(column) > 1:
            metrics[f"test_{name}_se"] = float(column.std(ddof=1) / np.sqrt(len(column)))
        metrics["test_examples"] = int(len(column))
    return metrics


def _latent_usage(model, context):
    """Active units and the KL each latent dimension carries."""
    if not model.is_probabilistic():
        return {}
    data, first = examples.local_data(context)
    codes, kl = [], []
    for images in [] if data is None else _image_batches(data):
        codes.append(model.encode(images).numpy())
        kl.append(model.kl_per_dimension(model.posterior(images)).numpy())
    shape = (model.latent_dim,)
    codes = examples.gathered(context, np.concatenate(codes) if codes else None, first, shape=shape)
    kl = examples.gathered(context, np.concatenate(kl) if kl else None, first, shape=shape)
    count, _ = active_units_of(codes)
    return {"active_units": count, "kl_per_dimension": np.round(kl.mean(axis=0), 5).tolist()}


def _images_of(item):
    return item[0] if isinstance(item, (tuple, list)) else item


#: functions ``(model, context) -> dict`` run in order; ``context`` holds ``test_data`` (a batched
#: tf.data.Dataset of (x, label), the plan's ``test_images`` of the held-out examples), ``source``
#: (the :class:`tfvae.data.Source`, or None for bare data) and ``options`` (the plan's settings, see
#: :class:`tfvae.evaluation.budget.EvaluationPlan`, and ``verbose``: 0, 1 or 2, which an evaluator
#: that takes seconds passes on to show its progress, see :mod:`tfvae.progress`).
EVALUATORS = [_test_objective, _latent_usage, log_likelihood_metrics]
EVALUATORS += [sparsity_metrics, probe_metrics]  # sparse codes (VSC); labelled data
EVALUATORS += [disentanglement_metrics]  # data sets of known factors (shapes2d, dsprites)
EVALUATORS += [reconstruction_metrics]  # every model: centered_l2_255 of reconstruct (LLGAE scale)
#: the evaluators whose values are per example: split over workers and gathered (the others run
#: on the chief alone; :mod:`tfvae.evaluation.examples`)
PER_EXAMPLE = {_test_objective, _latent_usage, log_likelihood_metrics, reconstruction_metrics}


def evaluate_model(model, data, verbose="auto", plan=None, part=None, **options):
    """All metrics that apply to ``model`` on ``data``, as a JSON-ready dict.

    Args:
      model: a trained tfvae model.
      data: a :class:`tfvae.data.Source` (its held-out split; labels and factors where it has
        them), or a batched ``tf.data.Dataset`` of ``(x, label)`` (the per-example metrics only).
      verbose: Keras' meaning (0 silent, 1 progress bars, 2 lines, ``"auto"`` 1 on a terminal and
        2 otherwise; :mod:`tfvae.progress`), passed to every evaluator.
      plan: an :class:`tfvae.evaluation.budget.EvaluationPlan`; default the full protocol with
        ``options`` (e.g. ``log_likelihood_samples=500``, ``disentanglement_scale=0.1``).
      part: this worker's :class:`tfvae.evaluation.examples.Part` of the test examples when
        several workers evaluate together (every worker calls this with its part; the per-example
        evaluators split the work, the others run on the chief, whose result is the report).

    Example:
      >>> source = tfvae.data.open_source("mnist")
      >>> evaluate_model(model, source, log_likelihood_samples=500, verbose=0)
      >>> evaluate_model(model, source, plan=budget.sized_plan(model, source, 60))
    """
    verbose = progress.check_verbose(verbose)
    if plan is None:
        plan = budget.full_plan(**options)
    elif options:
        raise ValueError(f"give the evaluation's settings in the plan or as options, not both: {sorted(options)}")
    start = time.perf_counter()
    is_source = hasattr(data, "held_out")
    test_data = data.held_out(batch_size=plan.batch_size, limit=plan.test_images) if is_source else data
    if plan.test_images is not None and not is_source:
        test_data = test_data.unbatch().take(plan.test_images).batch(plan.batch_size)
    if getattr(model, "validate_inputs", False):
        test_data = model.checked_data(test_data, "the evaluation data")
    context = dict(test_data=test_data, source=data if is_source else None, part=part, batch_size=plan.batch_size,
                   options=dict(plan.options(), verbose=verbose if examples.is_reporting({"part": part}) else 0))
    metrics = {}
    for evaluator in EVALUATORS:
        if evaluator in PER_EXAMPLE or examples.is_reporting(context):
            metrics.update(evaluator(model, context))
    metrics.update(_likelihood_units(model, metrics))
    metrics["evaluation"] = dict(mode=plan.mode, budget_seconds=plan.budget_seconds,
                                 seconds=round(time.perf_counter() - start, 1))
    if is_source:
        metrics["evaluation"].update(data.describe())
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
        units["test_bits_per_dim_se"] = metrics["test_log_likelihood_se"] / (dimensions * np.log(2.0))
    return units
