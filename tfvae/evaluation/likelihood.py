"""Importance-sampled estimates of the test log-likelihood log p(x)."""

import math
import numbers

import numpy as np
import tensorflow as tf

from tfvae.evaluation.latent import _image_batches

#: K used by :func:`log_likelihood` and by ``tfvae evaluate`` unless told otherwise (Burda et al.)
DEFAULT_NUM_SAMPLES = 5000


def _check_count(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def log_likelihood(model, data, num_samples=DEFAULT_NUM_SAMPLES, chunk_size=250, batch_size=100,
                   seed=0, return_per_example=False):
    """The importance-sampled estimate of the mean test log-likelihood, in nats:

        log p̂(x) = log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x),

    the IWAE bound with K = ``num_samples`` (a lower bound in expectation that tends to log p(x)
    as K grows; Burda et al. 2015 use K = 5000).

    Memory stays bounded whatever K and the data size: examples are taken ``batch_size`` at a time
    and the K samples ``chunk_size`` at a time, folding each chunk into a running
    log Σ exp (``tf.reduce_logsumexp`` of the previous total and the chunk's), so at most
    ``batch_size · chunk_size`` codes are decoded at once. With the defaults (25,000 codes of a
    784-pixel Bernoulli decoder) the process peaks well under 3 GB for 10,000 MNIST test images
    with K = 5000 (see benchmarks/RESULTS.md for the measured figure).

    Args:
      model: a :class:`tfvae.models.base.VariationalModel` (anything with ``posterior``,
        ``likelihood`` and ``prior``).
      data: images ``[N, H, W, C]`` (array or tensor) or a tf.data.Dataset of batches of
        ``x`` or ``(x, y)``.
      num_samples: K ≥ 1.
      chunk_size: samples per chunk.
      batch_size: examples per chunk.
      seed: integer seed of the (stateless) sampling, so that the estimate is reproducible.
      return_per_example: also return the ``[N]`` per-example estimates.

    Returns:
      ``(mean, standard_error)`` as floats (``standard_error`` = std over examples / √N, which
      includes the Monte Carlo noise of each example's estimate), plus the per-example array if
      asked. The negative log-likelihood (test NLL) is ``-mean``.

    Example:
      >>> mean, se = log_likelihood(model, test_images, num_samples=5000)
      >>> print(f"test NLL {-mean:.2f} ± {se:.2f} nats")
    """
    for hook in ("posterior", "likelihood", "prior"):
        if not hasattr(model, hook):
            raise ValueError(f"log_likelihood needs a probabilistic model with posterior, likelihood and "
                             f"prior; {type(model).__name__} has no {hook!r}")
    num_samples = _check_count("num_samples", num_samples)
    chunk_size = min(_check_count("chunk_size", chunk_size), num_samples)
    batch_size = _check_count("batch_size", batch_size)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}")

    chunk_logsumexp = _chunk_logsumexp_fn(model)
    estimates = []
    batch_index = 0
    for images in _image_batches(data, batch_size):
        images = _checked_images(model, images)
        for start in range(0, int(images.shape[0]), batch_size):
            part = images[start:start + batch_size]
            total = tf.fill([int(part.shape[0])], -np.inf)
            for chunk_index, first in enumerate(range(0, num_samples, chunk_size)):
                count = min(chunk_size, num_samples - first)
                chunk_seed = tf.constant([seed, batch_index * 1_000_003 + chunk_index], tf.int32)
                chunk = chunk_logsumexp(part, tf.constant(count), chunk_seed)
                total = tf.reduce_logsumexp(tf.stack([total, chunk]), axis=0)
            estimates.append((total - math.log(num_samples)).numpy())
            batch_index += 1
    if not estimates:
        raise ValueError("log_likelihood got no data")
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


def _chunk_logsumexp_fn(model):
    """A compiled ``(images, count, seed) -> log Σ_k exp(w_k)`` over ``count`` fresh samples."""

    image_shape = tuple(getattr(model, "image_shape", (None, None, None)))

    @tf.function(input_signature=[tf.TensorSpec((None,) + image_shape, tf.float32),
                                  tf.TensorSpec([], tf.int32), tf.TensorSpec([2], tf.int32)])
    def chunk_logsumexp(images, count, seed):
        q = model.posterior(images, training=False)
        z = q.sample(count, seed=seed)                                   # [count, batch, latent]
        log_weights = (model.likelihood(z).log_prob(images) + model.prior.log_prob(z)
                       - q.log_prob(z))                                 # [count, batch]
        return tf.reduce_logsumexp(log_weights, axis=0)

    return chunk_logsumexp


def _checked_images(model, images):
    images = tf.convert_to_tensor(images)
    if images.dtype != tf.float32:
        images = tf.cast(images, tf.float32)
    image_shape = tuple(getattr(model, "image_shape", images.shape[1:]))
    if images.shape.rank != 4 or tuple(images.shape[1:]) != image_shape:
        raise ValueError(f"log_likelihood: images must be shaped [N, {', '.join(map(str, image_shape))}], "
                         f"got {tuple(images.shape)}")
    if not bool(tf.reduce_all(tf.math.is_finite(images))):
        raise ValueError("log_likelihood: the images contain NaN or Inf")
    return images


def log_likelihood_metrics(model, context):
    """Evaluator for :data:`tfvae.evaluation.report.EVALUATORS`: ``test_log_likelihood`` and its
    standard error for every probabilistic model, with K = ``options["log_likelihood_samples"]``
    (default 5000; 0 skips it)."""
    if not all(hasattr(model, hook) for hook in ("posterior", "likelihood", "prior")):
        return {}
    num_samples = context.get("options", {}).get("log_likelihood_samples")
    num_samples = DEFAULT_NUM_SAMPLES if num_samples is None else num_samples
    if num_samples == 0:
        return {}
    mean, standard_error = log_likelihood(model, context["test_data"], num_samples=num_samples)
    return {"test_log_likelihood": mean, "test_log_likelihood_se": standard_error,
            "log_likelihood_samples": int(num_samples)}


__all__ = ["DEFAULT_NUM_SAMPLES", "log_likelihood", "log_likelihood_metrics"]
