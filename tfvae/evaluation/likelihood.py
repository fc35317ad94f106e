"""Importance-sampled estimates of the test log-likelihood log p(x)."""

import functools
import math
import weakref

import numpy as np
import tensorflow as tf

from tfvae import estimators, progress, validation
from tfvae.evaluation import examples
from tfvae.evaluation.latent import _image_batches

#: K used by :func:`log_likelihood` and by ``tfvae evaluate`` unless told otherwise (Burda et al.)
DEFAULT_NUM_SAMPLES = 5000

#: draws decoded at once per example (a multiple of ``tfvae.estimators.SAMPLES_PER_SEED``)
DEFAULT_CHUNK_SIZE = estimators.DEFAULT_CHUNK_SIZE

#: examples decoded at once (with DEFAULT_CHUNK_SIZE: 10,000 codes, 31 MB of 784-pixel logits)
DEFAULT_BATCH_SIZE = 40


def log_likelihood(model, data, num_samples=DEFAULT_NUM_SAMPLES, chunk_size=DEFAULT_CHUNK_SIZE,
                   batch_size=DEFAULT_BATCH_SIZE, seed=0, return_per_example=False, verbose="auto",
                   jit_compile=False, first_index=0):
    """The importance-sampled estimate of the mean test log-likelihood, in nats:

        log p̂(x) = log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x),

    the IWAE bound with K = ``num_samples`` (a lower bound in expectation that tends to log p(x)
    as K grows; Burda et al. 2015 use K = 5000).

    This is the estimator of the served ``log_likelihood`` signature (:mod:`tfvae.estimators`):
    for the same seed and K, example n of ``data`` gets the value the signature gives it as
    example n of a request, whatever ``chunk_size`` and ``batch_size``.

    Memory stays bounded whatever K and the data size: at most ``batch_size · chunk_size`` codes
    are decoded at once (10,000 by default), each chunk folded into a running log Σ exp. For the
    IWAE paper's MLP with K = 5000 on the 10,000 MNIST test images this took 298 s on two CPU
    cores (589 CPU-seconds) and peaked at 1.07 GB (benchmarks/loglik_memory.py; figures in
    benchmarks/RESULTS.md).

    Args:
      model: a :class:`tfvae.models.base.VariationalModel`.
      data: examples ``[N, *input_shape]`` (array or tensor) or a tf.data.Dataset of batches of
        ``x`` or ``(x, y)``, inside the support of the model's likelihood (a ValueError with the
        message of the model's own data check otherwise, e.g. for x = 2.5 under a Poisson).
      num_samples: K ≥ 1.
      chunk_size: draws per example decoded at once, a multiple of
        ``tfvae.estimators.SAMPLES_PER_SEED`` (250).
      batch_size: examples decoded at once (arrays are cut into batches of this size; larger
        dataset batches are cut too).
      seed: integer seed in [−2⁶³, 2⁶³) of the stateless draws: the estimate is reproducible.
      return_per_example: also return the ``[N]`` per-example estimates.
      verbose: 0 silent, 1 a progress bar with the time left (``keras.utils.Progbar``), 2 one
        line per tenth of the data (of a dataset's batches; only the end line when their number
        is unknown);
        ``"auto"``: 1 when stdout is a terminal, else 2 (as ``tfvae train``; see
        :mod:`tfvae.progress`).
      first_index: the index of ``data``'s first example in a larger data set whose estimates
        are split (e.g. over workers): example n of ``data`` gets the draws of example
        ``first_index + n``, so the parts' estimates are those of the whole.
      jit_compile: XLA-compile the log-weights (on CPU slower than TensorFlow's oneDNN matrix
        products for MLP decoders, hence off; it may pay on accelerators); the draws stay outside
        XLA, so the values do not depend on it beyond float rounding.

    Returns:
      ``(mean, standard_error)`` as floats (``standard_error`` = std over examples / √N, which
      includes the Monte Carlo noise of each example's estimate), plus the per-example array if
      asked. The negative log-likelihood (test NLL) is ``-mean``.

    Example:
      >>> mean, se = log_likelihood(model, test_images, num_samples=5000, verbose=0)
      >>> print(f"test NLL {-mean:.2f} ± {se:.2f} nats")
    """
    if not estimators.is_supported(model):
        raise ValueError(f"log_likelihood needs a probabilistic model with q(z|x), p(x|z) and p(z) "
                         f"(encode_params, posterior_from_params, log_weights); {type(model).__name__} "
                         "has not")
    num_samples = validation.positive_int("num_samples", num_samples)
    chunk_size = min(estimators.check_chunk_size(chunk_size),
                     -(-num_samples // estimators.SAMPLES_PER_SEED) * estimators.SAMPLES_PER_SEED)
    batch_size = validation.positive_int("batch_size", batch_size)
    seed = estimators.check_seed(seed)
    verbose = progress.check_verbose(verbose)
    jit_compile = validation.flag("jit_compile", jit_compile)

    shape = tuple(model.image_shape)
    estimate = _estimator(model, shape, jit_compile)
    arguments = (tf.constant(num_samples, tf.int32), estimators.stateless_seed(seed), tf.constant(chunk_size),
                 tf.constant(batch_size))

    total, unit = _size_of(data)
    shown = progress.Progress("log_likelihood", total, unit, verbose, units=unit + "es" if unit == "batch" else None)
    estimates = []
    done = 0
    first_index = validation.integer("first_index", first_index, minimum=0)
    for images in _image_batches(data, batch_size):
        images = _checked_images(model, shape, images)
        estimates.append(estimate(images, tf.constant(first_index + done, tf.int64), *arguments).numpy())
        done += len(estimates[-1])
        shown.update(done if unit == "example" else len(estimates))
    if not done:
        raise ValueError("log_likelihood got no data")
    shown.finish(summary=f"{done} examples")
    per_example = np.concatenate(estimates).astype(np.float64)
    if not np.all(np.isfinite(per_example)):
        raise ValueError(f"log_likelihood: {int((~np.isfinite(per_example)).sum())} examples have a "
                         "non-finite estimate (does the likelihood give the data zero density?)")
    mean = float(per_example.mean())
    standard_error = float(per_example.std(ddof=1) / math.sqrt(len(per_example))) if len(per_example) > 1 \
        else float("nan")
    if return_per_example:
        return mean, standard_error, per_example
    return mean, standard_error


#: model -> {(shape, jit_compile): compiled estimator}, so that repeated calls (other data, K,
#: seeds, chunk or batch sizes) reuse one trace; weak keys, so that a model can still be freed
_ESTIMATORS = weakref.WeakKeyDictionary()


def _estimator(model, shape, jit_compile):
    """``(images, first_index, num_samples, seed, chunk_size, batch_size) -> log_likelihood [N]``,
    traced once per model and setting. It holds the model weakly (a cached value must not keep
    its key alive)."""
    cache = _ESTIMATORS.setdefault(model, {})
    key = (shape, jit_compile)
    if key not in cache:
        scalar = tf.TensorSpec([], tf.int32)
        cache[key] = tf.function(
            functools.partial(_estimate, weakref.ref(model), jit_compile),
            input_signature=[tf.TensorSpec((None,) + shape, tf.float32), tf.TensorSpec([], tf.int64),
                             scalar, tf.TensorSpec([2], tf.int32), scalar, scalar])
    return cache[key]


def _estimate(model_ref, jit_compile, images, first_index, num_samples, seed, chunk_size, batch_size):
    # a module-level function (bound by functools.partial): autograph cannot convert closures
    # over a weak reference and warns
    return estimators.log_weight_statistics(model_ref(), images, num_samples, seed, first_index,
                                            chunk_size=chunk_size, batch_size=batch_size,
                                            jit_compile=jit_compile)[1]


def _size_of(data):
    """``(total, unit)`` of the progress: the number of examples of an array, or the number of
    batches of a tf.data.Dataset (None when unknown: the time left then cannot be told)."""
    if isinstance(data, tf.data.Dataset):
        batches = int(data.cardinality())
        return (batches if batches >= 0 else None), "batch"
    return len(data), "example"


def _checked_images(model, shape, images):
    """``images`` as float32, shaped ``[N, *shape]`` and inside the support of the model's
    likelihood: the model's own data check (``model.data_problem``, what ``fit`` and
    ``evaluate`` check), so that a density is never reported for data it does not cover (a
    Poisson model would give x = 2.5 a finite log p(x))."""
    images = tf.convert_to_tensor(images)
    if images.dtype != tf.float32:
        images = tf.cast(images, tf.float32)
    if images.shape.rank != len(shape) + 1 or tuple(images.shape[1:]) != shape:
        raise ValueError(f"log_likelihood: images must be shaped [N, {', '.join(map(str, shape))}], "
                         f"got {tuple(images.shape)}")
    problem = model.data_problem(images.numpy())
    if problem is not None:
        raise ValueError(f"log_likelihood: {problem}")
    return images


def log_likelihood_metrics(model, context):
    """Evaluator for :data:`tfvae.evaluation.report.EVALUATORS`: ``test_log_likelihood`` and its
    standard error for every probabilistic model, with K = ``options["log_likelihood_samples"]``
    (default 5000; 0 skips it) on the first ``options["log_likelihood_images"]`` test examples
    (default all), and ``options["verbose"]`` when given."""
    if not estimators.is_supported(model):
        return {}
    options = context.get("options", {})
    num_samples = options.get("log_likelihood_samples")
    num_samples = DEFAULT_NUM_SAMPLES if num_samples is None else num_samples
    if num_samples == 0:
        return {}
    limit = options.get("log_likelihood_images")
    data, first = examples.local_data(context, limit, batch_size=DEFAULT_BATCH_SIZE)
    extra = {} if options.get("verbose") is None else {"verbose": options["verbose"]}
    per_example = None if data is None else log_likelihood(model, data, num_samples=num_samples, first_index=first,
                                                           return_per_example=True, **extra)[2]
    part = context.get("part")
    values = examples.gathered(context, per_example, first, total=None if part is None else min(
        part.total, part.total if limit is None else limit))
    return {"test_log_likelihood": float(values.mean()),
            "test_log_likelihood_se": float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1
            else float("nan"),
            "log_likelihood_samples": int(num_samples), "log_likelihood_images": int(len(values))}


__all__ = ["DEFAULT_BATCH_SIZE", "DEFAULT_CHUNK_SIZE", "DEFAULT_NUM_SAMPLES", "log_likelihood",
           "log_likelihood_metrics"]
