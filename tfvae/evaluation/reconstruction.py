"""Reconstruction error on one scale for every model, and the PCA baseline in the same metric.

The metric of the LLGAE reference (REFERENCES.md section 4), ``"centered_l2_255"``: with pixels
in 0–255 units, subtract from each image its own mean and from each reconstruction its own mean,
then average the squared difference over pixels and over images::

    e(x, x̂) = (1/N) Σ_n (1/D) Σ_d (255 · [(x_nd − x̄_n) − (x̂_nd − mean_d x̂_nd)])²

where D is the number of pixels of one image (H·W·C). Brightness offsets of a whole image are
therefore free; this is what a model that sees mean-subtracted images (LLGAE, or PCA on
mean-subtracted images) is measured by, and it applies unchanged to any model's reconstructions.
``"l2_255"`` is the plain mean squared error in 0–255 units, for comparison.

Reference figures on Fashion-MNIST test images (PCA fitted on the mean-subtracted training
images): 10 components 1565.0, 20 components 1208.0, 40 components 874.6.

Example:
  >>> from tfvae.evaluation import reconstruction_error, pca_baseline
  >>> reconstruction_error(test_images, model.reconstruct(test_images))     # a float
  >>> pca_baseline(train_images, test_images, num_components=20).error     # 1208.0 on Fashion-MNIST
"""

import collections
import numbers

import numpy as np

from tfvae.evaluation import examples

#: pixel values in the metric's units are 255 × the [0, 1] values
PIXEL_RANGE = 255.0

#: metric name -> whether each image and each reconstruction lose their own mean first
METRICS = {"centered_l2_255": True, "l2_255": False}

# A linear decoder (LLGAE, PCA) may overshoot [0, 1] a little; values beyond this band mean the
# reconstructions are in other units (0-255 bytes), which would make the error meaningless.
_RECONSTRUCTION_BAND = (-1.0, 2.0)


def reconstruction_error(images, reconstructions, metric="centered_l2_255", image_rank=3,
                         per_image=False):
    """The mean squared reconstruction error in 0–255 pixel units (see the module docstring).

    Args:
      images: originals in [0, 1], shaped ``[..., *image]`` (any leading shape).
      reconstructions: the same shape, in the same [0, 1] units (values slightly outside [0, 1],
        as a linear decoder gives, are accepted).
      metric: ``"centered_l2_255"`` (each image and reconstruction minus its own mean, the LLGAE
        reference's metric) or ``"l2_255"``.
      image_rank: how many trailing axes form one image: 3 for ``[H, W, C]`` (default), 2 for
        ``[H, W]``, 1 for flat vectors ``[D]``.
      per_image: return the error of each image (an array of the leading shape) instead of the
        mean over all of them.

    Returns:
      a float (the mean over images), or a float64 array of the leading shape with ``per_image``.

    Raises:
      ValueError: unknown metric, mismatched shapes, NaN/Inf, images outside [0, 1] or
        reconstructions far outside it (0–255 units), or no images.

    Example:
      >>> x = np.array([[0.0, 1.0]]); reconstruction_error(x, np.array([[0.25, 0.75]]), image_rank=1)
      4064.0625
    """
    if metric not in METRICS:
        raise ValueError(f"unknown reconstruction metric {metric!r}; expected one of {sorted(METRICS)}")
    if isinstance(image_rank, bool) or not isinstance(image_rank, numbers.Integral) or image_rank < 1:
        raise ValueError(f"image_rank must be a positive integer (trailing axes per image), got {image_rank!r}")
    images = np.asarray(images, np.float64)
    reconstructions = np.asarray(reconstructions, np.float64)
    if images.shape != reconstructions.shape:
        raise ValueError(f"images and reconstructions must have the same shape, got {images.shape} "
                         f"and {reconstructions.shape}")
    if images.ndim < image_rank or images.size == 0:
        raise ValueError(f"expected a non-empty array of images with {image_rank} image axes, "
                         f"got shape {images.shape}")
    for name, values in (("images", images), ("reconstructions", reconstructions)):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name} contain NaN or Inf")
    if images.min() < 0.0 or images.max() > 1.0:
        raise ValueError(f"images must hold pixel values in [0, 1] (scale 0-255 images by 1/255); got "
                         f"min {images.min():g}, max {images.max():g}")
    low, high = _RECONSTRUCTION_BAND
    if reconstructions.min() < low or reconstructions.max() > high:
        raise ValueError(f"reconstructions must be in the images' [0, 1] units (scale 0-255 values by "
                         f"1/255); got min {reconstructions.min():g}, max {reconstructions.max():g}")
    errors = _per_image_errors(images, reconstructions, METRICS[metric], image_rank)
    return errors if per_image else float(errors.mean())


def _per_image_errors(images, reconstructions, centered, image_rank):
    axes = tuple(range(images.ndim - image_rank, images.ndim))
    difference = np.asarray(images, np.float64) - np.asarray(reconstructions, np.float64)
    if centered:
        # (x − x̄) − (x̂ − mean x̂) = (x − x̂) minus its own mean
        difference = difference - difference.mean(axis=axes, keepdims=True)
    return ((PIXEL_RANGE * difference) ** 2).mean(axis=axes)


class PCABaseline(collections.namedtuple("PCABaseline", ["error", "reconstructions", "pca"])):
    """What :func:`pca_baseline` returns.

    Attributes:
      error: the test error in the requested metric (a float).
      reconstructions: the test reconstructions, shaped like the test images, in [0, 1] units
        (each centred reconstruction plus its image's mean when ``center_images``).
      pca: the fitted ``sklearn.decomposition.PCA``.
    """


def pca_baseline(train_images, test_images, num_components, metric="centered_l2_255", center_images=True):
    """PCA with ``num_components`` components fitted on the training images, measured on the test
    images: the linear baseline of the LLGAE reference (REFERENCES.md section 4).

    With ``center_images`` (the reference's protocol) every image first loses its own mean; PCA
    (which also subtracts the data mean) is fitted on those, each test image is projected onto
    the components and its own mean is added back. The fit uses scikit-learn's exact
    ``covariance_eigh`` solver (an eigendecomposition of the D×D covariance; seconds for 60,000
    Fashion-MNIST images).

    Args:
      train_images, test_images: ``[N, *image]`` in [0, 1] (e.g. ``[N, H, W, C]``).
      num_components: the code size E, at most min(N_train, D).
      metric: see :func:`reconstruction_error`.
      center_images: subtract each image's own mean before PCA.

    Returns:
      a :class:`PCABaseline` ``(error, reconstructions, pca)``.

    Example:
      >>> pca_baseline(train_images, test_images, 20).error     # Fashion-MNIST: 1208.0
    """
    from sklearn.decomposition import PCA

    train = np.asarray(train_images, np.float32)
    test = np.asarray(test_images, np.float32)
    if train.ndim < 2 or test.ndim < 2 or len(train) == 0 or len(test) == 0:
        raise ValueError(f"train_images and test_images must be non-empty batches [N, ...], got shapes "
                         f"{train.shape} and {test.shape}")
    if train.shape[1:] != test.shape[1:]:
        raise ValueError(f"train and test images differ in shape: {train.shape[1:]} and {test.shape[1:]}")
    pixels = int(np.prod(train.shape[1:]))
    if isinstance(num_components, bool) or not isinstance(num_components, numbers.Integral) \
            or not 1 <= num_components <= min(len(train), pixels):
        raise ValueError(f"num_components must be an integer in [1, {min(len(train), pixels)}] "
                         f"(the number of training images and of pixels), got {num_components!r}")
    for name, values in (("train_images", train), ("test_images", test)):
        if not np.all(np.isfinite(values)) or values.min() < 0.0 or values.max() > 1.0:
            raise ValueError(f"{name} must be finite pixel values in [0, 1]")
    test_shape = test.shape
    train, test = train.reshape(len(train), pixels), test.reshape(len(test), pixels)
    train_offsets = train.mean(axis=1, keepdims=True) if center_images else 0.0
    test_offsets = test.mean(axis=1, keepdims=True) if center_images else 0.0
    pca = PCA(n_components=int(num_components), svd_solver="covariance_eigh").fit(train - train_offsets)
    reconstructions = pca.inverse_transform(pca.transform(test - test_offsets)) + test_offsets
    reconstructions = reconstructions.reshape(test_shape)
    error = reconstruction_error(test.reshape(test_shape), reconstructions, metric=metric,
                                 image_rank=len(test_shape) - 1)
    return PCABaseline(error, reconstructions, pca)


def reconstruction_metrics(model, context):
    """Evaluator for :data:`tfvae.evaluation.report.EVALUATORS`: ``test_reconstruction_error``
    (``"centered_l2_255"`` of ``model.reconstruct``) for every model with ``reconstruct``, so
    that VAEs, LLGAE and PCA compare on one scale.

    Unlike :func:`reconstruction_error` it does not reject reconstructions far outside [0, 1]
    (a Gaussian decoder early in training may give them): an evaluation reports what the model
    does (NaN for a diverged model) instead of stopping the whole report."""
    if not callable(getattr(model, "reconstruct", None)):
        return {}
    if len(getattr(model, "image_shape", ())) != 3:
        return {}  # a pixel metric in 0-255 units: meaningless for tables and other vectors
    data, first = examples.local_data(context)
    errors = []
    for item in [] if data is None else data:
        images = np.asarray(item[0] if isinstance(item, (tuple, list)) else item, np.float32)
        errors.append(_per_image_errors(images, np.asarray(model.reconstruct(images)), True, images.ndim - 1))
    if not errors and context.get("part") is None:
        raise ValueError("reconstruction_metrics got no test data")
    errors = examples.gathered(context, np.concatenate(errors) if errors else None, first)
    return {"test_reconstruction_error": float(errors.mean()),
            "test_reconstruction_error_se": float(errors.std(ddof=1) / np.sqrt(len(errors))) if len(errors) > 1
            else float("nan"),
            "reconstruction_metric": "centered_l2_255"}


__all__ = ["METRICS", "PCABaseline", "pca_baseline", "reconstruction_error", "reconstruction_metrics"]
