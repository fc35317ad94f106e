"""Parsers for the original data files, validating as they go.

* IDX (LeCun's MNIST format, also Fashion-MNIST), gzip-compressed: a 4-byte big-endian magic
  number ``0x0000TTNN`` (TT the element type, 0x08 = unsigned byte; NN the number of dimensions),
  NN big-endian uint32 dimension sizes, then the elements in C order. Images are
  ``0x00000803`` = 2051 with dimensions (count, rows, columns); labels ``0x00000801`` = 2049.
* .amat (Larochelle's binarized MNIST): one text row per image, 784 characters ``0``/``1``
  separated by single spaces, ending in ``\\n``. Every row is therefore exactly 1568 bytes, which
  lets :func:`read_amat` parse 78 MB with ``np.frombuffer`` and strided views instead of a text
  parser (~20x faster than ``np.loadtxt``).

Every problem raises :class:`~tfvae.data.errors.CorruptDataError` naming the file and what is wrong.
"""

import gzip
import zlib

import numpy as np

from tfvae.data.errors import CorruptDataError

IDX_UBYTE = 0x08
IDX_IMAGES_MAGIC = 0x0803  # unsigned bytes, 3 dimensions
IDX_LABELS_MAGIC = 0x0801  # unsigned bytes, 1 dimension


def _read_gzip(path):
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except EOFError:
        raise CorruptDataError(
            f"{path}: truncated gzip stream (the file ends before the compressed data does); "
            "download it again") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise CorruptDataError(f"{path}: not a valid gzip file ({exc})") from None


def read_idx(path, ndim):
    """Reads a gzip-compressed IDX file of unsigned bytes with ``ndim`` dimensions.

    Args:
      path: the ``.gz`` file.
      ndim: expected number of dimensions (3 for images, 1 for labels).

    Returns:
      uint8 array shaped as the header says.

    Raises:
      CorruptDataError: bad gzip, wrong magic number, or a payload whose size is not the product of
        the header's dimensions.

    Example:
      >>> labels = read_idx("mnist/t10k-labels-idx1-ubyte.gz", ndim=1)   # shape (10000,)
    """
    data = _read_gzip(path)
    expected_magic = (IDX_UBYTE << 8) | ndim
    if len(data) < 4:
        raise CorruptDataError(f"{path}: {len(data)} bytes, too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if magic != expected_magic:
        kind = "images" if ndim == 3 else "labels" if ndim == 1 else f"{ndim}-d"
        raise CorruptDataError(
            f"{path}: bad IDX magic number {magic} (0x{magic:08x}); expected {expected_magic} "
            f"(0x{expected_magic:08x}: unsigned-byte {kind}, {ndim} dimensions)")
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise CorruptDataError(f"{path}: the IDX header needs {header_size} bytes, the file has {len(data)}")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected_size = int(np.prod(dims, dtype=np.int64))
    actual_size = len(data) - header_size
    if actual_size != expected_size:
        shape = "x".join(map(str, dims))
        raise CorruptDataError(
            f"{path}: wrong size: the header's dimensions {shape} need {expected_size} bytes of "
            f"data, the file holds {actual_size}")
    array = np.frombuffer(data, np.uint8, offset=header_size).reshape(dims)
    array.flags.writeable = False
    return array


def read_idx_pair(images_path, labels_path, image_size, num_classes):
    """Reads matching IDX image and label files and checks they agree.

    Args:
      images_path, labels_path: the two ``.gz`` files.
      image_size: expected ``(rows, columns)``.
      num_classes: labels must lie in ``0 .. num_classes - 1``.

    Returns:
      ``(images uint8 [N, rows, columns], labels uint8 [N])``.
    """
    images = read_idx(images_path, ndim=3)
    labels = read_idx(labels_path, ndim=1)
    if tuple(images.shape[1:]) != tuple(image_size):
        raise CorruptDataError(
            f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected "
            f"{image_size[0]}x{image_size[1]}")
    if len(images) != len(labels):
        raise CorruptDataError(
            f"image/label count mismatch: {images_path} holds {len(images)} images but "
            f"{labels_path} holds {len(labels)} labels")
    if labels.size and labels.max() >= num_classes:
        bad = int(np.argmax(labels >= num_classes))
        raise CorruptDataError(
            f"{labels_path}: label {int(labels[bad])} at index {bad} is outside 0..{num_classes - 1}")
    return images, labels


_NEWLINE, _SPACE, _ZERO, _ONE = (ord(c) for c in "\n 01")


def read_amat(path, width=784):
    """Reads a binarized-MNIST ``.amat`` file into uint8 0/1 rows ``[N, width]``.

    Raises:
      CorruptDataError: a row of the wrong length, a separator other than one space, or a value
        other than 0/1 (the message gives the line and column).
    """
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise CorruptDataError(f"{path}: empty file, expected rows of {width} values 0/1")
    if not data.endswith(b"\n"):  # a missing final newline is harmless
        data += b"\n"
    row_bytes = 2 * width  # value, separator (space, or the newline after the last value)
    raw = np.frombuffer(data, np.uint8)
    if raw.size % row_bytes:
        _raise_bad_row_length(path, raw, row_bytes, width)
    rows = raw.reshape(-1, row_bytes)
    values, separators = rows[:, 0::2], rows[:, 1::2]
    bad_separators = separators != _SPACE
    bad_separators[:, -1] = separators[:, -1] != _NEWLINE
    if bad_separators.any():
        line, column = np.argwhere(bad_separators)[0]
        # a row of the right byte length whose separators are off has the wrong value count
        raise CorruptDataError(
            f"{path}: line {line + 1} is not {width} values separated by single spaces "
            f"(unexpected byte {bytes(rows[line, 2 * column + 1:2 * column + 2])!r} after value "
            f"{column + 1})")
    bad_values = (values != _ZERO) & (values != _ONE)
    if bad_values.any():
        line, column = np.argwhere(bad_values)[0]
        raise CorruptDataError(
            f"{path}: line {line + 1}, value {column + 1} is {bytes(values[line, column:column + 1])!r}; "
            "expected only 0 or 1")
    return values - np.uint8(_ZERO)


def _raise_bad_row_length(path, raw, row_bytes, width):
    ends = np.flatnonzero(raw == _NEWLINE)
    lengths = np.diff(ends, prepend=-1)  # bytes per line including its newline
    bad = np.flatnonzero(lengths != row_bytes)
    line = int(bad[0]) if bad.size else len(ends)
    content = raw[ends[line - 1] + 1 if line else 0:ends[line] if line < len(ends) else raw.size]
    count = len(bytes(content).split())
    raise CorruptDataError(
        f"{path}: wrong row length on line {line + 1}: {count} values, expected {width} values 0/1 "
        "separated by single spaces")
