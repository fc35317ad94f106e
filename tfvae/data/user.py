"""Your own data: ``.npy``, ``.npz``, ``.csv`` / ``.tsv`` files and folders of images.

:func:`load_file` reads one of them, checks every value, holds out a seeded validation part and
returns a :class:`UserData`: the examples, their labels, what kind of data they are, the likelihood
that suits them, the train and validation ``tf.data`` pipelines, and (for real values) a
:class:`Standardization` layer fitted on the training part.

================ ==============================================================================
source           what is read
================ ==============================================================================
``.npy``         one array ``[N, D]`` (vectors), ``[N, H, W]`` or ``[N, H, W, C]`` (images)
``.npz``         the array ``x`` (or ``X``), or the only array; labels from ``y`` (or ``Y``)
``.csv``         one example per row, comma-separated numbers; a header row is detected
``.tsv``         the same, tab-separated
a folder         PNG / JPEG / GIF / BMP / WebP images, directly in it (no labels) or in one
                 sub-folder per class (the labels, classes in sorted folder-name order)
================ ==============================================================================

Values are taken as they are stored, except images in a folder, which are decoded to 8 bits and
divided by 255 into [0, 1] as every image library does (16-bit PNGs are reduced to 8 bits).

Kinds and suggested likelihoods, from the values of all examples:

* all values 0 or 1 → ``"bernoulli"``;
* all in [0, 1] → ``"continuous-bernoulli"`` (Loaiza-Ganem & Cunningham 2019: the normalised
  Bernoulli density, for grey levels);
* non-negative integers → ``"poisson"`` (``kind == "counts"`` for vectors);
* anything else → ``"gaussian-learned"`` (one learned σ), and the values are standardized by
  default.

``kind`` is ``"images"`` for ``[H, W, C]`` examples, else ``"counts"`` or ``"vectors"``.

Header detection (``.csv`` / ``.tsv``): the first row is a header when it names the requested
``label_column``, or when none of its cells is a number while the second row holds a number. So a
first row with a number in it (``0,1,2``) is read as data: drop such a header, or name its columns
with letters.

Every problem with the data raises one :class:`~tfvae.data.errors.CorruptDataError` (a
``ValueError``) naming the file and the place: ``row R, column C`` for tables (1-based, the line
and field numbers an editor shows, header counted), ``x[i, j]`` in a ``.npz``, ``element [i, j]``
in a ``.npy`` (0-based, as numpy indexes), the file name for images. A missing path or a folder without images raises
:class:`~tfvae.data.errors.DataNotFoundError`; bad arguments raise ``ValueError``. Reading never
writes anything.

Example:
  >>> data = tfvae.data.load_file("cells.csv", label_column="cell_type", validation_fraction=0.1)
  >>> data.kind, data.feature_shape, data.likelihood
  ('counts', (2000,), 'poisson')
  >>> train, validation = data.datasets(batch_size=128, seed=0)   # (x, label) batches
"""

import csv
import dataclasses
import io
import math
import numbers
import pathlib
import re
import zipfile

import keras
import numpy as np
import tensorflow as tf

from tfvae.data import pipeline
from tfvae.data.errors import CorruptDataError, DataNotFoundError
from tfvae.models import likelihoods

#: likelihood names :func:`load_file` accepts and checks the values against: every likelihood
#: the models know (:func:`tfvae.models.likelihoods.names`), whose supports the checks read
LIKELIHOODS = likelihoods.names()
#: values of :attr:`UserData.kind`
KINDS = ("vectors", "images", "counts")
#: what :func:`load_file` suggests after values all 0 or 1 ("bernoulli"): the first likelihood
#: whose support holds every value, narrowest support first
#: what fits values that are not binary, in order: the first whose support holds them all. Real
#: values get one learned sigma: a fixed sigma = 0.1 on standardised values misfits most tables
#: (breast cancer's held-out log-likelihood: -212 +- 57 nats fixed, -39 +- 19 learned)
_SUGGESTIONS = ("continuous-bernoulli", "poisson", "gaussian-learned")
#: image file suffixes read from a folder (what ``tf.io.decode_image`` decodes)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")
_DELIMITERS = {".csv": ",", ".tsv": "\t"}
_ARRAY_SUFFIXES = (".npy", ".npz")
#: parts :meth:`UserData.arrays` takes
PARTS = ("train", "validation", "all")


# ----------------------------------------------------------------------------- standardization

@keras.saving.register_keras_serializable(package="tfvae")
class Standardization(keras.layers.Layer):
    """z = (x − mean) / std per feature, as a Keras layer with its statistics as weights.

    The statistics are non-trainable weights (``mean``, ``std``, shaped like one example), so a
    model holding this layer saves them, restores them and exports them in a SavedModel; they are
    also in :meth:`get_config`, so ``from_config`` alone rebuilds the same transform.

    A density of the standardized values converts to one of the original values with the
    change-of-variables term, the log-determinant of the Jacobian ∂z/∂x::

        log p_x(x) = log p_z(z) + forward_log_det_jacobian(),  forward_log_det_jacobian() = −Σ log std

    The layer computes in float32 whatever the global dtype policy, because raw values (e.g.
    counts in the thousands) can overflow or lose their digits in float16.

    Args:
      mean: array shaped like one example (``[D]`` or ``[H, W, C]``).
      std: array of the same shape, every entry finite and > 0.

    Example:
      >>> layer = Standardization.from_data(x_train)        # x_train [N, D]
      >>> z = layer.transform(x)                            # (x - mean) / std, float32
      >>> x_again = layer.inverse_transform(z)
      >>> same = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    """

    def __init__(self, mean, std, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        mean = np.asarray(mean, np.float32)
        std = np.asarray(std, np.float32)
        if mean.shape != std.shape or mean.ndim == 0:
            raise ValueError(f"mean and std must be arrays of one example's shape, got shapes "
                             f"{mean.shape} and {std.shape}")
        if not np.all(np.isfinite(mean)):
            raise ValueError("mean must be finite")
        if not (np.all(np.isfinite(std)) and np.all(std > 0)):
            raise ValueError(f"std must be finite and > 0, got minimum {std.min()!r}")
        self.feature_shape = tuple(mean.shape)
        self.mean = self.add_weight(name="mean", shape=mean.shape, trainable=False,
                                    initializer=keras.initializers.Constant(mean))
        self.std = self.add_weight(name="std", shape=std.shape, trainable=False,
                                   initializer=keras.initializers.Constant(std))
        self.built = True  # the weights exist already; nothing depends on the input shape

    @classmethod
    def from_data(cls, x, **kwargs):
        """The layer whose statistics are the per-feature mean and standard deviation of
        ``x [N, ...]`` (population std, ddof 0, computed in float64). A constant feature gets
        std 1: it maps to 0 and adds nothing to the log-determinant, where std 0 would divide by
        zero."""
        x = np.asarray(x, np.float64)
        if x.ndim < 2 or len(x) == 0:
            raise ValueError(f"x must be [N, ...] with N >= 1 examples, got shape {x.shape}")
        mean = x.mean(axis=0)
        std = x.std(axis=0)
        std[std == 0] = 1.0
        return cls(mean, std, **kwargs)

    def call(self, x):
        return (tf.cast(x, tf.float32) - self.mean) / self.std

    def transform(self, x):
        """(x − mean) / std, float32 tensor; ``x`` is ``[..., *feature_shape]``."""
        return self(x)

    def inverse_transform(self, z):
        """z · std + mean, float32 tensor: the values in the data's own units."""
        return tf.cast(z, tf.float32) * self.std + self.mean

    def forward_log_det_jacobian(self):
        """log |det ∂z/∂x| = −Σ log std over the features of one example (a float32 scalar): add
        it to a log-density of the standardized values to get one of the original values."""
        return -tf.reduce_sum(tf.math.log(tf.convert_to_tensor(self.std)))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(mean=keras.ops.convert_to_numpy(self.mean).tolist(),
                      std=keras.ops.convert_to_numpy(self.std).tolist())
        return config


# ----------------------------------------------------------------------------- the result

@dataclasses.dataclass(frozen=True, eq=False)
class UserData:
    """A user's data set as :func:`load_file` read it.

    Attributes:
      path: the file or folder read.
      format: ``"npy"``, ``"npz"``, ``"csv"``, ``"tsv"`` or ``"images"``.
      kind: ``"images"`` (examples ``[H, W, C]``), ``"counts"`` (vectors of non-negative
        integers, not all 0/1) or ``"vectors"``.
      feature_shape: one example's shape: ``(D,)`` or ``(H, W, C)``.
      labels: int64 ``[N]`` in ``0 .. num_classes - 1``, or ``None``.
      class_names: the original label of each class, as strings (``class_names[k]`` is label k),
        or ``None``.
      feature_names: the header's names of the feature columns (tables with a header), else
        ``None``.
      likelihood: the likelihood asked for, else :attr:`suggested_likelihood`; the values were
        checked against it.
      suggested_likelihood: the one the values suggest (see the module doc).
      standardizer: a :class:`Standardization` fitted on the training part, or ``None``.
      validation_fraction, seed: how the held-out part was drawn.
      train_indices, validation_indices: sorted int64 example indices of the two parts (disjoint,
        together all examples).
      notes: sentences about choices made while reading (header found, channels converted,
        files skipped), for the command line to print.
    """

    path: str
    format: str
    kind: str
    feature_shape: tuple
    labels: object = dataclasses.field(repr=False)
    class_names: object
    feature_names: object = dataclasses.field(repr=False)
    likelihood: str
    suggested_likelihood: str
    standardizer: object
    validation_fraction: float
    seed: object
    train_indices: np.ndarray = dataclasses.field(repr=False)
    validation_indices: np.ndarray = dataclasses.field(repr=False)
    notes: tuple
    #: the examples as stored (uint8 pixels of image folders, else float32); ``/ _scale`` is the data
    _stored: np.ndarray = dataclasses.field(repr=False)
    _scale: float = dataclasses.field(repr=False)

    @property
    def num_examples(self):
        """N, all examples (both parts)."""
        return len(self._stored)

    @property
    def num_classes(self):
        """Number of classes, or ``None`` without labels."""
        return None if self.class_names is None else len(self.class_names)

    def arrays(self, part="train"):
        """``(x float32 [n, *feature_shape], labels int64 [n] or None)`` of ``part``: ``"train"``,
        ``"validation"`` or ``"all"`` (file order), in the data's own units (not standardized);
        fresh copies."""
        indices = self._indices(part)
        x = self._stored[indices].astype(np.float32)
        if self._scale != 1:
            x /= np.float32(self._scale)
        return x, None if self.labels is None else self.labels[indices].copy()

    def datasets(self, batch_size, *, shuffle=True, seed=None, standardized=False,
                 drop_remainder=False, cache=True, prefetch=True):
        """The ``(train, validation)`` ``tf.data.Dataset`` pair of ``(x, label)`` elements.

        ``x`` is float32 ``[*feature_shape]`` (with a leading batch axis when ``batch_size`` is
        set), ``label`` int64, -1 for every example when there are no labels, as in
        :func:`tfvae.data.load`. ``validation`` is ``None`` when ``validation_fraction`` was 0; it
        is never shuffled and keeps its last, smaller batch.

        Args:
          batch_size: examples per batch, or ``None`` for single examples.
          shuffle: reshuffle the training part every epoch.
          seed: the shuffling seed; ``None`` uses the :attr:`seed` the data were loaded with, so
            a pipeline replays exactly by default.
          standardized: yield ``standardizer.transform(x)`` rather than ``x`` (a ValueError when
            there is no standardizer). Leave it False when the model holds the standardizer.
          drop_remainder: drop the training part's last, smaller batch.
          cache, prefetch: as in :func:`tfvae.data.load`.

        Example:
          >>> train, validation = data.datasets(64, seed=1)
          >>> x, y = next(iter(train))      # [64, D] float32, [64] int64
        """
        if batch_size is not None and (isinstance(batch_size, bool)
                                       or not isinstance(batch_size, numbers.Integral)
                                       or batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
        seed = self.seed if seed is None else _check_seed(seed)
        if standardized and self.standardizer is None:
            raise ValueError(f"standardized=True, but {self.path} has no standardizer (its "
                             f"likelihood is {self.likelihood!r}; load it with standardize=True "
                             "for real values)")
        labels = (np.full(self.num_examples, -1, np.int64) if self.labels is None
                  else self.labels)
        common = dict(batch_size=batch_size, cache=cache, prefetch=prefetch)
        train = pipeline.make_dataset(
            self._stored[self.train_indices], labels[self.train_indices], self._scale,
            shuffle=bool(shuffle), seed=seed, drop_remainder=drop_remainder, **common)
        validation = None
        if len(self.validation_indices):
            validation = pipeline.make_dataset(
                self._stored[self.validation_indices], labels[self.validation_indices],
                self._scale, shuffle=False, **common)
        if standardized:
            # constants, not the layer's variables: the pipeline then owns no state of a model
            mean = tf.constant(keras.ops.convert_to_numpy(self.standardizer.mean))
            std = tf.constant(keras.ops.convert_to_numpy(self.standardizer.std))
            standardize = lambda x, y: ((x - mean) / std, y)  # noqa: E731
            train = train.map(standardize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            if validation is not None:
                validation = validation.map(standardize, num_parallel_calls=tf.data.AUTOTUNE,
                                            deterministic=True)
        return train, validation

    def summary(self):
        """One paragraph for people: size, kind, labels, likelihood, split, notes."""
        shape = "x".join(map(str, self.feature_shape))
        text = [f"{self.path}: {self.num_examples} examples of shape {shape} ({self.kind})"]
        if self.labels is not None:
            names = ", ".join(self.class_names[:10]) + (", ..." if self.num_classes > 10 else "")
            text.append(f"{self.num_classes} classes ({names})")
        else:
            text.append("no labels")
        chosen = "suggested" if self.likelihood == self.suggested_likelihood else "asked for"
        text.append(f"likelihood {self.likelihood!r} ({chosen})")
        text.append(f"{len(self.train_indices)} train / {len(self.validation_indices)} validation "
                    f"examples (seed {self.seed})")
        if self.standardizer is not None:
            text.append("standardized with the training part's mean and std")
        return "; ".join(text) + "." + "".join(" " + note for note in self.notes)

    def _indices(self, part):
        if part == "train":
            return self.train_indices
        if part == "validation":
            return self.validation_indices
        if part == "all":
            return np.arange(self.num_examples)
        raise ValueError(f"unknown part {part!r}; expected one of {list(PARTS)}")


# ----------------------------------------------------------------------------- the entry point

def load_file(path, *, label_column=None, image_size=None, validation_fraction=0.1, seed=0,
              standardize=None, likelihood=None):
    """Reads a user's data file or image folder into a :class:`UserData` (see the module doc).

    Args:
      path: a ``.npy``, ``.npz``, ``.csv`` or ``.tsv`` file, or a folder of images.
      label_column: tables only: the column holding the labels, by header name (str) or
        0-based index (int; negative counts from the end). It is removed from the features; its
        values (numbers or strings) become classes ``0 .. K-1`` in sorted order, their original
        text in ``class_names``.
      image_size: image folders only: ``(H, W)`` or an int for square images; every image is
        resized to it (bilinear, antialiased, rounded back to 8 bits). Without it all images
        must have the same size.
      validation_fraction: the share of examples held out, in [0, 1): ``round(fraction * N)``,
        at least 1 when the fraction is > 0, drawn uniformly at random from ``seed``.
      seed: integer seed of the held-out draw (and the default shuffling seed of
        :meth:`UserData.datasets`); ``None`` draws a different split every call.
      standardize: ``None``: standardize when the values are real (suggested likelihood
        ``"gaussian-learned"``); ``True`` / ``False``: always / never. Statistics come from the training
        part only. ``True`` with a likelihood of [0, 1] values or counts is a ValueError, since
        standardized values leave its support.
      likelihood: one of :data:`LIKELIHOODS` (every likelihood a model takes, e.g.
        ``"negative-binomial"`` for over-dispersed counts) to check the values against its
        support (:func:`tfvae.models.likelihoods.facts`), or ``None`` for the suggested one.

    Returns:
      a :class:`UserData`.

    Raises:
      DataNotFoundError: ``path`` does not exist, or a folder holds no images.
      CorruptDataError: the file cannot be read or a value is unfit; one line naming the file
        and where.
      ValueError: an invalid argument.

    Example:
      >>> data = tfvae.data.load_file("digits/", image_size=28)
      >>> data.kind, data.feature_shape, data.class_names
      ('images', (28, 28, 1), ('0', '1', ...))
    """
    path = pathlib.Path(path).expanduser()
    validation_fraction = _check_fraction(validation_fraction)
    seed = None if seed is None else _check_seed(seed)
    if standardize not in (None, True, False):
        raise ValueError(f"standardize must be None, True or False, got {standardize!r}")
    if likelihood is not None and likelihood not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {likelihood!r}; expected one of {list(LIKELIHOODS)} "
                         "or None")
    if not path.exists():
        raise DataNotFoundError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    is_table = path.is_file() and suffix in _DELIMITERS
    if label_column is not None and not is_table:
        where = ("the array 'y'" if suffix == ".npz" else "the class sub-folders"
                 if path.is_dir() else "nowhere: .npy files hold no labels")
        raise ValueError(f"label_column applies to .csv / .tsv files; the labels of {path} come "
                         f"from {where}")
    if image_size is not None and not path.is_dir():
        raise ValueError(f"image_size applies to folders of images; {path} is a file")
    if path.is_dir():
        read = _read_image_folder(path, _check_image_size(image_size))
    elif suffix in _ARRAY_SUFFIXES:
        read = _read_npy(path) if suffix == ".npy" else _read_npz(path)
    elif is_table:
        read = _read_table(path, _DELIMITERS[suffix], label_column)
    else:
        raise ValueError(f"{path}: unsupported file type {path.suffix!r}; expected .npy, .npz, "
                         ".csv, .tsv or a folder of images")
    return _finish(path, read, validation_fraction, seed, standardize, likelihood)


# ----------------------------------------------------------------------------- readers

@dataclasses.dataclass
class _Read:
    """What a reader found: ``stored / scale`` are the values; ``where(i, j)`` names example i's
    flat feature j as a user finds it in the file."""

    format: str
    stored: np.ndarray
    scale: float
    where: object
    raw_labels: object = None
    feature_names: object = None
    notes: list = dataclasses.field(default_factory=list)
    #: class names already known (image folders), with ``raw_labels`` their indices
    class_names: object = None


def _read_npy(path):
    array = _np_load(path)
    return _Read("npy", _features_array(path, array, "the array"), 1.0,
                 _array_where("element ", array.shape))


def _read_npz(path):
    archive = _np_load(path)
    with archive:
        names = list(archive.files)
        if not names:
            raise CorruptDataError(f"{path}: empty .npz archive, expected an array 'x' [N, ...]")
        x_name = next((n for n in ("x", "X") if n in names), None)
        if x_name is None:
            if len(names) > 1:
                raise CorruptDataError(
                    f"{path}: no array named 'x' among the {len(names)} arrays "
                    f"{', '.join(repr(n) for n in names)}; save the features as 'x' (and the "
                    "labels as 'y')")
            x_name = names[0]
        y_name = next((n for n in ("y", "Y") if n in names and n != x_name), None)
        x = _npz_array(path, archive, x_name)
        y = None if y_name is None else _npz_array(path, archive, y_name)
    read = _Read("npz", _features_array(path, x, f"array {x_name!r}"), 1.0,
                 _array_where(x_name, x.shape))
    ignored = [n for n in names if n not in (x_name, y_name)]
    if ignored:
        read.notes.append(f"Arrays not used: {', '.join(map(repr, ignored))}.")
    if y is not None:
        if y.ndim != 1 or len(y) != len(x):
            raise CorruptDataError(f"{path}: labels {y_name!r} must be one per example, shape "
                                   f"({len(x)},), got {y.shape}")
        if y.dtype.kind not in "biuUSf":
            raise CorruptDataError(f"{path}: labels {y_name!r} must be numbers or strings, got "
                                   f"dtype {y.dtype}")
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            bad = int(np.flatnonzero(~np.isfinite(y))[0])
            raise CorruptDataError(f"{path}: label {y_name}[{bad}] is {y[bad]!r}, not a finite "
                                   "number")
        read.raw_labels = y
    return read


def _np_load(path):
    if path.stat().st_size == 0:
        raise CorruptDataError(f"{path}: empty file")
    with open(path, "rb") as f:
        magic = f.read(6)
    # checked first: np.load takes anything else for a pickle and would blame object arrays
    if path.suffix.lower() == ".npy" and magic != b"\x93NUMPY":
        raise CorruptDataError(f"{path}: not a valid .npy file (no NumPy header; save it with "
                               "numpy.save)")
    if path.suffix.lower() == ".npz" and not magic.startswith(b"PK"):
        raise CorruptDataError(f"{path}: not a valid .npz file (not a zip archive; save it with "
                               "numpy.savez)")
    try:
        # allow_pickle=False: a data file must never run code
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise CorruptDataError(f"{path}: holds Python objects (a pickled object array), "
                                   "which are not loaded; save a numeric array") from None
        raise CorruptDataError(f"{path}: not a valid {path.suffix} file ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise CorruptDataError(f"{path}: not a valid {path.suffix} file ({exc})") from None


def _npz_array(path, archive, name):
    try:
        return archive[name]
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise CorruptDataError(f"{path}: array {name!r} holds Python objects, which are not "
                                   "loaded; save numbers") from None
        raise CorruptDataError(f"{path}: array {name!r} is damaged ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise CorruptDataError(f"{path}: array {name!r} is damaged ({exc})") from None


def _features_array(path, array, what):
    """[N, D] vectors, [N, H, W] grey (given a channel axis) or [N, H, W, C] images, numbers only."""
    if array.dtype.kind not in "biuf":
        raise CorruptDataError(f"{path}: {what} has dtype {array.dtype}; expected numbers "
                               "(bool, integer or float)")
    if array.ndim not in (2, 3, 4):
        raise CorruptDataError(
            f"{path}: {what} has shape {array.shape}; expected one example per row: [N, D] "
            "vectors, [N, H, W] grey images or [N, H, W, C] images")
    return array[..., None] if array.ndim == 3 else array


def _array_where(name, shape):
    rank = len(shape)

    def where(i, j):
        index = (i,) + tuple(int(k) for k in np.unravel_index(j, shape[1:]))
        return f"{name}[{', '.join(map(str, index[:rank]))}]"
    return where


def _read_table(path, delimiter, label_column):
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: drop the byte-order mark of Excel
    except UnicodeDecodeError as exc:
        raise CorruptDataError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save "
                               "it as UTF-8 CSV") from None
    rows, lines = [], []
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        for row in reader:
            cells = [cell.strip() for cell in row]
            if any(cells):  # blank lines (a trailing newline, gaps) carry no example
                rows.append(cells)
                lines.append(reader.line_num)
    except csv.Error as exc:
        raise CorruptDataError(f"{path}: row {reader.line_num}: {exc}") from None
    if not rows:
        raise CorruptDataError(f"{path}: empty file, expected rows of numbers")
    header = rows[0] if _is_header(rows, label_column) else None
    notes = []
    if header is not None:
        header_line = lines[0]
        rows, lines = rows[1:], lines[1:]
        if not rows:
            raise CorruptDataError(f"{path}: only a header row ({_cut(delimiter.join(header))}), "
                                   "no data rows")
        notes.append(f"Row {header_line} read as the header.")
    width = len(header) if header is not None else len(rows[0])
    first_line = header_line if header is not None else lines[0]
    for cells, line in zip(rows, lines):
        if len(cells) != width:
            raise CorruptDataError(
                f"{path}: row {line} has {len(cells)} fields, expected {width} (as in row "
                f"{first_line})")
    label_index = _label_index(path, label_column, header, width)
    columns = [c for c in range(width) if c != label_index]
    if not columns:
        raise CorruptDataError(f"{path}: no feature columns besides the label column")

    def where(i, j):
        column = columns[j]
        name = f" ({header[column]!r})" if header is not None else ""
        return f"row {lines[i]}, column {column + 1}{name}"

    values = np.empty((len(rows), len(columns)), np.float64)
    raw_labels = [] if label_index is not None else None
    for i, cells in enumerate(rows):
        if label_index is not None:
            label = cells.pop(label_index)
            if not label:
                raise CorruptDataError(f"{path}: row {lines[i]}, column {label_index + 1} "
                                       "(the label) is empty")
            raw_labels.append(label)
        try:
            values[i] = list(map(float, cells))
        except ValueError:
            j = next(j for j, cell in enumerate(cells) if not _is_number(cell))
            what = "empty" if not cells[j] else f"{_cut(cells[j])!r}, not a number"
            raise CorruptDataError(f"{path}: {where(i, j)} is {what}") from None
    feature_names = None if header is None else tuple(header[c] for c in columns)
    return _Read(path.suffix.lower()[1:], values, 1.0, where,
                 raw_labels=raw_labels, feature_names=feature_names, notes=notes)


def _is_header(rows, label_column):
    first = rows[0]
    if isinstance(label_column, str) and label_column in first:
        return True
    # a header has no numbers, so a typo in a first data row ("1,oops,3") is reported, not eaten
    if any(_is_number(cell) for cell in first):
        return False
    return len(rows) < 2 or any(_is_number(cell) for cell in rows[1])


def _label_index(path, label_column, header, width):
    if label_column is None:
        return None
    if isinstance(label_column, str):
        if header is None:
            raise CorruptDataError(
                f"{path}: label_column {label_column!r} names a column, but the file has no "
                "header row (its first row is all numbers); give the column's 0-based index")
        if label_column not in header:
            raise CorruptDataError(f"{path}: no column named {label_column!r}; the header names "
                                   f"{', '.join(map(repr, header))}")
        if header.count(label_column) > 1:
            raise CorruptDataError(f"{path}: several columns are named {label_column!r}; give "
                                   "the column's 0-based index")
        return header.index(label_column)
    if isinstance(label_column, bool) or not isinstance(label_column, numbers.Integral):
        raise ValueError(f"label_column must be a column name (str), a 0-based index (int) or "
                         f"None, got {label_column!r}")
    if not -width <= label_column < width:
        raise ValueError(f"label_column {label_column} is out of range for {path}, which has "
                         f"{width} columns (indices 0..{width - 1}, or negative from the end)")
    return int(label_column) % width


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _count(n, singular, plural=None):
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def _cut(text, limit=40):
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _read_image_folder(folder, image_size):
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    class_dirs = [p for p in entries if p.is_dir()]
    top_images = [p for p in entries if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if class_dirs and top_images:
        raise CorruptDataError(
            f"{folder}: holds both images ({top_images[0].name}, ...) and sub-folders "
            f"({class_dirs[0].name}/, ...); put every image in a class sub-folder, or none")
    skipped = [p for p in entries if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES]
    files, raw_labels, class_names = top_images, None, None
    if class_dirs:
        files, raw_labels = [], []
        for label, class_dir in enumerate(class_dirs):
            inside = sorted(p for p in class_dir.iterdir() if not p.name.startswith("."))
            images = [p for p in inside if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
            skipped += [p for p in inside if p not in images]
            if not images:
                raise DataNotFoundError(f"{class_dir}: the class folder {class_dir.name!r} holds "
                                        f"no images ({', '.join(IMAGE_SUFFIXES)})")
            files += images
            raw_labels += [label] * len(images)
        raw_labels = np.asarray(raw_labels, np.int64)
        class_names = tuple(p.name for p in class_dirs)
    if not files:
        raise DataNotFoundError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in the "
                                "folder or in sub-folders one level down")
    images = [_decode_image(p) for p in files]
    notes = []
    if skipped:
        notes.append(f"Skipped {_count(len(skipped), 'entry', 'entries')} that are not images "
                     f"({_cut(skipped[0].relative_to(folder).as_posix())}, ...).")
    images = _common_channels(images, files, folder, notes)
    if image_size is None:
        sizes = {}
        for p, image in zip(files, images):
            sizes.setdefault(image.shape[:2], p)
            if len(sizes) > 1:
                (size_a, a), (size_b, b) = sizes.items()
                raise CorruptDataError(
                    f"{folder}: images of different sizes: {a.relative_to(folder)} is "
                    f"{size_a[0]}x{size_a[1]} (height x width), {b.relative_to(folder)} is "
                    f"{size_b[0]}x{size_b[1]}; pass image_size to resize them all")
    else:
        resized = sum(image.shape[:2] != image_size for image in images)
        images = [_resize(image, image_size) for image in images]
        if resized:
            notes.append(f"Resized {resized} of {_count(len(images), 'image')} to "
                         f"{image_size[0]}x{image_size[1]}.")
    stored = np.stack(images)
    shape = stored.shape[1:]

    def where(i, j):
        row, column, channel = np.unravel_index(j, shape)
        return f"{files[i].relative_to(folder)} (pixel row {row + 1}, column {column + 1})"

    return _Read("images", stored, 255.0, where, raw_labels=raw_labels, notes=notes,
                 class_names=class_names)


def _decode_image(path):
    try:
        data = path.read_bytes()
        if not data:
            raise CorruptDataError(f"{path}: empty file, not an image")
        # dtype=uint8 also brings 16-bit PNGs to 8 bits; expand_animations=False: a GIF's first frame
        image = tf.io.decode_image(data, dtype=tf.uint8, expand_animations=False)
    except tf.errors.OpError as exc:
        # TF wraps the decoder's reason in "{{function_node ...}} reason [Op:DecodeImage]"
        message = re.sub(r"\{\{.*?\}\}|\[Op:.*$", "", exc.message).strip() or type(exc).__name__
        raise CorruptDataError(f"{path}: not a readable image ({_cut(message, 120)})") from None
    except OSError as exc:
        raise CorruptDataError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return image.numpy()


def _common_channels(images, files, folder, notes):
    """Grey (1) or RGB (3) for every image: alpha is dropped (2 → 1, 4 → 3 channels), and when
    grey and colour images mix, the grey ones become RGB by repeating their level."""
    with_alpha = sum(image.shape[-1] in (2, 4) for image in images)
    if with_alpha:
        images = [image[..., :-1] if image.shape[-1] in (2, 4) else image for image in images]
        notes.append(f"Dropped the alpha channel of {_count(with_alpha, 'image')}.")
    grey = [i for i, image in enumerate(images) if image.shape[-1] == 1]
    if grey and len(grey) < len(images):
        images = [np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
                  for image in images]
        notes.append(f"Converted {_count(len(grey), 'grey image')} to RGB (grey level repeated in the three "
                     f"channels; e.g. {files[grey[0]].relative_to(folder)}) to match the "
                     f"{_count(len(images) - len(grey), 'colour image')}.")
    return images


def _resize(image, size):
    if image.shape[:2] == size:
        return image
    resized = tf.image.resize(tf.cast(image, tf.float32), size, method="bilinear", antialias=True)
    return np.clip(np.round(resized.numpy()), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------- checks and split

def _finish(path, read, validation_fraction, seed, standardize, likelihood):
    stored = read.stored
    if len(stored) == 0:
        raise CorruptDataError(f"{path}: no examples (0 rows)")
    if stored.dtype.kind == "f":  # checked in the file's own precision, before float32
        flat = stored.reshape(len(stored), -1)
        bad = ~np.isfinite(flat)
        problem = "not a finite number"
        if not bad.any():
            bad = np.abs(flat) > np.finfo(np.float32).max
            problem = "beyond float32's range (±3.4e38)"
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise CorruptDataError(f"{path}: {read.where(i, j)} is {flat[i, j]:g}, {problem}")
    if read.scale == 1:  # image folders keep their uint8 pixels (a quarter of the memory)
        stored = stored.astype(np.float32)
    values = stored.reshape(len(stored), -1)
    scaled = values if read.scale == 1 else values.astype(np.float32) / np.float32(read.scale)
    suggested = _suggest_likelihood(scaled)
    if likelihood is None:
        likelihood = suggested
    else:
        _check_support(path, scaled, likelihood, read.where)
    if standardize is None:
        standardize = likelihoods.facts(suggested).standardization \
            and likelihoods.facts(likelihood).standardization
    elif standardize:
        problem = likelihoods.standardization_problem(likelihood)
        if problem is not None:
            raise ValueError(problem)
    feature_shape = tuple(int(d) for d in stored.shape[1:])
    counts = likelihoods.facts(suggested).support == "counts"
    if len(feature_shape) == 3:
        kind = "images"
    else:
        kind = "counts" if counts else "vectors"
    labels, class_names = _encode_labels(read)
    train_indices, validation_indices = _split(path, len(stored), validation_fraction, seed)
    standardizer = None
    if standardize:
        standardizer = Standardization.from_data(scaled[train_indices].reshape(
            (len(train_indices),) + feature_shape), name="standardization")
    notes = list(read.notes)
    if kind == "images" and counts and read.scale == 1:
        notes.append("Integer pixel values are treated as counts; divide by their maximum (e.g. "
                     "255) before saving for grey levels in [0, 1].")
    return UserData(
        path=str(path), format=read.format, kind=kind, feature_shape=feature_shape,
        labels=labels, class_names=class_names, feature_names=read.feature_names,
        likelihood=likelihood, suggested_likelihood=suggested, standardizer=standardizer,
        validation_fraction=validation_fraction, seed=seed, train_indices=train_indices,
        validation_indices=validation_indices, notes=tuple(notes), _stored=stored,
        _scale=float(read.scale))


def _suggest_likelihood(values):
    if np.all((values == 0) | (values == 1)):
        # binary data: "bernoulli" (whose check admits grey levels in [0, 1] too, with a warning)
        return "bernoulli"
    return next(name for name in _SUGGESTIONS if not likelihoods.outside_support(name, values).any())


def _check_support(path, values, likelihood, where):
    outside = likelihoods.outside_support(likelihood, values)
    if outside.any():
        i, j = np.argwhere(outside)[0]
        raise CorruptDataError(f"{path}: the {likelihood} likelihood models "
                               f"{likelihoods.facts(likelihood).values}, but {where(i, j)} is "
                               f"{values[i, j]:g}")


def _encode_labels(read):
    """Labels as int64 0..K-1 and the class names (strings); numbers are ordered by value."""
    if read.raw_labels is None:
        return None, None
    if read.class_names is not None:
        return read.raw_labels, read.class_names
    raw = np.asarray(read.raw_labels)
    if raw.dtype.kind in "US" and all(_is_number(v) for v in raw.tolist()):
        raw = raw.astype(np.float64)
    if raw.dtype.kind in "biuf":
        values, labels = np.unique(raw, return_inverse=True)
        names = tuple(str(int(v)) if float(v).is_integer() else repr(float(v)) for v in values)
    else:
        values, labels = np.unique(raw.astype(str), return_inverse=True)
        names = tuple(str(v) for v in values)
    return labels.reshape(-1).astype(np.int64), names


def _split(path, num_examples, fraction, seed):
    if fraction == 0:
        return np.arange(num_examples), np.zeros(0, np.int64)
    held_out = max(1, int(round(fraction * num_examples)))
    if held_out >= num_examples:
        raise CorruptDataError(
            f"{path}: {num_examples} examples are too few to hold out validation_fraction="
            f"{fraction} ({held_out} examples) and still train; pass validation_fraction=0")
    order = np.random.default_rng(seed).permutation(num_examples)
    return np.sort(order[held_out:]), np.sort(order[:held_out])


def _check_fraction(value):
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or not 0 <= value < 1):
        raise ValueError(f"validation_fraction must be a number in [0, 1), got {value!r}")
    return float(value)


def _check_seed(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"seed must be an integer or None, got {value!r}")
    return int(value)


def _check_image_size(value):
    if value is None:
        return None
    size = (value, value) if isinstance(value, numbers.Integral) else value
    try:
        size = tuple(size)
    except TypeError:
        size = ()
    if (len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, numbers.Integral)
                              or s < 1 for s in size)):
        raise ValueError(f"image_size must be a positive int or a pair (height, width) of them, "
                         f"got {value!r}")
    return tuple(int(s) for s in size)
