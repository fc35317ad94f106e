"""Linear-probe accuracy: how linearly separable the classes are in a model's codes."""

import numbers

import numpy as np
from sklearn.linear_model import LogisticRegression

from tfvae import progress
from tfvae.evaluation.sparsity import encode_all

#: labelled training images the probe is fitted on (the VSC classification protocol)
DEFAULT_NUM_TRAIN = 5000


def linear_probe_accuracy(model_or_encode_fn, train_images, train_labels, test_images, test_labels,
                          num_train=DEFAULT_NUM_TRAIN, seed=0, batch_size=500, verbose="auto"):
    """Test accuracy of a logistic-regression classifier fitted on the codes of ``num_train``
    labelled training images (a random subset drawn with ``seed``), tested on the codes of all
    the test images: the classification protocol of the VSC paper.

    The probe is scikit-learn's multinomial ``LogisticRegression`` (L2, C = 1, lbfgs) on the raw
    codes. The codes are deliberately not standardised: a standard scaler would blow the tiny
    residual variation of collapsed (or switched-off) dimensions up to unit scale and so measure
    the encoder's hidden features rather than the code.

    Args:
      model_or_encode_fn: a model with ``encode`` (VSC: sparse codes; VAE: posterior means) or a
        callable from an image batch to a code batch ``[batch, latent]``.
      train_images, train_labels: images ``[N, H, W, C]`` and integer labels ``[N]``.
      test_images, test_labels: images ``[M, H, W, C]`` and integer labels ``[M]``.
      num_train: labelled training examples the probe sees (≤ N).
      seed: seed of the subset and of the solver.
      batch_size: images encoded at a time.
      verbose: progress over the ``num_train + M`` images encoded (with the time left), then
        the fit's start and duration (scikit-learn's solver cannot report progress);
        :mod:`tfvae.progress`, 0 silent.

    Returns:
      the accuracy on the test images, a float in [0, 1].

    Example:
      >>> images, labels = tfvae.data.load_arrays("mnist", "train")
      >>> test_images, test_labels = tfvae.data.load_arrays("mnist", "test")
      >>> linear_probe_accuracy(model, images, labels, test_images, test_labels)
      0.93...
    """
    train_labels = _labels("train_labels", train_labels)
    test_labels = _labels("test_labels", test_labels)
    if isinstance(num_train, bool) or not isinstance(num_train, numbers.Integral) or num_train < 2:
        raise ValueError(f"num_train must be an integer >= 2, got {num_train!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    train_images = np.asarray(train_images, np.float32)
    test_images = np.asarray(test_images, np.float32)
    for name, images, labels in (("train", train_images, train_labels),
                                 ("test", test_images, test_labels)):
        if len(images) != len(labels):
            raise ValueError(f"{name}_images and {name}_labels differ in length: "
                             f"{len(images)} images, {len(labels)} labels")
    if num_train > len(train_images):
        raise ValueError(f"num_train={num_train} exceeds the {len(train_images)} training images")
    subset = np.sort(np.random.default_rng(seed).choice(len(train_images), num_train, replace=False))
    if len(np.unique(train_labels[subset])) < 2:
        raise ValueError("the probe's training subset holds a single class; it needs at least two")
    verbose = progress.check_verbose(verbose)
    shown = progress.Progress("linear_probe", num_train + len(test_images), "image", verbose)
    encode = getattr(model_or_encode_fn, "encode", model_or_encode_fn)

    def counted(batch):  # encode_all's batches, counted as they are encoded
        codes = encode(batch)
        shown.add(len(batch))
        return codes

    encoder = counted if callable(encode) else model_or_encode_fn  # (encode_all rejects the latter)
    train_codes = encode_all(encoder, train_images[subset], batch_size)
    test_codes = encode_all(encoder, test_images, batch_size)
    shown.finish()
    probe = LogisticRegression(max_iter=5000, random_state=seed)
    with progress.timed("linear_probe", f"fitting the logistic regression on {num_train} codes", verbose):
        probe.fit(train_codes, train_labels[subset])
    return float(probe.score(test_codes, test_labels))


def _labels(name, labels):
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must be a 1-D array of integer class labels, "
                         f"got dtype {labels.dtype} and shape {labels.shape}")
    return labels


def probe_metrics(model, context):
    """Evaluator for :data:`tfvae.evaluation.report.EVALUATORS`: ``probe_accuracy`` (and its
    binomial standard error) of every model with codes, on labelled data (a source with labels),
    fitted on ``min(options["probe_train"] (default 5000), training set size)`` labelled training
    examples and tested on the test data; ``probe_train=0`` skips it. Progress by
    ``options["verbose"]`` when given."""
    source = context.get("source")
    options = context.get("options", {})
    num_train = options.get("probe_train", DEFAULT_NUM_TRAIN)
    codes = model.is_probabilistic() or model.has_sparse_codes()
    if not codes or source is None or source.num_classes is None or not num_train:
        return {}
    train_images, train_labels = source.arrays("train", limit=int(num_train))
    test_images, test_labels = [], []
    for images, labels in context["test_data"]:
        test_images.append(images.numpy())
        test_labels.append(labels.numpy())
    test_labels = np.concatenate(test_labels)
    if len(np.unique(train_labels)) < 2:
        return {}
    accuracy = linear_probe_accuracy(model, train_images, train_labels, np.concatenate(test_images), test_labels,
                                     num_train=len(train_images),
                                     **({} if options.get("verbose") is None else {"verbose": options["verbose"]}))
    return {"probe_accuracy": accuracy, "probe_accuracy_se": float(np.sqrt(accuracy * (1 - accuracy) / len(test_labels))),
            "probe_train": len(train_images), "probe_test": len(test_labels)}


__all__ = ["DEFAULT_NUM_TRAIN", "linear_probe_accuracy", "probe_metrics"]
