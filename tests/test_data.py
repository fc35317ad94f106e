"""tfvae.data: real files, the pipeline options, sources and their order, corrupt files, errors."""

import dataclasses
import gzip
import socket
import time

import numpy as np
import pytest
import tensorflow as tf

from tfvae import data
from tfvae.data import catalog, sources
from tfvae.data.pipeline import draw_binary

#: the probe itself, before the autouse fixture below replaces it
REAL_NETWORK_PROBE = sources.network_available
# published class counts of the MNIST test set (LeCun et al.)
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ----------------------------------------------------------------------------- helpers

def write_idx(path, array, magic=None, extra=b"", compress=True):
    """Writes ``array`` (uint8) as an IDX file; ``magic`` overrides the header's magic number."""
    array = np.asarray(array, np.uint8)
    magic = (0x08 << 8 | array.ndim) if magic is None else magic
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    payload = header + array.tobytes() + extra
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload) if compress else payload)
    return path


def write_mnist_split(folder, images, labels, prefix="t10k"):
    write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)


def small_mnist(n=5, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def amat_text(rows):
    return "".join(" ".join(str(int(v)) for v in row) + "\n" for row in rows)


def epoch(dataset):
    """One pass as numpy: (images, labels) concatenated over batches."""
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(images), np.concatenate(labels)


@pytest.fixture(autouse=True)
def offline_tfds(monkeypatch, tmp_path_factory):
    """No test may reach tensorflow-datasets' real data directory or the network."""
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path_factory.mktemp("tfds")))
    monkeypatch.setattr(sources, "network_available", lambda *args, **kwargs: False)


# ----------------------------------------------------------------------------- catalog

def test_available_and_info():
    assert data.available() == ["binarized_mnist", "digits", "dsprites", "fashion_mnist", "mnist", "shapes2d"]
    assert sorted(data.DATASETS) == data.available()
    mnist = data.info("mnist")
    assert mnist.image_shape == (28, 28, 1) and mnist.num_classes == 10
    assert mnist.splits == ("train", "test") and dict(mnist.num_examples) == {"train": 60000, "test": 10000}
    binarized = data.info("binarized_mnist")
    assert binarized.num_classes is None and binarized.splits == ("train", "valid", "test")
    assert "-1" in binarized.description
    digits = data.info("digits")
    assert digits.image_shape == (8, 8, 1) and sum(digits.num_examples.values()) == 1797
    with pytest.raises(dataclasses.FrozenInstanceError):
        mnist.num_classes = 3
    with pytest.raises(TypeError):
        mnist.num_examples["train"] = 1


# ----------------------------------------------------------------------------- real files

@pytest.mark.parametrize("name,split", [
    ("mnist", "train"), ("mnist", "test"), ("fashion_mnist", "train"), ("fashion_mnist", "test"),
    ("binarized_mnist", "train"), ("binarized_mnist", "valid"), ("binarized_mnist", "test"),
    ("digits", "train"), ("digits", "test")])
def test_load_arrays_real_files(data_dir, name, split):
    images, labels = data.load_arrays(name, split, data_dir=data_dir)
    info = data.info(name)
    assert images.shape == (info.num_examples[split],) + info.image_shape
    assert images.dtype == np.float32 and labels.dtype == np.int64
    assert labels.shape == (len(images),)
    assert images.min() == 0.0 and images.max() == 1.0
    if info.num_classes is None:
        assert np.all(labels == -1)
        assert set(np.unique(images)) == {0.0, 1.0}
        assert 0.10 < images.mean() < 0.16  # MNIST's ink fraction
    else:
        assert labels.min() == 0 and labels.max() == info.num_classes - 1
        levels = 16 if name == "digits" else 255
        np.testing.assert_allclose(images * levels, np.round(images * levels), atol=1e-4)


def test_mnist_matches_an_independent_parse(data_dir):
    images, labels = data.load_arrays("mnist", "test", data_dir=data_dir)
    with gzip.open(data_dir / "mnist" / "t10k-labels-idx1-ubyte.gz") as f:
        raw_labels = np.frombuffer(f.read(), np.uint8, offset=8)
    with gzip.open(data_dir / "mnist" / "t10k-images-idx3-ubyte.gz") as f:
        raw_images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)
    np.testing.assert_array_equal(labels, raw_labels)
    np.testing.assert_array_equal(images, raw_images / np.float32(255))
    assert np.bincount(labels).tolist() == MNIST_TEST_COUNTS


def test_fashion_mnist_is_balanced(data_dir):
    _, train_labels = data.load_arrays("fashion_mnist", "train", data_dir=data_dir)
    _, test_labels = data.load_arrays("fashion_mnist", "test", data_dir=data_dir)
    assert np.bincount(train_labels).tolist() == [6000] * 10
    assert np.bincount(test_labels).tolist() == [1000] * 10


def test_binarized_mnist_matches_a_text_parse(data_dir):
    images, _ = data.load_arrays("binarized_mnist", "valid", data_dir=data_dir)
    with open(data_dir / "binarized_mnist" / "binarized_mnist_valid.amat") as f:
        head = np.loadtxt([next(f) for _ in range(20)], dtype=np.float32)
    np.testing.assert_array_equal(images[:20].reshape(20, 784), head)


def test_digits_split_is_the_documented_one(digits):
    all_images, all_labels = digits
    train_x, train_y = data.load_arrays("digits", "train")
    test_x, test_y = data.load_arrays("digits", "test")
    np.testing.assert_allclose(train_x, all_images[:1500], rtol=0, atol=1e-7)
    np.testing.assert_array_equal(train_y, all_labels[:1500])
    np.testing.assert_allclose(test_x, all_images[1500:], rtol=0, atol=1e-7)
    np.testing.assert_array_equal(test_y, all_labels[1500:])


def test_load_arrays_returns_fresh_copies_from_a_cache(data_dir):
    first, _ = data.load_arrays("mnist", "test", data_dir=data_dir)
    hits = sources._read_files.cache_info().hits
    first[:] = -1.0
    second, _ = data.load_arrays("mnist", "test", data_dir=data_dir)
    assert sources._read_files.cache_info().hits == hits + 1  # not parsed again
    assert second.min() == 0.0


def test_rewritten_files_are_parsed_again(tmp_path):
    images, labels = small_mnist(5)
    write_mnist_split(tmp_path / "mnist", images, labels)
    assert len(data.load_arrays("mnist", "test", data_dir=tmp_path)[1]) == 5
    write_mnist_split(tmp_path / "mnist", images[:3], labels[:3])
    assert len(data.load_arrays("mnist", "test", data_dir=tmp_path)[1]) == 3


# ----------------------------------------------------------------------------- the pipeline

def test_load_batches_the_arrays_in_order(data_dir):
    expected_x, expected_y = data.load_arrays("mnist", "test", data_dir=data_dir)
    dataset = data.load("mnist", "test", data_dir=data_dir, batch_size=100, limit=256)
    image_spec, label_spec = dataset.element_spec
    assert image_spec.shape.as_list() == [None, 28, 28, 1] and image_spec.dtype == tf.float32
    assert label_spec.dtype == tf.int64
    assert [int(x.shape[0]) for x, _ in dataset] == [100, 100, 56]
    images, labels = epoch(dataset)
    np.testing.assert_array_equal(images, expected_x[:256])
    np.testing.assert_array_equal(labels, expected_y[:256])
    # destroying an autotuned iterator (every epoch of fit) waits for its tuning thread: often 2-3 s
    assert dataset.options().autotune.enabled is False


def test_single_examples_flatten_and_drop_remainder(digits):
    all_images, _ = digits
    image, label = next(iter(data.load("digits", "test")))
    assert image.shape == (8, 8, 1) and label.dtype == tf.int64
    flat = data.load("digits", "test", flatten=True, batch_size=64, drop_remainder=True)
    assert flat.element_spec[0].shape.as_list() == [64, 64]  # static, for Keras layers
    images, _ = epoch(flat)
    assert images.shape == (256, 64)  # 297 examples -> 4 full batches
    np.testing.assert_allclose(images, all_images[1500:1756].reshape(256, 64), atol=1e-7)
    flat_single, _ = next(iter(data.load("digits", "test", flatten=True)))
    assert flat_single.shape == (64,)


def test_limit(data_dir):
    assert len(epoch(data.load("binarized_mnist", "test", data_dir=data_dir, batch_size=50, limit=120))[1]) == 120
    assert len(epoch(data.load("digits", "test", batch_size=1000, limit=10_000))[1]) == 297
    assert list(data.load("digits", "test", limit=0)) == []


def test_threshold_binarization(digits):
    all_images, _ = digits
    images, _ = epoch(data.load("digits", "train", batch_size=500, binarize="threshold"))
    np.testing.assert_array_equal(images, (all_images[:1500] > 0.5).astype(np.float32))


def test_dynamic_binarization_is_fresh_each_epoch_and_reproducible(digits):
    grey = digits[0][:1500]
    dataset = data.load("digits", "train", batch_size=300, binarize="dynamic", seed=7)
    first, second = epoch(dataset)[0], epoch(dataset)[0]
    assert set(np.unique(first)) == {0.0, 1.0}
    assert np.mean(first != second) > 0.05  # fresh draws in the second epoch
    np.testing.assert_array_equal(first[grey == 0], 0.0)  # Bernoulli(0) and Bernoulli(1)
    np.testing.assert_array_equal(first[grey == 1], 1.0)
    again = data.load("digits", "train", batch_size=300, binarize="dynamic", seed=7)
    np.testing.assert_array_equal(epoch(again)[0], first)
    np.testing.assert_array_equal(epoch(again)[0], second)
    other = epoch(data.load("digits", "train", batch_size=300, binarize="dynamic", seed=8))[0]
    assert np.mean(other != first) > 0.05


def test_dynamic_binarization_mean_is_the_grey_level(data_dir):
    grey, _ = data.load_arrays("mnist", "test", data_dir=data_dir)
    grey = grey[:2000]
    dataset = data.load("mnist", "test", data_dir=data_dir, limit=2000, batch_size=500,
                        binarize="dynamic", seed=0)
    draws = np.stack([epoch(dataset)[0] for _ in range(4)])
    # E[b] = x: the total count of ones is a sum of independent Bernoulli(x) variables
    ones, mean, std = draws.sum(), 4 * grey.sum(), np.sqrt(4 * np.sum(grey * (1 - grey)))
    assert abs(ones - mean) < 5 * std
    # and per grey level: pixels with x in [0.45, 0.55] are on about half the time
    middle = (grey >= 0.45) & (grey <= 0.55)
    frequency = draws[:, middle].mean()
    assert abs(frequency - grey[middle].mean()) < 5 * 0.5 / np.sqrt(4 * middle.sum())


def test_draw_binary_is_bernoulli_at_every_8_bit_level():
    levels = np.arange(256, dtype=np.float32) / 255
    draws = 4000
    # an odd element count: the last word's second half is dropped
    p = np.tile(levels, draws + 1)[:-1]
    b = draw_binary(tf.constant(p), seed=[3, 4]).numpy().reshape(-1)
    assert b.shape == p.shape and set(np.unique(b)) == {0.0, 1.0}
    np.testing.assert_array_equal(b[p == 0], 0.0)
    np.testing.assert_array_equal(b[p == 1], 1.0)
    frequency = np.bincount(np.round(p * 255).astype(int), weights=b) / np.bincount(np.round(p * 255).astype(int))
    np.testing.assert_allclose(frequency, levels, atol=5 * 0.5 / np.sqrt(draws))
    # and over all levels at once, a test 16x finer than any one level's
    assert abs(b.sum() - p.sum()) < 5 * np.sqrt(np.sum(p * (1 - p)))
    # the two draws that share a word are independent: P(both) = p^2 at p = 1/2
    pairs = draw_binary(tf.fill([200_000], 0.5), seed=[5, 6]).numpy().reshape(-1, 2)
    assert abs(np.mean(pairs[:, 0] * pairs[:, 1]) - 0.25) < 5 * np.sqrt(0.25 * 0.75 / len(pairs))
    # same seed, same draw; another seed, another draw
    np.testing.assert_array_equal(draw_binary(tf.constant(p), seed=[3, 4]).numpy().reshape(-1), b)
    assert np.mean(draw_binary(tf.constant(p), seed=[3, 5]).numpy().reshape(-1) != b) > 0.1


def test_dynamic_binarization_of_single_examples(digits):
    grey = digits[0][1500]
    image, _ = next(iter(data.load("digits", "test", binarize="dynamic", seed=1)))
    image = image.numpy()
    assert image.shape == (8, 8, 1) and set(np.unique(image)) <= {0.0, 1.0}
    np.testing.assert_array_equal(image[grey == 0], 0.0)


def test_shuffle_is_seeded_and_reshuffles_each_epoch():
    _, ordered = data.load_arrays("digits", "train")
    dataset = data.load("digits", "train", batch_size=256, shuffle=True, seed=3)
    first, second = epoch(dataset)[1], epoch(dataset)[1]
    assert sorted(first) == sorted(ordered)  # a permutation
    assert not np.array_equal(first, ordered) and not np.array_equal(first, second)
    same = data.load("digits", "train", batch_size=256, shuffle=True, seed=3)
    np.testing.assert_array_equal(epoch(same)[1], first)
    np.testing.assert_array_equal(epoch(same)[1], second)
    other = data.load("digits", "train", batch_size=256, shuffle=True, seed=4)
    assert not np.array_equal(epoch(other)[1], first)


def test_every_pass_is_a_uniform_permutation_in_known_batches():
    from scipy import stats

    from tfvae.data.pipeline import index_batches

    n, passes = 6, 600
    dataset = index_batches(np.arange(n), 4, shuffle=True, seed=0)
    assert dataset.cardinality().numpy() == 2                   # 4 + 2: fit knows its steps
    counts = np.zeros((n, n))                                   # [position, index]
    for _ in range(passes):
        order = np.concatenate([b.numpy() for b in dataset])
        assert sorted(order) == list(range(n))
        counts[np.arange(n), order] += 1
    # each index equally likely at each position: χ² over the 6 × 6 table, (6 - 1)² degrees of freedom
    chi2 = ((counts - passes / n) ** 2 / (passes / n)).sum()
    assert stats.chi2.sf(chi2, (n - 1) ** 2) > 1e-4, counts
    assert len(list(index_batches(np.arange(n), 4, shuffle=True, drop_remainder=True))) == 1


def test_shuffle_keeps_images_with_their_labels():
    x, y = data.load_arrays("digits", "test")
    images, labels = epoch(data.load("digits", "test", batch_size=100, shuffle=True, seed=0,
                                     cache=False, prefetch=False))
    by_image = {x[i].tobytes(): y[i] for i in range(len(x))}
    assert all(by_image[image.tobytes()] == label for image, label in zip(images, labels))


# ----------------------------------------------------------------------------- sources

def test_data_dir_argument_comes_before_the_environment(tmp_path, monkeypatch):
    argument_images, argument_labels = small_mnist(4, seed=1)
    env_images, env_labels = small_mnist(6, seed=2)
    write_mnist_split(tmp_path / "arg" / "mnist", argument_images, argument_labels)
    write_mnist_split(tmp_path / "env" / "mnist", env_images, env_labels)
    monkeypatch.setenv("TFVAE_DATA_DIR", str(tmp_path / "env"))
    images, labels = data.load_arrays("mnist", "test", data_dir=tmp_path / "arg")
    np.testing.assert_array_equal(labels, argument_labels)
    np.testing.assert_array_equal(images[..., 0], argument_images / np.float32(255))
    images, labels = data.load_arrays("mnist", "test")
    np.testing.assert_array_equal(labels, env_labels)


def test_debian_package_folder_for_fashion_mnist(tmp_path, monkeypatch):
    debian = tmp_path / "usr/share/datasets/fashion-mnist"
    images, labels = small_mnist(3, seed=5)
    write_mnist_split(debian, images, labels, prefix="train")
    spec = catalog.SPECS["fashion_mnist"]
    monkeypatch.setitem(catalog.SPECS, "fashion_mnist",
                        dataclasses.replace(spec, system_folders=(str(debian),)))
    loaded, loaded_labels = data.load_arrays("fashion_mnist", "train", data_dir=tmp_path / "empty")
    np.testing.assert_array_equal(loaded_labels, labels)
    assert loaded.shape == (3, 28, 28, 1)


def test_tensorflow_datasets_route(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(sources, "network_available", lambda *args, **kwargs: True)
    try:
        with tfds.testing.mock_data(num_examples=7):  # stands in for the download and the files
            dataset = data.load("mnist", "test", data_dir=tmp_path, batch_size=7)
            images, labels = next(iter(dataset))
    finally:
        sources._tfds_arrays.cache_clear()
    assert images.shape == (7, 28, 28, 1) and labels.dtype == tf.int64
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0


def test_network_probe_on_local_ports():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        assert REAL_NETWORK_PROBE("127.0.0.1", listener.getsockname()[1], timeout=2.0)
        closed_port = listener.getsockname()[1]
    start = time.monotonic()
    assert not REAL_NETWORK_PROBE("127.0.0.1", closed_port, timeout=2.0)
    assert time.monotonic() - start < 2.5


@pytest.mark.parametrize("name,split", [("mnist", "train"), ("fashion_mnist", "test"),
                                        ("binarized_mnist", "valid")])
def test_offline_without_files_fails_promptly_and_clearly(tmp_path, monkeypatch, name, split):
    monkeypatch.delenv("TFVAE_DATA_DIR", raising=False)
    start = time.monotonic()
    with pytest.raises(data.DataNotFoundError) as raised:
        data.load(name, split, data_dir=tmp_path)
    assert time.monotonic() - start < 10.0
    assert isinstance(raised.value, FileNotFoundError)
    message = str(raised.value)
    assert str(tmp_path / name) in message  # where it looked
    for filename in catalog.SPECS[name].files[split]:
        assert filename in message  # what it looked for
    assert "TFVAE_DATA_DIR" in message and "tensorflow-datasets" in message
    assert "no network" in message
    if name == "fashion_mnist":
        assert "/usr/share/datasets/fashion-mnist" in message and "dataset-fashion-mnist" in message


def test_partial_folder_names_the_missing_file(tmp_path):
    images, _ = small_mnist(2)
    write_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz", images)
    with pytest.raises(data.DataNotFoundError, match=r"missing t10k-labels-idx1-ubyte\.gz"):
        data.load_arrays("mnist", "test", data_dir=tmp_path)


# ----------------------------------------------------------------------------- corrupt files

def corrupt_case(tmp_path, case):
    folder = tmp_path / "mnist"
    images, labels = small_mnist(5)
    write_mnist_split(folder, images, labels)
    image_file = folder / "t10k-images-idx3-ubyte.gz"
    label_file = folder / "t10k-labels-idx1-ubyte.gz"
    if case == "bad magic":
        write_idx(image_file, images, magic=0x0802)
        return image_file, "magic number"
    if case == "labels magic for images":
        write_idx(image_file, labels, magic=0x0801)
        return image_file, "magic number"
    if case == "truncated gzip":
        image_file.write_bytes(image_file.read_bytes()[:-200])
        return image_file, "truncated"
    if case == "not gzip":
        write_idx(image_file, images, compress=False)
        return image_file, "gzip"
    if case == "too few bytes":
        raw = (0x0803).to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in (5, 28, 28))
        image_file.write_bytes(gzip.compress(raw + images.tobytes()[:-1]))
        return image_file, "wrong size"
    if case == "too many bytes":
        write_idx(label_file, labels, extra=b"\x01")
        return label_file, "wrong size"
    if case == "count mismatch":
        write_idx(label_file, labels[:4])
        return label_file, "count mismatch"
    if case == "label out of range":
        write_idx(label_file, np.array([0, 1, 2, 10, 3]))
        return label_file, "outside 0..9"
    if case == "wrong image size":
        write_idx(image_file, np.zeros((5, 32, 32)))
        return image_file, "expected 28x28"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["bad magic", "labels magic for images", "truncated gzip",
                                  "not gzip", "too few bytes", "too many bytes", "count mismatch",
                                  "label out of range", "wrong image size"])
def test_corrupt_idx_files(tmp_path, case):
    bad_file, what = corrupt_case(tmp_path, case)
    with pytest.raises(data.CorruptDataError) as raised:
        data.load("mnist", "test", data_dir=tmp_path)
    assert isinstance(raised.value, ValueError)
    assert str(bad_file) in str(raised.value) and what in str(raised.value)


def amat_case(folder, case):
    rows = np.random.default_rng(0).integers(0, 2, (3, 784))
    text = amat_text(rows)
    lines = text.splitlines(keepends=True)
    if case == "short row":
        lines[1] = " ".join(lines[1].split()[:783]) + "\n"
        return "".join(lines), "line 2"
    if case == "long row":
        lines[2] = lines[2][:-1] + " 1\n"
        return "".join(lines), "line 3"
    if case == "value 2":
        lines[1] = "2" + lines[1][1:]
        return "".join(lines), "expected only 0 or 1"
    if case == "grey value":
        lines[0] = lines[0][:-2] + "5\n"
        return "".join(lines), "line 1, value 784"
    if case == "double space":
        # same byte length as a good row, but a value is replaced by a separator
        lines[0] = "0  " + lines[0][3:]
        return "".join(lines), "line 1"
    if case == "tab separator":
        lines[2] = lines[2][:1] + "\t" + lines[2][2:]
        return "".join(lines), "line 3"
    if case == "empty":
        return "", "empty"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["short row", "long row", "value 2", "grey value", "double space",
                                  "tab separator", "empty"])
def test_corrupt_amat_files(tmp_path, case):
    text, what = amat_case(tmp_path, case)
    bad_file = tmp_path / "binarized_mnist" / "binarized_mnist_test.amat"
    bad_file.parent.mkdir()
    bad_file.write_text(text)
    with pytest.raises(data.CorruptDataError) as raised:
        data.load_arrays("binarized_mnist", "test", data_dir=tmp_path)
    assert str(bad_file) in str(raised.value) and what in str(raised.value)


def test_small_amat_round_trip_and_missing_final_newline(tmp_path):
    rows = np.random.default_rng(1).integers(0, 2, (4, 784))
    path = tmp_path / "binarized_mnist" / "binarized_mnist_valid.amat"
    path.parent.mkdir()
    path.write_text(amat_text(rows)[:-1])
    images, labels = data.load_arrays("binarized_mnist", "valid", data_dir=tmp_path)
    np.testing.assert_array_equal(images.reshape(4, 784), rows)
    np.testing.assert_array_equal(labels, [-1] * 4)


# ----------------------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("call,pattern", [
    (lambda: data.load("cifar10"), r"unknown data set 'cifar10'.*'binarized_mnist', 'digits'"),
    (lambda: data.load_arrays("svhn"), r"unknown data set 'svhn'"),
    (lambda: data.info("emnist"), r"unknown data set 'emnist'"),
    (lambda: data.load("mnist", "valid"), r"unknown split 'valid'.*\['train', 'test'\]"),
    (lambda: data.load_arrays("binarized_mnist", "validation"), r"\['train', 'valid', 'test'\]"),
    (lambda: data.load("digits", binarize="bernoulli"), r"binarize must be one of"),
    (lambda: data.load("digits", binarize=True), r"binarize must be one of"),
    (lambda: data.load("digits", limit=-1), r"limit must be a non-negative integer"),
    (lambda: data.load("digits", limit=2.5), r"limit must be an integer"),
    (lambda: data.load("digits", batch_size=0), r"batch_size must be a positive integer"),
    (lambda: data.load("digits", batch_size=True), r"batch_size must be an integer"),
    (lambda: data.load("digits", seed="zero"), r"seed must be an integer"),
])
def test_bad_arguments(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()
