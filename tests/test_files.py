"""tfvae.files: a write that fails leaves the old file whole and no temporary file behind."""

import pytest

from tfvae.files import _umask, save_model_atomically, write_text_atomically


def test_write_text_atomically_replaces_the_content(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("old")
    path.chmod(0o640)
    write_text_atomically(path, "new")
    assert path.read_text() == "new"
    assert path.stat().st_mode & 0o777 == 0o640  # the file keeps its mode
    fresh = tmp_path / "fresh.json"
    write_text_atomically(fresh, "{}")
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~_umask()  # a new file gets open()'s mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fresh.json", "results.json"]


def test_a_failed_text_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("old")
    with pytest.raises(TypeError):
        write_text_atomically(path, 123)  # fails inside the write, after the temporary file exists
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


class _SaveThenFail:
    """A model whose save writes part of the file, then dies (a kill or a full disk)."""

    def save(self, path):
        path.write_text("half a model")
        raise OSError("disk full")


class _Saves:
    def save(self, path):
        path.write_text("a model")


def test_a_failed_model_save_keeps_the_old_model(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("the old model")
    with pytest.raises(OSError, match="disk full"):
        save_model_atomically(_SaveThenFail(), path)
    assert path.read_text() == "the old model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]
    save_model_atomically(_Saves(), path)
    assert path.read_text() == "a model"
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]
