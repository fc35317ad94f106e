"""Sharded data: many files read as one data set, streamed, never read whole.

``open_source("data/*.tfrecord")`` (``tfvae train --dataset 'data/*.tfrecord'``) gives a
:class:`ShardSource` over the files a glob pattern matches, in sorted order. One kind per data
set:

============== ===========================================================================
``.tfrecord``  ``tf.train.Example`` records in the format below (:func:`write_shards`)
``.npy``       one array per file, ``[n, D]``, ``[n, H, W]`` or ``[n, H, W, C]`` (no labels)
``.csv``       rows of numbers (``.tsv``: tab-separated); a header row is detected per file, and
               ``label_column`` names the labels' column, as in :func:`tfvae.data.load_file`
============== ===========================================================================

Every shard must hold examples of one shape and dtype (and, for tables, the same columns); the
files are checked when the source is opened, and a difference, a damaged file or a value unfit
for the likelihood is one :class:`~tfvae.data.CorruptDataError` naming the file. The values
are taken as stored (as :func:`tfvae.data.load_file` takes a file's); one streaming pass gives
the default likelihood and the standardisation (:mod:`tfvae.data.streaming`).

**Held-out part: whole files.** ``max(1, round(validation_fraction × files))`` files, drawn
uniformly at random from ``seed`` (as a file's held-out examples are), are evaluated on; the
others train. So at least two files are needed; :func:`write_shards` cuts one file into as many
as wanted (shuffle the examples with ``shuffle_seed`` when the file is sorted, e.g. by class, or
the held-out files will not be a fair sample).

**Several workers: sharded by file.** The training pipeline carries
``tf.data.experimental.AutoShardPolicy.FILE``: under ``MultiWorkerMirroredStrategy`` worker
``i`` of ``n`` reads the training files ``i, i + n, i + 2n, ...`` of the sorted list
(:meth:`ShardSource.worker_files`) and each global batch is made of every worker's share. There
must be at least as many training files as workers (an error otherwise). The held-out pipeline
is read whole by every worker and split by example (``DATA``), as in-memory data are.

**Record format** (``.tfrecord``): each record is a ``tf.train.Example`` with the features

=========  ============  ==============================================================
``x``      float_list    the example's values in C order (float32), ``prod(shape)`` of them
``shape``  int64_list    the example's shape, ``[D]`` or ``[H, W, C]`` (optional: ``[len(x)]``)
``label``  int64_list    one class label ``0 .. K-1`` (optional; in every record or in none)
=========  ============  ==============================================================

so a shard describes itself (no file beside it). :func:`write_shards` names its files
``shard-00000-of-00012.tfrecord``, ...; TFRecord files other tools write in this format are read
the same way.

Command line::

    tfvae shards cells.csv shards/ --examples-per-shard 10000 \\
        --label-column type --shuffle-seed 0

Example:
  >>> tfvae.data.write_shards(x, labels, out_dir="shards", examples_per_shard=5000)
  >>> source = tfvae.data.open_source("shards/*.tfrecord")
  >>> source.train_size, source.held_out_size, source.likelihood
"""

import collections
import csv
import functools
import glob
import os
import pathlib
import re
import types

import numpy as np
import tensorflow as tf

from tfvae import validation
from tfvae.data import streaming, user
from tfvae.data.errors import CorruptDataError, DataNotFoundError

#: glob characters: a data set name holding one is a pattern of shards
PATTERN_CHARACTERS = "*?["
#: examples per file :func:`write_shards` writes unless told
DEFAULT_EXAMPLES_PER_SHARD = 10_000


def is_shards(dataset):
    """Whether ``dataset`` names shards: a glob pattern, or a single ``.tfrecord`` file."""
    text = os.fspath(dataset) if isinstance(dataset, os.PathLike) else dataset
    return isinstance(text, str) and (any(c in text for c in PATTERN_CHARACTERS)
                                      or text.lower().endswith(".tfrecord"))


# ------------------------------------------------------------------------------ file kinds

class Layout(collections.namedtuple("Layout", ["feature_shape", "dtype", "labelled", "columns", "detail"])):
    """What one shard holds: one example's shape, the stored dtype, whether it has labels, the
    label column of a table (None otherwise); ``detail`` is how to read this file (its header
    size, whether it has a header row), the only field shards may differ in."""

    def describe(self):
        text = f"examples of shape {self.feature_shape} ({self.dtype})"
        if self.columns is not None:
            text += f" with labels in column {self.columns + 1}"
        elif self.labelled:
            text += " with labels"
        return text


class _Kind:
    """A kind of shard: how to read a file's :class:`Layout`, scan it and stream it. Equal
    kinds (same class and options) share the cached scans."""

    suffixes = ()

    def __init__(self, label_column=None, delimiter=","):
        self.label_column, self.delimiter = label_column, delimiter

    def __eq__(self, other):
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self):
        return hash((type(self), self.label_column, self.delimiter))


class _TFRecord(_Kind):
    """``.tfrecord`` files in the record format of the module doc."""

    suffixes = (".tfrecord",)

    def __init__(self, label_column=None, delimiter=","):
        super().__init__(label_column, delimiter)
        if label_column is not None:
            raise ValueError("label_column applies to .csv / .tsv shards; a .tfrecord shard holds its labels in "
                             "the feature 'label'")

    def layout(self, path):
        try:
            first = next(iter(tf.data.TFRecordDataset(str(path)).take(1)), None)
        except tf.errors.OpError as error:
            raise CorruptDataError(f"{path}: not a readable TFRecord file ({_reason(error)})") from None
        if first is None:
            raise CorruptDataError(f"{path}: no records (an empty shard); delete it or write it again")
        try:
            features = tf.train.Example.FromString(first.numpy()).features.feature
        except Exception:  # noqa: BLE001 - any protobuf failure: not an Example
            raise CorruptDataError(f"{path}: record 0 is not a tf.train.Example (see tfvae.data.shards for the "
                                   "record format)") from None
        if "x" not in features or features["x"].WhichOneof("kind") != "float_list":
            found = {k: f.WhichOneof("kind") for k, f in features.items()}
            raise CorruptDataError(f"{path}: record 0 has no float_list feature 'x' (it has {found}); "
                                   "see tfvae.data.shards for the record format")
        size = len(features["x"].float_list.value)
        shape = tuple(features["shape"].int64_list.value) if "shape" in features else (size,)
        if len(shape) not in (1, 3) or int(np.prod(shape)) != size:
            raise CorruptDataError(f"{path}: record 0's shape {list(shape)} is not [D] or [H, W, C] of its {size} "
                                   "values of 'x'")
        return Layout(shape, "float32", "label" in features, None, "shape" in features)

    def records(self, files, seed):
        dataset = _shuffled(tf.data.Dataset.from_tensor_slices([str(f) for f in files]), len(files), seed)
        return _interleave(dataset, tf.data.TFRecordDataset, len(files))

    def decoder(self, layout):
        spec = {"x": tf.io.FixedLenFeature([int(np.prod(layout.feature_shape))], tf.float32)}
        if layout.labelled:
            spec["label"] = tf.io.FixedLenFeature([], tf.int64)

        def decode(records):
            parsed = tf.io.parse_example(records, spec)
            x = tf.reshape(parsed["x"], (-1,) + tuple(layout.feature_shape))
            return x, parsed["label"] if layout.labelled else tf.fill(tf.shape(x)[:1], tf.constant(-1, tf.int64))
        return decode

    def scan(self, path, layout):
        spec = {"x": tf.io.FixedLenFeature([int(np.prod(layout.feature_shape))], tf.float32)}
        if layout.detail:
            spec["shape"] = tf.io.FixedLenFeature([len(layout.feature_shape)], tf.int64)
        if layout.labelled:
            spec["label"] = tf.io.FixedLenFeature([], tf.int64)
        # parsed in the pipeline's threads while the batch before is summarised
        batches = tf.data.TFRecordDataset(str(path)).batch(streaming.SCAN_BATCH).map(
            lambda records: tf.io.parse_example(records, spec), num_parallel_calls=tf.data.AUTOTUNE).prefetch(1)
        summary, offset = streaming.Summary(int(np.prod(layout.feature_shape))), 0
        iterator = iter(batches)
        while True:
            try:
                parsed = {k: v.numpy() for k, v in next(iterator).items()}
            except StopIteration:
                return summary
            except tf.errors.InvalidArgumentError:
                records = tf.data.TFRecordDataset(str(path)).skip(offset).take(streaming.SCAN_BATCH)
                bad = _first_unparsable([r.numpy() for r in records], spec)
                raise CorruptDataError(f"{path}: record {offset + bad} is not an example like record 0 of the first "
                                       f"shard ({layout.describe()}); every record needs the same features "
                                       "(see tfvae.data.shards)") from None
            except tf.errors.OpError as error:
                raise CorruptDataError(f"{path}: damaged TFRecord file after record {offset} ({_reason(error)}); "
                                       "write it again") from None
            if "shape" in parsed:
                wrong = np.flatnonzero((parsed["shape"] != np.asarray(layout.feature_shape)).any(axis=1))
                if len(wrong):
                    raise CorruptDataError(f"{path}: record {offset + wrong[0]} has shape "
                                           f"{parsed['shape'][wrong[0]].tolist()}, the first shard's have "
                                           f"{list(layout.feature_shape)}")
            summary.add(parsed["x"], _where(path, offset), parsed.get("label"))
            offset += len(parsed["x"])


class _Npy(_Kind):
    """``.npy`` files: arrays of examples along their first axis, read record by record."""

    suffixes = (".npy",)

    def __init__(self, label_column=None, delimiter=","):
        super().__init__(label_column, delimiter)
        if label_column is not None:
            raise ValueError("label_column applies to .csv / .tsv shards; .npy shards hold no labels")

    def layout(self, path):
        size = os.path.getsize(path)
        try:
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                    else np.lib.format.read_array_header_2_0
                shape, fortran_order, dtype = read_header(f)
                header_bytes = f.tell()
        except (ValueError, OSError, EOFError) as error:
            raise CorruptDataError(f"{path}: not a valid .npy file ({error}); save it with numpy.save") from None
        if dtype.kind not in "biuf":
            raise CorruptDataError(f"{path}: dtype {dtype}; expected numbers (bool, integer or float)")
        if fortran_order:
            raise CorruptDataError(f"{path}: saved in Fortran order, which is not read by record; save "
                                   "numpy.ascontiguousarray(x)")
        if len(shape) not in (2, 3, 4):
            raise CorruptDataError(f"{path}: shape {shape}; expected one example per row: [N, D] vectors, "
                                   "[N, H, W] grey images or [N, H, W, C] images")
        expected = header_bytes + int(np.prod(shape)) * dtype.itemsize
        if size != expected:
            raise CorruptDataError(f"{path}: {size} bytes, but its header ({shape}, {dtype}) needs {expected}: "
                                   "the file is truncated or damaged")
        feature_shape = tuple(int(d) for d in shape[1:]) + ((1,) if len(shape) == 3 else ())
        return Layout(feature_shape, dtype.str, False, None, header_bytes)

    def records(self, files, seed):
        layout = next(iter(files.values()))
        record_bytes = np.dtype(layout.dtype).itemsize * int(np.prod(layout.feature_shape))
        headers = tf.constant([layout.detail for layout in files.values()], tf.int64)
        dataset = tf.data.Dataset.from_tensor_slices(([str(f) for f in files], headers))
        return _interleave(_shuffled(dataset, len(files), seed),
                           lambda f, h: tf.data.FixedLengthRecordDataset(f, record_bytes, header_bytes=h), len(files))

    def decoder(self, layout):
        dtype = np.dtype(layout.dtype)

        def decode(records):
            x = tf.io.decode_raw(records, tf.as_dtype(dtype.newbyteorder("=")), little_endian=dtype.byteorder != ">")
            x = tf.reshape(tf.cast(x, tf.float32), (-1,) + tuple(layout.feature_shape))
            return x, tf.fill(tf.shape(x)[:1], tf.constant(-1, tf.int64))
        return decode

    def scan(self, path, layout):
        array = np.load(path, mmap_mode="r", allow_pickle=False)
        summary = streaming.Summary(int(np.prod(layout.feature_shape)))
        shape = (len(array), int(np.prod(layout.feature_shape)))
        for start in range(0, len(array), streaming.SCAN_BATCH):
            summary.add(np.asarray(array[start:start + streaming.SCAN_BATCH]).reshape(-1, shape[1]),
                        _where(path, start))
        return summary


class _Table(_Kind):
    """``.csv`` / ``.tsv`` files of numbers, one example per row, read line by line."""

    suffixes = (".csv", ".tsv")

    def layout(self, path):
        rows = []
        try:
            with open(path, encoding="utf-8-sig", newline="") as f:
                for cells in csv.reader(f, delimiter=self.delimiter):
                    if any(cell.strip() for cell in cells):
                        rows.append([cell.strip() for cell in cells])
                    if len(rows) == 2:
                        break
        except (UnicodeDecodeError, csv.Error) as error:
            raise CorruptDataError(f"{path}: not UTF-8 text of {self.delimiter!r}-separated values ({error})") from None
        if not rows:
            raise CorruptDataError(f"{path}: empty file, expected rows of numbers")
        header = rows[0] if user._is_header(rows, self.label_column) else None
        width = len(rows[0])
        label_index = user._label_index(path, self.label_column, header, width)
        return Layout((width - (label_index is not None),), "numbers", label_index is not None, label_index,
                      int(header is not None))

    def _lines(self, path, has_header):
        lines = tf.data.TextLineDataset(path)
        # blank lines carry no example (a trailing newline, gaps), as in tfvae.data.load_file
        return lines.filter(lambda line: tf.strings.length(tf.strings.strip(line)) > 0).skip(has_header)

    def records(self, files, seed):
        headers = tf.constant([layout.detail for layout in files.values()], tf.int64)
        dataset = tf.data.Dataset.from_tensor_slices(([str(f) for f in files], headers))
        return _interleave(_shuffled(dataset, len(files), seed), self._lines, len(files))

    def _split(self, layout, lines, dtype):
        width = layout.feature_shape[0] + layout.labelled
        defaults = [tf.constant([], tf.string) if c == layout.columns else tf.constant([], dtype)
                    for c in range(width)]
        lines = tf.strings.regex_replace(lines, "^\ufeff", "")  # a byte-order mark (Excel) is no data
        fields = tf.io.decode_csv(lines, defaults, field_delim=self.delimiter)
        labels = fields.pop(layout.columns) if layout.labelled else None
        return tf.stack(fields, axis=1), labels

    def decoder(self, layout, classes=None):
        table = None
        if classes:
            table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(classes)), tf.constant(list(classes.values()), tf.int64)), default_value=-1)

        def decode(lines):
            x, labels = self._split(layout, lines, tf.float32)
            if table is None:
                return x, tf.fill(tf.shape(x)[:1], tf.constant(-1, tf.int64))
            return x, table.lookup(tf.strings.strip(labels))
        return decode

    def scan(self, path, layout):
        batches = self._lines(str(path), layout.detail).batch(streaming.SCAN_BATCH)
        summary, offset = streaming.Summary(layout.feature_shape[0]), 0
        iterator = iter(batches)
        for lines in iterator:
            try:
                x, labels = self._split(layout, lines, tf.float64)
            except tf.errors.OpError as error:
                row = re.search(r"record (\d+)", str(error))
                where = f"data row {offset + int(row.group(1)) + 1}" if row else f"data rows {offset + 1}.."
                raise CorruptDataError(f"{path}: {where} (header not counted) is not {layout.feature_shape[0]} "
                                       f"numbers{' and a label' if layout.labelled else ''} ({_reason(error)})") \
                    from None
            labels = None if labels is None else [v.decode().strip() for v in labels.numpy()]
            if labels is not None and "" in labels:
                raise CorruptDataError(f"{path}: data row {offset + labels.index('') + 1}, column "
                                       f"{layout.columns + 1} (the label) is empty")
            summary.add(x.numpy(), _where(path, offset, "data row", 1), labels)
            offset += len(lines)
        return summary


KINDS = {suffix: kind for kind in (_TFRecord, _Npy, _Table) for suffix in kind.suffixes}


def _shuffled(files, count, seed):
    return files if seed is None else files.shuffle(count, seed=seed, reshuffle_each_iteration=True)


def _interleave(files, read, count):
    # deterministic: a seeded run replays exactly; several files at once mix the examples
    return files.interleave(read, cycle_length=min(count, streaming.CYCLE_LENGTH), block_length=1,
                            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _where(path, offset, unit="record", base=0):
    return lambda i, j: f"{path}, {unit} {offset + int(i) + base}, feature {int(j)}"


def _reason(error):
    lines = [line.strip() for line in str(getattr(error, "message", error)).splitlines() if line.strip()]
    return re.sub(r"\s*\[Op:.*$", "", lines[0]) if lines else type(error).__name__


def _first_unparsable(records, spec):
    for i, record in enumerate(records):
        try:
            tf.io.parse_single_example(record, spec)
        except tf.errors.OpError:
            return i
    return 0


@functools.lru_cache(maxsize=4096)
def _scan_file(kind, path, size, modified, layout):
    """The :class:`~tfvae.data.streaming.Summary` of one file (cached on its size and mtime)."""
    return kind.scan(path, layout)


# ------------------------------------------------------------------------------ the source

class ShardSource(streaming.StreamSource):
    """The shards a glob pattern matches (see the module doc), as a :class:`tfvae.data.Source`.

    Args:
      pattern: a glob (``"data/*.tfrecord"``, ``"~/cells/part-*.csv"``) or one ``.tfrecord`` path.
      seed: the held-out files' draw and the training pipeline's shuffling.
      likelihood: checked against the values; None: the values' default.
      label_column: tables only, as in :func:`tfvae.data.load_file`.
      validation_fraction: the share of files held out (at least one).
      limit: train on the first ``limit`` examples of the training files only.

    Attributes (besides :class:`tfvae.data.Source`'s):
      files: every file, sorted; train_files, held_out_files: the two parts, sorted.
      class_names: a table's original labels (``class_names[k]`` is class k), else None.
    """

    _shard_by_file = True

    def __init__(self, pattern, *, seed=0, likelihood=None, label_column=None, validation_fraction=0.1, limit=None):
        self.dataset = os.fspath(pattern)
        self._seed, self._limit = validation.integer("seed", seed), limit
        expanded = os.path.expanduser(self.dataset)
        files = sorted(p for p in glob.glob(expanded) if os.path.isfile(p))
        if not files:
            raise DataNotFoundError(f"{self.dataset}: no files match the pattern")
        suffixes = sorted({pathlib.Path(f).suffix.lower() for f in files})
        if len(suffixes) > 1 or suffixes[0] not in KINDS:
            raise ValueError(f"{self.dataset} matches files of the kind(s) {', '.join(suffixes)}; shards must all be "
                             f"one of {', '.join(KINDS)} (narrow the pattern, e.g. '*.tfrecord')")
        self._kind = KINDS[suffixes[0]](label_column, "\t" if suffixes[0] == ".tsv" else ",")
        self.files = [pathlib.Path(f) for f in files]
        layouts = {path: self._kind.layout(path) for path in self.files}
        first, reference = next(iter(layouts.items()))
        for path, layout in layouts.items():
            if layout[:4] != reference[:4]:
                raise CorruptDataError(f"shards differ: {path} holds {layout.describe()}, but {first} holds "
                                       f"{reference.describe()}; every shard must hold examples of one shape and dtype")
        self._layouts, self._layout = layouts, reference
        held = _held_out_files(self.dataset, len(files), validation_fraction, self._seed)
        self.held_out_files = [p for i, p in enumerate(self.files) if i in held]
        self.train_files = [p for i, p in enumerate(self.files) if i not in held]
        workers = self._num_workers()
        if workers > len(self.train_files):
            raise ValueError(f"{self.dataset}: {len(self.train_files)} training files for {workers} workers; sharding "
                             "by file needs at least one per worker: write more, smaller shards "
                             "(tfvae shards ... --examples-per-shard N)")
        if workers > 1 and limit is not None:
            raise ValueError(f"limit={limit} with {workers} workers: each worker reads its own files, so the first "
                             "examples are no one set; write the examples wanted as shards instead")
        self.name = _name(self.dataset)
        self.feature_shape = tuple(reference.feature_shape)
        self.held_out_split = "held-out files"
        self._example_bytes = 4 * int(np.prod(self.feature_shape))
        summaries = {p: _scan_file(self._kind, p, os.path.getsize(p), os.path.getmtime(p), layouts[p])
                     for p in self.files}
        train = streaming.Summary.merged(summaries[p] for p in self.train_files)
        held_out = streaming.Summary.merged(summaries[p] for p in self.held_out_files)
        every = self._resolve(train, held_out, likelihood, self.dataset)
        self.class_names, self._classes = None, None
        if isinstance(self._kind, _Table) and reference.labelled:
            raw = sorted(every.labels)
            encoded, self.class_names = user._encode_labels(types.SimpleNamespace(raw_labels=raw, class_names=None))
            self._classes = dict(zip(raw, encoded.tolist()))
            self.num_classes = len(self.class_names)
        else:
            self.num_classes = streaming.num_classes(every.labels, self.dataset)
        self._decoder = self._kind.decoder(reference, self._classes) if isinstance(self._kind, _Table) \
            else self._kind.decoder(reference)

    def worker_files(self, index, num_workers):
        """The training files worker ``index`` of ``num_workers`` reads (tf.data's FILE policy)."""
        return self.train_files[index::num_workers]

    def describe(self):
        return dict(super().describe(), train_files=len(self.train_files), held_out_files=len(self.held_out_files))

    def _records(self, part, seed=None):
        files = self.train_files if part == "train" else self.held_out_files
        return self._kind.records({p: self._layouts[p] for p in files}, seed)

    def _decode(self, records):
        return self._decoder(records)


def _held_out_files(dataset, count, fraction, seed):
    """Indices of the held-out files: ``max(1, round(fraction × count))`` drawn from ``seed``."""
    validation.number("validation_fraction", fraction, minimum=0.0, maximum=1.0, exclusive_minimum=True,
                      exclusive_maximum=True)
    held = max(1, int(round(fraction * count)))
    if held >= count:
        raise ValueError(f"{dataset}: {count} file(s) are too few to hold out whole files ({held} for "
                         f"validation_fraction={fraction}) and still train; write more, smaller shards "
                         "(tfvae shards ... --examples-per-shard N)")
    return set(np.random.default_rng(seed).choice(count, held, replace=False).tolist())


def _name(pattern):
    """A short name: the folder of the shards (``data/*.tfrecord`` → ``data``) or the file's stem."""
    path = pathlib.Path(pattern)
    if not any(c in path.name for c in PATTERN_CHARACTERS):
        return path.stem
    parent = path.parent
    while any(c in parent.name for c in PATTERN_CHARACTERS):
        parent = parent.parent
    return parent.resolve().name or "shards"


# ------------------------------------------------------------------------------ writing

def write_shard(path, x, labels=None):
    """Writes one ``.tfrecord`` file of the examples ``x [n, ...]`` (and int ``labels [n]``) in the
    record format of the module doc. No checks: :func:`write_shards` makes them."""
    x = np.asarray(x, np.float32)
    shape = tf.train.Feature(int64_list=tf.train.Int64List(value=list(x.shape[1:])))
    with tf.io.TFRecordWriter(str(path)) as writer:
        for i in range(len(x)):
            feature = {"x": tf.train.Feature(float_list=tf.train.FloatList(value=x[i].ravel().tolist())),
                       "shape": shape}
            if labels is not None:
                feature["label"] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(labels[i])]))
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())


def write_shards(x, labels=None, *, out_dir, examples_per_shard=DEFAULT_EXAMPLES_PER_SHARD, shuffle_seed=None,
                 overwrite=False):
    """Writes ``x`` (and ``labels``) as TFRecord shards ``out_dir/shard-00000-of-000NN.tfrecord``.

    Args:
      x: ``[N, D]`` vectors, ``[N, H, W]`` grey or ``[N, H, W, C]`` images; finite numbers,
        stored as float32.
      labels: None, or integer class labels ``[N]`` in ``0 .. K-1``.
      out_dir: the folder (made if missing); it must hold no ``.tfrecord`` file unless
        ``overwrite``, which deletes them first.
      examples_per_shard: examples per file (the last file holds the rest).
      shuffle_seed: None keeps the order; an integer shuffles the examples first (do so when
        ``x`` is sorted, e.g. by class: the held-out part is whole files).

    Returns:
      the paths written, sorted.

    Nothing is written when an argument is wrong, and the files appear together at the end
    (each is written under a temporary name first).

    Example:
      >>> paths = write_shards(x, y, out_dir="shards", examples_per_shard=10000, shuffle_seed=0)
    """
    x, labels = _checked_examples(x, labels)
    examples_per_shard = validation.positive_int("examples_per_shard", examples_per_shard)
    if shuffle_seed is not None:
        order = np.random.default_rng(validation.integer("shuffle_seed", shuffle_seed)).permutation(len(x))
        x, labels = x[order], None if labels is None else labels[order]
    out_dir = pathlib.Path(out_dir).expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir {out_dir} is a file, not a folder")
    existing = sorted(out_dir.glob("*.tfrecord")) if out_dir.is_dir() else []
    if existing and not overwrite:
        raise ValueError(f"{out_dir} already holds {len(existing)} .tfrecord file(s) ({existing[0].name}, ...); "
                         "choose an empty folder or overwrite them")
    count = -(-len(x) // examples_per_shard)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"shard-{i:05d}-of-{count:05d}.tfrecord" for i in range(count)]
    temporary = [path.with_name(f".{path.name}.tmp{os.getpid()}") for path in paths]
    try:
        for i, tmp in enumerate(temporary):
            part = slice(i * examples_per_shard, (i + 1) * examples_per_shard)
            write_shard(tmp, x[part], None if labels is None else labels[part])
        for path in existing:
            path.unlink()
        for tmp, path in zip(temporary, paths):
            os.replace(tmp, path)
    finally:
        for tmp in temporary:
            if tmp.exists():
                tmp.unlink()
    return paths


def write_shards_from_file(path, out_dir, *, examples_per_shard=DEFAULT_EXAMPLES_PER_SHARD, label_column=None,
                           image_size=None, shuffle_seed=None, overwrite=False):
    """Reads a file or image folder with :func:`tfvae.data.load_file` (its values and labels,
    classes ``0 .. K-1``) and writes it as shards (:func:`write_shards`); returns the paths.

    Example:
      >>> write_shards_from_file("cells.csv", "shards", label_column="type", shuffle_seed=0)
    """
    data = user.load_file(path, label_column=label_column, image_size=image_size, validation_fraction=0,
                          standardize=False)
    x, labels = data.arrays("all")
    return write_shards(x, labels, out_dir=out_dir, examples_per_shard=examples_per_shard,
                        shuffle_seed=shuffle_seed, overwrite=overwrite)


def _checked_examples(x, labels):
    x = np.asarray(x)
    if x.dtype.kind not in "biuf" or x.ndim not in (2, 3, 4) or len(x) == 0:
        raise ValueError(f"x must be numbers shaped [N, D], [N, H, W] or [N, H, W, C] with N >= 1, got "
                         f"dtype {x.dtype} and shape {x.shape}")
    x = x[..., None] if x.ndim == 3 else x
    flat = x.reshape(len(x), -1)
    bad = ~np.isfinite(flat) | (np.abs(flat.astype(np.float64)) > np.finfo(np.float32).max)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"x[{i}] holds {float(flat[i, j]):g} (feature {j}), not a finite float32 number")
    if labels is None:
        return x, None
    labels = np.asarray(labels)
    if labels.shape != (len(x),) or labels.dtype.kind not in "iu" or (labels < 0).any():
        raise ValueError(f"labels must be integers >= 0, one per example (shape ({len(x)},)), got dtype "
                         f"{labels.dtype} and shape {labels.shape}" + (
                             f" with {labels.min()}" if labels.dtype.kind in "iu" and labels.size else ""))
    return x, labels.astype(np.int64)


__all__ = ["DEFAULT_EXAMPLES_PER_SHARD", "KINDS", "Layout", "PATTERN_CHARACTERS", "ShardSource", "is_shards",
           "write_shard", "write_shards", "write_shards_from_file"]
