"""VSC: the objective against independent computations, sparse codes, schedules, training,
saving and bad hyperparameters. Small networks on the 8x8 digits keep it fast."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae import models
from tfvae.distributions import SpikeAndSlab
from tfvae.models import VSC


def _small(latent_dim=6, **kwargs):
    kwargs.setdefault("network_options", {"hidden_units": (32,)})
    kwargs.setdefault("alpha", 0.2)
    return VSC(image_shape=(8, 8, 1), latent_dim=latent_dim, **kwargs)


def _dataset(images, batch_size=64):
    return tf.data.Dataset.from_tensor_slices(images).batch(batch_size)


def _encoder_outputs(model, images):
    """μ, log σ², γ from the raw encoder output, computed here in numpy (float64)."""
    raw = model.encoder(images).numpy().astype(np.float64)
    mu, log_var, v = np.split(raw, 3, axis=-1)
    return mu, log_var, np.exp(-np.maximum(-v, 0.0))


def _paper_kl(mu, log_var, gamma, alpha):
    """The paper's prior term per latent dimension (numpy)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.where(gamma < 1, (1 - gamma) * np.log((1 - gamma) / (1 - alpha)), 0.0)
    return gamma * 0.5 * (mu ** 2 + np.exp(log_var) - 1 - log_var) + off + gamma * np.log(gamma / alpha)


# ----------------------------------------------------------------------- the probabilistic model

def test_prior_and_posterior_are_spike_and_slab_with_the_papers_parameters(digits):
    images, _ = digits
    model = _small(alpha=0.05)
    prior = model.prior.distribution
    assert isinstance(prior, SpikeAndSlab)
    np.testing.assert_allclose(prior.probs_parameter(), 0.05)
    np.testing.assert_allclose(prior.loc, np.zeros(6))
    q = model.posterior(images[:8]).distribution
    mu, log_var, gamma = _encoder_outputs(model, images[:8])
    np.testing.assert_allclose(q.loc, mu, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q.scale, np.exp(0.5 * log_var), rtol=1e-5)
    np.testing.assert_allclose(q.probs_parameter(), gamma, rtol=1e-5)
    assert np.all(gamma <= 1.0)
    assert q.temperature is None  # exact outside training
    assert model.posterior(images[:8], training=True).distribution.temperature is not None


def test_kl_per_dimension_is_the_papers_closed_form(digits):
    images, _ = digits
    keras.utils.set_random_seed(1)
    model = _small(alpha=0.1)
    x = images[:16]
    mu, log_var, gamma = _encoder_outputs(model, x)
    assert np.any(gamma == 1.0) and np.any(gamma < 1.0)  # both branches of log γ = −ReLU(−v)
    got = model.kl_per_dimension(model.posterior(x)).numpy()
    np.testing.assert_allclose(got, _paper_kl(mu, log_var, gamma, 0.1), rtol=1e-4, atol=1e-6)
    result = model.compute_objective(x)
    np.testing.assert_allclose(result.metrics["kl"], got.sum(-1), rtol=1e-5)  # summed, not averaged
    np.testing.assert_allclose(result.loss, -(result.metrics["reconstruction"] - result.metrics["kl"]),
                               rtol=1e-5)
    np.testing.assert_allclose(result.metrics["elbo"], -result.loss, rtol=1e-6)


def test_elbo_with_the_closed_form_kl_agrees_with_the_mean_log_weight(digits):
    """E_q[log p(x|z)] − KL and E_q[log p(x|z) + log p(z) − log q(z|x)] are the same number; the
    second needs no KL formula, only the spike-and-slab log_prob convention (exact samples)."""
    images, _ = digits
    keras.utils.set_random_seed(2)
    model = _small(alpha=0.3)
    x = images[:4]
    q = model.posterior(x)
    n = 20_000
    reconstruction = model.likelihood(q.sample(n, seed=(1, 2))).log_prob(x).numpy()
    analytic = reconstruction.mean(0) - tf.reduce_sum(model.kl_per_dimension(q), -1).numpy()
    log_weights = model.log_weights(x, num_samples=n).numpy()
    stderr = np.hypot(log_weights.std(0), reconstruction.std(0)) / np.sqrt(n)
    assert np.all(np.abs(analytic - log_weights.mean(0)) < 5 * stderr), (analytic, log_weights.mean(0))


def test_training_samples_are_relaxed_and_evaluation_samples_exact(digits):
    images, _ = digits
    model = _small()
    x = images[:32]
    exact = model.posterior(x).sample(seed=(3, 4)).numpy()
    relaxed = model.posterior(x, training=True).sample(seed=(3, 4)).numpy()
    gamma = _encoder_outputs(model, x)[2]
    assert np.any(exact == 0) and np.all(relaxed != 0)
    # Same seed: the relaxed sample sits near the exact one except where the noise is within a few
    # temperatures of the switching point; with c = 200 that is a small fraction of entries.
    assert np.mean(np.abs(relaxed - exact) > 0.05) < 0.1
    assert exact.shape == relaxed.shape == gamma.shape


def test_sharpness_and_warmup_follow_the_optimizer_steps(digits):
    images, _ = digits
    model = _small(sharpness_start=50.0, sharpness_end=150.0, sharpness_steps=10,
                   warmup_start=2, warmup_end=6)
    # Not compiled: the schedules' final values.
    assert float(model.sharpness()) == 150.0 and float(model.warmup()) == 1.0
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    assert float(model.sharpness()) == 50.0 and float(model.warmup()) == 0.0
    # During the warm-up the slab is pinned to the prior: the KL is the Bernoulli part alone.
    x = images[:8]
    mu, log_var, gamma = _encoder_outputs(model, x)
    q = model.posterior(x).distribution
    np.testing.assert_allclose(q.loc, 0.0)
    np.testing.assert_allclose(q.scale, 1.0)
    np.testing.assert_allclose(model.kl_per_dimension(model.posterior(x)),
                               _paper_kl(np.zeros_like(mu), np.zeros_like(log_var), gamma, 0.2),
                               rtol=1e-4, atol=1e-6)
    model.fit(_dataset(images[:256]), epochs=1, verbose=0)  # 4 steps
    np.testing.assert_allclose(float(model.sharpness()), 50.0 + 100.0 * 4 / 10, rtol=1e-6)
    np.testing.assert_allclose(float(model.warmup()), 0.5, rtol=1e-6)
    np.testing.assert_allclose(1.0 / model.posterior(x, training=True).distribution.temperature,
                               90.0, rtol=1e-5)
    model.fit(_dataset(images[:256]), epochs=2, verbose=0)  # 12 steps
    assert float(model.sharpness()) == 150.0 and float(model.warmup()) == 1.0


# ------------------------------------------------------------------------------ sparse codes

def test_encode_gives_gated_means_with_exact_zeros(digits):
    images, _ = digits
    keras.utils.set_random_seed(4)
    model = _small(threshold=0.7)
    x = images[:64]
    mu, _, gamma = _encoder_outputs(model, x)
    codes = model.encode(x).numpy()
    expected = np.where(gamma >= 0.7, gamma * mu, 0.0)
    np.testing.assert_allclose(codes, expected, rtol=1e-5, atol=1e-6)
    assert np.any(codes == 0) and np.any(codes != 0)
    np.testing.assert_array_equal(codes == 0, gamma < 0.7)
    np.testing.assert_allclose(model.slab_probabilities(x), gamma, rtol=1e-5)
    # The reported metric is the fraction of non-zero code entries.
    nonzero = model.compute_objective(x).metrics["nonzero"].numpy()
    np.testing.assert_allclose(nonzero, (codes != 0).mean(-1), rtol=1e-6)
    served = model.serving_encode(tf.constant(x))
    assert {"code_mean", "code_scale", "sparse_code", "slab_probability"} <= set(served)
    np.testing.assert_allclose(served["sparse_code"], codes, rtol=1e-6)


def test_sample_decodes_prior_draws(digits):
    model = _small(alpha=0.5)
    a, b = model.sample(5, seed=7).numpy(), model.sample(5, seed=7).numpy()
    assert a.shape == (5, 8, 8, 1) and np.all((a >= 0) & (a <= 1))
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------- training

def test_training_lowers_the_loss_and_reports_the_metrics(digits):
    images, _ = digits
    keras.utils.set_random_seed(0)
    model = _small(latent_dim=8, sharpness_steps=50, warmup_end=20)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(_dataset(images[:1024]), validation_data=_dataset(images[1024:1280]),
                        epochs=6, verbose=0).history
    for name in ("loss", "elbo", "reconstruction", "kl", "nonzero", "sharpness"):
        assert name in history and f"val_{name}" in history
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    assert history["val_loss"][-1] < history["val_loss"][0]
    assert all(np.isfinite(history["loss"]))
    assert 0.0 <= history["nonzero"][-1] <= 1.0
    assert history["sharpness"][-1] > history["sharpness"][0]


def test_registered_for_the_command_line():
    assert models.get("vsc") is VSC


# ------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs,message", [
    (dict(alpha=0.0), "alpha"),
    (dict(alpha=1.0), "alpha"),
    (dict(alpha=-0.1), "alpha"),
    (dict(alpha=float("nan")), "alpha"),
    (dict(alpha="0.1"), "alpha"),
    (dict(alpha=True), "alpha"),
    (dict(sharpness_start=0.0), "sharpness_start"),
    (dict(sharpness_end=-5.0), "sharpness_end"),
    (dict(sharpness_end=float("inf")), "sharpness_end"),
    (dict(sharpness_steps=0), "sharpness_steps"),
    (dict(sharpness_steps=2.5), "sharpness_steps"),
    (dict(warmup_start=-1, warmup_end=5), "warmup_start"),
    (dict(warmup_start=10, warmup_end=5), "warmup_start must not exceed warmup_end"),
    (dict(threshold=0.0), "threshold"),
    (dict(threshold=1.5), "threshold"),
])
def test_bad_hyperparameters_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _small(**kwargs)


# ----------------------------------------------------------------------------- command line

def test_command_line_trains_vsc_with_learned_alpha_and_reports_probe_and_sparsity(tmp_path, capsys):
    """One run for every VSC flag: the options reach the model, N of the α hyperprior is the
    training set's size, and the evaluation has the probe and the sparsity of the codes."""
    import json

    from tfvae import cli

    out = tmp_path / "run"
    status = cli.main(["train", "--model", "vsc", "--dataset", "digits", "--learn-alpha", "--alpha", "0.4",
                       "--alpha-prior-b", "20", "--sharpness-steps", "100", "--latent-dim", "4", "--epochs", "1",
                       "--limit", "128", "--log-likelihood-samples", "0", "--quiet", "--out", str(out)])
    assert status == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model_class"] == "VSC"
    config = config["model_config"]
    assert config["alpha"] == 0.4 and config["sharpness_steps"] == 100
    assert config["learn_alpha"] is True and config["alpha_prior_b"] == 20.0
    assert config["dataset_size"] == 128  # the training set's size, passed by the command line
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["probe_accuracy"] <= 1.0 and metrics["probe_train"] == 128  # the run's training examples (--limit)
    assert metrics["code_zero_fraction"] + metrics["code_nonzero_fraction"] == 1.0
    assert "test_nonzero" in metrics and np.isfinite(metrics["test_elbo"])

    assert cli.main(["train", "--model", "vsc", "--alpha", "1.5", "--out", str(tmp_path / "x")]) == 2
    assert "alpha" in capsys.readouterr().err
    assert cli.main(["train", "--model", "vae", "--alpha", "0.1", "--out", str(tmp_path / "y")]) == 2
    assert "--alpha applies to vsc" in capsys.readouterr().err


# ------------------------------------------------- learned slab probabilities (learn_alpha)

def _learned(latent_dim=6, alphas=None, **kwargs):
    """A VSC with learned α_j, optionally set to ``alphas`` (distinct per dimension)."""
    kwargs.setdefault("alpha", 0.3)
    model = _small(latent_dim=latent_dim, learn_alpha=True, **kwargs)
    if alphas is not None:
        model.alpha_logits.assign(np.log(alphas / (1 - alphas)).astype("float32"))
    return model


_ALPHAS = np.array([0.02, 0.1, 0.3, 0.5, 0.8, 0.97])


def test_default_vsc_has_one_fixed_alpha_and_no_extra_weight():
    model = _small(alpha=0.05)
    assert model.learn_alpha is False and not hasattr(model, "alpha_logits")
    assert all("alpha" not in v.name for v in model.weights)
    np.testing.assert_allclose(model.slab_prior_probabilities(), np.full(6, 0.05))
    assert float(model.alpha_log_hyperprior()) == 0.0


def test_learned_alpha_starts_at_alpha_and_the_kl_is_the_closed_form_with_alpha_j(digits):
    images, _ = digits
    keras.utils.set_random_seed(6)
    assert np.allclose(_learned(alpha=0.3).slab_prior_probabilities(), 0.3)
    model = _learned(alphas=_ALPHAS)
    x = images[:16]
    np.testing.assert_allclose(model.slab_prior_probabilities(), _ALPHAS, rtol=1e-5)
    np.testing.assert_allclose(model.prior.distribution.probs_parameter(), _ALPHAS, rtol=1e-5)
    mu, log_var, gamma = _encoder_outputs(model, x)
    # numpy broadcasts α_j over the batch: each dimension is priced at its own α_j
    got = model.kl_per_dimension(model.posterior(x)).numpy()
    np.testing.assert_allclose(got, _paper_kl(mu, log_var, gamma, _ALPHAS), rtol=1e-4, atol=1e-5)
    # the prior's log_prob (used by log_weights, IWAE, export) reads the same α_j: closed-form
    # ELBO = mean log-weight, by Monte Carlo
    n = 20_000
    q = model.posterior(x[:4])
    reconstruction = model.likelihood(q.sample(n, seed=(5, 6))).log_prob(x[:4]).numpy()
    analytic = reconstruction.mean(0) - got[:4].sum(-1)
    log_weights = model.log_weights(x[:4], num_samples=n).numpy()
    stderr = np.hypot(log_weights.std(0), reconstruction.std(0)) / np.sqrt(n)
    assert np.all(np.abs(analytic - log_weights.mean(0)) < 5 * stderr)


def test_learned_alpha_elbo_is_a_lower_bound_on_the_importance_sampled_log_likelihood(digits):
    """With α fixed at its learned value, the ELBO bounds log p(x | α) from below: the IWAE
    estimate with K = 2000 (itself ≤ log p(x|α) in expectation, and ≥ the ELBO in expectation)
    lies above the ELBO for every example, by more than the Monte Carlo error."""
    images, _ = digits
    keras.utils.set_random_seed(7)
    model = _learned(alphas=_ALPHAS)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)  # XLA: the command line's test
    model.fit(_dataset(images[:512]), epochs=2, verbose=0)  # learned, not the start values
    assert not np.allclose(model.slab_prior_probabilities(), _ALPHAS, atol=1e-3)
    x = images[600:606]
    w = model.log_weights(x, num_samples=2000, seed=tf.constant([1, 2])).numpy().astype(np.float64)
    elbo = w.mean(0)
    iwae = np.log(np.mean(np.exp(w - w.max(0)), 0)) + w.max(0)
    assert np.all(iwae > elbo + 3 * w.std(0) / np.sqrt(len(w))), (iwae, elbo)


def test_gradients_reach_alpha_j_and_vanish_at_the_empirical_bayes_optimum(digits):
    """d(mean loss)/d logit_j = α_j − mean_i γ_ij − (1/N)[(a − 1)(1 − α_j) − (b − 1) α_j] (the
    selection KL and the Beta hyperprior; the reconstruction does not depend on α)."""
    images, _ = digits
    keras.utils.set_random_seed(8)
    a, b, n = 2.0, 50.0, 1000
    model = _learned(alphas=_ALPHAS, alpha_prior_a=a, alpha_prior_b=b, dataset_size=n)
    x = images[:64]
    gamma = _encoder_outputs(model, x)[2]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model.compute_objective(x, training=True).loss)
    gradient = tape.gradient(loss, model.alpha_logits)
    assert gradient is not None
    expected = _ALPHAS - gamma.mean(0) - ((a - 1) * (1 - _ALPHAS) - (b - 1) * _ALPHAS) / n
    np.testing.assert_allclose(gradient.numpy(), expected, rtol=1e-3, atol=1e-5)
    # at α_j = (Σ_i γ_ij + a − 1) / (B + a + b − 2) for this batch of B (N = B) the gradient is 0
    model = _learned(alpha_prior_a=a, alpha_prior_b=b, dataset_size=len(x))
    gamma = _encoder_outputs(model, x)[2]
    optimum = (gamma.sum(0) + a - 1) / (len(x) + a + b - 2)
    model.alpha_logits.assign(np.log(optimum / (1 - optimum)).astype("float32"))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model.compute_objective(x).loss)
    np.testing.assert_allclose(tape.gradient(loss, model.alpha_logits), 0.0, atol=1e-5)
    # and the optimizer moves α toward it
    model.alpha_logits.assign(np.full(6, -3.0, "float32"))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)  # XLA: the command line's test
    before = np.abs(model.slab_prior_probabilities().numpy() - optimum)
    model.fit(x, batch_size=len(x), epochs=20, verbose=0)
    gamma = _encoder_outputs(model, x)[2]
    optimum = (gamma.sum(0) + a - 1) / (len(x) + a + b - 2)
    assert np.all(np.abs(model.slab_prior_probabilities().numpy() - optimum) < before)


def test_the_hyperprior_term_is_beta_log_density_over_n(digits):
    from scipy import stats

    images, _ = digits
    a, b, n = 1.5, 40.0, 500
    model = _learned(alphas=_ALPHAS, alpha_prior_a=a, alpha_prior_b=b, dataset_size=n)
    expected = stats.beta(a, b).logpdf(_ALPHAS).sum()
    np.testing.assert_allclose(float(model.alpha_log_hyperprior()), expected, rtol=1e-4)
    result = model.compute_objective(images[:8])
    np.testing.assert_allclose(result.loss, -result.metrics["elbo"] - expected / n, rtol=1e-5, atol=1e-4)
    # the flat Beta(1, 1) adds nothing: the loss is −ELBO and N is not needed
    flat = _learned(alphas=_ALPHAS)
    assert float(flat.alpha_log_hyperprior()) == 0.0
    result = flat.compute_objective(images[:8])
    np.testing.assert_allclose(result.loss, -result.metrics["elbo"], rtol=1e-6)


def test_save_and_load_round_trip_with_learned_alpha_and_export(digits, tmp_path):
    """Every option, the schedules' position (the optimizer's step count), the learned α_j and
    the optimizer state survive saving: the reloaded model encodes, prices the KL and trains on
    like the original. The SavedModel samples and scores with the learned α_j. A fixed-α VSC
    (no α weight) round-trips too. Trained without XLA: the compiled path is
    test_training_lowers_the_loss_and_reports_the_metrics's and the command line's."""
    from tfvae import evaluation, export

    images, _ = digits
    keras.utils.set_random_seed(9)
    options = dict(sharpness_start=40.0, sharpness_end=120.0, sharpness_steps=100, warmup_start=1, warmup_end=3,
                   threshold=0.6)
    model = _learned(alpha=0.4, alpha_prior_b=30.0, dataset_size=1797, **options)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    model.fit(_dataset(images[:256]), epochs=2, verbose=0)  # 8 steps: mid-schedule
    alphas = model.slab_prior_probabilities().numpy()
    assert not np.allclose(alphas, 0.4, atol=1e-3)
    model.save(tmp_path / "vsc.keras")
    loaded = keras.models.load_model(tmp_path / "vsc.keras")
    assert type(loaded) is VSC
    config = loaded.get_config()
    for key, value in dict(options, alpha=0.4, learn_alpha=True, alpha_prior_a=1.0, alpha_prior_b=30.0,
                           dataset_size=1797).items():
        assert config[key] == value, key
    np.testing.assert_allclose(loaded.slab_prior_probabilities(), alphas, rtol=1e-6)
    x = images[:32]
    np.testing.assert_allclose(loaded.encode(x), model.encode(x), rtol=1e-6)
    np.testing.assert_allclose(float(loaded.sharpness()), 40.0 + 80.0 * 8 / 100, rtol=1e-6)
    np.testing.assert_allclose(float(loaded.sharpness()), float(model.sharpness()))
    np.testing.assert_allclose(loaded.kl_per_dimension(loaded.posterior(x)),
                               model.kl_per_dimension(model.posterior(x)), rtol=1e-5)
    loaded.fit(_dataset(images[:64]), epochs=1, verbose=0)  # training resumes, and still trains α
    assert not np.allclose(loaded.slab_prior_probabilities(), alphas)

    served = tf.saved_model.load(export.export_saved_model(model, tmp_path / "serving", name="vsc"))
    # prior draws use the learned α_j: the sample signature equals model.sample with the same seed
    np.testing.assert_allclose(served.signatures["sample"](count=tf.constant(16), seed=tf.constant(3))["images"],
                               model.sample(16, seed=3), rtol=1e-5, atol=1e-6)
    served_ll = served.signatures["log_likelihood"](images=tf.constant(x[:4]), num_samples=tf.constant(100),
                                                    seed=tf.constant(5))["log_likelihood"].numpy()
    per_example = evaluation.log_likelihood(model, x[:4], num_samples=100, seed=5, return_per_example=True,
                                            verbose=0)[-1]
    np.testing.assert_allclose(served_ll, per_example, rtol=1e-4, atol=1e-3)

    fixed = _small(alpha=0.1, **options)
    fixed.save(tmp_path / "fixed.keras")
    loaded = keras.models.load_model(tmp_path / "fixed.keras")
    assert loaded.get_config()["alpha"] == 0.1 and loaded.learn_alpha is False
    assert not hasattr(loaded, "alpha_logits")
    np.testing.assert_allclose(loaded.encode(x), fixed.encode(x), rtol=1e-6)


@pytest.mark.parametrize("kwargs,message", [
    (dict(learn_alpha="yes"), "learn_alpha"),
    (dict(learn_alpha=True, alpha_prior_a=0.5, dataset_size=10), "alpha_prior_a"),
    (dict(learn_alpha=True, alpha_prior_b=float("nan"), dataset_size=10), "alpha_prior_b"),
    (dict(alpha_prior_b=10.0), "set learn_alpha=True"),
    (dict(learn_alpha=True, alpha_prior_b=10.0), "needs dataset_size"),
    (dict(learn_alpha=True, alpha_prior_b=10.0, dataset_size=0), "dataset_size"),
])
def test_bad_learned_alpha_options_are_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _small(**kwargs)


# ------------------------------------------------------------- benchmarks/vsc_study.py

def _vsc_study():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "vsc_study.py"
    spec = importlib.util.spec_from_file_location("vsc_study", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reproduction_classifiers_gradients_match_autodiff():
    study = _vsc_study()
    rng = np.random.default_rng(0)
    x, weights, bias = rng.normal(size=(16, 5)), rng.normal(size=(5, 10)), rng.normal(size=10)
    bias[0] = -100.0  # class 0's logit is dead (ReLU'd to 0) for every example
    onehot = np.eye(10)[rng.integers(0, 10, 16)]
    grad_w, grad_b, loss = study.classifier_gradients(x, onehot, weights, bias)
    w, b = tf.Variable(weights), tf.Variable(bias)
    with tf.GradientTape() as tape:
        logits = tf.nn.relu(tf.constant(x) @ w + b)
        expected = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(onehot, logits))
    expected_w, expected_b = tape.gradient(expected, [w, b])
    np.testing.assert_allclose(loss, expected.numpy(), rtol=1e-10)
    np.testing.assert_allclose(grad_w, expected_w.numpy(), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(grad_b, expected_b.numpy(), rtol=1e-8, atol=1e-12)
    assert np.all(grad_w[:, 0] == 0) and grad_b[0] == 0 and np.all(grad_w[:, 1:] != 0)


def test_the_vsc_study_quick_mode_runs_every_part(data_dir, tmp_path):
    import json

    study = _vsc_study()
    assert study.main(["--quick", "--out", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "results.json").read_text())
    results = saved["results"]
    assert set(results) == {"mnist/vae/8", "mnist/vsc-0.01/8", "mnist/vsc-learned/8"}
    for result in results.values():
        assert 0 <= result["repro_classifier_on_mu"] <= 1 and 0 <= result["probe_accuracy"] <= 1
        assert np.isfinite(result["test_elbo"]) and len(result["load_average"]) == 3
    assert set(results["mnist/vae/8"]["probe_truncated"]) == {"1", "2", "3", "4", "5", "6", "8"}
    assert len(results["mnist/vsc-learned/8"]["alpha_j_quantiles"]) == 5
    text = (tmp_path / "tables.md").read_text()
    for title in ("Reproduction protocol", "Accuracy against active dimensions", "Test ELBO against latent size"):
        assert title in text
    assert all((tmp_path / name).stat().st_size > 0
               for name in ("frontier.png", "elbo_vs_latent.png", "reproduction.png"))
    # resuming runs nothing new
    assert study.main(["--quick", "--out", str(tmp_path), "--report-only"]) == 0
    # the gate sweep reads the saved VSC codes with stricter gates: its counts are those of γ ≥ t
    assert study.main(["--quick", "--out", str(tmp_path), "--gate-sweep"]) == 0
    sweep = json.loads((tmp_path / "gate_sweep.json").read_text())
    assert set(sweep) == {"mnist/vsc-0.01/8"}
    model = keras.models.load_model(tmp_path / "mnist-vsc-0.01-8.keras")
    test_images = study.load_arrays("mnist", study.parse_args(["--quick"]))[2]
    gammas = np.concatenate([model.slab_probabilities(b).numpy() for b in np.array_split(test_images, 4)])
    for threshold, row in sweep["mnist/vsc-0.01/8"]["by_threshold"].items():
        expected = (gammas >= float(threshold)).sum(axis=1).mean()
        assert abs(row["mean_active_dims"] - expected) < 1e-6 and 0 <= row["probe_accuracy"] <= 1
    assert sweep["mnist/vsc-0.01/8"]["by_threshold"]["0.5"]["mean_active_dims"] == pytest.approx(
        results["mnist/vsc-0.01/8"]["mean_active_dims"])
    assert "Stricter gates" in (tmp_path / "tables.md").read_text()


def test_the_seed_table_averages_over_model_seeds_and_judges_the_mean():
    study = _vsc_study()

    def result(repro, probe):
        return dict(repro_classifier_on_mu=repro, probe_accuracy=probe, mean_active_dims=4.0, test_elbo=-100.0)

    # their VSC at J=200 on MNIST: 91.8 %; seed 0 alone is below it, the mean of the two above
    runs = {0: {"mnist/vsc-0.01/200": result(0.917, 0.75), "mnist/vae/8": result(0.8, 0.9)},
            1: {"mnist/vsc-0.01/200": result(0.921, 0.77)}}
    lines = study.seed_tables(runs)
    rows = [line for line in lines if line.startswith("| mnist/")]
    assert len(rows) == 1  # mnist/vae/8 has one seed only
    assert "91.7 / 92.1; **91.9** (met)" in rows[0] and "| 91.8 |" in rows[0]
    assert "75.0 / 77.0; **76.0**" in rows[0]
    runs[1]["mnist/vsc-0.01/200"] = result(0.915, 0.77)
    assert "(not met)" in [line for line in study.seed_tables(runs) if line.startswith("| mnist/")][0]
    assert study.seed_tables({0: runs[0]}) == []


def test_the_thresholded_prototype_bounds_log_p_x_with_the_threshold_inside_the_decoder(digits, tmp_path):
    """benchmarks/vsc_study.py's ThresholdedVAE: its ELBO is E_q[log p(x | h_λ(s))] − KL(q ‖ N(0, I)),
    computed here by hand (numpy soft threshold, the decoder network, a Bernoulli log-density); its
    sparse code is h_λ(μ); the threshold survives save and load."""
    study = _vsc_study()
    images, _ = digits
    keras.utils.set_random_seed(3)
    model = study.ThresholdedVAE(image_shape=(8, 8, 1), latent_dim=5, dead_zone=0.5,
                                 network_options={"hidden_units": (16,)})
    x = images[:3]
    mu, log_var = np.split(model.encoder(x).numpy().astype(np.float64), 2, axis=-1)
    n = 4000
    s = mu + np.exp(0.5 * log_var) * np.random.default_rng(0).normal(size=(n,) + mu.shape)
    z = np.sign(s) * np.maximum(np.abs(s) - 0.5, 0.0)
    logits = model.decoder(z.reshape(-1, 5).astype(np.float32)).numpy().reshape(n, 3, -1).astype(np.float64)
    flat = x.reshape(3, -1).astype(np.float64)
    reconstruction = (flat * logits - np.logaddexp(0.0, logits)).sum(-1)
    kl = 0.5 * (mu ** 2 + np.exp(log_var) - 1.0 - log_var).sum(-1)
    by_hand = reconstruction.mean(0) - kl
    q = model.posterior(x)
    ours = model.likelihood(q.sample(n, seed=(4, 5))).log_prob(x).numpy()
    stderr = np.hypot(reconstruction.std(0), ours.std(0)) / np.sqrt(n)
    assert np.all(np.abs(ours.mean(0) - kl - by_hand) < 5 * stderr), (ours.mean(0) - kl, by_hand)
    codes = model.sparse_codes(x).numpy()
    np.testing.assert_allclose(codes, np.where(np.abs(mu) > 0.5, mu - 0.5 * np.sign(mu), 0.0), atol=1e-5)
    assert np.all(codes[np.abs(mu) <= 0.5] == 0)
    model.save(tmp_path / "thresholded.keras")
    loaded = keras.models.load_model(tmp_path / "thresholded.keras")
    assert loaded.dead_zone == 0.5
    np.testing.assert_allclose(loaded.sparse_codes(x), codes, rtol=1e-6)
