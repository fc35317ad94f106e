"""TensorFlow Datasets by name: ``open_source("tfds:NAME[/CONFIG][:VERSION]")``.

Any image or feature data set that tensorflow-datasets has **prepared on this machine**
(``tfds.builder(NAME, data_dir=...)``: the ``data_dir`` argument / ``--data-dir``, else
``$TFDS_DATA_DIR``, else tfds's default ``~/tensorflow_datasets``) is a :class:`TfdsSource`:

* the examples: the ``Image`` feature ``image`` (or the only ``Image`` feature), else the only
  numeric ``Tensor`` feature of rank 1 to 3 (``[D]`` vectors, ``[H, W]`` grey images get a
  channel axis, ``[H, W, C]``);
* the labels: the ``ClassLabel`` feature ``label`` (or the only ``ClassLabel`` feature); none
  otherwise;
* the splits: ``train`` trains; the held-out split is ``split=`` when given, else
  ``validation``, else ``test``; a builder with neither holds out the last
  ``max(1, round(validation_fraction × N))`` training examples (tfds's ``train[a:b]`` slices);
* the values: uint8 images are divided by 255 into [0, 1], unless every pixel is 0 or 1 (images
  stored binarised, as tfds's ``binarized_mnist``), which are taken as they are; other features
  as stored. The default likelihood and the standardisation come from one streaming pass, with
  the rule :func:`tfvae.data.load_file` applies to a file (:mod:`tfvae.data.streaming`).

Nothing is downloaded: a data set that is not prepared is one :class:`DataNotFoundError` saying
how to prepare it (``tfds build NAME --data_dir DIR`` where there is a network) and where tfvae
looks (``data_dir`` / ``TFDS_DATA_DIR``). Under several workers every worker reads the whole
pipeline and keeps its part of each batch (tf.data's ``DATA`` sharding).

Tested offline with ``tfds.testing.mock_data`` (random examples of the builder's features).

Example:
  >>> source = tfvae.data.open_source("tfds:mnist", data_dir="~/tensorflow_datasets")
  >>> source.feature_shape, source.likelihood, source.num_classes, source.held_out_split
  ((28, 28, 1), 'continuous-bernoulli', 10, 'test')
"""

import os

import numpy as np
import tensorflow as tf

from tfvae.data import sources, streaming
from tfvae.data.errors import DataNotFoundError

PREFIX = "tfds:"
#: held-out splits in order of preference
HELD_OUT_SPLITS = ("validation", "test")
#: the default validation_fraction (the run layer always passes one)
DEFAULT_VALIDATION_FRACTION = 0.1


def is_tfds(dataset):
    """Whether ``dataset`` names a tensorflow-datasets builder (``"tfds:NAME"``)."""
    return isinstance(dataset, str) and dataset.startswith(PREFIX)


class TfdsSource(streaming.StreamSource):
    """A prepared tensorflow-datasets builder as a :class:`tfvae.data.Source` (see the module).

    Args:
      dataset: ``"tfds:NAME"``, ``"tfds:NAME/CONFIG"``, ``"tfds:NAME:VERSION"``.
      data_dir: tensorflow-datasets' data folder (default ``$TFDS_DATA_DIR``, else tfds's).
      seed: shuffling.
      likelihood: checked against the values; None: the values' default.
      limit: train on the first ``limit`` training examples.
      split: the held-out split (default ``validation``, else ``test``).
      validation_fraction: for a builder with no held-out split only.
    """

    def __init__(self, dataset, *, data_dir=None, seed=0, likelihood=None, limit=None, split=None,
                 validation_fraction=DEFAULT_VALIDATION_FRACTION):
        import tensorflow_datasets as tfds

        self.dataset, self._seed, self._limit = dataset, seed, limit
        builder = _prepared_builder(dataset, data_dir)
        self._builder, features = builder, builder.info.features
        self._x_key, self._label_key = _example_feature(dataset, features, tfds), _label_feature(features, tfds)
        feature = features[self._x_key]
        shape = tuple(feature.shape)
        if any(d is None for d in shape):
            raise ValueError(f"{dataset}: the feature {self._x_key!r} has examples of varying shape {shape}; tfvae "
                             "needs one shape")
        self.feature_shape = shape + ((1,) if len(shape) == 2 else ())
        self.name = builder.name
        self._splits = _splits(dataset, builder, split, validation_fraction)
        self.held_out_split = self._splits["held_out"]
        is_uint8_image = isinstance(feature, tfds.features.Image) and np.dtype(feature.np_dtype) == np.uint8
        tops = (1, 255) if is_uint8_image else (1,)
        train, held_out = (self._scan(self._splits[part], tops) for part in ("train", "held_out"))
        # pixels / 255, but images stored as 0/1 are binary already
        self._scale = 255 if is_uint8_image and max(train.maximum, held_out.maximum) > 1 else 1
        self._example_bytes = np.dtype(feature.np_dtype).itemsize * int(np.prod(shape))
        self._resolve(train, held_out, likelihood, dataset)
        self.num_classes = None if self._label_key is None else int(features[self._label_key].num_classes)

    def _records(self, part, seed=None):
        return self._examples(self._splits[part], seed)

    def _examples(self, split, seed=None):
        """``(x as stored, label)`` of a tfds split (or slice); ``seed``: shuffle its files."""
        import tensorflow_datasets as tfds

        read_config = tfds.ReadConfig(shuffle_seed=seed, shuffle_reshuffle_each_iteration=True)
        examples = self._builder.as_dataset(split=split, shuffle_files=seed is not None, read_config=read_config)
        x_key, label_key = self._x_key, self._label_key
        return examples.map(lambda e: (e[x_key], e[label_key] if label_key else tf.constant(-1, tf.int64)),
                            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    def _decode(self, x, labels):
        x = tf.cast(x, tf.float32)
        if self._scale != 1:
            x = x / float(self._scale)
        return tf.reshape(x, (-1,) + self.feature_shape), tf.cast(labels, tf.int64)

    def _scan(self, split, tops):
        """The :class:`~tfvae.data.streaming.Summary` of ``split`` (cached per prepared folder)."""
        key = (str(self._builder.data_dir), self._builder.info.full_name, split, self._x_key, self._label_key, tops)
        if key not in _SCANS:
            summary, offset = streaming.Summary(int(np.prod(self.feature_shape)), tops), 0
            for x, labels in self._examples(split).batch(streaming.SCAN_BATCH).as_numpy_iterator():
                where = (lambda o: lambda i, j: f"{self.dataset} split {split!r}, example {o + int(i)}, "
                                                f"feature {int(j)}")(offset)
                summary.add(x.reshape(len(x), -1), where, labels if self._label_key else None)
                offset += len(x)
            _SCANS[key] = summary
        return _SCANS[key]


#: (prepared folder, builder, split, features, tops) -> Summary
_SCANS = {}


def _prepared_builder(dataset, data_dir):
    name = dataset[len(PREFIX):]
    if not name:
        raise ValueError(f"{dataset!r} names no data set; expected tfds:NAME, e.g. tfds:mnist")
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise ValueError(f"{dataset} needs tensorflow-datasets: pip install tensorflow-datasets") from None
    data_dir = os.path.expanduser(str(data_dir)) if data_dir is not None else os.environ.get("TFDS_DATA_DIR") or None
    where = data_dir or "tfds's default folder (~/tensorflow_datasets)"
    how = (f"prepare it with `tfds build {name.split(':')[0]} --data_dir DIR` on a machine with network access "
           "(copy DIR here), then pass data_dir=DIR (tfvae train --data-dir DIR) or set TFDS_DATA_DIR=DIR")
    try:
        with sources._quiet_absl():  # tfds logs every version folder it does not find; the error says it all
            builder = tfds.builder(name, data_dir=data_dir)
            prepared = builder.is_prepared()
    except Exception as error:  # noqa: BLE001 - an unknown name, config or version: one message below
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataNotFoundError(f"{dataset}: no tensorflow-datasets builder {name!r} ({reason}); for a data set "
                                f"that exists, {how}") from None
    if not prepared:
        raise DataNotFoundError(f"{dataset}: tensorflow-datasets {name!r} is not prepared in {where} (looked in "
                                f"{builder.data_dir}); {how}")
    return builder


def _example_feature(dataset, features, tfds):
    """The key of the examples' feature (see the module doc)."""
    images = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
    if "image" in images or len(images) == 1:
        return "image" if "image" in images else images[0]
    tensors = [k for k, f in features.items()
               if isinstance(f, tfds.features.Tensor) and not isinstance(f, tfds.features.ClassLabel)
               and np.dtype(f.np_dtype).kind in "biuf" and 1 <= len(f.shape) <= 3]
    if not images and len(tensors) == 1:
        return tensors[0]
    described = ", ".join(f"{k} ({type(f).__name__})" for k, f in features.items())
    raise ValueError(f"{dataset}: cannot tell which feature holds the examples among {described}; tfvae reads the "
                     "Image feature 'image' (or the only Image feature), else the only numeric Tensor feature")


def _label_feature(features, tfds):
    labels = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
    if "label" in labels:
        return "label"
    return labels[0] if len(labels) == 1 else None


def _splits(dataset, builder, split, validation_fraction):
    """``{"train": spec, "held_out": spec}``: tfds split names or slices (see the module doc)."""
    names = list(builder.info.splits.keys())
    if "train" not in names:
        raise ValueError(f"{dataset} has no 'train' split (its splits: {', '.join(names)})")
    held_out = split or next((s for s in HELD_OUT_SPLITS if s in names), None)
    if held_out is not None:
        if held_out not in names or held_out == "train":
            raise ValueError(f"split {held_out!r} is not a held-out split of {dataset}; expected one of "
                             f"{', '.join(n for n in names if n != 'train')}")
        if validation_fraction != DEFAULT_VALIDATION_FRACTION:
            raise ValueError(f"validation_fraction applies to a tfds data set without a held-out split; {dataset} "
                             f"is evaluated on its {held_out!r} split")
        return {"train": "train", "held_out": held_out}
    count = builder.info.splits["train"].num_examples
    held = max(1, int(round(validation_fraction * count)))
    if held >= count:
        raise ValueError(f"{dataset}: {count} training examples are too few to hold out {held}")
    return {"train": f"train[:{count - held}]", "held_out": f"train[{count - held}:]"}


__all__ = ["HELD_OUT_SPLITS", "PREFIX", "TfdsSource", "is_tfds"]
