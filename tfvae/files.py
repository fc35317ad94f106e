"""Writes that leave a file either as it was or complete: never half written.

A run killed while ``results.json`` or ``model.keras`` is being written would otherwise leave a
truncated file that the next run cannot read back, and lose what was saved before. Both helpers
write beside the target and rename into place (``os.replace`` is atomic on POSIX and Windows
when both paths are on one file system, which writing into the same folder guarantees).
"""

import os
import pathlib
import tempfile


def write_text_atomically(path, text):
    """Writes ``text`` so that ``path`` holds either the old or the new content, never half.

    Example:
      >>> write_text_atomically("runs/results.json", json.dumps(results))
    """
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        # mkstemp makes the file private (0600); give it the mode a plain open() would have
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_model_atomically(model, path):
    """``model.save`` to a temporary file beside ``path``, then renames it into place."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


__all__ = ["save_model_atomically", "write_text_atomically"]
