"""IWAE, MIWAE, CIWAE and PIWAE models and gradient SNR, checked against independent
computations: a linear-Gaussian model whose log p(x) is closed form, hand-written log-weights
and gradients from the same noise, and Monte Carlo comparisons whose tolerances come from
standard errors. (The log-likelihood estimate: tests/test_log_likelihood.py.)"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfvae
from tfvae import objectives
from tfvae.models import CIWAE, IWAE, MIWAE, PIWAE, VAE

tfd = tfp.distributions

TINY = dict(image_shape=(8, 8, 1), latent_dim=3, network_options=dict(hidden_units=(16,)))


# ------------------------------------------------------------------ a model with known log p(x)

class LinearGaussian:
    """x = W z + b + σ ε with z ~ N(0, I): p(x) = N(b, W Wᵀ + σ² I). The decoder is the linear
    map, the encoder a linear map giving [μ, log σ²] of q(z|x). The exact posterior is
    N(A (x − b), S) with S = (I + WᵀW/σ²)⁻¹, A = S Wᵀ / σ², diagonal when W's columns are
    orthogonal."""

    shape, latent, sigma = (2, 3, 1), 2, 0.5

    def __init__(self, seed=0, orthogonal=False):
        rng = np.random.default_rng(seed)
        dim = math.prod(self.shape)
        w = rng.normal(size=(dim, self.latent))
        if orthogonal:
            w = np.linalg.qr(w)[0] * np.array([1.5, 0.8])
        self.w, self.b = w, rng.normal(size=dim)
        self.covariance = w @ w.T + self.sigma ** 2 * np.eye(dim)
        self.post_cov = np.linalg.inv(np.eye(self.latent) + w.T @ w / self.sigma ** 2)
        self.post_gain = self.post_cov @ w.T / self.sigma ** 2

    def data(self, n, seed=1):
        rng = np.random.default_rng(seed)
        x = rng.multivariate_normal(self.b, self.covariance, size=n)
        return x.reshape((n,) + self.shape).astype(np.float32)

    def log_p(self, x):
        """Closed-form log N(x; b, W Wᵀ + σ² I) in float64, independent of the model code."""
        dist = tfd.MultivariateNormalTriL(self.b, np.linalg.cholesky(self.covariance))
        return dist.log_prob(x.reshape(len(x), -1).astype(np.float64)).numpy()

    def model(self, cls=VAE, mean_shift=0.0, variance_factor=1.0, **kwargs):
        """A tfvae model with these networks; ``mean_shift``/``variance_factor`` move q away from
        the diagonal of the exact posterior (0 and 1 with orthogonal W: q is the posterior)."""
        dim = math.prod(self.shape)
        encoder = keras.Sequential([keras.Input(self.shape), keras.layers.Flatten(),
                                    keras.layers.Dense(2 * self.latent)], name="encoder")
        decoder = keras.Sequential([keras.Input((self.latent,)), keras.layers.Dense(dim),
                                    keras.layers.Reshape(self.shape)], name="decoder")
        decoder.layers[0].set_weights([self.w.T, self.b])
        kernel = np.concatenate([self.post_gain.T, np.zeros((dim, self.latent))], axis=1)
        bias = np.concatenate([-self.post_gain @ self.b + mean_shift,
                               np.log(np.diag(self.post_cov) * variance_factor)])
        encoder.layers[-1].set_weights([kernel, bias])
        return cls(image_shape=self.shape, latent_dim=self.latent, likelihood="gaussian",
                   observation_scale=self.sigma, encoder=encoder, decoder=decoder, **kwargs)


def test_bounds_increase_with_k_in_expectation_towards_log_p():
    # ELBO <= IWAE_5 <= IWAE_50 <= log p(x), each estimated over 64 repeats x 50 examples, the
    # gaps compared with their standard errors (the repeats and examples are independent).
    truth = LinearGaussian()
    x = np.repeat(truth.data(50), 64, axis=0)
    model = truth.model(mean_shift=0.4, variance_factor=2.0)
    tf.random.set_seed(0)
    estimates = {}
    for k in (1, 5, 50):
        bound = objectives.iwae(model.log_weights(x, k)).numpy() - np.repeat(truth.log_p(x[::64]), 64)
        estimates[k] = (bound.mean(), bound.std() / math.sqrt(len(bound)))
    (elbo, e1), (iwae5, e5), (iwae50, e50) = estimates[1], estimates[5], estimates[50]
    assert elbo + 4 * math.hypot(e1, e5) < iwae5
    assert iwae5 + 4 * math.hypot(e5, e50) < iwae50
    assert iwae50 < 4 * e50                                             # below log p(x)


def test_monte_carlo_elbo_of_iwae_1_matches_the_analytic_kl_elbo():
    # IWAE with K = 1 is the ELBO: its mean over many draws equals the VAE's estimate, which uses
    # the analytic KL instead of log-weights.
    truth = LinearGaussian()
    x = np.repeat(truth.data(20), 200, axis=0)
    vae = truth.model(mean_shift=0.4, variance_factor=2.0)
    iwae = truth.model(IWAE, mean_shift=0.4, variance_factor=2.0, num_samples=1)
    tf.random.set_seed(1)
    from_kl = vae.compute_objective(x).metrics["elbo"].numpy()
    from_weights = iwae.compute_objective(x)
    np.testing.assert_allclose(from_weights.metrics["iwae"], from_weights.metrics["elbo"])
    values = -from_weights.loss.numpy()
    error = math.hypot(values.std(), from_kl.std()) / math.sqrt(len(values))
    assert abs(values.mean() - from_kl.mean()) < 4 * error


# ------------------------------------------------------------- the models' objectives agree

def _shared_models(**classes):
    """Models of different classes that share one encoder and decoder."""
    keras.utils.set_random_seed(0)
    first = None
    built = {}
    for name, (cls, kwargs) in classes.items():
        networks = {} if first is None else dict(encoder=first.encoder, decoder=first.decoder)
        built[name] = cls(**TINY, **networks, **kwargs)
        first = first or built[name]
    return built


def _objective(model, images, seed):
    tf.random.set_seed(seed)            # same draws for every model called with the same seed
    return model.compute_objective(images, training=True)


def test_special_cases_of_the_bounds_agree_on_the_same_draws(digits):
    images = digits[0][:16]
    models = _shared_models(iwae=(IWAE, dict(num_samples=6)), miwae=(MIWAE, dict(num_estimates=1, num_samples=6)),
                            ciwae0=(CIWAE, dict(num_samples=6, beta=0.0)), ciwae1=(CIWAE, dict(num_samples=6, beta=1.0)),
                            miwae_k1=(MIWAE, dict(num_estimates=6, num_samples=1)),
                            iwae1=(IWAE, dict(num_samples=1)))
    iwae = _objective(models["iwae"], images, 5)
    np.testing.assert_allclose(_objective(models["miwae"], images, 5).loss, iwae.loss, rtol=1e-6)
    np.testing.assert_allclose(_objective(models["ciwae0"], images, 5).loss, iwae.loss, rtol=1e-6)
    np.testing.assert_allclose(-_objective(models["ciwae1"], images, 5).loss, iwae.metrics["elbo"], rtol=1e-6)
    np.testing.assert_allclose(-_objective(models["miwae_k1"], images, 5).loss, iwae.metrics["elbo"], rtol=1e-6)
    one = _objective(models["iwae1"], images, 6)
    np.testing.assert_allclose(one.metrics["iwae"], one.metrics["elbo"], rtol=1e-6)
    # the draws really were the same: a different seed gives a different value
    assert np.any(_objective(models["iwae"], images, 7).loss.numpy() != iwae.loss.numpy())


def _hand_log_weights(model, images, eps):
    """log p(x|z) + log p(z) − log q(z|x) written out for a Bernoulli decoder and Gaussian q,
    with z = μ + σ ε for the given noise ε [S, batch, latent]; differentiable in every weight."""
    params = model.encoder(images)
    mu, log_var = tf.split(params, 2, axis=-1)
    sigma = tf.exp(0.5 * log_var)
    z = mu + sigma * eps
    logits = tf.reshape(model.decoder(tf.reshape(z, [-1, model.latent_dim])), [eps.shape[0], len(images), -1])
    x = tf.reshape(images, [1, len(images), -1])
    log_lik = tf.reduce_sum(x * logits - tf.nn.softplus(logits), axis=-1)
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    log_prior = tf.reduce_sum(-0.5 * z ** 2 - half_log_2pi, axis=-1)
    log_q = tf.reduce_sum(-0.5 * ((z - mu) / sigma) ** 2 - tf.math.log(sigma) - half_log_2pi, axis=-1)
    return log_lik + log_prior - log_q


def _draws(model, images, num, seed):
    """The noise ε that ``model.log_weights`` draws after ``tf.random.set_seed(seed)``."""
    tf.random.set_seed(seed)
    q = model.posterior(images, training=True)
    z = q.sample(num)
    return tf.stop_gradient((z - q.mean()) / q.stddev())


def _log_mean_exp(w, axis=0):
    return tf.reduce_logsumexp(w, axis=axis) - math.log(w.shape[axis])


def test_piwae_train_step_applies_the_miwae_gradient_to_the_encoder_and_iwae_to_the_decoder(digits):
    num_estimates, num_samples = 2, 3                   # M != K, so a swap would show
    images = tf.constant(digits[0][:8])
    keras.utils.set_random_seed(2)
    model = PIWAE(**TINY, num_estimates=num_estimates, num_samples=num_samples)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0))   # update = −gradient
    encoder_vars, decoder_vars = model.encoder.trainable_variables, model.decoder.trainable_variables

    eps = _draws(model, images, num_estimates * num_samples, seed=11)
    with tf.GradientTape(persistent=True) as tape:
        w = _hand_log_weights(model, images, eps)                           # [M*K, batch]
        # MIWAE written as a loop over the M estimates, each of K consecutive rows.
        miwae = tf.add_n([_log_mean_exp(w[m * num_samples:(m + 1) * num_samples])
                          for m in range(num_estimates)]) / num_estimates
        iwae_all = _log_mean_exp(w)
        # Peer bug (a): normalise over M and average over K.
        swapped = tf.reduce_mean(_log_mean_exp(tf.reshape(w, [num_estimates, num_samples, -1]), axis=0), axis=0)
        encoder_loss, decoder_loss = -tf.reduce_mean(miwae), -tf.reduce_mean(iwae_all)
        swapped_loss = -tf.reduce_mean(swapped)
    want_encoder = tape.gradient(encoder_loss, encoder_vars)
    want_decoder = tape.gradient(decoder_loss, decoder_vars)
    swapped_encoder = tape.gradient(swapped_loss, encoder_vars)
    # Peer bug (b): the decoder's loss leaking into the encoder's gradient (and vice versa).
    leaked_encoder = [a + b for a, b in zip(want_encoder, tape.gradient(decoder_loss, encoder_vars))]
    leaked_decoder = [a + b for a, b in zip(want_decoder, tape.gradient(encoder_loss, decoder_vars))]

    before = [v.numpy() for v in encoder_vars + decoder_vars]
    tf.random.set_seed(11)
    logs = model.train_step(images)
    assert float(logs["loss"]) == pytest.approx(float(decoder_loss), rel=1e-5)   # same draws
    assert float(logs["miwae"]) == pytest.approx(float(tf.reduce_mean(miwae)), rel=1e-5)
    update = [b - v.numpy() for b, v in zip(before, encoder_vars + decoder_vars)]
    got_encoder, got_decoder = update[:len(encoder_vars)], update[len(encoder_vars):]

    def gap(a, b):
        return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(a, b))

    assert gap(got_encoder, want_encoder) < 1e-5
    assert gap(got_decoder, want_decoder) < 1e-5
    # each wrong variant is far from what was applied, so the checks above would catch it
    assert gap(got_encoder, swapped_encoder) > 1e-3
    assert gap(got_encoder, leaked_encoder) > 1e-3
    assert gap(got_decoder, leaked_decoder) > 1e-3


def _encoder_gradients(model, images, repeats):
    """``repeats`` independent encoder gradients of the model's own training signal, [R, P]."""
    variables = model.encoder.trainable_variables

    @tf.function
    def one():
        with tf.GradientTape() as tape:
            value = model.compute_objective(images, training=True)
            loss = value.surrogates["encoder"] if value.surrogates is not None else value.loss
            loss = tf.reduce_mean(loss)
        return tf.concat([tf.reshape(g, [-1]) for g in tape.gradient(loss, variables)], axis=0)

    return np.stack([one().numpy() for _ in range(repeats)]).astype(np.float64)


@pytest.mark.parametrize("cls, kwargs", [(IWAE, dict(num_samples=8)),
                                         (PIWAE, dict(num_estimates=2, num_samples=4))])
def test_dreg_encoder_gradient_is_unbiased_with_lower_variance(cls, kwargs):
    truth = LinearGaussian()
    images = truth.data(4)
    standard = truth.model(cls, mean_shift=0.5, variance_factor=2.0, **kwargs)
    dreg = truth.model(cls, mean_shift=0.5, variance_factor=2.0, dreg=True, **kwargs)
    tf.random.set_seed(3)
    repeats = 600
    g_standard = _encoder_gradients(standard, images, repeats)
    g_dreg = _encoder_gradients(dreg, images, repeats)
    z = (g_dreg.mean(0) - g_standard.mean(0)) / np.sqrt(
        (g_dreg.var(0, ddof=1) + g_standard.var(0, ddof=1)) / repeats)
    # 24 parameters: under equal means the z-scores are ~N(0, 1).
    assert np.max(np.abs(z)) < 4.5, z
    assert np.mean(z ** 2) < 2.5, z
    assert np.mean(g_dreg.var(0)) < np.mean(g_standard.var(0))
    # Power: the biased "sticking the landing" IWAE gradient (w̃ instead of w̃², Tucker et al.)
    # differs from the standard one measurably with these repeats.
    class Sticking(cls):
        def compute_objective(self, images, training=False):
            w = self.log_weights(images, self.total_samples, stop_posterior_gradient=True)
            weights = tf.stop_gradient(objectives.normalized_weights(w, self.num_estimates))
            surrogate = -tf.reduce_sum(weights * w, axis=0) / self.num_estimates
            return tfvae.models.ObjectiveValue(loss=surrogate, metrics={})
    g_biased = _encoder_gradients(truth.model(Sticking, mean_shift=0.5, variance_factor=2.0, **kwargs),
                                  images, repeats)
    z_biased = (g_biased.mean(0) - g_standard.mean(0)) / np.sqrt(
        (g_biased.var(0, ddof=1) + g_standard.var(0, ddof=1)) / repeats)
    assert np.max(np.abs(z_biased)) > 6, z_biased


def test_dreg_keeps_the_standard_decoder_gradient(digits):
    images = tf.constant(digits[0][:8])
    models = _shared_models(standard=(IWAE, dict(num_samples=5)), dreg=(IWAE, dict(num_samples=5, dreg=True)))
    decoder_vars = models["standard"].decoder.trainable_variables
    gradients = {}
    for name, model in models.items():
        with tf.GradientTape() as tape:
            value = _objective(model, images, 9)
            loss = value.surrogates["decoder"] if value.surrogates is not None else value.loss
            loss = tf.reduce_mean(loss)
        gradients[name] = tape.gradient(loss, decoder_vars)
        np.testing.assert_allclose(value.metrics["iwae"], _objective(models["standard"], images, 9).metrics["iwae"],
                                   rtol=1e-6)
    for a, b in zip(gradients["standard"], gradients["dreg"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# -------------------------------------------------------------------- models: API, fit, saving

# XLA (the default compile) for MIWAE and CIWAE; IWAE trains under it in notebooks/iwae.ipynb,
# PIWAE in the command-line test below
@pytest.mark.parametrize("name, cls, kwargs, jit_compile", [
    ("iwae", IWAE, dict(num_samples=4, dreg=True), False),
    ("miwae", MIWAE, dict(num_estimates=2, num_samples=3), "auto"),
    ("ciwae", CIWAE, dict(num_samples=4, beta=0.25), "auto"),
    ("piwae", PIWAE, dict(num_estimates=2, num_samples=2, dreg=True), False),
])
def test_fit_save_and_load_round_trip(digits, tmp_path, name, cls, kwargs, jit_compile):
    assert tfvae.models.get(name) is cls
    keras.utils.set_random_seed(0)
    model = cls(**TINY, **kwargs)
    model.compile(optimizer="adam", jit_compile=jit_compile)
    history = model.fit(digits[0][:256], batch_size=64, epochs=2, verbose=0)
    assert set(history.history) == set(cls.metric_names)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert all(1.0 <= e <= model.num_samples for e in history.history["ess"])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert type(loaded) is cls
    for key, value in kwargs.items():
        assert getattr(loaded, key) == value
    images = digits[0][:8]
    np.testing.assert_allclose(loaded.encode(images), model.encode(images), rtol=1e-6)
    np.testing.assert_allclose(_objective(loaded, images, 1).loss, _objective(model, images, 1).loss, rtol=1e-5)


@pytest.mark.parametrize("cls, kwargs, message", [
    (IWAE, dict(num_samples=0), "num_samples must be a positive integer"),
    (IWAE, dict(num_samples=2.0), "num_samples must be a positive integer"),
    (IWAE, dict(dreg="yes"), "dreg must be True or False"),
    (MIWAE, dict(num_estimates=0), "num_estimates must be a positive integer"),
    (PIWAE, dict(num_estimates=True), "num_estimates must be a positive integer"),
    (CIWAE, dict(beta=1.5), r"beta must be a finite number >= 0.0 and <= 1.0"),
    (CIWAE, dict(beta=-0.01), r"beta must be a finite number >= 0.0 and <= 1.0"),
])
def test_constructors_reject_bad_hyperparameters(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**TINY, **kwargs)


# -------------------------------------------------------------------------------- command line

def test_cli_trains_piwae_and_reports_log_likelihood_and_active_units(tmp_path, capsys):
    import json

    from tfvae import cli

    out = tmp_path / "piwae"
    assert cli.main(["train", "--model", "piwae", "--num-estimates", "2", "--num-samples", "3", "--dreg",
                     "--epochs", "1", "--latent-dim", "3", "--limit", "128", "--log-likelihood-samples", "30",
                     "--quiet", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["log_likelihood_samples"] == 30
    assert metrics["test_log_likelihood"] < 0 and metrics["test_log_likelihood_se"] > 0
    assert 0 <= metrics["active_units"] <= 3
    model = keras.models.load_model(out / "model.keras")
    assert (type(model), model.num_estimates, model.num_samples, model.dreg) == (PIWAE, 2, 3, True)
    # evaluate recomputes the estimate with another K; more samples never lower it on average
    capsys.readouterr()
    assert cli.main(["evaluate", str(out), "--log-likelihood-samples", "300"]) == 0
    again = json.loads((out / "metrics.json").read_text())
    assert again["log_likelihood_samples"] == 300
    assert again["test_log_likelihood"] > metrics["test_log_likelihood"] - 3 * metrics["test_log_likelihood_se"]


@pytest.mark.parametrize("argv, message", [
    (["--model", "vae", "--num-samples", "5"], "--num-samples applies to iwae, miwae, ciwae, piwae, not vae"),
    (["--model", "iwae", "--num-estimates", "2"], "--num-estimates applies to miwae, piwae, not iwae"),
    (["--model", "ciwae", "--dreg"], "--dreg applies to iwae, miwae, piwae, not ciwae"),
    (["--model", "ciwae", "--ciwae-beta", "1.5"], "beta must be a finite number >= 0.0 and <= 1.0"),
    (["--model", "miwae", "--num-samples", "0"], "--num-samples must be a positive integer"),
])
def test_cli_rejects_bad_iwae_options(tmp_path, capsys, argv, message):
    from tfvae import cli

    assert cli.main(["train", *argv, "--epochs", "1", "--quiet", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and message in err, err
