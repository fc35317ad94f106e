"""The importance-sampled estimator (tfvae.estimators) behind tfvae.evaluation.log_likelihood and
the served elbo / log_likelihood signatures (tfvae.export), and VariationalModel.log_weights.

* Closed forms: a linear-Gaussian model whose log p(x) and ELBO are known; with the exact
  posterior every log-weight is log p(x), so any K, chunking and batching must give it exactly.
* A hand computation: the draws rebuilt from the documented seed scheme, log-weights from the
  Gaussian densities in float64, log-mean-exp in numpy.
* One estimator: the served signature and the evaluation function give the same value per image;
  the value does not depend on batch or chunk sizes; seeds and example indices past 2**31 work
  (the old scheme overflowed an int32 past batch ~2148).
* Progress output (verbose 0, 1, 2, "auto") and mixed-precision networks.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import special

from tfvae import estimators, export
from tfvae.evaluation import likelihood as likelihood_module
from tfvae.evaluation import log_likelihood
from tfvae.models import VAE, likelihoods

IMAGE_SHAPE = (8, 8, 1)
LATENT = 3
G = estimators.SAMPLES_PER_SEED


@pytest.fixture(scope="module")
def images():
    from sklearn.datasets import load_digits

    return (load_digits().images[:100] / 16.0).astype("float32")[..., None]


# ------------------------------------------------------------ a model with known log p(x)

def _linear_gaussian(exact, sigma=0.3):
    """A VAE whose log p(x) is known: z ~ N(0, I), x | z ~ N(Wz + b, σ²I) with orthogonal columns
    in W, so that the exact posterior N(A(x − b), Σ) has a diagonal Σ = (I + WᵀW/σ²)⁻¹ and the
    encoder (one linear layer) can represent it; ``exact=False`` perturbs it."""
    dim = math.prod(IMAGE_SHAPE)
    rng = np.random.default_rng(1)
    basis, _ = np.linalg.qr(rng.normal(size=(dim, LATENT)))
    weights = basis * np.array([2.0, 1.0, 0.5])
    bias = rng.uniform(0.2, 0.8, size=dim)
    post_var = 1.0 / (1.0 + (weights ** 2).sum(0) / sigma ** 2)
    gain = post_var[:, None] * weights.T / sigma ** 2             # μ = gain (x − b)
    if not exact:
        gain = gain * 0.6 + 0.02 * rng.normal(size=gain.shape)
        post_var = post_var * 2.5
    offset = -gain @ bias

    encoder = keras.Sequential([keras.Input(IMAGE_SHAPE), keras.layers.Flatten(), keras.layers.Dense(2 * LATENT)])
    encoder.layers[-1].set_weights([np.concatenate([gain.T, np.zeros((dim, LATENT))], 1).astype("float32"),
                                    np.concatenate([offset, np.log(post_var)]).astype("float32")])
    decoder = keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(dim), keras.layers.Reshape(IMAGE_SHAPE)])
    decoder.layers[0].set_weights([weights.T.astype("float32"), bias.astype("float32")])
    model = VAE(IMAGE_SHAPE, LATENT, likelihood="gaussian", observation_scale=sigma, encoder=encoder,
                decoder=decoder)
    return model, dict(W=weights, b=bias, A=gain, c=offset, s2=post_var, sigma=sigma)


def _closed_forms(x, p):
    """log p(x) and the ELBO of the linear-Gaussian model, per example, in float64."""
    x = x.reshape(len(x), -1).astype(np.float64)
    dim = x.shape[1]
    cov = p["W"] @ p["W"].T + p["sigma"] ** 2 * np.eye(dim)
    _, logdet = np.linalg.slogdet(cov)
    centred = x - p["b"]
    log_px = -0.5 * (dim * np.log(2 * np.pi) + logdet + np.einsum("ni,ni->n", centred, np.linalg.solve(cov, centred.T).T))
    mu = x @ p["A"].T + p["c"]
    residual = x - mu @ p["W"].T - p["b"]
    expected_log_lik = (-0.5 * dim * np.log(2 * np.pi * p["sigma"] ** 2)
                        - ((residual ** 2).sum(1) + (p["s2"] * (p["W"] ** 2).sum(0)).sum()) / (2 * p["sigma"] ** 2))
    kl = 0.5 * (p["s2"] + mu ** 2 - 1.0 - np.log(p["s2"])).sum(1)
    return log_px, expected_log_lik - kl, mu


def _hand_log_weights(x, z, p):
    """log N(x; Wz + b, σ²I) + log N(z; 0, I) − log N(z; μ, diag s2) in float64, ``[K, N]``."""
    x = x.reshape(len(x), -1).astype(np.float64)
    z = np.asarray(z, np.float64)
    mu = x @ p["A"].T + p["c"]
    log_lik = (-0.5 * x.shape[1] * np.log(2 * np.pi * p["sigma"] ** 2)
               - ((x - z @ p["W"].T - p["b"]) ** 2).sum(-1) / (2 * p["sigma"] ** 2))
    log_prior = -0.5 * (z ** 2 + np.log(2 * np.pi)).sum(-1)
    log_q = -0.5 * ((z - mu) ** 2 / p["s2"] + np.log(2 * np.pi * p["s2"])).sum(-1)
    return log_lik + log_prior - log_q


def _served(model):
    """``(x, K, seed) -> (elbo, log_likelihood)`` of the exported signatures, compiled as
    exported (traced once: K and seed are tensors)."""
    functions = {name: tf.function(f.function) for name, f in export.serving_functions(model).items()
                 if name in ("elbo", "log_likelihood")}

    def estimate(x, num_samples, seed):
        inputs = (tf.constant(x), tf.constant(num_samples), tf.constant(seed))
        return [functions[name](*inputs)[name].numpy().astype(np.float64) for name in ("elbo", "log_likelihood")]

    return estimate


def _per_example(model, x, **kwargs):
    return log_likelihood(model, x, return_per_example=True, verbose=0, **kwargs)[2]


def _tiny_vae(seed=0):
    keras.utils.set_random_seed(seed)
    return VAE(IMAGE_SHAPE, LATENT, network_options={"hidden_units": (16,)})


# ------------------------------------------------------------------------ closed forms

def test_exact_posterior_gives_log_px_for_any_k_chunking_and_batching(monkeypatch, images):
    """With q(z|x) = p(z|x) every log-weight equals log p(x), so both estimates must equal the
    closed form exactly, whatever K and however draws and examples are split (a wrong streaming
    log-sum-exp, or a dropped or repeated chunk, would not)."""
    model, params = _linear_gaussian(exact=True)
    x = images[:7]
    log_px, elbo_closed, _ = _closed_forms(x, params)
    np.testing.assert_allclose(elbo_closed, log_px, rtol=1e-9)  # the closed forms agree too
    for k, chunk, batch in ((1, G, 7), (37, G, 3), (2 * G + 37, G, 2), (2 * G + 37, 3 * G, 7)):
        per_example = _per_example(model, x, num_samples=k, chunk_size=chunk, batch_size=batch)
        np.testing.assert_allclose(per_example, log_px, atol=2e-3)
    monkeypatch.setattr(export, "SAMPLES_PER_CHUNK", G)          # K = 2G + 37: chunks G, G, 37
    monkeypatch.setattr(export, "CODES_PER_CHUNK", 2 * G)        # two images at a time
    estimate = _served(model)
    for k in (1, 2 * G + 37):
        elbo, served = estimate(x, k, seed=3)
        np.testing.assert_allclose(elbo, log_px, atol=2e-3)
        np.testing.assert_allclose(served, log_px, atol=2e-3)


def test_served_estimates_match_closed_forms_with_an_approximate_posterior(images):
    model, params = _linear_gaussian(exact=False)
    x = images[:3]
    log_px, elbo_closed, mu = _closed_forms(x, params)
    assert np.all(log_px - elbo_closed > 1.0)  # a real gap, so the checks below can tell them apart
    # standard deviation of one log-weight, by an independent numpy Monte Carlo
    rng = np.random.default_rng(2)
    weights = _hand_log_weights(x, mu + np.sqrt(params["s2"]) * rng.normal(size=(20000,) + mu.shape), params)
    np.testing.assert_allclose(weights.mean(0), elbo_closed, atol=5 * weights.std(0).max() / math.sqrt(20000))

    k = 4000
    estimate = _served(model)
    elbo, served = estimate(x, k, seed=11)
    np.testing.assert_allclose(elbo, elbo_closed, atol=5 * weights.std(0).max() / math.sqrt(k))
    # the IWAE bound with large K: above the ELBO, close to log p(x), at most noise above it
    assert np.all(served > elbo_closed + 0.5 * (log_px - elbo_closed))
    assert np.all(served < log_px + 0.05)
    # stateless seeds: reproducible, and another seed gives another estimate
    np.testing.assert_array_equal(estimate(x, k, seed=11)[1], served)
    assert np.abs(estimate(x, k, seed=12)[1] - served).max() > 0


def test_5000_samples_match_the_closed_form_within_monte_carlo_error(images):
    model, params = _linear_gaussian(exact=False)
    x = images
    exact = _closed_forms(x, params)[0]
    elbo, _ = log_likelihood(model, x, num_samples=1, verbose=0)
    assert elbo < exact.mean() - 0.5                                  # the test has power
    mean, se, per_example = log_likelihood(model, x, num_samples=5000, return_per_example=True, verbose=0)
    # Tolerance from the estimator's own Monte Carlo error: by the delta method the standard
    # deviation of log((1/K) Σ e^{w_k}) is std(e^w) / (√K · mean(e^w)), here from fresh weights.
    w = model.log_weights(x, 5000, seed=tf.constant([5, 5])).numpy().astype(np.float64)
    ratios = np.exp(w - w.max(axis=0))
    mc_sd = ratios.std(axis=0) / (math.sqrt(5000) * ratios.mean(axis=0))
    bias = mc_sd ** 2 / 2                         # E[log mean] ≈ log p − Var/(2 mean²)
    assert np.all(np.abs(per_example - exact + bias) < 5 * mc_sd + 1e-3), (per_example - exact) / mc_sd
    assert abs(mean - exact.mean() + bias.mean()) < 4 * math.sqrt(np.sum(mc_sd ** 2)) / len(x) + 1e-3
    assert np.max(mc_sd) < 0.1                    # the check is tight in absolute terms too
    assert se == pytest.approx(exact.std(ddof=1) / 10, rel=0.05)


def test_estimator_equals_a_hand_computation_from_the_documented_seed_scheme(images):
    """The draws rebuilt from the module docstring's scheme (stateless seed [s >> 32, s mod 2³²],
    fold_in of the example index's two words, then of the block index; blocks of
    SAMPLES_PER_SEED draws, the last one min(G, K − b·G)), the log-weights from the Gaussian densities
    in float64 and the log-mean-exp in numpy."""
    model, params = _linear_gaussian(exact=False)
    x, k, seed = images[:4], 2 * G + 17, 2 ** 33 + 9
    fold_in = tf.random.experimental.stateless_fold_in
    base = tf.constant([2, 9], tf.int32)
    codes = np.zeros((k, len(x), LATENT))
    for n in range(len(x)):
        example = fold_in(fold_in(base, 0), n)
        q = model.posterior_from_params(model.encode_params(x[n:n + 1]))
        for block, first in enumerate(range(0, k, G)):
            count = min(G, k - first)
            codes[first:first + count, n] = q.sample(count, seed=fold_in(example, block))[:, 0].numpy()
    w = _hand_log_weights(x, codes, params)
    elbo, estimate = estimators.log_weight_statistics(model, x, k, seed, chunk_size=2 * G, batch_size=3)
    np.testing.assert_allclose(estimate, special.logsumexp(w, axis=0) - math.log(k), rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(elbo, w.mean(axis=0), rtol=1e-6, atol=1e-4)
    # the draws differ between examples and blocks (no seed reused)
    assert len(np.unique(codes.reshape(-1, LATENT), axis=0)) == k * len(x)


# ------------------------------------------------------- one estimator, one seed scheme

def test_served_log_likelihood_equals_evaluation_per_image(images):
    model = _tiny_vae()
    x = (images[:9] > 0.5).astype("float32")
    served = tf.function(export.serving_functions(model)["log_likelihood"].function)
    k = G + 20                                              # two blocks: two seeds per image
    from_server = served(tf.constant(x), tf.constant(k), tf.constant(7))["log_likelihood"].numpy()
    evaluated = _per_example(model, x, num_samples=k, seed=7, batch_size=4, chunk_size=G)
    np.testing.assert_allclose(from_server, evaluated, rtol=1e-6, atol=1e-5)
    # the signature declares its output [batch] (saved_model_cli and TF Serving clients read it)
    traced = served.get_concrete_function(tf.TensorSpec([None, *IMAGE_SHAPE]), tf.TensorSpec(None, tf.int32),
                                          tf.TensorSpec(None, tf.int32))
    assert traced.structured_outputs["log_likelihood"].shape.as_list() == [None]
    # XLA-compiled log-weights: the same draws, so the same values up to float rounding
    compiled = _per_example(model, x, num_samples=k, seed=7, batch_size=9, jit_compile=True)
    np.testing.assert_allclose(compiled, evaluated, rtol=1e-5, atol=1e-4)
    # another seed, another estimate; the estimate is not the same for every image
    assert np.abs(_per_example(model, x, num_samples=k, seed=8) - evaluated).max() > 1e-4
    assert np.ptp(evaluated) > 1.0


def test_estimate_does_not_depend_on_batch_or_chunk_size(images):
    model, _ = _linear_gaussian(exact=False)
    x = images[:10]
    k = 5 * G + 3                                           # whole blocks and a partial last one
    reference = _per_example(model, x, num_samples=k, batch_size=10, chunk_size=G)
    for batch, chunk in ((1, 2 * G), (3, 6 * G), (7, 3 * G)):
        np.testing.assert_allclose(_per_example(model, x, num_samples=k, batch_size=batch, chunk_size=chunk),
                                   reference, rtol=1e-6, err_msg=f"batch {batch}, chunk {chunk}")
    # a dataset with uneven batches (4, 4, 2) gives each example the same draws
    dataset = tf.data.Dataset.from_tensor_slices((x, np.zeros(10))).batch(4)
    np.testing.assert_allclose(_per_example(model, dataset, num_samples=k, batch_size=3), reference, rtol=1e-6)


def test_seeds_and_example_indices_past_2_31(images):
    model, _ = _linear_gaussian(exact=False)
    x = images[:3]
    by_seed = {seed: _per_example(model, x, num_samples=G, seed=seed)
               for seed in (0, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 40, -1, -2 ** 63, 2 ** 63 - 1)}
    values = np.array(list(by_seed.values()))
    assert np.all(np.isfinite(values))
    assert len(np.unique(values, axis=0)) == len(by_seed)        # every seed its own draws
    for bad in (2 ** 63, -2 ** 63 - 1, 1.5, True, "1"):
        with pytest.raises(ValueError, match=r"seed must be an integer in \[-2\*\*63, 2\*\*63\)"):
            log_likelihood(model, x, seed=bad)
    # the served int32 seed s is the evaluation seed s, negative ones included
    served = tf.function(export.serving_functions(model)["log_likelihood"].function)
    for seed in (-5, 2 ** 31 - 1):
        np.testing.assert_allclose(served(tf.constant(x), tf.constant(G), tf.constant(seed))["log_likelihood"],
                                   _per_example(model, x, num_samples=G, seed=seed), rtol=1e-6)
    # example indices: the old int32 scheme overflowed from batch ~2148 of 100 on; now any index
    # in int64 gets its own seed (indices differing by 2**32 included)
    statistics = tf.function(lambda first: estimators.log_weight_statistics(model, x, G, 0, first)[1])
    firsts = (0, 2148 * 100, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 62)
    estimates = np.array([statistics(tf.constant(first, tf.int64)).numpy() for first in firsts])
    assert np.all(np.isfinite(estimates)) and len(np.unique(estimates, axis=0)) == len(firsts)
    seeds = estimators.example_seeds(tf.constant([0, 3]), tf.constant([5, 5 + 2 ** 31, 5 + 2 ** 32, 5 + 2 ** 63 - 6],
                                                                      tf.int64)).numpy()
    assert len({tuple(s) for s in seeds}) == 4


# -------------------------------------------------------------------- log_weights itself

def test_log_weights_weighs_given_codes_as_its_own_draws(images):
    model, params = _linear_gaussian(exact=False)
    x = images[:5]
    seed = tf.constant([1, 2])
    w = model.log_weights(x, 7, seed=seed)
    codes = model.posterior(x).sample(7, seed=seed)
    assert w.shape == (7, 5) and w.dtype == tf.float32
    np.testing.assert_allclose(model.log_weights(x, codes=codes), w, rtol=1e-6)
    np.testing.assert_allclose(w, _hand_log_weights(x, codes.numpy(), params), rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(model.log_weights(x, 7, seed=seed), w)        # stateless
    with pytest.raises(ValueError, match="give codes .* or num_samples/seed .*, not both"):
        model.log_weights(x, 7, codes=codes)


class _RecordsTraining(keras.layers.Layer):
    """Identity that records the ``training`` flags it is called with."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def call(self, inputs, training=None):
        self.seen.append(training)
        return inputs


def test_log_weights_passes_training_to_both_networks():
    encoder_probe, decoder_probe = _RecordsTraining(), _RecordsTraining()
    encoder = keras.Sequential([keras.Input(IMAGE_SHAPE), keras.layers.Flatten(), encoder_probe,
                                keras.layers.Dense(2 * LATENT)])
    decoder = keras.Sequential([keras.Input((LATENT,)), decoder_probe, keras.layers.Dense(64),
                                keras.layers.Reshape(IMAGE_SHAPE)])
    model = VAE(IMAGE_SHAPE, LATENT, encoder=encoder, decoder=decoder)
    x = np.full((2,) + IMAGE_SHAPE, 0.5, np.float32)
    for training in (False, True):
        encoder_probe.seen.clear()
        decoder_probe.seen.clear()
        model.log_weights(x, 3, training=training)
        assert encoder_probe.seen == [training] and decoder_probe.seen == [training]
    encoder_probe.seen.clear()
    model.log_weights(x, 3)                                                      # default: inference
    assert encoder_probe.seen == [False]


# --------------------------------------------------------------------------- mixed precision

def test_mixed_precision_networks_give_float32_estimates(images):
    x = (images[:6] > 0.5).astype("float32")
    reference = _tiny_vae()
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        mixed = _tiny_vae()
    finally:
        keras.config.set_dtype_policy(policy)
    assert mixed.decoder.compute_dtype == "float16"
    mixed.set_weights(reference.get_weights())
    expected = _per_example(reference, x, num_samples=100, seed=1)
    got = _per_example(mixed, x, num_samples=100, seed=1)
    # float16 networks, float32 densities and sums: off by the networks' rounding only
    np.testing.assert_allclose(got, expected, atol=0.05)
    served = export.serving_functions(mixed)["log_likelihood"].function
    assert served(tf.constant(x), tf.constant(50), tf.constant(1))["log_likelihood"].dtype == tf.float32


# ------------------------------------------------------------------------------ progress

def test_verbose_prints_progress_in_keras_manner(images, capsys):
    model, _ = _linear_gaussian(exact=False)
    x = images[:30]
    log_likelihood(model, x, num_samples=G, batch_size=3, verbose=0)
    assert capsys.readouterr().out == ""
    log_likelihood(model, x, num_samples=G, batch_size=3, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 10, lines                                   # 10%, ..., 90%, then the end
    assert lines[0].startswith("log_likelihood: 3/30 examples (10%)") and "s left" in lines[0]
    assert lines[-1].startswith("log_likelihood: 30 examples in")
    log_likelihood(model, x, num_samples=G, batch_size=3)            # "auto": captured, not a tty
    assert capsys.readouterr().out.splitlines()[-1].startswith("log_likelihood: 30 examples in")
    log_likelihood(model, x, num_samples=G, batch_size=3, verbose=1)
    out = capsys.readouterr().out
    assert "30/30" in out and "example" in out                      # keras.utils.Progbar
    # a dataset of known size (tfvae.data.load's): progress over its batches, with the time left
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(10)
    log_likelihood(model, dataset, num_samples=G, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("log_likelihood: 1/3 batches (33%)"), lines
    assert "s left" in lines[0] and lines[-1].startswith("log_likelihood: 30 examples in"), lines
    # a dataset of unknown size: one line at the end
    log_likelihood(model, dataset.filter(lambda images: True), num_samples=G, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("log_likelihood: 30 examples in"), lines
    metrics = likelihood_module.log_likelihood_metrics(
        model, {"test_data": x, "options": {"log_likelihood_samples": G, "verbose": 0}})
    assert capsys.readouterr().out == "" and metrics["log_likelihood_samples"] == G
    likelihood_module.log_likelihood_metrics(
        model, {"test_data": x, "options": {"log_likelihood_samples": G, "verbose": 2}})
    assert capsys.readouterr().out.startswith("log_likelihood: ")


# ------------------------------------------------------------------------- argument checks

@pytest.mark.parametrize("kwargs, message", [
    (dict(num_samples=0), "num_samples must be a positive integer"),
    (dict(num_samples=2.5), "num_samples must be a positive integer"),
    (dict(chunk_size=0), f"chunk_size must be a positive multiple of {G}"),
    (dict(chunk_size=30), f"chunk_size must be a positive multiple of {G}"),
    (dict(batch_size=-1), "batch_size must be a positive integer"),
    (dict(seed="x"), "seed must be an integer"),
    (dict(verbose=3), "verbose must be 'auto', 0, 1 or 2, got 3"),
    (dict(verbose=True), "verbose must be"),
    (dict(jit_compile="yes"), "jit_compile must be"),
])
def test_log_likelihood_rejects_bad_arguments(kwargs, message, images):
    model, _ = _linear_gaussian(exact=False)
    with pytest.raises(ValueError, match=message):
        log_likelihood(model, images[:4], **kwargs)


@pytest.mark.parametrize("likelihood, bad", [("poisson", 2.5), ("bernoulli", 1.5)])
def test_log_likelihood_rejects_data_outside_the_support_with_the_models_message(likelihood, bad):
    """It used to check finiteness only: a Poisson model gave x = 2.5 a finite log p(x) (-4.74)
    while ``evaluate`` refused it. Arrays and datasets alike get the model's own message."""
    keras.utils.set_random_seed(0)
    model = VAE(input_shape=(3,), latent_dim=2, likelihood=likelihood)
    x = np.array([[0.0, 1.0, 1.0], [1.0, bad, 0.0]], np.float32)
    problem = likelihoods.check_data(likelihood, x)
    assert problem is not None and str(bad) in problem
    with pytest.raises(ValueError) as from_model:
        model.evaluate(x, verbose=0)
    assert problem in str(from_model.value)
    for data in (x, tf.data.Dataset.from_tensor_slices(x).batch(2)):
        with pytest.raises(ValueError) as refused:
            log_likelihood(model, data, num_samples=1, verbose=0)
        assert str(refused.value) == f"log_likelihood: {problem}"
    assert np.isfinite(log_likelihood(model, x[:1], num_samples=1, verbose=0)[0])


def test_log_likelihood_rejects_bad_data(images):
    model, _ = _linear_gaussian(exact=False)
    with pytest.raises(ValueError, match=r"images must be shaped \[N, 8, 8, 1\]"):
        log_likelihood(model, np.zeros((4, 8, 4, 1), np.float32))
    bad = images[:4].copy()
    bad[1, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        log_likelihood(model, bad)
    with pytest.raises(ValueError, match="no data"):
        log_likelihood(model, np.zeros((0, 8, 8, 1), np.float32))
    with pytest.raises(ValueError, match="probabilistic model"):
        log_likelihood(keras.Sequential([keras.Input((2,))]), images[:4])
