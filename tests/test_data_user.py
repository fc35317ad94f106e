"""tfvae.data.user: users' own .npy / .npz / .csv / .tsv files and image folders.

Real tables come from scikit-learn's embedded data sets (breast cancer, wine), written by the tests
to tmp_path in the formats users bring; every value and label must come back exactly.
"""

import csv

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats
from sklearn.datasets import load_breast_cancer, load_wine

from tfvae import data
from tfvae.data import CorruptDataError, DataNotFoundError, Standardization, load_file


# ----------------------------------------------------------------------------- helpers

def write_table(path, rows, header=None, delimiter=","):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        if header is not None:
            writer.writerow(header)
        for row in rows:
            # repr: the shortest text that parses back to the same float64
            writer.writerow([repr(v) if isinstance(v, float) else v for v in row])
    return path


def write_png(path, pixels):
    path.parent.mkdir(parents=True, exist_ok=True)
    tf.io.write_file(str(path), tf.io.encode_png(np.asarray(pixels, np.uint8)))
    return path


def error_of(exception, path, **kwargs):
    """The message of the ``exception`` that loading ``path`` raises: always a single line."""
    with pytest.raises(exception) as info:
        load_file(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.fixture(scope="module")
def cancer():
    bunch = load_breast_cancer()
    return bunch.data, bunch.target, list(bunch.feature_names)


@pytest.fixture(scope="module")
def wine():
    bunch = load_wine()
    return bunch.data, bunch.target, list(bunch.target_names)


# ----------------------------------------------------------------------------- tables

def test_csv_with_header_and_label_column_round_trips(tmp_path, cancer):
    x, y, names = cancer
    path = write_table(tmp_path / "cancer.csv", [list(r) + [int(t)] for r, t in zip(x.tolist(), y)],
                       header=names + ["diagnosis"])
    loaded = load_file(path, label_column="diagnosis", validation_fraction=0)
    values, labels = loaded.arrays("all")
    np.testing.assert_array_equal(values, x.astype(np.float32))
    np.testing.assert_array_equal(labels, y)
    assert loaded.labels.dtype == np.int64
    assert loaded.class_names == ("0", "1")
    assert loaded.feature_names == tuple(names)
    assert (loaded.format, loaded.kind, loaded.feature_shape) == ("csv", "vectors", (30,))
    assert loaded.num_examples == 569 and loaded.num_classes == 2
    assert loaded.likelihood == loaded.suggested_likelihood == "gaussian-learned"
    assert loaded.standardizer is not None          # real values: standardized by default
    assert "Row 1 read as the header." in loaded.notes


def test_csv_without_header_string_labels_by_index(tmp_path, wine):
    x, y, class_names = wine
    rows = [[class_names[t]] + list(r) for r, t in zip(x.tolist(), y)]  # labels first
    path = write_table(tmp_path / "wine.csv", rows)
    loaded = load_file(path, label_column=0, validation_fraction=0)
    values, labels = loaded.arrays("all")
    np.testing.assert_array_equal(values, x.astype(np.float32))
    assert loaded.class_names == tuple(sorted(class_names))
    np.testing.assert_array_equal(np.asarray(loaded.class_names)[labels], np.asarray(class_names)[y])
    assert loaded.feature_names is None and not loaded.notes   # no header detected
    # a negative index counts from the end
    path = write_table(tmp_path / "wine_last.csv", [list(r) + [int(t) + 1] for r, t in zip(x.tolist(), y)])
    loaded = load_file(path, label_column=-1, validation_fraction=0)
    np.testing.assert_array_equal(loaded.labels, y)              # 1, 2, 3 -> classes 0, 1, 2
    assert loaded.class_names == ("1", "2", "3")


def test_tsv_with_header_without_labels(tmp_path, wine):
    x, _, _ = wine
    path = write_table(tmp_path / "wine.tsv", x.tolist(), header=[f"f{i}" for i in range(13)],
                       delimiter="\t")
    loaded = load_file(path, validation_fraction=0)
    np.testing.assert_array_equal(loaded.arrays("all")[0], x.astype(np.float32))
    assert loaded.labels is None and loaded.num_classes is None and loaded.format == "tsv"
    x_batch, y_batch = next(iter(loaded.datasets(8, shuffle=False)[0]))
    np.testing.assert_array_equal(y_batch, -np.ones(8))          # unlabelled: -1, as tfvae.data.load


# ----------------------------------------------------------------------------- arrays

def test_npz_and_npy_round_trip(tmp_path, cancer):
    x, y, _ = cancer
    np.savez(tmp_path / "xy.npz", x=x, y=y, extra=np.zeros(3))
    loaded = load_file(tmp_path / "xy.npz", validation_fraction=0)
    np.testing.assert_array_equal(loaded.arrays("all")[0], x.astype(np.float32))
    np.testing.assert_array_equal(loaded.labels, y)
    assert loaded.format == "npz" and any("'extra'" in note for note in loaded.notes)

    np.savez(tmp_path / "single.npz", features=x)                # the only array, any name
    assert load_file(tmp_path / "single.npz").feature_shape == (30,)
    np.save(tmp_path / "x.npy", x)
    loaded = load_file(tmp_path / "x.npy", validation_fraction=0)
    np.testing.assert_array_equal(loaded.arrays("all")[0], x.astype(np.float32))
    assert loaded.labels is None

    np.savez(tmp_path / "strings.npz", X=x[:20], Y=np.array(["b", "a"] * 10))
    loaded = load_file(tmp_path / "strings.npz", validation_fraction=0)
    assert loaded.class_names == ("a", "b") and list(loaded.labels[:2]) == [1, 0]


def test_image_arrays_get_a_channel_axis(tmp_path):
    images = np.random.default_rng(0).random((10, 4, 5))
    np.save(tmp_path / "grey.npy", images)
    loaded = load_file(tmp_path / "grey.npy")
    assert (loaded.kind, loaded.feature_shape) == ("images", (4, 5, 1))
    np.testing.assert_array_equal(loaded.arrays("all")[0][..., 0], images.astype(np.float32))


@pytest.mark.parametrize("values, likelihood, kind", [
    (np.random.default_rng(0).poisson(3.0, (200, 50)), "poisson", "counts"),
    (np.random.default_rng(0).integers(0, 2, (200, 50)), "bernoulli", "vectors"),
    (np.random.default_rng(0).random((200, 50)), "continuous-bernoulli", "vectors"),
    (np.random.default_rng(0).normal(size=(200, 50)), "gaussian-learned", "vectors"),
])
def test_kind_and_suggested_likelihood(tmp_path, values, likelihood, kind):
    np.save(tmp_path / "x.npy", values)
    loaded = load_file(tmp_path / "x.npy")
    assert (loaded.suggested_likelihood, loaded.likelihood, loaded.kind) == (likelihood, likelihood, kind)
    # standardized by default only for real values
    assert (loaded.standardizer is not None) == (likelihood == "gaussian-learned")


def test_counts_in_a_csv(tmp_path):
    counts = np.random.default_rng(0).poisson(2.0, (100, 20))
    path = write_table(tmp_path / "counts.csv", counts.tolist(), header=[f"gene{i}" for i in range(20)])
    loaded = load_file(path, likelihood="poisson")
    assert loaded.kind == "counts" and loaded.standardizer is None
    np.testing.assert_array_equal(loaded.arrays("all")[0], counts)


# ----------------------------------------------------------------------------- image folders

def test_image_folder_with_class_sub_folders(tmp_path):
    rng = np.random.default_rng(0)
    written = {name: [rng.integers(0, 256, (6, 5, 1)) for _ in range(4)] for name in ("dog", "cat")}
    for name, images in written.items():
        for i, image in enumerate(images):
            write_png(tmp_path / "pets" / name / f"{i}.png", image)
    (tmp_path / "pets" / "cat" / "README.txt").write_text("not an image")
    loaded = load_file(tmp_path / "pets", validation_fraction=0)
    assert (loaded.format, loaded.kind, loaded.feature_shape) == ("images", "images", (6, 5, 1))
    assert loaded.class_names == ("cat", "dog")                   # sorted folder names
    x, y = loaded.arrays("all")
    expected = np.stack(written["cat"] + written["dog"]).astype(np.float32) / 255
    np.testing.assert_allclose(x, expected, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(y, [0] * 4 + [1] * 4)
    assert loaded.suggested_likelihood == "continuous-bernoulli"
    assert any("README.txt" in note for note in loaded.notes)
    batch_x, batch_y = next(iter(loaded.datasets(8, shuffle=False)[0]))   # uint8 pixels / 255
    np.testing.assert_allclose(batch_x, expected, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(batch_y, y)


def test_image_folder_binary_without_classes(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(5):
        write_png(tmp_path / "shapes" / f"{i}.png", 255 * rng.integers(0, 2, (4, 4, 1)))
    loaded = load_file(tmp_path / "shapes")
    assert loaded.labels is None and loaded.suggested_likelihood == "bernoulli"


def test_image_folder_mixed_channels_become_rgb(tmp_path):
    grey = np.full((4, 4, 1), 100)
    write_png(tmp_path / "mix" / "a.png", grey)
    write_png(tmp_path / "mix" / "b.png", np.full((4, 4, 3), 7))
    write_png(tmp_path / "mix" / "c.png", np.full((4, 4, 4), 9))  # RGBA: alpha dropped
    loaded = load_file(tmp_path / "mix", validation_fraction=0)
    assert loaded.feature_shape == (4, 4, 3)
    x, _ = loaded.arrays("all")
    np.testing.assert_allclose(x[0], np.full((4, 4, 3), 100 / 255), atol=1e-7)
    np.testing.assert_allclose(x[2], np.full((4, 4, 3), 9 / 255), atol=1e-7)
    assert any("grey image to RGB" in n for n in loaded.notes)
    assert any("alpha channel of 1 image" in n for n in loaded.notes)


def test_image_folder_mixed_sizes(tmp_path):
    write_png(tmp_path / "sizes" / "small.png", np.full((4, 6, 1), 200))
    write_png(tmp_path / "sizes" / "large.png", np.full((8, 8, 1), 50))
    message = error_of(CorruptDataError, tmp_path / "sizes")
    assert "large.png is 8x8" in message and "small.png is 4x6" in message and "image_size" in message
    loaded = load_file(tmp_path / "sizes", image_size=5, validation_fraction=0)
    x, _ = loaded.arrays("all")
    assert x.shape == (2, 5, 5, 1)
    # a constant image stays that constant when resized
    np.testing.assert_allclose(x[:, ..., 0], [np.full((5, 5), 50 / 255), np.full((5, 5), 200 / 255)],
                               atol=1e-7)
    assert load_file(tmp_path / "sizes", image_size=(3, 7)).feature_shape == (3, 7, 1)


# ----------------------------------------------------------------------------- bad files

def test_bad_table_cells_name_row_and_column(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,c\n1,2,3\n\n4,oops,6\n")
    assert error_of(CorruptDataError, path) == f"{path}: row 4, column 2 ('b') is 'oops', not a number"
    path.write_text("1,2,3\n4,5,\n")
    assert error_of(CorruptDataError, path) == f"{path}: row 2, column 3 is empty"
    path.write_text("1,2,3\n4,5,6\n7,8\n")
    assert error_of(CorruptDataError, path) == f"{path}: row 3 has 2 fields, expected 3 (as in row 1)"
    path.write_text("x,y\n1,2\n3,inf\n")
    assert error_of(CorruptDataError, path) == f"{path}: row 3, column 2 ('y') is inf, not a finite number"
    path.write_text("1,oops,3\n4,5,6\n")                       # a typo in row 1 is no header
    assert error_of(CorruptDataError, path) == f"{path}: row 1, column 2 is 'oops', not a number"
    path.write_text("a,b\n1,1e300\n")
    assert error_of(CorruptDataError, path) == (
        f"{path}: row 2, column 2 ('b') is 1e+300, beyond float32's range (±3.4e38)")
    path.write_text("x\ty\n1\tnan\n")
    path = path.rename(tmp_path / "bad.tsv")
    assert "row 2, column 2 ('y') is nan" in error_of(CorruptDataError, path)


def test_bad_table_structure(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("\n \n")
    assert error_of(CorruptDataError, path) == f"{path}: empty file, expected rows of numbers"
    path.write_text("a,b,c\n")
    assert "only a header row" in error_of(CorruptDataError, path)
    path.write_text("a,b\n1,2\n3,4\n")
    assert "no column named 'label'; the header names 'a', 'b'" in error_of(
        CorruptDataError, path, label_column="label")
    path.write_text("1,2\n3,4\n")
    assert "has no header row" in error_of(CorruptDataError, path, label_column="label")
    assert "out of range" in error_of(ValueError, path, label_column=2)
    path.write_text("a,b\n1,\n3,4\n")
    assert f"{path}: row 2, column 2 (the label) is empty" == error_of(
        CorruptDataError, path, label_column="b")


def test_bad_array_files(tmp_path):
    (tmp_path / "empty.npy").write_bytes(b"")
    assert error_of(CorruptDataError, tmp_path / "empty.npy") == f"{tmp_path / 'empty.npy'}: empty file"
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert "not a valid .npz file" in error_of(CorruptDataError, tmp_path / "junk.npz")
    np.savez(tmp_path / "several.npz", images=np.ones((3, 2)), targets=np.ones(3))
    message = error_of(CorruptDataError, tmp_path / "several.npz")
    assert "several.npz: no array named 'x' among the 2 arrays 'images', 'targets'" in message
    np.savez(tmp_path / "none.npz")
    assert "empty .npz archive" in error_of(CorruptDataError, tmp_path / "none.npz")
    np.save(tmp_path / "objects.npy", np.array([[1, "a"]], dtype=object), allow_pickle=True)
    assert "Python objects" in error_of(CorruptDataError, tmp_path / "objects.npy")
    np.save(tmp_path / "flat.npy", np.ones(5))
    assert "shape (5,); expected one example per row" in error_of(CorruptDataError, tmp_path / "flat.npy")
    x = np.ones((4, 3))
    x[2, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=x)
    assert "nan.npz: x[2, 1] is nan, not a finite number" in error_of(CorruptDataError, tmp_path / "nan.npz")
    np.savez(tmp_path / "short_y.npz", x=np.ones((4, 3)), y=np.ones(3))
    assert "one per example" in error_of(CorruptDataError, tmp_path / "short_y.npz")


def test_values_outside_the_likelihood(tmp_path):
    counts = np.random.default_rng(0).poisson(2.0, (10, 4)).astype(float)
    counts[3, 2] = -1
    np.save(tmp_path / "neg.npy", counts)
    assert error_of(CorruptDataError, tmp_path / "neg.npy", likelihood="poisson") == (
        f"{tmp_path / 'neg.npy'}: the poisson likelihood models counts (non-negative integers), but "
        "element [3, 2] is -1")
    path = write_table(tmp_path / "frac.csv", [[1, 2], [3, 2.5]], header=["a", "b"])
    assert "but row 3, column 2 ('b') is 2.5" in error_of(CorruptDataError, path, likelihood="poisson")
    assert "bernoulli likelihood models values in [0, 1], but row 2, column 2 ('b') is 2" in error_of(
        CorruptDataError, path, likelihood="bernoulli")
    # asked-for likelihoods whose support holds are used, though not suggested
    assert load_file(path, likelihood="gaussian-learned").likelihood == "gaussian-learned"


def test_every_likelihood_of_the_models_is_accepted_and_checked(tmp_path):
    """The loader's likelihoods are the registry's: "negative-binomial" used to be refused."""
    from tfvae.models import likelihoods

    assert data.user.LIKELIHOODS == likelihoods.names()
    counts = np.random.default_rng(0).negative_binomial(2, 0.3, (40, 5)).astype(float)
    np.save(tmp_path / "counts.npy", counts)
    loaded = load_file(tmp_path / "counts.npy", likelihood="negative-binomial")
    assert (loaded.likelihood, loaded.suggested_likelihood, loaded.kind) == ("negative-binomial", "poisson", "counts")
    assert loaded.standardizer is None
    counts[7, 3] = 2.5
    np.save(tmp_path / "frac.npy", counts)
    assert error_of(CorruptDataError, tmp_path / "frac.npy", likelihood="negative-binomial") == (
        f"{tmp_path / 'frac.npy'}: the negative-binomial likelihood models counts (non-negative "
        "integers), but element [7, 3] is 2.5")


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous-bernoulli", "poisson", "negative-binomial"])
def test_standardize_with_a_non_gaussian_likelihood_is_the_models_error(tmp_path, likelihood):
    """One message for standardised data under a likelihood of [0, 1] values or counts, whether
    the loader or the model constructor refuses it."""
    from tfvae.models import VAE, likelihoods

    np.save(tmp_path / "x.npy", np.random.default_rng(0).integers(0, 2, (10, 3)))
    message = error_of(ValueError, tmp_path / "x.npy", likelihood=likelihood, standardize=True)
    assert message == likelihoods.standardization_problem(likelihood)
    with pytest.raises(ValueError) as from_model:
        VAE(input_shape=(3,), latent_dim=2, likelihood=likelihood,
            standardization={"mean": [0.0] * 3, "scale": [1.0] * 3})
    assert str(from_model.value) == message


def test_bad_image_folders(tmp_path):
    write_png(tmp_path / "imgs" / "cat" / "ok.png", np.zeros((3, 3, 1)))
    (tmp_path / "imgs" / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    message = error_of(CorruptDataError, tmp_path / "imgs")
    assert message.startswith(f"{tmp_path / 'imgs' / 'cat' / 'broken.png'}: not a readable image (")
    assert "{{" not in message and "[Op:" not in message
    (tmp_path / "imgs" / "cat" / "broken.png").unlink()
    (tmp_path / "imgs" / "dog").mkdir()
    assert "'dog' holds no images" in error_of(DataNotFoundError, tmp_path / "imgs")
    (tmp_path / "nothing").mkdir()
    assert "no images" in error_of(DataNotFoundError, tmp_path / "nothing")
    write_png(tmp_path / "imgs" / "stray.png", np.zeros((3, 3, 1)))
    assert "holds both images" in error_of(CorruptDataError, tmp_path / "imgs")


def test_errors_are_one_line_value_or_file_errors(tmp_path):
    """The CLI prints ValueError / FileNotFoundError as one line; every failure here is one."""
    assert issubclass(CorruptDataError, ValueError) and issubclass(DataNotFoundError, FileNotFoundError)
    missing = tmp_path / "missing.csv"
    assert f"{missing}: no such file" in error_of(DataNotFoundError, missing)
    (tmp_path / "table.xlsx").write_bytes(b"PK")
    assert "unsupported file type '.xlsx'" in error_of(ValueError, tmp_path / "table.xlsx")
    np.save(tmp_path / "x.npy", np.ones((4, 2)))
    assert "label_column applies to .csv" in error_of(ValueError, tmp_path / "x.npy", label_column="a")
    assert "image_size applies to folders" in error_of(ValueError, tmp_path / "x.npy", image_size=8)


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(validation_fraction=1.0), "validation_fraction must be a number in [0, 1)"),
    (dict(validation_fraction=-0.1), "validation_fraction"),
    (dict(seed=1.5), "seed must be an integer"),
    (dict(standardize="yes"), "standardize must be None, True or False"),
    (dict(likelihood="normal"), "unknown likelihood 'normal'"),
    (dict(likelihood="bernoulli", standardize=True), "standardization does not fit the 'bernoulli' likelihood"),
])
def test_invalid_arguments(tmp_path, kwargs, fragment):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).integers(0, 2, (10, 3)))
    assert fragment in error_of(ValueError, tmp_path / "x.npy", **kwargs)


def test_invalid_image_size(tmp_path):
    write_png(tmp_path / "imgs" / "a.png", np.zeros((3, 3, 1)))
    for bad in (0, (3,), (3, "4"), True):
        assert "image_size must be" in error_of(ValueError, tmp_path / "imgs", image_size=bad)


def test_reading_writes_nothing(tmp_path, wine):
    x, y, _ = wine
    write_table(tmp_path / "w.csv", [list(r) + [int(t)] for r, t in zip(x.tolist(), y)])
    np.savez(tmp_path / "w.npz", x=x, y=y)
    write_png(tmp_path / "imgs" / "a" / "0.png", np.zeros((3, 3, 1)))
    write_png(tmp_path / "imgs" / "b" / "0.png", np.ones((3, 3, 1)))
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    load_file(tmp_path / "w.csv", label_column=-1).datasets(16)
    load_file(tmp_path / "w.npz")
    load_file(tmp_path / "imgs", image_size=2, validation_fraction=0)
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before


# ----------------------------------------------------------------------------- split and pipelines

def test_seeded_split_is_reproducible_and_disjoint(tmp_path, cancer):
    x, y, _ = cancer
    np.savez(tmp_path / "c.npz", x=x, y=y)
    a = load_file(tmp_path / "c.npz", validation_fraction=0.2, seed=3)
    b = load_file(tmp_path / "c.npz", validation_fraction=0.2, seed=3)
    c = load_file(tmp_path / "c.npz", validation_fraction=0.2, seed=4)
    np.testing.assert_array_equal(a.validation_indices, b.validation_indices)
    assert not np.array_equal(a.validation_indices, c.validation_indices)
    assert len(a.validation_indices) == round(0.2 * 569)
    assert not set(a.train_indices) & set(a.validation_indices)
    assert sorted(set(a.train_indices) | set(a.validation_indices)) == list(range(569))
    x_val, y_val = a.arrays("validation")
    np.testing.assert_array_equal(x_val, x[a.validation_indices].astype(np.float32))
    np.testing.assert_array_equal(y_val, y[a.validation_indices])
    # a tiny fraction still holds out one example; too few examples for any is an error
    assert len(load_file(tmp_path / "c.npz", validation_fraction=1e-6).validation_indices) == 1
    np.save(tmp_path / "one.npy", np.ones((1, 3)))
    assert "too few" in error_of(CorruptDataError, tmp_path / "one.npy")
    assert load_file(tmp_path / "one.npy", validation_fraction=0).num_examples == 1
    with pytest.raises(ValueError, match="unknown part 'test'"):
        a.arrays("test")


def test_datasets_batches_shuffle_and_parts(tmp_path, wine):
    x, y, _ = wine
    np.savez(tmp_path / "w.npz", x=x, y=y)
    loaded = load_file(tmp_path / "w.npz", validation_fraction=0.25, seed=0)
    train, validation = loaded.datasets(16, seed=5)

    def collect(dataset):
        xs, ys = zip(*[(a.numpy(), b.numpy()) for a, b in dataset])
        return np.concatenate(xs), np.concatenate(ys)

    train_x, train_y = collect(train)
    again_x, _ = collect(loaded.datasets(16, seed=5)[0])
    other_x, _ = collect(loaded.datasets(16, seed=6)[0])
    np.testing.assert_array_equal(train_x, again_x)               # seeded shuffle replays
    assert not np.array_equal(train_x, other_x)
    # the training pipeline holds exactly the training part, shuffled
    order = np.lexsort(train_x.T)
    expected_x, expected_y = loaded.arrays("train")
    expected_order = np.lexsort(expected_x.T)
    np.testing.assert_array_equal(train_x[order], expected_x[expected_order])
    np.testing.assert_array_equal(train_y[order], expected_y[expected_order])
    assert not np.array_equal(train_x, expected_x)
    val_x, val_y = collect(validation)                            # not shuffled
    np.testing.assert_array_equal(val_x, loaded.arrays("validation")[0])
    assert train.element_spec[0].shape.as_list() == [None, 13]
    # drop_remainder, unshuffled, single examples
    sizes = [len(b[0]) for b in loaded.datasets(16, drop_remainder=True)[0]]
    assert set(sizes) == {16}
    first = next(iter(loaded.datasets(None, shuffle=False)[0]))
    np.testing.assert_array_equal(first[0], expected_x[0])
    assert load_file(tmp_path / "w.npz", validation_fraction=0).datasets(8)[1] is None
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        loaded.datasets(0)


# ----------------------------------------------------------------------------- standardization

def test_standardizer_uses_the_training_part_only(tmp_path, wine):
    x, y, _ = wine
    np.savez(tmp_path / "w.npz", x=x, y=y)
    loaded = load_file(tmp_path / "w.npz", validation_fraction=0.3, seed=1)
    layer = loaded.standardizer
    train = x[loaded.train_indices].astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(layer.mean.numpy(), train.mean(0), rtol=1e-6)
    np.testing.assert_allclose(layer.std.numpy(), train.std(0), rtol=1e-5)
    assert not np.allclose(layer.mean.numpy(), x.mean(0), rtol=1e-4)  # all examples differ
    assert not layer.trainable_weights
    # the standardized pipeline yields (x - mean) / std of the training part: mean 0, std 1
    train_z = np.concatenate([b[0] for b in loaded.datasets(50, standardized=True)[0]])
    np.testing.assert_allclose(train_z.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(train_z.std(0), 1, atol=1e-5)
    assert load_file(tmp_path / "w.npz", standardize=False).standardizer is None
    with pytest.raises(ValueError, match="has no standardizer"):
        load_file(tmp_path / "w.npz", standardize=False).datasets(8, standardized=True)
    # standardize=True is honoured for counts (with a Gaussian likelihood)
    np.save(tmp_path / "c.npy", np.random.default_rng(0).poisson(4.0, (30, 3)))
    assert load_file(tmp_path / "c.npy", standardize=True, likelihood="gaussian").standardizer is not None


def test_standardization_layer_transform_and_jacobian():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, [1.0, 3.0, 0.5, 2.0], size=(100, 4))
    x[:, 2] = 7.0                                                 # a constant feature: std 1
    layer = Standardization.from_data(x)
    np.testing.assert_allclose(layer.std.numpy()[2], 1.0)
    z = layer.transform(x).numpy()
    np.testing.assert_allclose(z, (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1), atol=1e-5)
    np.testing.assert_allclose(layer.inverse_transform(z).numpy(), x, rtol=1e-5)
    # change of variables: log N(x; m, s) = log N(z; 0, 1) - log s, summed over features
    m, s = layer.mean.numpy().astype(np.float64), layer.std.numpy().astype(np.float64)
    direct = stats.norm(m, s).logpdf(x).sum(-1)
    via_z = stats.norm().logpdf((x - m) / s).sum(-1) + float(layer.forward_log_det_jacobian())
    np.testing.assert_allclose(via_z, direct, rtol=1e-5)
    with pytest.raises(ValueError, match="std must be finite and > 0"):
        Standardization([0.0, 1.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="same shape|one example's shape"):
        Standardization([0.0, 1.0], [1.0])


def test_standardization_layer_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 2, 3, 1)) * 4 + 1                   # image-shaped statistics
    layer = Standardization.from_data(x, name="standardization")
    again = Standardization.from_config(layer.get_config())
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    for other in (again, restored):
        assert isinstance(other, Standardization) and other.feature_shape == (2, 3, 1)
        np.testing.assert_array_equal(other.mean.numpy(), layer.mean.numpy())
        np.testing.assert_array_equal(other.std.numpy(), layer.std.numpy())
    # inside a model, the statistics are saved and restored with it
    inputs = keras.Input((2, 3, 1))
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.predict(x[:5], verbose=0), layer.transform(x[:5]), rtol=1e-6)


def test_standardization_computes_in_float32_under_mixed_precision():
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = Standardization([70000.0], [2.0])
        z = layer.transform(np.array([[70001.0]]))
    finally:
        keras.config.set_dtype_policy(policy)
    assert z.dtype == tf.float32 and float(z[0, 0]) == 0.5       # float16 would round 70001


def test_exported_from_tfvae_data():
    assert data.load_file is load_file and data.UserData.__name__ == "UserData"
