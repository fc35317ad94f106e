"""Users' own data end to end: vector models, count likelihoods, `tfvae train --dataset PATH`
on scikit-learn's embedded tables and on an image folder, and the SavedModel of a vector model
served by TensorFlow alone."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_breast_cancer, load_wine

from tfvae import cli
from tfvae.models import VAE, VSC, IWAE


def _fit(model, x, epochs=4, jit_compile="auto"):
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=jit_compile)
    return model.fit(x, epochs=epochs, batch_size=64, verbose=0, shuffle=False).history["loss"]


@pytest.mark.parametrize("likelihood", ["poisson", "negative-binomial"])
def test_count_likelihoods_train_on_a_count_matrix(likelihood):
    rng = np.random.default_rng(0)
    rates = np.exp(rng.normal(0.0, 1.0, (256, 2)) @ rng.normal(0.0, 0.7, (2, 20)) + 1.0)
    counts = rng.poisson(rates).astype("float32")
    model = VAE(input_shape=(20,), latent_dim=2, likelihood=likelihood)
    losses = _fit(model, counts, epochs=6)
    assert losses[-1] < losses[0] - 1.0
    means = model.reconstruct(counts[:8]).numpy()
    assert means.shape == (8, 20) and np.all(means >= 0)


def test_count_likelihood_rejects_fractional_data_with_a_clear_error():
    model = VAE(input_shape=(3,), latent_dim=2, likelihood="poisson")
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="non-integer"):
        model.fit(np.array([[1.0, 2.5, 0.0]] * 4, "float32"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="negative"):
        model.fit(np.array([[1.0, -2.0, 0.0]] * 4, "float32"), epochs=1, verbose=0)


def test_convolutional_networks_need_images():
    with pytest.raises(ValueError, match="needs images"):
        VAE(input_shape=(30,), latent_dim=2, architecture="conv")


@pytest.mark.parametrize("cls", [VAE, VSC, IWAE])
def test_vector_models_train_encode_and_decode(cls):
    x = load_wine().data.astype("float32")
    standardization = {"mean": x.mean(0).tolist(), "scale": x.std(0).tolist()}
    model = cls(input_shape=(13,), latent_dim=3, likelihood="gaussian-learned", standardization=standardization)
    # without XLA (a third of the time): the vector VAE trains under the default XLA compile in
    # the CSV run below, VSC and IWAE in their own tests
    losses = _fit(model, x, jit_compile=False)
    assert losses[-1] < losses[0]
    assert model.encode(x[:5]).shape == (5, 3)
    assert model.decode(model.encode(x[:5])).shape == (5, 13)


def test_standardization_keeps_a_density_of_the_raw_data():
    """log p(x|z) with standardisation = log p_u((x − m)/s | z) − Σ log s (the Jacobian)."""
    x = load_wine().data.astype("float32")[:6]
    mean, scale = x.mean(0), x.std(0) + 1.0
    model = VAE(input_shape=(13,), latent_dim=2, likelihood="gaussian",
                standardization={"mean": mean.tolist(), "scale": scale.tolist()})
    z = np.zeros((6, 2), "float32")
    raw = model.likelihood(z).log_prob(x).numpy()
    standardised = model.likelihood_layer.distribution(model.decoder(z)).log_prob((x - mean) / scale).numpy()
    np.testing.assert_allclose(raw, standardised - np.log(scale).sum(), rtol=1e-5)


def test_cli_trains_on_a_csv_table_and_serves_it_with_tensorflow_alone(tmp_path, cancer_csv):
    path = cancer_csv
    out = tmp_path / "run"
    code = cli.main(["train", "--dataset", str(path), "--label-column", "target", "--likelihood", "gaussian",
                     "--latent-dim", "3", "--epochs", "2", "--batch-size", "64", "--out", str(out),
                     "--log-likelihood-samples", "20", "--quiet",
                     # float32 networks, so that the served codes equal Keras' to float32 precision
                     # (test_mixed_precision checks a bfloat16 export at bfloat16's)
                     "--precision", "float32"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["model_config"]["input_shape"] == [30]
    assert config["model_config"]["standardization"] is not None  # real values: standardised
    assert metrics["likelihood"] == "gaussian" and np.isfinite(metrics["test_log_likelihood"])
    assert "standardisation" in metrics["log_density_units"]
    assert (out / "reconstructions.png").exists()  # vector profiles

    assert cli.main(["export", str(out), "--out", str(tmp_path / "serving"), "--name", "cancer"]) == 0
    x = load_breast_cancer().data[:3].astype("float32")
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np, tensorflow as tf
        assert "tfvae" not in sys.modules
        model = tf.saved_model.load({str(tmp_path / "serving" / "cancer" / "1")!r})
        out = model.signatures["serving_default"](images=tf.constant({x.tolist()!r}, tf.float32))
        print(json.dumps(out["code_mean"].numpy().tolist()))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180,
                            env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    served = np.array(json.loads(result.stdout.strip().splitlines()[-1]))
    model = keras.models.load_model(out / "model.keras")
    np.testing.assert_allclose(served, model.encode(x).numpy(), rtol=1e-4, atol=1e-5)


def test_cli_trains_on_an_npz_of_wine(tmp_path):
    bunch = load_wine()
    path = tmp_path / "wine.npz"
    np.savez(path, x=bunch.data.astype("float32"), y=bunch.target)
    out = tmp_path / "run"
    # no log-likelihood (its estimator's tracing is most of a tiny run): the CSV run has it
    assert cli.main(["train", "--dataset", str(path), "--model", "beta-vae", "--beta", "2", "--latent-dim", "2",
                     "--epochs", "1", "--out", str(out), "--log-likelihood-samples", "0", "--quiet"]) == 0
    assert json.loads((out / "config.json").read_text())["model_config"]["beta"] == 2.0


def test_cli_trains_on_an_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for label in ("circles", "squares"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(12):
            pixels = (rng.random((12, 12, 1)) * 255).astype("uint8")
            (tmp_path / "images" / label / f"{i}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    out = tmp_path / "run"
    assert cli.main(["train", "--dataset", str(tmp_path / "images"), "--image-size", "8", "--epochs", "1",
                     "--latent-dim", "2", "--out", str(out), "--log-likelihood-samples", "0", "--quiet"]) == 0
    assert json.loads((out / "config.json").read_text())["model_config"]["input_shape"] == [8, 8, 1]


def test_cli_names_a_bad_file_in_one_line(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("a,b\n1,2\n3,x\n")
    assert cli.main(["train", "--dataset", str(path), "--epochs", "1", "--out", str(tmp_path / "r")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("tfvae: error:") and "bad.csv" in error and "row 3" in error
    assert len(error.splitlines()) == 1
    assert not (tmp_path / "r" / "model.keras").exists()
