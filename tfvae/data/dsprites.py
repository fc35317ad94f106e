"""``dsprites``: the original dSprites file (Matthey et al. 2017) as a :class:`FactorDataset`.

:func:`load_dsprites` reads ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` from
``data_dir/dsprites/`` (else ``$TFVAE_DATA_DIR/dsprites/``) through the file search of
:mod:`tfvae.data.sources`, or tensorflow-datasets' ``dsprites`` (prepared already, or downloaded
where the network allows); :class:`DSprites` checks the arrays and serves the images by grid
index. ``tfvae.data.load("dsprites")`` and ``tfvae.data.factors("dsprites")`` use it. Where the file
cannot be had, the generated ``shapes2d`` has the same factor grid.

Example:
  >>> dsprites = load_dsprites()                     # or tfvae.data.factors("dsprites")
  >>> dsprites.images_for(dsprites.sample_factors(4, rng=0)).shape
  (4, 64, 64, 1)
"""

import functools
import math

import numpy as np

from tfvae.data import catalog, sources
from tfvae.data.errors import CorruptDataError, DataNotFoundError
from tfvae.data.ground_truth import FACTOR_NAMES, FACTOR_SIZES, FactorDataset

DSPRITES_FOLDER = catalog.SPECS["dsprites"].folder
DSPRITES_FILE = "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz"
DSPRITES_TFDS = catalog.SPECS["dsprites"].tfds_name
DSPRITES_HOST = ("github.com", 443)


class DSprites(FactorDataset):
    """The original dSprites images (Matthey et al. 2017) with their factor grid.

    ``latents_classes`` / ``latents_values`` of the file have six columns, ``color`` (a single
    value) first; it is dropped, leaving :data:`FACTOR_NAMES`. The file's images are in the
    grid's C order, which the constructor checks, so an image is found by its grid index.

    Args:
      images: uint8 ``[grid size, 64, 64]`` (or with a channel axis) of 0/1.
      latents_classes: int ``[grid size, 6]``, as in the file.
      latents_values: float ``[grid size, 6]``, as in the file.
      factor_sizes: the expected grid (dSprites': :data:`FACTOR_SIZES`).
      source: where the arrays came from, for messages.
    """

    name = "dsprites"
    factor_names = FACTOR_NAMES

    def __init__(self, images, latents_classes, latents_values, factor_sizes=FACTOR_SIZES,
                 source="arrays"):
        sizes = tuple(int(s) for s in factor_sizes)
        count = math.prod(sizes)
        images = np.asarray(images)
        classes = np.asarray(latents_classes)
        values = np.asarray(latents_values, np.float64)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.shape[0] != count or images.shape[-1] != 1:
            raise CorruptDataError(f"{source}: 'imgs' must be shaped [{count}, H, W] for the grid "
                                   f"{sizes}, got {images.shape}")
        for key, array in (("latents_classes", classes), ("latents_values", values)):
            if array.shape != (count, len(sizes) + 1):
                raise CorruptDataError(f"{source}: {key!r} must be shaped [{count}, {len(sizes) + 1}] "
                                       f"(color and the {len(sizes)} factors), got {array.shape}")
        if images.size and images.max() > 1:
            raise CorruptDataError(f"{source}: 'imgs' must hold 0/1 pixels, found {images.max()}")
        classes = classes[:, 1:].astype(np.int64)
        expected = np.stack(np.unravel_index(np.arange(count), sizes), axis=1)
        if not np.array_equal(classes, expected):
            row = int(np.argwhere(np.any(classes != expected, axis=1))[0, 0])
            raise CorruptDataError(f"{source}: the images are not in the factor grid's order "
                                   f"(row {row} has classes {classes[row].tolist()}, expected "
                                   f"{expected[row].tolist()})")
        self.factor_sizes = sizes
        self.image_shape = tuple(images.shape[1:])
        self._images = images.astype(np.uint8, copy=False)
        self._factor_values = tuple(_values_along(values[:, 1:], sizes, i) for i in range(len(sizes)))
        self.source = source

    def _render(self, factors):
        return self._images[self.index_of(factors)]


def _values_along(values, sizes, factor):
    """The values of one factor, read off the grid points where every other factor is class 0."""
    grid = np.zeros((sizes[factor], len(sizes)), np.int64)
    grid[:, factor] = np.arange(sizes[factor])
    return values[np.ravel_multi_index(tuple(grid.T), sizes), factor]


def load_dsprites(data_dir=None, factor_sizes=FACTOR_SIZES):
    """The :class:`DSprites` data set from the first source that has it:

    1. ``data_dir/dsprites/`` (else ``$TFVAE_DATA_DIR/dsprites/``) holding
       ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz``;
    2. tensorflow-datasets' ``dsprites``, prepared already or downloaded where the network allows.

    Raises:
      DataNotFoundError: neither has it (the message names where it looked and how to provide it).
      CorruptDataError: the file is not dSprites' npz.
    """
    looked = []
    paths = sources.find_files(DSPRITES_FOLDER, (DSPRITES_FILE,), data_dir, looked=looked)
    if paths is not None:
        stat = paths[0].stat()
        return _read_dsprites_npz(str(paths[0]), stat.st_size, stat.st_mtime_ns, tuple(factor_sizes))
    found = _dsprites_from_tfds(looked, tuple(factor_sizes))
    if found is not None:
        return found
    raise DataNotFoundError(
        "no 'dsprites' data found. Looked in:\n  - " + "\n  - ".join(looked)
        + f"\nTo provide it:\n  - set {sources.DATA_DIR_ENV} (or pass --data-dir to the tfvae command, data_dir= in Python) to a folder holding "
        f"{DSPRITES_FOLDER}/{DSPRITES_FILE} (from https://github.com/deepmind/dsprites-dataset)"
        f"\n  - or, with network access, let tensorflow-datasets download {DSPRITES_TFDS!r}"
        "\n  - or use the generated 'shapes2d', which has the same factor grid")


@functools.lru_cache(maxsize=2)
def _read_dsprites_npz(path, size, mtime_ns, factor_sizes):
    try:
        with np.load(path, allow_pickle=False, encoding="latin1") as npz:
            missing = [k for k in ("imgs", "latents_classes", "latents_values") if k not in npz.files]
            if missing:
                raise CorruptDataError(f"{path}: not dSprites' npz: no {', '.join(missing)} "
                                       f"(it holds {', '.join(npz.files)})")
            arrays = npz["imgs"], npz["latents_classes"], npz["latents_values"]
    except (OSError, ValueError) as exc:
        if isinstance(exc, CorruptDataError):
            raise
        raise CorruptDataError(f"{path}: not a readable npz file ({exc})") from None
    return DSprites(*arrays, factor_sizes=factor_sizes, source=path)


def _dsprites_from_tfds(looked, factor_sizes):
    builder = sources.prepared_tfds_builder(DSPRITES_TFDS, DSPRITES_HOST, looked)
    if builder is None:
        return None
    import tensorflow_datasets as tfds

    where = f"tensorflow-datasets {DSPRITES_TFDS!r} in {builder.data_dir}"
    names = ("label_shape", "label_scale", "label_orientation", "label_x_position", "label_y_position")
    value_names = ("value_shape", "value_scale", "value_orientation", "value_x_position",
                   "value_y_position")
    chunks = list(tfds.as_numpy(builder.as_dataset(split="train").batch(65536)))
    images = np.concatenate([c["image"] for c in chunks]).astype(np.uint8)
    classes = np.stack([np.concatenate([c[n] for c in chunks]) for n in names], axis=1)
    values = np.stack([np.concatenate([c[n] for c in chunks]) for n in value_names], axis=1)
    # tfds does not promise the file's order: put the examples back into grid order
    order = np.argsort(np.ravel_multi_index(tuple(classes.astype(np.int64).T), factor_sizes))
    zeros = np.zeros((len(images), 1))
    return DSprites(images[order], np.concatenate([zeros, classes[order]], axis=1),
                    np.concatenate([zeros + 1, values[order]], axis=1), factor_sizes=factor_sizes,
                    source=where)


__all__ = ["DSPRITES_FILE", "DSprites", "load_dsprites"]
