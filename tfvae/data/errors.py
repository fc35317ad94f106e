"""The two exceptions of :mod:`tfvae.data`."""


class DataNotFoundError(FileNotFoundError):
    """No source could provide a data set: no files where they were looked for, no tfds copy, and
    no network to download one. The message names every place looked and how to provide the
    files."""


class CorruptDataError(ValueError):
    """A data file exists but cannot be what it claims to be (bad magic number, truncated gzip,
    size not matching its header, images and labels of different counts, a bad .amat row). The
    message names the file and what is wrong."""
