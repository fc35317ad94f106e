"""β-TCVAE: the minibatch estimators of the decomposed KL against closed forms and exact
expectations (scipy densities, no TF code shared with the estimator), the model, saving, the CLI."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats
from scipy.special import logsumexp

import tfvae
from tfvae import objectives
from tfvae.models import BetaTCVAE

# Aggregate posterior of the closed-form tests: means m ~ N(0, C), q(z|x_n) = N(m_n, S2 I), so
# q(z) = N(0, C + S2 I) for a large data set, whose TC is ½(Σ_j log Σ_jj − log det Σ).
_A = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.5, 0.3, 0.6]])
C = _A @ _A.T
S2 = 0.3
SIGMA = C + S2 * np.eye(3)
TC_CLOSED_FORM = 0.5 * (np.sum(np.log(np.diag(SIGMA))) - np.linalg.slogdet(SIGMA)[1])
HUGE_N = 1_000_000  # the data set the batch is drawn from: much larger than any batch


def gaussian_batch(batch, seed, scale2=S2):
    """Means, codes z_i ~ N(m_i, s² I), and the scipy log-densities the estimator takes."""
    rng = np.random.default_rng(seed)
    means = rng.multivariate_normal(np.zeros(3), C, size=batch)
    codes = means + np.sqrt(scale2) * rng.normal(size=means.shape)
    pairs = stats.norm.logpdf(codes[:, None, :], means[None, :, :], np.sqrt(scale2))  # [i, j, d]
    prior = stats.norm.logpdf(codes)
    return means, codes, pairs.astype(np.float32), prior.astype(np.float32)


def mean_terms(pairs, prior, dataset_size=HUGE_N, estimator="mss"):
    terms = objectives.total_correlation_terms(pairs, prior, dataset_size, estimator)
    return {name: float(np.mean(value)) for name, value in terms._asdict().items()}


# ---------------------------------------------------------------------------- the weights

def test_mss_weights_are_the_papers_formula():
    """Chen et al. appendix C: own posterior 1/N, one other (N − M)/(N M), the rest 1/M, with
    M = B − 1 (B = 4, N = 10: 0.1, 0.7/3 and 1/3)."""
    got = np.exp(objectives.log_importance_weight_matrix(4, 10).numpy())
    own, strat, rest = 0.1, (10 - 3) / 30, 1 / 3
    expected = np.array([[own, strat, rest, rest], [rest, own, strat, rest],
                         [rest, rest, own, strat], [strat, rest, rest, own]])
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(np.exp(objectives.log_importance_weight_matrix(4, 10, "mws").numpy()),
                               np.full((4, 4), 1 / 40), rtol=1e-6)
    np.testing.assert_allclose(np.exp(objectives.log_importance_weight_matrix(1, 10).numpy()), [[0.1]])
    dynamic = tf.function(lambda b: objectives.log_importance_weight_matrix(b, 10))
    np.testing.assert_allclose(np.exp(dynamic(tf.constant(4)).numpy()), expected, rtol=1e-6)


def test_mss_estimate_of_q_z_is_unbiased_on_a_finite_data_set():
    """For a data set of N = 12 posteriors, batches of B = 5 distinct examples and fixed codes,
    E_batch[Σ_j W_ij q(z_i|x_j)] = q(z_i) = (1/N) Σ_n q(z_i|x_n) exactly, for every row i. (The
    reference code's weight matrix, whose own-posterior weight runs down column 0, fails this.)"""
    rng = np.random.default_rng(0)
    n, batch, trials = 12, 5, 40_000
    means = rng.normal(size=(n, 2)) * 1.5
    scales = rng.uniform(0.4, 1.0, size=(n, 2))
    codes = means + scales * rng.normal(size=(n, 2))
    density = np.exp(stats.norm.logpdf(codes[:, None, :], means[None], scales[None]).sum(-1))
    exact = density.mean(axis=1)                                    # q(z_n), [N]
    weights = np.exp(objectives.log_importance_weight_matrix(batch, n).numpy())
    members = rng.permuted(np.tile(np.arange(n), (trials, 1)), axis=1)[:, :batch]
    estimate = np.einsum("ij,tij->ti", weights, density[members[:, :, None], members[:, None, :]])
    ratio = estimate / exact[members]                               # [trials, B]
    standard_error = ratio.std(axis=0) / np.sqrt(trials)
    np.testing.assert_array_less(np.abs(ratio.mean(axis=0) - 1.0), 4 * standard_error + 1e-3)


# -------------------------------------------------------------------- against closed forms

def test_tc_estimate_converges_to_the_gaussian_closed_form():
    small = np.mean([mean_terms(*gaussian_batch(50, seed)[2:])["total_correlation"]
                     for seed in range(8)])
    _, _, pairs, prior = gaussian_batch(2000, seed=100)
    large = mean_terms(pairs, prior)["total_correlation"]
    error_small, error_large = abs(small - TC_CLOSED_FORM), abs(large - TC_CLOSED_FORM)
    assert error_large < 0.04  # TC ≈ 0.405 nats
    assert error_large < error_small / 2  # small batches underestimate log q(z) (Jensen)
    # MWS: the same limit once its constant offset (D − 1) log N is taken off
    mws = mean_terms(pairs, prior, estimator="mws")["total_correlation"]
    assert mws - 2 * np.log(HUGE_N) == pytest.approx(TC_CLOSED_FORM, abs=0.04)
    # independent latents have no total correlation
    rng = np.random.default_rng(1)
    means = rng.normal(size=(2000, 3)) * [1.0, 0.5, 2.0]
    codes = means + np.sqrt(S2) * rng.normal(size=means.shape)
    pairs = stats.norm.logpdf(codes[:, None, :], means[None], np.sqrt(S2)).astype(np.float32)
    assert abs(mean_terms(pairs, stats.norm.logpdf(codes).astype(np.float32))["total_correlation"]) < 0.03


def test_dimension_kl_and_mutual_information_match_their_closed_forms():
    """Σ_j KL(N(0, Σ_jj) ‖ N(0, 1)) and I(x; z) = ½ log det Σ − ½ log det(S2 I), the other two
    terms of the Gaussian aggregate posterior."""
    _, _, pairs, prior = gaussian_batch(2000, seed=101)
    terms = mean_terms(pairs, prior)
    variances = np.diag(SIGMA)
    dimension_kl = 0.5 * np.sum(variances - 1 - np.log(variances))
    mutual_information = 0.5 * (np.linalg.slogdet(SIGMA)[1] - 3 * np.log(S2))
    assert terms["dimension_kl"] == pytest.approx(dimension_kl, abs=0.05)
    assert terms["mutual_information"] == pytest.approx(mutual_information, abs=0.08)


def test_the_three_terms_sum_to_the_kl():
    means, codes, pairs, prior = gaussian_batch(500, seed=3)
    for estimator in objectives.TC_ESTIMATORS:
        terms = objectives.total_correlation_terms(pairs, prior, HUGE_N, estimator)
        total = terms.mutual_information + terms.total_correlation + terms.dimension_kl
        # example by example: log q(z|x) − log p(z), each from scipy
        log_q = stats.norm.logpdf(codes, means, np.sqrt(S2)).sum(-1)
        np.testing.assert_allclose(terms.log_q_z_given_x.numpy(), log_q, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(terms.log_p_z.numpy(), prior.sum(-1), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(total.numpy(), log_q - prior.sum(-1), rtol=1e-5, atol=1e-4)
    # and on average the analytic KL(N(m, S2 I) ‖ N(0, I)), within Monte Carlo error
    analytic = 0.5 * np.sum(S2 + means ** 2 - 1 - np.log(S2), axis=1)
    sample = log_q - prior.sum(-1)
    assert abs(sample.mean() - analytic.mean()) < 4 * sample.std() / np.sqrt(len(sample))
    # the log q(z) estimates are the weighted logsumexps, recomputed here with numpy
    weights = objectives.log_importance_weight_matrix(500, HUGE_N).numpy()
    terms = objectives.total_correlation_terms(pairs, prior, HUGE_N)
    np.testing.assert_allclose(terms.log_q_z.numpy(), logsumexp(weights + pairs.sum(-1), axis=1), rtol=1e-5)
    np.testing.assert_allclose(terms.log_prod_q_z_j.numpy(),
                               logsumexp(weights[:, :, None] + pairs, axis=1).sum(-1), rtol=1e-5)


def test_beta_weights_only_the_tc_and_beta_one_is_the_elbo():
    _, _, pairs, prior = gaussian_batch(64, seed=4)
    terms = objectives.total_correlation_terms(pairs, prior, 1000)
    reconstruction = tf.constant(np.linspace(-50, -40, 64), tf.float32)
    monte_carlo_elbo = reconstruction + terms.log_p_z - terms.log_q_z_given_x
    np.testing.assert_allclose(objectives.beta_tc_elbo(reconstruction, terms, 1.0).numpy(),
                               monte_carlo_elbo.numpy(), rtol=1e-6)
    np.testing.assert_allclose(objectives.beta_tc_elbo(reconstruction, terms, 6.0).numpy(),
                               (monte_carlo_elbo - 5.0 * terms.total_correlation).numpy(), rtol=1e-6)


# ---------------------------------------------------------------------------------- the model

def _small(**kwargs):
    kwargs.setdefault("network_options", {"hidden_units": (32,)})
    kwargs.setdefault("dataset_size", 1500)  # digits' training set
    return BetaTCVAE(image_shape=(8, 8, 1), latent_dim=3, **kwargs)


def test_model_objective_is_the_decomposition_of_its_own_codes(digits):
    keras.utils.set_random_seed(0)
    images = digits[0][:256]
    model = _small(beta=4.0, dataset_size=1500)
    result = model.compute_objective(images)
    m = {k: v.numpy() for k, v in result.metrics.items()}
    np.testing.assert_allclose(result.loss.numpy(), -m["reconstruction"] + m["mutual_information"]
                               + 4.0 * m["total_correlation"] + m["dimension_kl"], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(m["elbo"], m["reconstruction"] - m["kl"], rtol=1e-6)
    # the three terms of each example sum to log q(z|x) − log p(z), whose mean is the analytic KL
    sample = m["mutual_information"] + m["total_correlation"] + m["dimension_kl"]
    assert abs(sample.mean() - m["kl"].mean()) < 4 * (sample - m["kl"]).std() / np.sqrt(256)
    # the model's log q(z) comes from every code under every posterior: redo it with scipy
    q = model.posterior(images)
    z = q.sample().numpy()
    loc, scale = q.mean().numpy(), q.stddev().numpy()
    pairs = stats.norm.logpdf(z[:, None, :], loc[None], scale[None])
    weights = objectives.log_importance_weight_matrix(256, 1500).numpy()
    terms = model.kl_decomposition(q, z)
    np.testing.assert_allclose(terms.log_q_z.numpy(), logsumexp(weights + pairs.sum(-1), axis=1),
                               rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(terms.log_prod_q_z_j.numpy(),
                               logsumexp(weights[:, :, None] + pairs, axis=1).sum(-1), rtol=1e-4, atol=1e-3)


def test_fit_lowers_the_loss_and_reports_the_terms():
    keras.utils.set_random_seed(0)
    train = tfvae.data.load("digits", "train", batch_size=64, shuffle=True, seed=0)
    test = tfvae.data.load("digits", "test", batch_size=297)
    model = _small(dataset_size=1500)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)  # XLA: the CLI test
    before = model.evaluate(test, verbose=0, return_dict=True)
    history = model.fit(train, epochs=2, verbose=0)
    after = model.evaluate(test, verbose=0, return_dict=True)
    assert after["loss"] < before["loss"] - 5.0
    for name in ("loss", "elbo", "reconstruction", "kl", "mutual_information", "total_correlation",
                 "dimension_kl"):
        assert np.all(np.isfinite(history.history[name])), name


def test_options_survive_saving(tmp_path, digits):
    model = _small(beta=2.5, dataset_size=1500, estimator="mws")
    path = tmp_path / "tcvae.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is BetaTCVAE
    assert (loaded.beta, loaded.dataset_size, loaded.estimator) == (2.5, 1500, "mws")
    # still in force: the reloaded model's terms are MWS's with N = 1500 (not the defaults')
    q = loaded.posterior(digits[0][:32])
    z = q.sample()
    np.testing.assert_allclose(loaded.kl_decomposition(q, z).total_correlation.numpy(),
                               model.kl_decomposition(q, z).total_correlation.numpy(), rtol=1e-6)
    default = BetaTCVAE(image_shape=(8, 8, 1), latent_dim=3, encoder=loaded.encoder, decoder=loaded.decoder,
                        dataset_size=737_280)
    assert (default.beta, default.estimator) == (6.0, "mss")
    gap = (loaded.kl_decomposition(q, z).total_correlation - default.kl_decomposition(q, z).total_correlation)
    assert float(tf.reduce_mean(gap)) > np.log(1500)  # MWS's TC offset, about (D − 1) log N


def test_dataset_size_is_required_and_the_error_names_the_fix():
    """N has no default: dSprites' 737,280 on a 60,000-example set would shift log q(z) by
    log(737280 / 60000) ≈ 2.5 nats, unseen."""
    with pytest.raises(ValueError) as missing:
        BetaTCVAE(image_shape=(8, 8, 1), latent_dim=3)
    message = str(missing.value)
    assert message.startswith("BetaTCVAE needs dataset_size")
    assert "dataset_size=len(train_images)" in message and "num_examples['train']" in message
    with pytest.raises(ValueError, match="dataset_size=<number of training examples>"):
        _small(dataset_size=None)


def test_cli_trains_a_beta_tcvae_with_n_from_the_training_set(tmp_path):
    from tfvae import cli

    out = tmp_path / "run"
    assert cli.main(["train", "--model", "beta-tcvae", "--beta", "3", "--dataset", "digits",
                     "--limit", "300", "--epochs", "1", "--latent-dim", "2", "--batch-size", "100",
                     "--log-likelihood-samples", "0", "--quiet", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())["model_config"]
    assert config["beta"] == 3.0 and config["dataset_size"] == 300 and config["estimator"] == "mss"
    assert keras.models.load_model(out / "model.keras").dataset_size == 300


@pytest.mark.parametrize("call,pattern", [
    (lambda: _small(beta=-1.0), r"beta must be a finite number >= 0"),
    (lambda: _small(beta=float("nan")), r"beta must be"),
    (lambda: _small(dataset_size=1), r"dataset_size must be an integer >= 2"),
    (lambda: _small(dataset_size=1500.0), r"dataset_size must be an integer >= 2"),
    (lambda: _small(estimator="MSS"), r"estimator must be one of 'mss', 'mws'; got 'MSS'"),
    (lambda: objectives.log_importance_weight_matrix(10, 5), r"needs dataset_size N >= B - 1 .*; got N=5, B=10"),
    (lambda: objectives.log_importance_weight_matrix(4, 10, "iw"), r"estimator must be one of"),
    (lambda: objectives.total_correlation_terms(np.zeros((4, 4)), np.zeros((4, 1)), 10),
     r"log_q_pairs must be shaped \[batch, batch, latent\]"),
    (lambda: objectives.total_correlation_terms(np.zeros((4, 4, 1)), np.zeros((4, 1)), 0),
     r"dataset_size must be a positive integer, got 0"),
])
def test_bad_arguments(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_a_batch_larger_than_the_data_set_fails_in_the_graph_too(digits):
    model = _small(dataset_size=10)
    images = tf.constant(digits[0][:32])
    with pytest.raises(ValueError, match="needs dataset_size N >= B - 1 .*; got N=10, B=32"):
        model.compute_objective(images)
    compiled = tf.function(model.compute_objective, input_signature=[tf.TensorSpec([None, 8, 8, 1])])
    with pytest.raises(tf.errors.InvalidArgumentError, match="needs dataset_size N >= B - 1 .*; got N=10"):
        compiled(images)
    assert np.all(np.isfinite(compiled(images[:11]).loss.numpy()))  # B − 1 = N is fine
