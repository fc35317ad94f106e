"""How sparse a model's codes are: exact zeros, active dimensions per example, dimensions used."""

import numpy as np
import tensorflow as tf


def encode_all(model_or_encode_fn, images, batch_size=500):
    """Codes ``[N, latent]`` (numpy float32) of images ``[N, H, W, C]`` (array, tensor, or a
    tf.data.Dataset of ``x`` / ``(x, y)`` batches), encoded ``batch_size`` at a time.

    ``model_or_encode_fn`` is a model with an ``encode`` method (for VSC: sparse codes) or any
    callable from an image batch to a code batch.
    """
    encode = getattr(model_or_encode_fn, "encode", model_or_encode_fn)
    if not callable(encode):
        raise ValueError("expected a model with an `encode` method or a callable images -> codes, "
                         f"got {type(model_or_encode_fn).__name__}")
    if isinstance(images, tf.data.Dataset):
        batches = (item[0] if isinstance(item, (tuple, list)) else item for item in images)
    else:
        images = np.asarray(images, np.float32)
        if images.ndim < 2 or len(images) == 0:
            raise ValueError(f"images must be a non-empty batch [N, ...], got shape {images.shape}")
        batches = (images[i:i + batch_size] for i in range(0, len(images), batch_size))
    codes = [np.asarray(encode(batch), np.float32) for batch in batches]
    if not codes:
        raise ValueError("encode_all got no images")
    codes = np.concatenate(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes must be shaped [N, latent], the encoder gave {codes.shape}")
    return codes


def sparsity(codes):
    """Sparsity statistics of codes ``[N, latent]``.

    Returns a dict:
      ``zero_fraction``: the fraction of entries that are exactly 0;
      ``nonzero_fraction``: 1 − ``zero_fraction``;
      ``mean_active_dims``: the mean over examples of the number of non-zero entries;
      ``dims_used``: how many dimensions are non-zero for at least one example;
      ``latent_dim``: the code size.

    Example:
      >>> sparsity(np.array([[0.0, 1.5, 0.0], [0.0, 0.0, -2.0]]))["mean_active_dims"]
      1.0
    """
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[0] == 0 or codes.shape[1] == 0:
        raise ValueError(f"codes must be a non-empty array [N, latent], got shape {codes.shape}")
    if not np.all(np.isfinite(codes)):
        raise ValueError("codes contain NaN or Inf")
    nonzero = codes != 0
    return dict(zero_fraction=float((~nonzero).mean()),
                nonzero_fraction=float(nonzero.mean()),
                mean_active_dims=float(nonzero.sum(axis=1).mean()),
                dims_used=int(nonzero.any(axis=0).sum()),
                latent_dim=int(codes.shape[1]))


def code_sparsity(model_or_encode_fn, images, batch_size=500):
    """:func:`sparsity` of the codes of ``images`` (see :func:`encode_all`)."""
    return sparsity(encode_all(model_or_encode_fn, images, batch_size))


def sparsity_metrics(model, context):
    """Evaluator for :data:`tfvae.evaluation.report.EVALUATORS`: code sparsity on the test data
    for models with sparse codes (those with ``slab_probabilities``, such as VSC)."""
    if not model.has_sparse_codes():
        return {}
    stats = code_sparsity(model, context["test_data"])
    return {f"code_{name}": value for name, value in stats.items() if name != "latent_dim"}


__all__ = ["code_sparsity", "encode_all", "sparsity", "sparsity_metrics"]
