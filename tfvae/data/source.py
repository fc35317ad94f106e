"""What a run trains and evaluates on: one interface for built-in data sets and users' files.

A :class:`Source` answers every question a run asks of its data, so that nothing downstream
(the run layer, the evaluators, the command line) branches on a data set's name:

* the pipelines: :meth:`Source.train` (shuffled, seeded batches, binarised dynamically where
  that is the protocol) and :meth:`Source.held_out` (the evaluation split, never shuffled, with
  the evaluation's binarisation: one seeded draw);
* the arrays on demand (:meth:`Source.arrays`), for what needs them in memory (a linear probe,
  LLGAE's k-means start);
* labels or none (:attr:`Source.num_classes`), ground-truth factors or none
  (:meth:`Source.factors`);
* the default likelihood, the values' support (through the likelihood) and the standardisation
  of real values (:attr:`Source.standardization`, fitted on the training part).

:func:`open_source` picks the kind from what the user named: a catalog name (``"mnist"``) or the
path of a file or image folder (:func:`tfvae.data.load_file`).

Example:
  >>> source = tfvae.data.open_source("digits", seed=0)
  >>> source.name, source.feature_shape, source.likelihood, source.binarize
  ('digits', (8, 8, 1), 'bernoulli', 'dynamic')
  >>> train = source.train(batch_size=64)            # (x, label) batches
  >>> x, y = source.arrays("held_out", limit=100)    # as the evaluation sees them
"""

import os
import pathlib

import numpy as np

from tfvae import validation
from tfvae.data import catalog

#: catalog data set -> (default likelihood, training binarisation). Grey-level digits are
#: binarised dynamically for training and by one seeded draw for evaluation, so the reported
#: log-likelihood is a normalised density comparable with the literature (REFERENCES §6);
#: Fashion-MNIST's grey levels carry the texture, so it keeps them under the continuous Bernoulli.
CATALOG_LIKELIHOODS = {
    "digits": ("bernoulli", "dynamic"), "mnist": ("bernoulli", "dynamic"),
    "fashion_mnist": ("continuous-bernoulli", None), "binarized_mnist": ("bernoulli", None),
    "shapes2d": ("bernoulli", None), "dsprites": ("bernoulli", None),
}

#: the ``binarize`` settings a run takes ("none" keeps grey levels)
BINARIZE_SETTINGS = ("dynamic", "threshold", "none")
#: parts of :meth:`Source.arrays`
PARTS = ("train", "held_out")
#: examples per batch of the held-out pipeline (evaluation only: no effect on the figures)
EVALUATION_BATCH = 500


def is_file(dataset):
    """True when ``dataset`` names a file or folder (or a glob pattern of shards) rather than a
    catalog data set or a tensorflow-datasets name (``tfds:NAME``)."""
    return isinstance(dataset, (str, os.PathLike)) and str(dataset) not in catalog.SPECS and \
        not str(dataset).startswith("tfds:") and (
            os.sep in str(dataset) or "." in str(dataset) or pathlib.Path(dataset).exists())


def check_dataset(name, value):
    """A catalog name, ``tfds:NAME``, or the path of a file/folder or a glob pattern of shards
    (their contents are checked when opened)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not (value in catalog.SPECS or is_file(value) or
                                          (value.startswith("tfds:") and len(value) > len("tfds:"))):
        raise ValueError(f"unknown data set {value!r}; expected one of {', '.join(sorted(catalog.SPECS))}, "
                         "tfds:NAME (a prepared tensorflow-datasets builder), the path of a .npy, .npz, .csv, "
                         ".tsv file or an image folder, or a glob pattern of shards ('data/*.tfrecord')")
    return value


class Source:
    """The interface (see the module doc). Attributes every source sets:

    Attributes:
      name: a short name for people and run folders (``"mnist"``, a file's stem).
      dataset: what the user named (a catalog name or a path), as ``config.json`` stores it.
      feature_shape: one example's shape, ``(D,)`` or ``(H, W, C)``.
      likelihood: the likelihood that fits the data when none is asked for.
      binarize: the training binarisation, ``"dynamic"``, ``"threshold"`` or None.
      standardization: ``{"mean", "scale"}`` of the training part (real values) or None.
      train_size: training examples (after ``limit``).
      held_out_size: evaluation examples.
      held_out_split: the name of the evaluation split (``"test"``, ``"valid"``, ``"validation"``).
      num_classes: number of label values, or None without labels.
    """

    name = dataset = held_out_split = None
    feature_shape = ()
    likelihood = "bernoulli"
    binarize = None
    standardization = None
    train_size = held_out_size = 0
    num_classes = None

    def train(self, batch_size, seed=0, shuffle=True):
        """Training batches of ``(x, label)``, reshuffled every epoch from ``seed``."""
        raise NotImplementedError

    def held_out(self, batch_size=EVALUATION_BATCH, limit=None):
        """Evaluation batches of ``(x, label)`` (the first ``limit`` examples), never shuffled."""
        raise NotImplementedError

    def arrays(self, part="train", limit=None):
        """``(x float32 [n, *feature_shape], labels int64 [n] or None)`` of ``part`` (one of
        :data:`PARTS`), as the model sees them (binarised like the pipelines)."""
        raise NotImplementedError

    def factors(self):
        """The :class:`tfvae.data.FactorDataset` of a data set generated by known factors, else
        None (then the disentanglement metrics do not apply)."""
        return None

    def resolved_settings(self):
        """The run settings this source resolved from their defaults (for ``config.json``)."""
        return {}

    def describe(self):
        """What the run read, for ``metrics.json``."""
        return {"dataset": self.name, "held_out_split": self.held_out_split, "train_examples": self.train_size,
                "held_out_examples": self.held_out_size, "labels": self.num_classes is not None}

    @staticmethod
    def _check_part(part):
        if part not in PARTS:
            raise ValueError(f"unknown part {part!r}; expected one of {list(PARTS)}")


class CatalogSource(Source):
    """A data set of :data:`tfvae.data.DATASETS`, read with :func:`tfvae.data.load`."""

    def __init__(self, name, *, data_dir=None, seed=0, likelihood=None, binarize=None, limit=None, split=None):
        from tfvae import data

        info = data.info(name)
        default_likelihood, default_binarize = CATALOG_LIKELIHOODS.get(name, ("bernoulli", None))
        if binarize is None:
            # the data set's binarisation goes with its default likelihood only
            binarize = default_binarize if likelihood in (None, default_likelihood) else None
        elif binarize == "none":
            binarize = None
        self.name = self.dataset = name
        self._data_dir, self._seed, self._limit = data_dir, seed, limit
        self.feature_shape, self.likelihood, self.binarize = info.image_shape, default_likelihood, binarize
        self.train_size = min(info.num_examples["train"], limit or info.num_examples["train"])
        self.held_out_split = split or ("valid" if "valid" in info.splits else "test")
        catalog.check_split(name, self.held_out_split)
        self.held_out_size = info.num_examples[self.held_out_split]
        self.num_classes = info.num_classes
        self._has_factors = bool(info.factor_names)
        # a binarised training set is evaluated on one seeded draw ("threshold" stays "threshold")
        self._evaluation_binarize = {"dynamic": "fixed", "threshold": "threshold"}.get(binarize)
        self._check_available()

    def _check_available(self):
        """Reads the files now (they are cached for the pipelines), so that missing or damaged
        data stop a run before it writes anything."""
        from tfvae import data
        from tfvae.data import sources as files

        if self._has_factors:
            data.factors(self.name, data_dir=self._data_dir)
            return
        for split in ("train", self.held_out_split):
            files.raw_arrays(self.name, split, self._data_dir)

    def resolved_settings(self):
        return {"binarize": self.binarize or "none"}

    def train(self, batch_size, seed=None, shuffle=True):
        from tfvae import data

        return data.load(self.name, "train", data_dir=self._data_dir, batch_size=batch_size, shuffle=shuffle,
                         seed=self._seed if seed is None else seed, binarize=self.binarize, limit=self._limit)

    def held_out(self, batch_size=EVALUATION_BATCH, limit=None):
        from tfvae import data

        return data.load(self.name, self.held_out_split, data_dir=self._data_dir, batch_size=batch_size,
                         binarize=self._evaluation_binarize, seed=self._seed, limit=limit)

    def arrays(self, part="train", limit=None):
        from tfvae import data

        self._check_part(part)
        if part == "held_out":
            batches = list(self.held_out(limit=limit).as_numpy_iterator())
            labels = np.concatenate([b[1] for b in batches])
            x = np.concatenate([b[0] for b in batches])
        else:
            limit = self.train_size if limit is None else min(limit, self.train_size)
            x, labels = data.load_arrays(self.name, "train", data_dir=self._data_dir, limit=limit)
            if self.binarize is not None:  # the training images as the model saw them: one draw
                rng = np.random.default_rng(self._seed)
                x = (x > 0.5 if self.binarize == "threshold" else rng.random(x.shape, np.float32) < x)
                x = x.astype(np.float32)
        return x, (None if self.num_classes is None else labels)

    def factors(self):
        from tfvae import data

        return data.factors(self.name, data_dir=self._data_dir) if self._has_factors else None


class FileSource(Source):
    """A user's ``.npy`` / ``.npz`` / ``.csv`` / ``.tsv`` file or image folder
    (:func:`tfvae.data.load_file`), with a seeded held-out part."""

    def __init__(self, path, *, seed=0, likelihood=None, label_column=None, image_size=None,
                 validation_fraction=0.1, limit=None):
        from tfvae import data

        if validation_fraction == 0:
            raise ValueError("validation_fraction must be > 0: a run is evaluated on held-out data")
        user = data.load_file(path, label_column=label_column_of(label_column), image_size=image_size,
                              validation_fraction=validation_fraction, seed=seed, likelihood=likelihood)
        self.user_data, self._seed, self._limit = user, seed, limit
        self.name = pathlib.Path(path).stem or pathlib.Path(path).resolve().name
        self.dataset = str(path)
        self.feature_shape, self.likelihood = user.feature_shape, user.likelihood
        self.standardization = None if user.standardizer is None else {
            "mean": user.standardizer.mean.numpy().tolist(), "scale": user.standardizer.std.numpy().tolist()}
        self.train_size = min(len(user.train_indices), limit or len(user.train_indices))
        self.held_out_size = len(user.validation_indices)
        self.held_out_split = "validation"
        self.num_classes = user.num_classes

    def train(self, batch_size, seed=None, shuffle=True):
        train = self.user_data.datasets(batch_size, shuffle=shuffle, seed=self._seed if seed is None else seed)[0]
        return train if self._limit is None else train.unbatch().take(self._limit).batch(batch_size)

    def held_out(self, batch_size=EVALUATION_BATCH, limit=None):
        held_out = self.user_data.datasets(batch_size, shuffle=False)[1]
        return held_out if limit is None else held_out.unbatch().take(limit).batch(batch_size)

    def arrays(self, part="train", limit=None):
        self._check_part(part)
        x, labels = self.user_data.arrays("train" if part == "train" else "validation")
        limit = len(x) if limit is None else limit
        if part == "train":
            limit = min(limit, self.train_size)
        return x[:limit], (None if labels is None else labels[:limit])


def open_source(dataset, *, data_dir=None, seed=0, likelihood=None, binarize=None, limit=None, label_column=None,
                image_size=None, validation_fraction=0.1, split=None):
    """The :class:`Source` of ``dataset``: a catalog name, the path of a file or image folder, a
    glob pattern of shards (streamed: :mod:`tfvae.data.shards`) or ``"tfds:NAME"`` (a prepared
    tensorflow-datasets builder, streamed: :mod:`tfvae.data.tfds_source`).

    Args:
      dataset: ``"mnist"``, ..., a path (see :func:`tfvae.data.load_file`), ``"data/*.tfrecord"``
        (also ``*.npy``, ``*.csv``, ``*.tsv`` shards), ``"tfds:NAME[/CONFIG]"``.
      data_dir: where the catalog's files are (default ``$TFVAE_DATA_DIR``); for ``tfds:``,
        tensorflow-datasets' data folder (default ``$TFDS_DATA_DIR``).
      seed: shuffling, dynamic binarisation, the evaluation's binarisation draw and a file's
        held-out draw.
      likelihood: the likelihood the model will use, None for the data's default; a catalog
        data set is binarised only under its default likelihood, a file's values are checked
        against it.
      binarize: ``"dynamic"``, ``"threshold"``, ``"none"`` or None (the data set's default).
      limit: use only the first ``limit`` training examples.
      label_column, image_size, validation_fraction: files only (see :func:`tfvae.data.load_file`).
      split: the catalog split to evaluate on (default ``valid`` where there is one, else ``test``).

    Raises:
      ValueError: an unknown data set or an option that does not apply to it.
      DataNotFoundError, CorruptDataError: missing or damaged data (one line naming the file).
    """
    dataset = check_dataset("data set", dataset)
    if binarize is not None:
        validation.choice("binarize", binarize, BINARIZE_SETTINGS)
    if limit is not None:
        validation.positive_int("limit", limit)
    from tfvae.data import shards, tfds_source

    if tfds_source.is_tfds(dataset) or shards.is_shards(dataset):
        for key, value in (("binarize", None if binarize == "none" else binarize), ("image_size", image_size),
                           ("label_column" if tfds_source.is_tfds(dataset) else None, label_column),
                           ("split" if shards.is_shards(dataset) else None, split)):
            if key is not None and value is not None:
                raise ValueError(f"{key}={value!r} does not apply to {dataset!r} (streamed data)")
        if tfds_source.is_tfds(dataset):
            return tfds_source.TfdsSource(dataset, data_dir=data_dir, seed=seed, likelihood=likelihood, limit=limit,
                                          split=split, validation_fraction=validation_fraction)
        return shards.ShardSource(dataset, seed=seed, likelihood=likelihood, label_column=label_column_of(label_column),
                                  validation_fraction=validation_fraction, limit=limit)
    if not is_file(dataset):
        for key, value in (("label_column", label_column), ("image_size", image_size)):
            if value is not None:
                raise ValueError(f"{key} applies to a file or folder, not the built-in data set {dataset!r}")
        return CatalogSource(dataset, data_dir=data_dir, seed=seed, likelihood=likelihood, binarize=binarize,
                             limit=limit, split=split)
    if binarize not in (None, "none"):
        raise ValueError(f"binarize={binarize!r} applies to the built-in grey-level data sets, not to a file; "
                         "binarise the values before saving them, or choose the likelihood")
    if split is not None:
        raise ValueError(f"split applies to the built-in data sets; a file's held-out part is drawn by "
                         f"validation_fraction, got split={split!r}")
    return FileSource(dataset, seed=seed, likelihood=likelihood, label_column=label_column, image_size=image_size,
                      validation_fraction=validation_fraction, limit=limit)


def label_column_of(value):
    """A column's header name, or its 0-based index given as an integer or digits."""
    if value is None or isinstance(value, int):
        return value
    return int(value) if str(value).lstrip("-").isdigit() else value


__all__ = ["BINARIZE_SETTINGS", "CATALOG_LIKELIHOODS", "CatalogSource", "FileSource", "PARTS", "Source",
           "check_dataset", "is_file", "open_source"]
