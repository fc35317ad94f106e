"""Sources that stream their examples (sharded files, TensorFlow Datasets): never read whole.

A :class:`StreamSource` is a :class:`tfvae.data.Source` whose examples come from a
``tf.data`` reader, in parts (files or splits). When it is opened, **one streaming pass** reads
every part once, in batches, and keeps a :class:`Summary` of each:

* every value is checked (finite, within float32's range; the likelihood's support when one is
  asked for), and a problem is one :class:`~tfvae.data.errors.CorruptDataError` naming the part
  (the file), the record and the feature;
* the default likelihood follows the rule of :func:`tfvae.data.load_file` on the values of all
  parts: all 0 or 1 → ``"bernoulli"``; all in [0, 1] → ``"continuous-bernoulli"``; non-negative
  integers → ``"poisson"``; else real values, which get ``"gaussian-learned"`` as a file's do
  (:class:`tfvae.data.FileSource`), standardised;
* the standardisation (mean and population standard deviation per feature of the training
  parts, a constant feature getting std 1, as :meth:`Standardization.from_data`) comes from
  per-batch moments merged in float64 (Chan, Golub & LeVeque 1979: for parts a, b with counts
  n_a, n_b, means m_a, m_b and summed squared deviations M_a, M_b,
  ``M = M_a + M_b + (m_b − m_a)² n_a n_b / (n_a + n_b)``), which keeps the digits that
  ``E[x²] − E[x]²`` loses when the mean is large beside the spread;
* labels are collected (their distinct values).

The summaries are cached in-process per part (a file's path, size and modification time), so
reopening a source (``tfvae evaluate``, ``plot``) costs no second pass.

The training pipeline reads the training parts interleaved (``interleave(...,
num_parallel_calls=AUTOTUNE, deterministic=True)``), shuffles the order of the files every
epoch (from ``seed``) and the examples in a buffer of :func:`shuffle_buffer` examples (an
approximate shuffle: at most about 64 MB of records are held), then batches and decodes a batch
at a time. The held-out pipeline reads its parts in a fixed order, never shuffled.

Example:
  >>> source = tfvae.data.open_source("data/*.tfrecord")     # a tfvae.data.shards.ShardSource
  >>> source.likelihood, source.train_size, source.held_out_size
  >>> train = source.train(batch_size=128, seed=0)            # (x, label) batches
"""

import math

import numpy as np
import tensorflow as tf

from tfvae.data.errors import CorruptDataError
from tfvae.data.source import EVALUATION_BATCH, Source

#: examples per batch of the statistics pass
SCAN_BATCH = 1024
#: bytes of records the training shuffle buffer holds at most (and never more than 10,000 examples)
SHUFFLE_BYTES = 64 << 20
MAX_SHUFFLE_BUFFER = 10_000
#: files read at once by the training pipeline's interleave
CYCLE_LENGTH = 16
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def shuffle_buffer(example_bytes, batch_size=1):
    """Examples held by the training shuffle: ``SHUFFLE_BYTES`` worth, between one batch and
    ``MAX_SHUFFLE_BUFFER``."""
    return int(max(batch_size, min(MAX_SHUFFLE_BUFFER, SHUFFLE_BYTES // max(int(example_bytes), 1))))


class Summary:
    """What one streaming pass learns about a part's values (flattened to ``[n, D]``).

    Attributes:
      count: examples.
      mean, m2: float64 ``[D]``: the mean and the summed squared deviations from it.
      minimum, maximum: over every value.
      problems: ``{problem: (where, value)}``, the first value that is ``"negative"``,
        ``"above_one"``, ``"not_integer"`` or, for each ``top`` given, ``"not_0_or_<top>"``.
      labels: the set of distinct labels seen (ints or strings), or None without labels.
    """

    def __init__(self, width, tops=(1,)):
        self.count = 0
        self.mean = np.zeros(width)
        self.m2 = np.zeros(width)
        self.minimum, self.maximum = math.inf, -math.inf
        self.problems = {}
        self.tops = tuple(tops)
        self.labels = None

    def add(self, values, where, labels=None):
        """Adds a batch ``values [n, D]`` (any real dtype); ``where(i, j)`` names value ``[i, j]``
        for messages; ``labels [n]`` or None."""
        values = np.asarray(values, np.float64).reshape(len(values), -1)
        if values.size:
            bad = ~np.isfinite(values)
            problem = "not a finite number"
            if not bad.any():
                bad = np.abs(values) > _FLOAT32_MAX
                problem = "beyond float32's range (±3.4e38)"
            if bad.any():
                i, j = _first(bad)
                raise CorruptDataError(f"{where(i, j)} is {values[i, j]:g}, {problem}")
            checks = {"negative": lambda v: v < 0, "above_one": lambda v: v > 1,
                      "not_integer": lambda v: v != np.round(v)}
            checks.update({f"not_0_or_{top:g}": (lambda v, t=top: (v != 0) & (v != t)) for top in self.tops})
            for name, check in checks.items():
                if name not in self.problems:
                    bad = check(values)
                    if bad.any():
                        i, j = _first(bad)
                        self.problems[name] = (where(i, j), float(values[i, j]))
            self.minimum = min(self.minimum, float(values.min()))
            self.maximum = max(self.maximum, float(values.max()))
            batch = Summary(values.shape[1])
            batch.count, batch.mean = len(values), values.mean(axis=0)
            batch.m2 = ((values - batch.mean) ** 2).sum(axis=0)
            self._merge_moments(batch)
        if labels is not None:
            self.labels = (self.labels or set()) | set(np.unique(np.asarray(labels)).tolist())

    def _merge_moments(self, other):
        n = self.count + other.count
        if other.count == 0:
            return
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (other.count / n)
        self.m2 = self.m2 + other.m2 + delta ** 2 * (self.count * other.count / n)
        self.count = n

    @classmethod
    def merged(cls, summaries):
        """One summary of several parts (problems: the first part's that has one)."""
        summaries = list(summaries)
        total = cls(len(summaries[0].mean), summaries[0].tops)
        for part in summaries:
            total._merge_moments(part)
            total.minimum, total.maximum = min(total.minimum, part.minimum), max(total.maximum, part.maximum)
            for name, found in part.problems.items():
                total.problems.setdefault(name, found)
            if part.labels is not None:
                total.labels = (total.labels or set()) | part.labels
        return total

    def std(self):
        """Population standard deviation per feature; 1 where a feature is constant."""
        std = np.sqrt(self.m2 / max(self.count, 1))
        std[std == 0] = 1.0
        return std

    def facts(self, scale=1):
        """``(binary, minimum, maximum, integer)`` of the values divided by ``scale`` (1, or one
        of ``tops``: uint8 pixels / 255 are integers only where 0 or 255)."""
        binary = f"not_0_or_{scale:g}" not in self.problems
        integer = "not_integer" not in self.problems if scale == 1 else binary
        return binary, self.minimum / scale, self.maximum / scale, integer

    def suggest_likelihood(self, scale=1):
        """The rule of :func:`tfvae.data.load_file` (``tfvae.data.user._suggest_likelihood``)."""
        binary, minimum, maximum, integer = self.facts(scale)
        if binary:
            return "bernoulli"
        if minimum >= 0 and maximum <= 1:
            return "continuous-bernoulli"
        if minimum >= 0 and integer:
            return "poisson"
        return "gaussian-learned"  # one learned sigma, as load_file chooses for real values

    def check_support(self, likelihood, scale=1):
        """Raises CorruptDataError naming the first value outside ``likelihood``'s support
        (:func:`tfvae.models.likelihoods.facts`)."""
        from tfvae.models import likelihoods

        facts = likelihoods.facts(likelihood)
        needs = facts.values
        if facts.support in ("binary", "unit-interval"):
            problems = ("negative", "above_one") if scale == 1 else ()
        elif facts.support == "counts":
            problems = ("negative", "not_integer") if scale == 1 else (f"not_0_or_{scale:g}",)
        else:
            return
        for name in problems:
            if name in self.problems:
                where, value = self.problems[name]
                raise CorruptDataError(f"the {likelihood} likelihood needs {needs}, but {where} is "
                                       f"{value / scale:g}")


class StreamSource(Source):
    """The common part of the streaming sources (see the module doc).

    A subclass sets the :class:`tfvae.data.Source` attributes and ``_example_bytes``, and defines
    :meth:`_records` (the raw records of a part, unbatched) and :meth:`_decode` (a batch of them
    → ``(x float32 [b, *feature_shape], label int64 [b])``, -1 without labels); then calls
    :meth:`_resolve` with the pass's summaries.
    """

    binarize = None
    _limit = None
    _seed = 0
    _scale = 1
    _example_bytes = 4
    #: whether the training pipeline is sharded by file across workers (tf.data's FILE policy)
    _shard_by_file = False

    def _records(self, part, seed=None):
        """The raw records of ``part`` (``"train"`` / ``"held_out"``); ``seed`` not None:
        shuffle the order of the files every epoch from it."""
        raise NotImplementedError

    def _decode(self, records):
        raise NotImplementedError

    def _resolve(self, train, held_out, likelihood, where):
        """Sets the sizes, the likelihood and the standardisation from the summaries of the
        training and held-out parts (``where`` names the data in messages)."""
        every = Summary.merged([train, held_out])
        self.train_size = min(train.count, self._limit or train.count)
        self.held_out_size = held_out.count
        suggested = every.suggest_likelihood(self._scale)
        if likelihood is None:
            likelihood = suggested
        else:
            try:
                every.check_support(likelihood, self._scale)
            except CorruptDataError as error:
                raise CorruptDataError(f"{where}: {error}") from None
        self.likelihood = likelihood
        from tfvae.models import likelihoods

        if likelihoods.facts(suggested).standardization and likelihoods.facts(likelihood).standardization:
            shape = self.feature_shape
            self.standardization = {"mean": train.mean.reshape(shape).tolist(),
                                    "scale": train.std().reshape(shape).tolist()}
        return every

    def train(self, batch_size, seed=None, shuffle=True):
        seed = self._seed if seed is None else seed
        # with a limit the first `limit` examples are the same every epoch: no file shuffle
        records = self._records("train", seed if shuffle and self._limit is None else None)
        if self._limit is not None:
            records = records.take(self._limit)
        if shuffle:
            records = records.shuffle(shuffle_buffer(self._example_bytes, batch_size), seed=seed,
                                      reshuffle_each_iteration=True)
        batches = self._batches(records, batch_size)
        options = tf.data.Options()
        if self._shard_by_file:
            # under several workers each reads its own files (see tfvae.data.shards)
            options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.FILE
        if self._num_workers() == 1:  # (a worker's share of the files has its own count)
            batches = batches.apply(tf.data.experimental.assert_cardinality(-(-self.train_size // batch_size)))
        return batches.with_options(options)

    def held_out(self, batch_size=EVALUATION_BATCH, limit=None):
        records = self._records("held_out")
        size = self.held_out_size
        if limit is not None:
            records, size = records.take(limit), min(limit, size)
        return self._batches(records, batch_size).apply(tf.data.experimental.assert_cardinality(-(-size // batch_size)))

    def arrays(self, part="train", limit=None):
        self._check_part(part)
        if part == "train":
            limit = self.train_size if limit is None else min(limit, self.train_size)
            records = self._records("train").take(limit)
        else:
            records = self._records("held_out")
            if limit is not None:
                records = records.take(limit)
        batches = list(self._batches(records, EVALUATION_BATCH).as_numpy_iterator())
        x = np.concatenate([b[0] for b in batches]) if batches else np.zeros((0,) + self.feature_shape, np.float32)
        labels = np.concatenate([b[1] for b in batches]) if batches else np.zeros(0, np.int64)
        return x, (None if self.num_classes is None else labels)

    def _batches(self, records, batch_size):
        return (records.batch(batch_size)
                .map(self._decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                .prefetch(tf.data.AUTOTUNE))

    @staticmethod
    def _num_workers():
        from tfvae import distributed

        return distributed.cluster_from_environment().num_workers


def _first(bad):
    """``(i, j)`` of the first True of a boolean ``[n, D]`` (argmax stops there; argwhere would
    list every one)."""
    return np.unravel_index(int(bad.argmax()), bad.shape)


def num_classes(labels, where):
    """K of integer labels ``0 .. K-1`` (the set seen), None without labels; -1 (unlabelled) only
    in every example or none."""
    if labels is None or labels == {-1}:
        return None
    negative = sorted(v for v in labels if v < 0)
    if negative:
        raise CorruptDataError(f"{where}: labels must be integers >= 0 (or -1 in every example for none), "
                               f"found {negative[0]}")
    return int(max(labels)) + 1


__all__ = ["CYCLE_LENGTH", "MAX_SHUFFLE_BUFFER", "SCAN_BATCH", "SHUFFLE_BYTES", "StreamSource", "Summary",
           "num_classes", "shuffle_buffer"]
