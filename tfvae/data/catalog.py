"""What each data set is: shapes, splits, sizes, and where its files are called what.

:class:`DatasetInfo` is the public description (``tfvae.data.info(name)``); :class:`_Spec` adds the
private facts the loaders need (file names per split, the tensorflow-datasets name, the pixel
scale that maps the stored integers onto [0, 1]).
"""

import dataclasses
import types


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """A data set's description.

    Attributes:
      name: the name ``load`` takes, e.g. ``"mnist"``.
      image_shape: ``(H, W, C)`` of one image.
      num_classes: number of label values (labels are ``0 .. num_classes - 1``), or ``None`` when
        the data set has no labels (its labels are all ``-1``).
      splits: the split names ``load`` takes, e.g. ``("train", "test")``.
      num_examples: read-only mapping split -> number of examples in the original files.
      description: one paragraph: what it is, where it comes from.

    Example:
      >>> tfvae.data.info("binarized_mnist").num_examples["valid"]
      10000
    """

    name: str
    image_shape: tuple
    num_classes: object
    splits: tuple
    num_examples: types.MappingProxyType
    description: str


@dataclasses.dataclass(frozen=True)
class _Spec:
    info: DatasetInfo
    #: pixel value that maps to 1.0 (255 for IDX bytes, 16 for sklearn digits, 1 for .amat)
    pixel_scale: int
    #: split -> file names inside the data set's folder ((images, labels) for IDX; (amat,) for .amat)
    files: dict = dataclasses.field(default_factory=dict)
    #: file format of ``files``: "idx" or "amat" (None: not file based)
    file_format: str = None
    #: folder name under data_dir / TFVAE_DATA_DIR
    folder: str = None
    #: extra folders holding the same files (Debian's dataset packages)
    system_folders: tuple = ()
    #: tensorflow-datasets name and split names (ours -> theirs)
    tfds_name: str = None
    tfds_splits: dict = dataclasses.field(default_factory=dict)
    #: (host, port) the tfds download comes from, probed before trying to download
    download_host: tuple = None


def _info(name, image_shape, num_classes, num_examples, description):
    return DatasetInfo(name=name, image_shape=tuple(image_shape), num_classes=num_classes,
                       splits=tuple(num_examples), num_examples=types.MappingProxyType(num_examples),
                       description=description)


def _idx_files(prefix):
    return (f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz")


#: test split of ``digits``: the last 297 of scikit-learn's 1797 images; the first 1500 train
DIGITS_TRAIN_SIZE = 1500

SPECS = {
    "mnist": _Spec(
        info=_info("mnist", (28, 28, 1), 10, {"train": 60000, "test": 10000},
                   "MNIST handwritten digits, 28x28 grey levels (LeCun et al. 1998). "
                   "Files: the original IDX .gz files."),
        pixel_scale=255, file_format="idx", folder="mnist",
        files={"train": _idx_files("train"), "test": _idx_files("t10k")},
        tfds_name="mnist", tfds_splits={"train": "train", "test": "test"},
        download_host=("storage.googleapis.com", 443)),
    "fashion_mnist": _Spec(
        info=_info("fashion_mnist", (28, 28, 1), 10, {"train": 60000, "test": 10000},
                   "Fashion-MNIST: Zalando article images, 28x28 grey levels, 10 balanced classes "
                   "(Xiao et al. 2017). Files: the original IDX .gz files, also shipped by "
                   "Debian's dataset-fashion-mnist package."),
        pixel_scale=255, file_format="idx", folder="fashion_mnist",
        system_folders=("/usr/share/datasets/fashion-mnist",),
        files={"train": _idx_files("train"), "test": _idx_files("t10k")},
        tfds_name="fashion_mnist", tfds_splits={"train": "train", "test": "test"},
        download_host=("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80)),
    "binarized_mnist": _Spec(
        info=_info("binarized_mnist", (28, 28, 1), None,
                   {"train": 50000, "valid": 10000, "test": 10000},
                   "Larochelle's fixed binarization of MNIST (Larochelle & Murray 2011; "
                   "Salakhutdinov & Murray 2008), the standard split for IWAE-style "
                   "log-likelihoods. Pixels are exactly 0 or 1. It has no labels: every label "
                   "is -1. Files: binarized_mnist_{train,valid,test}.amat."),
        pixel_scale=1, file_format="amat", folder="binarized_mnist",
        files={s: (f"binarized_mnist_{s}.amat",) for s in ("train", "valid", "test")},
        tfds_name="binarized_mnist",
        tfds_splits={"train": "train", "valid": "validation", "test": "test"},
        download_host=("www.cs.toronto.edu", 80)),
    "digits": _Spec(
        info=_info("digits", (8, 8, 1), 10, {"train": DIGITS_TRAIN_SIZE, "test": 1797 - DIGITS_TRAIN_SIZE},
                   "scikit-learn's 8x8 handwritten digits (UCI optical recognition of "
                   "handwritten digits), embedded in scikit-learn, so always available offline. "
                   "Pixel counts 0..16 are divided by 16. Fixed split: the first 1500 images "
                   "train, the last 297 test."),
        pixel_scale=16),
}

#: name -> DatasetInfo, read-only
DATASETS = types.MappingProxyType({name: spec.info for name, spec in SPECS.items()})


def spec(name):
    """The private spec of ``name``; ValueError listing the valid names otherwise."""
    if not isinstance(name, str) or name not in SPECS:
        raise ValueError(f"unknown data set {name!r}; expected one of {sorted(SPECS)}")
    return SPECS[name]


def check_split(name, split):
    splits = SPECS[name].info.splits
    if not isinstance(split, str) or split not in splits:
        raise ValueError(f"unknown split {split!r} of data set {name!r}; expected one of {list(splits)}")
    return split
