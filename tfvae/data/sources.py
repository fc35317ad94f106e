"""Where a data set's arrays come from.

For the file-based data sets (``mnist``, ``fashion_mnist``, ``binarized_mnist``) the first source
that has every file of the requested split wins, in this order:

1. ``data_dir/<name>/`` when the ``data_dir`` argument is given, else ``$TFVAE_DATA_DIR/<name>/``,
   holding the original file names (see :data:`tfvae.data.catalog.SPECS`);
2. for Fashion-MNIST, Debian's ``dataset-fashion-mnist`` package folder
   ``/usr/share/datasets/fashion-mnist`` (same file names);
3. tensorflow-datasets: a copy already prepared in its data directory (``$TFDS_DATA_DIR`` or
   ``~/tensorflow_datasets``), or a download when the data set's host answers a short probe.

With none of them, :class:`DataNotFoundError` names every place looked and how to provide the
files: within seconds, without reaching into tfds's download machinery offline. ``digits`` comes
from scikit-learn and is always there.

:mod:`tfvae.data.dsprites` finds its file through the same search (:func:`find_files`,
:func:`prepared_tfds_builder`).

Parsed arrays are cached in-process (keyed on the files' paths, sizes and modification times), so
evaluation code can call :func:`raw_arrays` repeatedly at no cost.
"""

import collections
import contextlib
import functools
import logging
import os
import pathlib
import socket
import threading

import numpy as np

from tfvae.data import catalog, files
from tfvae.data.errors import DataNotFoundError

#: environment variable naming the folder with one sub-folder per data set
DATA_DIR_ENV = "TFVAE_DATA_DIR"
#: seconds the network probe waits before declaring the download host unreachable
PROBE_TIMEOUT = 3.0


class RawArrays(collections.namedtuple("RawArrays", ["images", "labels", "pixel_scale", "source"])):
    """A split as stored: ``images`` uint8 ``[N, H, W, C]`` (divide by ``pixel_scale`` for [0, 1]),
    ``labels`` int64 ``[N]`` (-1 when unlabelled), ``source`` a readable origin. Arrays are
    read-only because they are shared through the cache."""


def raw_arrays(name, split, data_dir=None):
    """The split's :class:`RawArrays` from the first source that has it (see the module doc)."""
    spec = catalog.spec(name)
    catalog.check_split(name, split)
    if name == "digits":
        return _digits(split)
    looked = []
    paths = find_files(spec.folder, spec.files[split], data_dir, spec.system_folders, looked)
    if paths is not None:
        stats = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
        return _read_files(name, stats)
    found = _from_tfds(spec, split, looked)
    if found is not None:
        return found
    raise DataNotFoundError(_not_found_message(spec, split, looked))


def find_files(folder, filenames, data_dir=None, system_folders=(), looked=None):
    """The paths of ``filenames`` in the first candidate folder that holds all of them, or None.

    The candidates, in order: ``data_dir/<folder>`` when ``data_dir`` is given, else
    ``$TFVAE_DATA_DIR/<folder>`` when that is set; then each of ``system_folders`` (e.g. a Debian
    package's). For the message of a :class:`DataNotFoundError`, one line per place looked is
    appended to ``looked``: an unset ``$TFVAE_DATA_DIR``, and each folder with the files it lacks.

    Example:
      >>> find_files("dsprites", ["dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"], looked=[])
      [PosixPath('/data/dsprites/dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz')]
    """
    looked = [] if looked is None else looked
    candidates = []
    if data_dir is not None:
        candidates.append(("the data_dir argument", pathlib.Path(data_dir).expanduser() / folder))
    elif os.environ.get(DATA_DIR_ENV):
        candidates.append((f"${DATA_DIR_ENV}", pathlib.Path(os.environ[DATA_DIR_ENV]).expanduser() / folder))
    else:
        looked.append(f"${DATA_DIR_ENV}: not set")
    candidates += [("Debian package location", pathlib.Path(f)) for f in system_folders]
    for where, candidate in candidates:
        paths = [candidate / filename for filename in filenames]
        missing = [p.name for p in paths if not p.is_file()]
        if not missing:
            return paths
        looked.append(f"{candidate} ({where}): missing {', '.join(missing)}")
    return None


def _not_found_message(spec, split, looked):
    name = spec.info.name
    wanted = ", ".join(spec.files[split])
    hints = [f"set {DATA_DIR_ENV} (or pass --data-dir to the tfvae command, data_dir= in Python) to a folder holding {spec.folder}/ with "
             f"{wanted}"]
    if spec.system_folders:
        hints.append("install Debian's dataset-fashion-mnist package (apt-get install "
                     "dataset-fashion-mnist), which puts the files in " + spec.system_folders[0])
    hints.append(f"or, with network access, let tensorflow-datasets download {spec.tfds_name!r}")
    return (f"no {name!r} {split!r} data found. Looked in:\n  - " + "\n  - ".join(looked)
            + "\nTo provide it:\n  - " + "\n  - ".join(hints))


def network_available(host, port, timeout=PROBE_TIMEOUT):
    """True when a TCP connection to ``host:port`` opens within ``timeout`` seconds.

    The probe runs in a daemon thread because name resolution (``getaddrinfo``) ignores socket
    timeouts and can stall far longer on a machine with a broken resolver.
    """
    outcome = []

    def probe():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                outcome.append(True)
        except OSError:
            outcome.append(False)

    thread = threading.Thread(target=probe, daemon=True, name=f"tfvae-probe-{host}")
    thread.start()
    thread.join(timeout)
    return bool(outcome and outcome[0])


@functools.lru_cache(maxsize=16)
def _read_files(name, stats):
    spec = catalog.SPECS[name]
    paths = [pathlib.Path(path) for path, _, _ in stats]
    height, width, channels = spec.info.image_shape
    if spec.file_format == "idx":
        images, labels = files.read_idx_pair(*paths, image_size=(height, width),
                                             num_classes=spec.info.num_classes)
        labels = labels.astype(np.int64)
    else:
        images = files.read_amat(paths[0], width=height * width * channels)
        labels = np.full(len(images), -1, np.int64)
    return _freeze(images.reshape(-1, height, width, channels), labels, spec.pixel_scale,
                   str(paths[0].parent))


def _from_tfds(spec, split, looked):
    """The split from tensorflow-datasets, or None (with the reason appended to ``looked``)."""
    builder = prepared_tfds_builder(spec.tfds_name, spec.download_host, looked)
    if builder is None:
        return None
    return _tfds_arrays(spec.info.name, split, builder.data_dir, os.environ.get("TFDS_DATA_DIR") or None)


def prepared_tfds_builder(name, download_host, looked):
    """The tensorflow-datasets builder of ``name`` (in ``TFDS_DATA_DIR`` if set), prepared, and
    downloaded first if ``download_host`` ``(host, port)`` is reachable; or None, with the reason
    appended to ``looked``."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        looked.append("tensorflow-datasets: not installed")
        return None
    try:
        with _quiet_absl():  # tfds warns about every absent version folder; the outcome is said below
            builder = tfds.builder(name, data_dir=os.environ.get("TFDS_DATA_DIR") or None)
            prepared = builder.is_prepared()
    except Exception as exc:  # noqa: BLE001 - any tfds failure means "not from tfds", said below
        looked.append(f"tensorflow-datasets {name!r}: unusable ({type(exc).__name__}: {exc})")
        return None
    if not prepared:
        where = f"tensorflow-datasets {name!r} in {builder.data_dir}"
        host, port = download_host
        if not network_available(host, port):
            looked.append(f"{where}: not prepared, and {host}:{port} is unreachable, so it "
                          "cannot be downloaded (no network)")
            return None
        try:
            builder.download_and_prepare()
        except Exception as exc:  # noqa: BLE001 - reported in the DataNotFoundError message
            looked.append(f"{where}: download failed ({type(exc).__name__}: {exc})")
            return None
    return builder


@contextlib.contextmanager
def _quiet_absl():
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


@functools.lru_cache(maxsize=16)
def _tfds_arrays(name, split, prepared_dir, tfds_dir):
    import tensorflow_datasets as tfds

    spec = catalog.SPECS[name]
    builder = tfds.builder(spec.tfds_name, data_dir=tfds_dir)
    # in chunks rather than batch_size=-1, which needs the split size up front
    chunks = list(tfds.as_numpy(builder.as_dataset(split=spec.tfds_splits[split]).batch(10000)))
    images = np.concatenate([c["image"] for c in chunks]).astype(np.uint8)
    images = images.reshape((-1,) + spec.info.image_shape)
    if spec.info.num_classes is not None:
        labels = np.concatenate([c["label"] for c in chunks]).astype(np.int64)
    else:
        labels = np.full(len(images), -1, np.int64)
    return _freeze(images, labels, spec.pixel_scale, f"tensorflow-datasets ({prepared_dir})")


@functools.lru_cache(maxsize=4)
def _digits(split):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.uint8)[..., None]  # integer counts 0..16
    labels = bunch.target.astype(np.int64)
    part = slice(None, catalog.DIGITS_TRAIN_SIZE) if split == "train" else slice(catalog.DIGITS_TRAIN_SIZE, None)
    return _freeze(images[part], labels[part], catalog.SPECS["digits"].pixel_scale,
                   "scikit-learn load_digits")


def _freeze(images, labels, pixel_scale, source):
    images = np.ascontiguousarray(images)
    labels = np.ascontiguousarray(labels)
    images.flags.writeable = False
    labels.flags.writeable = False
    return RawArrays(images, labels, pixel_scale, source)
