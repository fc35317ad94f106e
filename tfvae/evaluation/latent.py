"""Per-dimension information in the code: KL per latent dimension and active units."""

import numpy as np
import tensorflow as tf


def _image_batches(data, batch_size=500):
    """Yields float32 image batches from a tf.data.Dataset of ``x`` / ``(x, y)`` or an array."""
    if isinstance(data, tf.data.Dataset):
        for item in data:
            yield item[0] if isinstance(item, (tuple, list)) else item
    else:
        data = np.asarray(data, np.float32)
        for start in range(0, len(data), batch_size):
            yield data[start:start + batch_size]


def kl_per_dimension(model, data):
    """Mean over the data of KL(q(z_j|x) ‖ p(z_j)) for each latent dimension j, in nats.

    A dimension whose KL is near 0 carries no information about x (its posterior is the prior).

    Returns:
      numpy array ``[latent_dim]``.
    """
    total, count = 0.0, 0
    for images in _image_batches(data):
        kl = model.kl_per_dimension(model.posterior(images))
        total += tf.reduce_sum(kl, axis=0).numpy()
        count += int(kl.shape[0])
    if count == 0:
        raise ValueError("kl_per_dimension got no data")
    return total / count


def active_units(model, data, threshold=0.01):
    """Number of active latent dimensions (Burda et al. 2015): dimension j is active when
    Var_x[E_q(z|x)[z_j]] > ``threshold``.

    Returns:
      ``(count, variances)`` with ``variances`` the per-dimension variance of the posterior mean.
    """
    codes = np.concatenate([model.encode(images).numpy() for images in _image_batches(data)])
    return active_units_of(codes, threshold)


def active_units_of(codes, threshold=0.01):
    """:func:`active_units` of codes ``[N, latent]`` already computed: ``(count, variances)``."""
    if len(codes) < 2:
        raise ValueError("active_units needs at least two examples")
    variances = np.asarray(codes, np.float64).var(axis=0)
    return int((variances > threshold).sum()), variances
