"""How much evaluation a run buys: the literature's full protocol, or a plan sized to a budget.

The full protocol (what the benchmarks use) scores every held-out example, estimates log p(x)
with K = 5000 importance samples (Burda et al. 2015) and runs the disentanglement metrics at
disentanglement_lib's sample counts. For a run that trained for seconds that can cost a quarter
of an hour (K = 5000 over 10,000 64x64 images), so ``tfvae train`` sizes its evaluation instead:
a budget of ``max(training time, 60 s)`` is shared between the stages by short timed pilots,

* 20 % for the per-example passes (test objective, KL per dimension, reconstruction error):
  every held-out example when they fit, at least ``MIN_IMAGES``;
* the log-likelihood's share (50 %, or 75 % without ground-truth factors) buys ``n · K``
  image-samples: K = 5000 when ``n`` can stay at least ``MIN_IMAGES``, else fewer samples
  (a multiple of 250, at least 250) on ``MIN_IMAGES`` images; the estimate's standard error
  over the images is recorded with ``n`` and ``K``;
* the disentanglement metrics' share (25 %, data sets of known factors only) sets their
  ``scale`` (MIG keeps its floor of 10,000 images).

A setting given explicitly (``log_likelihood_samples``, ``disentanglement_scale``) is used as
given. Estimates from a sized plan are unbiased for the same quantities as the full protocol's
but noisier (and the log-likelihood, with fewer samples, a looser bound); ``metrics.json``
records what each used.

Example:
  >>> plan = sized_plan(model, source, budget_seconds=60)
  >>> plan.test_images, plan.log_likelihood_samples, plan.log_likelihood_images
  (10000, 1000, 380)
"""

import dataclasses
import time

import numpy as np

from tfvae import estimators
from tfvae.evaluation import disentanglement
from tfvae.evaluation.likelihood import DEFAULT_NUM_SAMPLES, log_likelihood
from tfvae.evaluation.probe import DEFAULT_NUM_TRAIN

#: the fewest held-out images a sized plan scores (fewer leave standard errors meaningless)
MIN_IMAGES = 200
#: the smallest budget, in seconds: below it the pilots themselves would be most of the cost
MIN_BUDGET = 60.0
#: shares of the budget (log-likelihood, disentanglement) with and without ground-truth factors
_SHARES = {True: (0.5, 0.25), False: (0.75, 0.0)}
_PASSES_SHARE = 0.2
#: images encoded by disentanglement_scores at scale 1, beyond MIG's fixed 10,000: the β-VAE
#: score's points × 2 × batch and the FactorVAE score's votes × batch plus its variance estimate
_DISENTANGLEMENT_IMAGES = ((disentanglement.BETA_VAE_DEFAULTS["num_train"] + disentanglement.BETA_VAE_DEFAULTS["num_eval"])
                           * 2 * disentanglement.BETA_VAE_DEFAULTS["batch_size"]
                           + (disentanglement.FACTOR_VAE_DEFAULTS["num_train"]
                              + disentanglement.FACTOR_VAE_DEFAULTS["num_eval"])
                           * disentanglement.FACTOR_VAE_DEFAULTS["batch_size"]
                           + disentanglement.FACTOR_VAE_DEFAULTS["num_variance_estimate"])


@dataclasses.dataclass(frozen=True)
class EvaluationPlan:
    """What an evaluation scores.

    Attributes:
      mode: ``"full"`` (the literature's protocol) or ``"sized"``.
      test_images: held-out examples of the per-example passes (None: all).
      log_likelihood_samples: K of the importance-sampled log-likelihood (0 skips it).
      log_likelihood_images: held-out examples it is estimated on (None: all).
      disentanglement_scale: multiple of disentanglement_lib's sample counts (0 skips them).
      probe_train: labelled training examples of the linear probe (0 skips it).
      budget_seconds: the budget a sized plan was made for (None for the full protocol).
      batch_size: examples per batch of the per-example passes.
      seed: the test objective's draws are seeded per batch from it (``tf.random.set_seed(seed +
        batch)``), so an evaluation is reproducible and its parts on several workers draw what
        one process draws.
    """

    mode: str = "full"
    test_images: object = None
    log_likelihood_samples: int = DEFAULT_NUM_SAMPLES
    log_likelihood_images: object = None
    disentanglement_scale: float = 1.0
    probe_train: int = DEFAULT_NUM_TRAIN
    budget_seconds: object = None
    batch_size: int = 500
    seed: int = 0

    def options(self):
        """The evaluators' options (see :data:`tfvae.evaluation.report.EVALUATORS`)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("mode", "budget_seconds", "batch_size")}


def full_plan(**given):
    """The literature's protocol, with the settings in ``given`` (None values ignored)."""
    return EvaluationPlan(mode="full", **_given(given))


def sized_plan(model, source, budget_seconds, **given):
    """A plan whose stages together cost about ``max(budget_seconds, MIN_BUDGET)`` seconds on this
    machine, from timed pilots of ``model`` on ``source`` (a :class:`tfvae.data.Source`); the
    settings in ``given`` (None values ignored) are kept as they are."""
    budget = max(float(budget_seconds), MIN_BUDGET)
    given = _given(given)
    total = source.held_out_size
    images = next(iter(source.held_out(batch_size=100, limit=100)))[0]
    has_factors = source.factors() is not None
    ll_share, disentanglement_share = _SHARES[has_factors]

    # per-example passes: three forward passes (objective, KL and active units, reconstruction)
    seconds_per_image = _seconds(lambda: model(images, training=False)) / len(images)
    test_images = int(min(total, max(MIN_IMAGES, _PASSES_SHARE * budget / (3 * seconds_per_image))))

    plan = dict(mode="sized", budget_seconds=round(budget, 1), test_images=None if test_images >= total else test_images)
    if estimators.is_supported(model) and given.get("log_likelihood_samples") != 0:
        plan.update(_log_likelihood_plan(model, images, min(test_images, total), ll_share * budget,
                                         given.get("log_likelihood_samples")))
    else:
        plan["log_likelihood_samples"] = 0
    if has_factors and callable(getattr(model, "encode", None)):
        factors = source.factors()
        draw = factors.sample_factors(256, np.random.default_rng(0))
        seconds_per_image = _seconds(lambda: model.encode(factors.images_for(draw))) / len(draw)
        images_affordable = disentanglement_share * budget / seconds_per_image - disentanglement.MIG_MIN_TRAIN
        plan["disentanglement_scale"] = float(np.clip(images_affordable / _DISENTANGLEMENT_IMAGES, 1e-3, 1.0))
    return EvaluationPlan(**dict(plan, **given))


def _log_likelihood_plan(model, images, max_images, seconds, samples):
    """K and the images of a log-likelihood estimate that costs about ``seconds``."""
    step = estimators.SAMPLES_PER_SEED
    pilot, pilot_samples = images[:20], min(step, samples or step)  # a K given is what the estimate costs
    log_likelihood(model, pilot, num_samples=pilot_samples, verbose=0)  # traces the estimator
    per_sample = _seconds(lambda: log_likelihood(model, pilot, num_samples=pilot_samples, verbose=0)) \
        / (len(pilot) * pilot_samples)
    affordable = seconds / per_sample  # image-samples
    if samples is None:
        samples = DEFAULT_NUM_SAMPLES if affordable / DEFAULT_NUM_SAMPLES >= min(MIN_IMAGES, max_images) \
            else max(step, int(affordable / min(MIN_IMAGES, max_images)) // step * step)
    count = int(min(max_images, max(1, affordable // samples)))
    return {"log_likelihood_samples": int(samples), "log_likelihood_images": count}


def _seconds(call):
    """Seconds of the second of two calls (the first traces and warms up)."""
    call()
    start = time.perf_counter()
    call()
    return max(time.perf_counter() - start, 1e-6)


def _given(given):
    return {k: v for k, v in given.items() if v is not None}


__all__ = ["EvaluationPlan", "MIN_BUDGET", "MIN_IMAGES", "full_plan", "sized_plan"]
