"""TensorFlow Datasets by name (tfvae.data.tfds_source), offline: ``tfds.testing.mock_data``
stands in for prepared data (random examples of a builder's features, or examples we choose),
with metadata files naming the splits as a prepared folder holds them."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfvae import data, run

tfds = pytest.importorskip("tensorflow_datasets")


def _prepared(folder, name, splits):
    """Writes the metadata of a prepared ``name`` with ``splits`` ({split: examples}) in ``folder``."""
    builder = tfds.builder(name, data_dir=str(folder))
    template = tfds.core.ShardedFileTemplate(data_dir=builder.data_dir, dataset_name=builder.name,
                                             filetype_suffix="tfrecord", split="train")
    builder.info.set_splits(tfds.core.SplitDict([
        tfds.core.SplitInfo(name=s, shard_lengths=[n], num_bytes=0, filename_template=template.replace(split=s))
        for s, n in splits.items()]))
    os.makedirs(builder.data_dir, exist_ok=True)
    builder.info.write_to_directory(builder.data_dir)
    return str(folder)


def _mocked(folder, examples=None, **options):
    """``mock_data`` reading the metadata in ``folder``; ``examples`` ({split: {feature: array}})
    replaces the random examples (tfds's ``split[a:b]`` slices honoured)."""
    if examples is not None:
        def as_dataset(self, split, decoders=None, read_config=None, **kwargs):
            (part,) = tfds.core.ReadInstruction.from_spec(split).to_absolute(self.info.splits)
            chosen = {k: v[part.from_:part.to] for k, v in examples[part.splitname].items()}
            return tf.data.Dataset.from_tensor_slices(chosen)
        options["as_dataset_fn"] = as_dataset
    return tfds.testing.mock_data(data_dir=folder, policy=tfds.testing.MockPolicy.USE_FILES, **options)


def test_mnist_by_name(tmp_path):
    folder = _prepared(tmp_path, "mnist", {"train": 24, "test": 24})
    with _mocked(folder, num_examples=24):
        source = data.open_source("tfds:mnist", data_dir=folder)
        x, labels = next(iter(source.train(batch_size=8, seed=0)))
    assert isinstance(source, data.TfdsSource) and source.name == "mnist"
    assert source.feature_shape == (28, 28, 1) and source.num_classes == 10 and source.held_out_split == "test"
    assert source.likelihood == "continuous-bernoulli" and source.standardization is None
    assert (source.train_size, source.held_out_size) == (24, 24)
    assert x.shape == (8, 28, 28, 1) and 0 <= float(tf.reduce_min(x)) and float(tf.reduce_max(x)) <= 1
    assert labels.dtype == tf.int64 and set(labels.numpy()) <= set(range(10))


@pytest.mark.parametrize("pixels, likelihood, scale", [
    (lambda rng, shape: rng.integers(0, 256, shape), "continuous-bernoulli", 255),
    (lambda rng, shape: 255 * rng.integers(0, 2, shape), "bernoulli", 255),
    (lambda rng, shape: rng.integers(0, 2, shape), "bernoulli", 1),  # stored binarised, as tfds binarized_mnist
])
def test_images_stream_as_in_memory(tmp_path, pixels, likelihood, scale):
    rng = np.random.default_rng(0)
    images = {s: pixels(rng, (n, 28, 28, 1)).astype(np.uint8) for s, n in (("train", 40), ("test", 16))}
    labels = {s: rng.integers(0, 10, len(x)) for s, x in images.items()}
    folder = _prepared(tmp_path, "mnist", {"train": 40, "test": 16})
    examples = {s: {"image": images[s], "label": labels[s]} for s in images}
    with _mocked(folder, examples):
        source = data.open_source("tfds:mnist", data_dir=folder, limit=30)
        x, y = source.arrays("train")
        held_x, held_y = source.arrays("held_out")
        epoch = list(source.train(batch_size=7, seed=1).as_numpy_iterator())
    np.testing.assert_array_equal(x, images["train"][:30] / np.float32(scale))
    np.testing.assert_array_equal(y, labels["train"][:30])
    np.testing.assert_array_equal(held_x, images["test"] / np.float32(scale))
    np.testing.assert_array_equal(held_y, labels["test"])
    shuffled = np.concatenate([b[0] for b in epoch])
    assert sorted(map(bytes, shuffled)) == sorted(map(bytes, x))  # each of the first 30, once
    assert source.train_size == 30 and source.held_out_size == 16
    # the likelihood a file of the same values gets
    whole = tmp_path / "whole.npy"
    np.save(whole, np.concatenate([images["train"], images["test"]]) / np.float32(scale))
    assert source.likelihood == data.open_source(str(whole)).likelihood == likelihood


def test_real_features_are_standardised_and_a_slice_of_train_is_held_out(tmp_path):
    rng = np.random.default_rng(1)
    features = rng.normal(5.0, [0.1, 1.0, 3.0, 10.0], size=(40, 4)).astype(np.float32)
    features[:, 3] = 2.0  # constant: std 1
    folder = _prepared(tmp_path, "iris", {"train": 40})
    with _mocked(folder, {"train": {"features": features, "label": rng.integers(0, 3, 40)}}):
        source = data.open_source("tfds:iris", data_dir=folder, validation_fraction=0.2)
        held_x, _ = source.arrays("held_out")
    assert source.held_out_split == "train[32:]" and (source.train_size, source.held_out_size) == (32, 8)
    np.testing.assert_array_equal(held_x, features[32:])
    assert source.likelihood == "gaussian-learned" and source.feature_shape == (4,) and source.num_classes == 3
    expected = data.Standardization.from_data(features[:32])
    np.testing.assert_allclose(source.standardization["mean"], expected.mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(source.standardization["scale"], expected.std.numpy(), rtol=1e-6)
    assert source.standardization["scale"][3] == 1.0


def test_missing_or_unprepared_builders_are_one_clear_error(tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(data.DataNotFoundError, match=rf"tfds:mnist: tensorflow-datasets 'mnist' is not prepared in "
                                                     rf"{empty}.*`tfds build mnist --data_dir DIR`.*TFDS_DATA_DIR"):
        data.open_source("tfds:mnist", data_dir=str(empty))
    monkeypatch.setenv("TFDS_DATA_DIR", str(empty))  # the default folder when data_dir is not given
    with pytest.raises(data.DataNotFoundError, match=rf"not prepared in {empty}"):
        data.open_source("tfds:mnist")
    with pytest.raises(data.DataNotFoundError, match=r"no tensorflow-datasets builder 'no_such_set' .*tfds build"):
        data.open_source("tfds:no_such_set")
    with pytest.raises(ValueError, match="unknown data set 'tfds:'"):
        run.RunConfig(dataset="tfds:")


def test_options_that_do_not_apply_are_errors(tmp_path):
    folder = _prepared(tmp_path, "mnist", {"train": 8, "test": 8})
    with _mocked(folder, num_examples=8):
        with pytest.raises(ValueError, match=r"split 'valid' is not a held-out split of tfds:mnist; expected one of "
                                             r"test"):
            data.open_source("tfds:mnist", data_dir=folder, split="valid")
        with pytest.raises(ValueError, match="validation_fraction applies to a tfds data set without a held-out split"):
            data.open_source("tfds:mnist", data_dir=folder, validation_fraction=0.3)
        for option in (dict(label_column="label"), dict(image_size=14), dict(binarize="dynamic")):
            with pytest.raises(ValueError, match="does not apply to 'tfds:mnist'"):
                data.open_source("tfds:mnist", data_dir=folder, **option)
        with pytest.raises(data.CorruptDataError, match=r"tfds:mnist: the poisson likelihood needs counts \(non-negative "
                                                        r"integers\), but tfds:mnist split 'train', example \d+"):
            data.open_source("tfds:mnist", data_dir=folder, likelihood="poisson")
        assert data.open_source("tfds:mnist", data_dir=folder, binarize="none").binarize is None


def test_a_run_trains_on_a_tfds_data_set(tmp_path):
    folder = _prepared(tmp_path, "mnist", {"train": 64, "test": 64})
    with _mocked(folder, num_examples=64):
        result = run.train(dataset="tfds:mnist", data_dir=folder, epochs=1, latent_dim=2, batch_size=32, verbose=0,
                           log_likelihood_samples=10, out=tmp_path / "r")
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["evaluation"]["dataset"] == "mnist" and metrics["evaluation"]["held_out_split"] == "test"
    assert metrics["test_examples"] == 64 and np.isfinite(metrics["test_log_likelihood"])
    assert result.config["dataset"] == "tfds:mnist" and result.config["likelihood"] == "continuous-bernoulli"
