"""VAE and β-VAE: the objective against independent computations, training, saving, bad input."""


import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tfvae import objectives
from tfvae.models import VAE, BetaVAE, VariationalModel, likelihoods


def _small(cls=VAE, latent_dim=4, **kwargs):
    kwargs.setdefault("network_options", {"hidden_units": (32,)})
    return cls(image_shape=(8, 8, 1), latent_dim=latent_dim, **kwargs)


def _dataset(images, batch_size=64):
    return tf.data.Dataset.from_tensor_slices(images).batch(batch_size)


# ----------------------------------------------------------------------- the probabilistic model

def test_kl_per_dimension_matches_the_gaussian_closed_form(digits):
    images, _ = digits
    model = _small()
    q = model.posterior(images[:16])
    mu, sigma = q.mean().numpy(), q.stddev().numpy()
    expected = 0.5 * (mu ** 2 + sigma ** 2 - 1.0 - np.log(sigma ** 2))
    np.testing.assert_allclose(model.kl_per_dimension(q).numpy(), expected, rtol=1e-4, atol=1e-6)


def test_bernoulli_likelihood_is_the_negative_binary_cross_entropy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 8, 8, 1)).astype("float32")
    x = rng.uniform(size=(3, 8, 8, 1)).astype("float32")
    p = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    expected = (x * np.log(p) + (1 - x) * np.log1p(-p)).sum(axis=(1, 2, 3))
    got = likelihoods.BernoulliLikelihood().distribution(logits).log_prob(x).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_gaussian_likelihood_matches_scipy_and_learns_its_scale():
    rng = np.random.default_rng(1)
    mean = rng.uniform(size=(2, 8, 8, 1)).astype("float32")
    x = rng.uniform(size=(2, 8, 8, 1)).astype("float32")
    layer = likelihoods.GaussianLikelihood(scale=0.3)
    expected = stats.norm(mean, 0.3).logpdf(x).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(layer.distribution(mean).log_prob(x).numpy(), expected, rtol=1e-5)
    learned = likelihoods.GaussianLikelihood(scale=0.3, learn_scale=True)
    assert len(learned.trainable_weights) == 1
    np.testing.assert_allclose(float(learned.current_scale()), 0.3, rtol=1e-6)


def test_elbo_with_analytic_kl_agrees_with_the_mean_log_weight(digits):
    """E_q[log p(x|z)] − KL(analytic) and E_q[log p(x|z) + log p(z) − log q(z|x)] are the same
    expectation; the second uses no KL formula at all."""
    images, _ = digits
    keras.utils.set_random_seed(3)
    model = _small()
    x = images[:4]
    q = model.posterior(x)
    reconstruction = model.likelihood(q.sample(20000)).log_prob(x).numpy()
    analytic = reconstruction.mean(axis=0) - tf.reduce_sum(model.kl_per_dimension(q), -1).numpy()
    log_weights = model.log_weights(x, num_samples=20000).numpy()
    monte_carlo = log_weights.mean(axis=0)
    stderr = np.hypot(log_weights.std(axis=0), reconstruction.std(axis=0)) / np.sqrt(20000)
    assert np.all(np.abs(analytic - monte_carlo) < 4 * stderr), (analytic, monte_carlo, stderr)


def test_log_weights_shape_and_terms(digits):
    images, _ = digits
    model = _small()
    w = model.log_weights(images[:5], num_samples=7)
    assert w.shape == (7, 5)
    assert np.all(np.isfinite(w.numpy()))


def test_beta_and_capacity_objectives_are_what_the_papers_write():
    rec = tf.constant([-10.0, -20.0])
    kl = tf.constant([3.0, 8.0])
    np.testing.assert_allclose(objectives.beta_elbo(rec, kl, 4.0), [-22.0, -52.0])
    np.testing.assert_allclose(objectives.capacity_elbo(rec, kl, 100.0, 5.0), [-210.0, -320.0])
    np.testing.assert_allclose(objectives.elbo_from_terms(rec, kl), objectives.beta_elbo(rec, kl, 1.0))


def test_beta_vae_loss_weights_the_kl(digits):
    images, _ = digits
    model = _small(BetaVAE, beta=4.0)
    keras.utils.set_random_seed(0)
    result = model.compute_objective(images[:8])
    m = result.metrics
    np.testing.assert_allclose(result.loss, -(m["reconstruction"] - 4.0 * m["kl"]), rtol=1e-5)
    np.testing.assert_allclose(m["elbo"], m["reconstruction"] - m["kl"], rtol=1e-5)


def test_capacity_rises_linearly_to_its_maximum_with_the_optimizer_steps(digits):
    images, _ = digits
    model = _small(BetaVAE, capacity_max=6.0, capacity_steps=10, gamma=50.0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    assert float(model.capacity()) == 0.0
    model.fit(_dataset(images[:256]), epochs=1, verbose=0)  # 4 steps
    np.testing.assert_allclose(float(model.capacity()), 6.0 * 4 / 10, rtol=1e-6)
    result = model.compute_objective(images[:8])
    m = result.metrics
    np.testing.assert_allclose(result.loss, -(m["reconstruction"] - 50.0 * np.abs(m["kl"] - 2.4)), rtol=1e-5)
    model.fit(_dataset(images[:256]), epochs=3, verbose=0)  # 16 steps > 10
    assert float(model.capacity()) == 6.0


def test_capacity_warmup_trains_the_elbo_first_then_the_capacity_objective(digits):
    images, _ = digits
    model = _small(BetaVAE, capacity_max=6.0, capacity_steps=10, gamma=50.0, capacity_warmup_steps=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    for step, warming_up in ((0, True), (3, True), (4, False), (7, False)):
        model.optimizer.iterations.assign(step)
        result = model.compute_objective(images[:8])
        m = result.metrics
        capacity = 6.0 * step / 10  # C keeps its schedule through the warm-up
        want = m["reconstruction"] - m["kl"] if warming_up else m["reconstruction"] - 50.0 * np.abs(m["kl"] - capacity)
        np.testing.assert_allclose(result.loss, -want, rtol=1e-5)
        np.testing.assert_allclose(m["capacity"], capacity, rtol=1e-6)


def test_capacity_options_without_a_capacity_objective_are_refused():
    with pytest.raises(ValueError, match="capacity_warmup_steps=3 applies to the capacity-annealed objective"):
        _small(BetaVAE, beta=4.0, capacity_warmup_steps=3)
    with pytest.raises(ValueError, match=r"capacity_steps=7, gamma=30.0 apply to the capacity-annealed objective"):
        _small(BetaVAE, capacity_steps=7, gamma=30.0)


# ---------------------------------------------------------------------------------- training

@pytest.mark.parametrize("cls,kwargs", [(VAE, {}), (BetaVAE, {"beta": 2.0}),
                                        (VAE, {"likelihood": "gaussian-learned"})])
def test_training_lowers_the_loss_and_reports_the_metrics(digits, cls, kwargs):
    images, _ = digits
    keras.utils.set_random_seed(0)
    model = _small(cls, latent_dim=6, **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(_dataset(images[:1024]), validation_data=_dataset(images[1024:1280]),
                        epochs=6, verbose=0).history
    for name in ("loss", "elbo", "reconstruction", "kl", "val_loss", "val_elbo"):
        assert name in history and np.all(np.isfinite(history[name]))
    assert history["loss"][-1] < history["loss"][0] - 1.0
    assert history["val_elbo"][-1] > history["val_elbo"][0]


def test_standard_callbacks_work_and_backup_resumes_the_schedule(digits, tmp_path):
    images, _ = digits
    data = _dataset(images[:320])  # 5 steps an epoch
    keras.utils.set_random_seed(0)
    model = _small(BetaVAE, capacity_max=10.0, capacity_steps=100)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))

    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("simulated crash")

    backup = str(tmp_path / "backup")
    callbacks = [keras.callbacks.BackupAndRestore(backup),
                 keras.callbacks.ModelCheckpoint(str(tmp_path / "best.keras"), monitor="val_loss"),
                 keras.callbacks.TensorBoard(str(tmp_path / "logs")),
                 keras.callbacks.EarlyStopping(monitor="val_loss", patience=10)]
    with pytest.raises(RuntimeError, match="simulated crash"):
        model.fit(data, validation_data=data, epochs=4, verbose=0, callbacks=callbacks + [Interrupt()])
    assert (tmp_path / "best.keras").exists() and any((tmp_path / "logs").iterdir())

    resumed = _small(BetaVAE, capacity_max=10.0, capacity_steps=100)
    resumed.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = resumed.fit(data, validation_data=data, epochs=4, verbose=0, callbacks=callbacks)
    assert len(history.history["loss"]) == 2  # epochs 3 and 4 only: two were restored
    assert int(resumed.optimizer.iterations) == 20
    np.testing.assert_allclose(float(resumed.capacity()), 10.0 * 20 / 100, rtol=1e-6)
    reloaded = keras.models.load_model(tmp_path / "best.keras")
    assert isinstance(reloaded, BetaVAE)


# ------------------------------------------------------------------------------------ saving

@pytest.mark.parametrize("cls,kwargs", [
    (VAE, {}),
    (BetaVAE, {"capacity_max": 12.0, "capacity_steps": 7, "gamma": 30.0}),
    (VAE, {"likelihood": "gaussian-learned", "observation_scale": 0.2}),
    (VAE, {"architecture": "conv"}),
])
def test_save_and_load_round_trip(digits, tmp_path, cls, kwargs):
    images, _ = digits
    model = _small(cls, **kwargs) if kwargs.get("architecture") != "conv" else \
        cls(image_shape=(8, 8, 1), latent_dim=4, **kwargs)
    model.compile(optimizer="adam", jit_compile=False)  # XLA is the training tests' (and the saved compile
    model.fit(_dataset(images[:128]), epochs=1, verbose=0)  # settings, tests/test_training.py's)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded) is cls
    assert loaded.get_config()["latent_dim"] == 4
    for key, value in kwargs.items():
        assert loaded.get_config()[key] == value
    x = images[:6]
    np.testing.assert_allclose(loaded.encode(x), model.encode(x), rtol=1e-6)
    np.testing.assert_allclose(loaded.decode(model.encode(x)), model.reconstruct(x), rtol=1e-6)
    if kwargs.get("likelihood") == "gaussian-learned":
        np.testing.assert_allclose(float(loaded.likelihood_layer.current_scale()),
                                   float(model.likelihood_layer.current_scale()))


def test_custom_encoder_and_decoder_round_trip(tmp_path):
    encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(6)])
    decoder = keras.Sequential([keras.Input((3,)), keras.layers.Dense(64), keras.layers.Reshape((8, 8, 1))])
    model = VAE(image_shape=(8, 8, 1), latent_dim=3, encoder=encoder, decoder=decoder)
    model.save(tmp_path / "custom.keras")
    loaded = keras.models.load_model(tmp_path / "custom.keras")
    z = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(loaded.decode(z), model.decode(z), rtol=1e-6)


# ------------------------------------------------------------------------------ the user API

def test_encode_decode_reconstruct_sample_shapes(digits):
    images, _ = digits
    model = _small()
    assert model.encode(images[:5]).shape == (5, 4)
    assert model.decode(np.zeros((2, 3, 4), np.float32)).shape == (2, 3, 8, 8, 1)
    reconstruction = model.reconstruct(images[:5]).numpy()
    assert reconstruction.shape == (5, 8, 8, 1) and reconstruction.min() >= 0 and reconstruction.max() <= 1
    a, b = model.sample(3, seed=7).numpy(), model.sample(3, seed=7).numpy()
    assert a.shape == (3, 8, 8, 1)
    np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------ bad input

@pytest.mark.parametrize("kwargs,message", [
    ({"latent_dim": 0}, "latent_dim must be a positive integer"),
    ({"latent_dim": 2.5}, "latent_dim must be a positive integer"),
    ({"architecture": "transformer"}, "architecture must be one of .*got 'transformer'"),
    ({"likelihood": "laplace"}, "likelihood must be one of .*got 'laplace'"),
    ({"likelihood": "gaussian", "observation_scale": 0.0}, "observation_scale must be a finite number > 0"),
    ({"likelihood": "bernoulli", "observation_scale": 0.5}, "observation_scale applies to the gaussian"),
    ({"image_shape": (8, 8)}, "image shape"),
])
def test_bad_model_arguments_are_named(kwargs, message):
    args = dict(dict(image_shape=(8, 8, 1), latent_dim=4), **kwargs)
    with pytest.raises(ValueError, match=message):
        VAE(**args)


@pytest.mark.parametrize("kwargs,message", [
    ({"beta": -1.0}, "beta must be a finite number >= 0"),
    ({"capacity_max": -5.0}, "capacity_max must be"),
    ({"capacity_steps": 0}, "capacity_steps must be a positive integer"),
    ({"gamma": 0.0}, "gamma must be a finite number > 0"),
])
def test_bad_beta_vae_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BetaVAE(image_shape=(8, 8, 1), latent_dim=4, **kwargs)


def test_mismatched_networks_are_rejected():
    encoder = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(5)])
    decoder = keras.Sequential([keras.Input((3,)), keras.layers.Dense(64), keras.layers.Reshape((8, 8, 1))])
    with pytest.raises(ValueError, match=r"encoder must output \[batch, 6\]"):
        VAE(image_shape=(8, 8, 1), latent_dim=3, encoder=encoder, decoder=decoder)
    with pytest.raises(ValueError, match="give both encoder and decoder"):
        VAE(image_shape=(8, 8, 1), latent_dim=3, encoder=encoder)


@pytest.mark.parametrize("jit_compile", ["auto", False])
def test_bad_training_images_fail_with_a_clear_message(digits, jit_compile):
    """Under the default compile settings (XLA, which drops assertion ops) as without XLA: the
    checks run in the input pipeline, outside the compiled step. One model per setting sees
    every kind of bad value (its compiled step is traced once)."""
    model = _small()
    model.compile(optimizer="adam", jit_compile=jit_compile)
    unchecked = _small(validate_inputs=False)
    unchecked.compile(optimizer="adam", jit_compile=jit_compile)
    for bad, message in [(np.nan, "NaN or Inf"), (1.5, "values above 1"), (-0.2, "values below 0")]:
        images = digits[0][:64].copy()
        images[3, 2, 2, 0] = bad
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            model.fit(_dataset(images), epochs=1, verbose=0)
        with pytest.raises(ValueError, match=message):
            model.fit(images, epochs=1, verbose=0)
        unchecked.fit(_dataset(images), epochs=1, verbose=0)  # the user's choice: no checks, no error


def test_wrong_image_and_code_shapes_are_named():
    model = _small()
    with pytest.raises(ValueError, match=r"images must have shape \[batch, 8, 8, 1\]"):
        model.encode(np.zeros((2, 28, 28, 1), np.float32))
    with pytest.raises(ValueError, match="codes must have 4 entries"):
        model.decode(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="num_samples must be a positive integer"):
        model.sample(0)


def test_the_base_class_is_the_vae_objective():
    assert issubclass(VAE, VariationalModel) and VAE.compute_objective is VariationalModel.compute_objective
