"""Data sets as tf.data pipelines of ``(image, label)``: images float32 in [0, 1].

================== ================= =========================== ========================
name               image shape       splits (examples)           labels
================== ================= =========================== ========================
``mnist``          (28, 28, 1)       train 60000, test 10000     0..9
``fashion_mnist``  (28, 28, 1)       train 60000, test 10000     0..9
``binarized_mnist`` (28, 28, 1)      train 50000, valid 10000,   none: every label is -1
                                     test 10000
``digits``         (8, 8, 1)         train 1500, test 297        0..9
================== ================= =========================== ========================

``digits`` (scikit-learn's 8x8 digits, pixel counts / 16; the first 1500 images train, the last
297 test) ships inside scikit-learn: the offline default. The others are read from their original
files: pass ``data_dir=`` or set ``TFVAE_DATA_DIR`` to a folder with one sub-folder per data set::

    $TFVAE_DATA_DIR/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz
    $TFVAE_DATA_DIR/fashion_mnist/  (same names; Debian's dataset-fashion-mnist package also works)
    $TFVAE_DATA_DIR/binarized_mnist/binarized_mnist_{train,valid,test}.amat

otherwise tensorflow-datasets is used (downloading where a network exists);
:mod:`tfvae.data.sources` has the details. Missing data raises :class:`DataNotFoundError`,
damaged files :class:`CorruptDataError`.

Example:
  >>> train = tfvae.data.load("mnist", "train", batch_size=100, shuffle=True, seed=0,
  ...                         binarize="dynamic")
  >>> images, labels = tfvae.data.load_arrays("mnist", "test")   # numpy, for evaluation
"""

import numbers

import numpy as np

from tfvae.data import catalog, pipeline, sources
from tfvae.data.catalog import DATASETS, DatasetInfo
from tfvae.data.errors import CorruptDataError, DataNotFoundError
from tfvae.data.pipeline import BINARIZE_MODES


def available():
    """The data set names, sorted."""
    return sorted(DATASETS)


def info(name):
    """The :class:`DatasetInfo` of ``name`` (shapes, classes, splits, sizes); reads no files."""
    return catalog.spec(name).info


def load(name, split="train", *, data_dir=None, flatten=False, binarize=None, batch_size=None,
         shuffle=False, seed=None, cache=True, prefetch=True, drop_remainder=False, limit=None):
    """A ``tf.data.Dataset`` of ``(image, label)``.

    ``image`` is float32 in [0, 1], shaped ``[H, W, C]`` (``[H * W * C]`` with ``flatten``);
    ``label`` is int64 (-1 for the unlabelled ``binarized_mnist``). With ``batch_size`` both gain
    a leading batch axis.

    Args:
      name: one of :func:`available`.
      split: one of ``info(name).splits``.
      data_dir: folder with one sub-folder per data set; defaults to ``$TFVAE_DATA_DIR``.
      flatten: yield flat vectors.
      binarize: ``None`` (grey levels), ``"threshold"`` (x > 0.5) or ``"dynamic"`` (a fresh
        Bernoulli(x) draw every time an example is used, as in the IWAE paper, Burda et al. 2015;
        different every epoch, reproducible for a ``seed``).
      batch_size: examples per batch; ``None`` yields single examples.
      shuffle: reshuffle the whole split every epoch.
      seed: makes shuffling and dynamic binarization reproducible.
      cache: cache the examples in memory after the first epoch (``Dataset.cache``).
      prefetch: prefetch batches (``tf.data.AUTOTUNE``).
      drop_remainder: drop the last, smaller batch.
      limit: keep only the first ``limit`` examples of the split (before shuffling).

    Raises:
      ValueError: unknown name or split, or an invalid option.
      DataNotFoundError: no source has the files (the message says where it looked).
      CorruptDataError: a file is damaged (the message names it).

    Example:
      >>> ds = tfvae.data.load("digits", "train", batch_size=64, shuffle=True, seed=0)
      >>> images, labels = next(iter(ds))      # [64, 8, 8, 1] float32, [64] int64
    """
    catalog.spec(name)
    catalog.check_split(name, split)
    if binarize not in BINARIZE_MODES:
        raise ValueError(f"binarize must be one of {list(BINARIZE_MODES)}, got {binarize!r}")
    batch_size = _optional_int("batch_size", batch_size, minimum=1)
    limit = _optional_int("limit", limit, minimum=0)
    seed = _optional_int("seed", seed, minimum=None)
    raw = sources.raw_arrays(name, split, data_dir)
    images, labels = raw.images, raw.labels
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return pipeline.make_dataset(
        images, labels, raw.pixel_scale, flatten=flatten, binarize=binarize,
        batch_size=batch_size, shuffle=shuffle, seed=seed, cache=cache, prefetch=prefetch,
        drop_remainder=drop_remainder)


def load_arrays(name, split="train", data_dir=None):
    """The whole split as numpy arrays: ``(images float32 [N, H, W, C] in [0, 1], labels int64 [N])``.

    The parsed files are cached in-process, so repeated calls (evaluation, probes) cost only the
    conversion to float32; the returned arrays are fresh copies the caller may modify.

    Example:
      >>> x, y = tfvae.data.load_arrays("digits", "test")   # (297, 8, 8, 1), (297,)
    """
    catalog.spec(name)
    catalog.check_split(name, split)
    raw = sources.raw_arrays(name, split, data_dir)
    images = raw.images.astype(np.float32)
    images /= np.float32(raw.pixel_scale)
    return images, raw.labels.copy()


def _optional_int(what, value, minimum):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{what} must be an integer or None, got {value!r}")
    if minimum is not None and value < minimum:
        bound = "positive" if minimum == 1 else "non-negative"
        raise ValueError(f"{what} must be a {bound} integer or None, got {value!r}")
    return int(value)


__all__ = ["BINARIZE_MODES", "CorruptDataError", "DATASETS", "DataNotFoundError", "DatasetInfo",
           "available", "info", "load", "load_arrays"]
