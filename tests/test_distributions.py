"""Tests of tfvae.distributions in the manner of TFP's own distribution tests.

Every statistic, density and KL is checked against an independent computation: Monte Carlo
with a standard-error tolerance, numerical quadrature, finite differences, or the VSC paper's
formula written out separately in numpy.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import integrate, special

from tfvae.distributions import RelaxedBernoulli, SpikeAndSlab
from tfvae.distributions.relaxed_bernoulli import relaxed_selection

tfd = tfp.distributions

LOC = np.array([1.0, -2.0, 0.3, 0.0], np.float32)
SCALE = np.array([0.5, 0.1, 2.0, 1.0], np.float32)
PROBS = np.array([0.9, 0.05, 0.5, 1.0], np.float32)


def _close_to_mc(samples, expected, sigmas=5.0, atol=1e-6):
    """|mean(samples) − expected| within `sigmas` standard errors (per batch member)."""
    samples = np.asarray(samples, np.float64)
    error = np.abs(samples.mean(axis=0) - np.asarray(expected, np.float64))
    stderr = samples.std(axis=0) / np.sqrt(len(samples))
    assert np.all(error <= sigmas * stderr + atol), (error, stderr)


def _paper_kl(mu, log_var, gamma, alpha):
    """The VSC prior term written out as in the paper (numpy, float64), summed over latents j:
    γ ½(μ² + σ² − 1 − log σ²) + (1 − γ) log((1 − γ)/(1 − α)) + γ log(γ/α)."""
    mu, log_var, gamma = (np.asarray(a, np.float64) for a in (mu, log_var, gamma))
    slab = gamma * 0.5 * (mu ** 2 + np.exp(log_var) - 1.0 - log_var)
    spike = (1.0 - gamma) * np.log((1.0 - gamma) / (1.0 - alpha)) + gamma * np.log(gamma / alpha)
    return np.sum(slab + spike, axis=-1)


def _peer_bug_kl(mu, log_var, gamma, alpha):
    """A public Keras VSC's version: log(1−γ)/(1−α) for log((1−γ)/(1−α)), and averaged over
    latents instead of summed."""
    mu, log_var, gamma = (np.asarray(a, np.float64) for a in (mu, log_var, gamma))
    slab = gamma * 0.5 * (mu ** 2 + np.exp(log_var) - 1.0 - log_var)
    spike = (1.0 - gamma) * np.log(1.0 - gamma) / (1.0 - alpha) + gamma * np.log(gamma / alpha)
    return np.mean(slab + spike, axis=-1)


def _relaxed_bernoulli_log_pdf(y, p, temperature):
    """The density of Y = sigmoid((eta − 1 + p) / t), eta ~ U(0, 1), in float64 numpy, by change
    of variables: the logit U = (eta − 1 + p) / t is uniform on ((p − 1)/t, p/t) with density t,
    and du/dy = 1 / (y (1 − y)), so log pdf(y) = log t − log y − log(1 − y) where (p − 1)/t <
    logit(y) <= p/t, and −inf elsewhere."""
    y, p = np.asarray(y, np.float64), np.asarray(p, np.float64)
    u = special.logit(y)
    inside = ((p - 1) / temperature < u) & (u <= p / temperature)
    with np.errstate(divide="ignore"):
        return np.where(inside, np.log(temperature) - np.log(y) - np.log(1.0 - y), -np.inf)


def _quadrature_over(density, low, high, nodes=20):
    """∫ density(y) dy over [low, high] ⊂ (0, 1), by 20-point Gauss-Legendre on panels that
    halve towards 0 and towards 1 (where t / (y (1 − y)) is steep), with one vectorized call of
    `density` (scipy's quad, point by point, took 10-20 s)."""
    mid = np.clip(0.5, low, high)
    halvings = lambda a, b: int(np.ceil(np.log2(b / a))) + 1  # noqa: E731
    left = np.geomspace(low, mid, halvings(low, mid)) if mid > low else [low]
    right = (1.0 - np.geomspace(1.0 - high, 1.0 - mid, halvings(1.0 - high, 1.0 - mid))
             if high > mid else [high])
    edges = np.unique(np.concatenate([left, right]))
    x, w = np.polynomial.legendre.leggauss(nodes)
    a, b = edges[:-1, None], edges[1:, None]
    return np.sum((b - a) / 2 * w * density((a + b) / 2 + (b - a) / 2 * x))


# ----------------------------------------------------------------------------- SpikeAndSlab


class TestSpikeAndSlabStatistics:

    def test_sample_mean_and_variance_match_closed_forms(self):
        dist = SpikeAndSlab(LOC, SCALE, probs=PROBS)
        samples = dist.sample(200_000, seed=(1, 2)).numpy()
        _close_to_mc(samples, dist.mean())
        # Var = E[(z − mean)²]: its Monte Carlo estimate has its own standard error.
        _close_to_mc((samples - dist.mean().numpy()) ** 2, dist.variance())
        np.testing.assert_allclose(dist.mean(), PROBS * LOC, rtol=1e-6)
        np.testing.assert_allclose(
            dist.variance(), PROBS * SCALE ** 2 + PROBS * (1 - PROBS) * LOC ** 2, rtol=1e-6)

    def test_exact_samples_are_zero_with_the_spike_probability(self):
        dist = SpikeAndSlab(LOC, SCALE, probs=PROBS)
        samples = dist.sample(100_000, seed=(3, 4)).numpy()
        _close_to_mc((samples == 0).astype(np.float64), 1 - PROBS)
        assert np.all(samples[:, 3] != 0)  # probs = 1: never the spike

    def test_logits_parameterisation_matches_probs(self):
        logits = special.logit(PROBS[:3]).astype(np.float32)
        by_logits = SpikeAndSlab(LOC[:3], SCALE[:3], logits=logits)
        by_probs = SpikeAndSlab(LOC[:3], SCALE[:3], probs=PROBS[:3])
        x = np.array([0.0, 0.7, -1.2], np.float32)
        np.testing.assert_allclose(by_logits.log_prob(x), by_probs.log_prob(x), rtol=1e-5)
        np.testing.assert_allclose(by_logits.variance(), by_probs.variance(), rtol=1e-5)
        np.testing.assert_allclose(tfd.kl_divergence(by_logits, SpikeAndSlab(0.0, 1.0, probs=0.2)),
                                   tfd.kl_divergence(by_probs, SpikeAndSlab(0.0, 1.0, probs=0.2)),
                                   rtol=1e-5)

    def test_log_prob_convention_for_the_mixed_measure(self):
        dist = SpikeAndSlab(LOC, SCALE, probs=PROBS)
        x = np.array([0.0, 0.3, 0.0, -1.5], np.float32)
        with np.errstate(divide="ignore"):
            expected = np.where(x == 0, np.log1p(-PROBS.astype(np.float64)),
                                np.log(PROBS) + _normal_logpdf(x, LOC, SCALE))
        np.testing.assert_allclose(dist.log_prob(x), expected, rtol=1e-5)
        # The spike's mass at 0 plus the slab's mass elsewhere is 1 (counting + Lebesgue); the
        # slab's by Simpson's rule over ±12 scales, in one call (quad, point by point, took 60 s).
        grid = (LOC[:3] + SCALE[:3] * np.linspace(-12.0, 12.0, 20_000)[:, None]).astype(np.float32)
        assert np.all(grid != 0)  # 0 would pick the spike's mass, not the slab's density
        slab_mass = integrate.simpson(np.exp(dist[:3].log_prob(grid).numpy()), x=grid, axis=0)
        np.testing.assert_allclose(slab_mass + np.exp(dist[:3].log_prob(0.0)), 1.0, atol=1e-4)

    def test_entropy_matches_monte_carlo(self):
        dist = SpikeAndSlab(LOC, SCALE, probs=PROBS)
        samples = dist.sample(100_000, seed=(5, 6))
        _close_to_mc(-dist.log_prob(samples).numpy(), dist.entropy())


def _normal_logpdf(x, loc, scale):
    x, loc, scale = (np.asarray(a, np.float64) for a in (x, loc, scale))
    return -0.5 * ((x - loc) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi)


class TestSpikeAndSlabKL:

    def _random_params(self, seed, n=64):
        rng = np.random.default_rng(seed)
        return dict(loc=rng.normal(size=n).astype(np.float32),
                    scale=rng.uniform(0.05, 3.0, size=n).astype(np.float32),
                    probs=rng.uniform(0.0, 1.0, size=n).astype(np.float32))

    def test_kl_is_non_negative(self):
        q = SpikeAndSlab(**self._random_params(0))
        p = SpikeAndSlab(**self._random_params(1))
        kl = tfd.kl_divergence(q, p).numpy()
        assert kl.shape == (64,)
        assert np.all(kl >= 0)

    @pytest.mark.parametrize("probs", [0.0, 0.01, 0.5, 1.0])
    def test_kl_is_zero_for_equal_arguments(self, probs):
        q = SpikeAndSlab(loc=[0.3, -1.0], scale=[0.7, 2.0], probs=probs)
        p = SpikeAndSlab(loc=[0.3, -1.0], scale=[0.7, 2.0], probs=probs)
        np.testing.assert_allclose(tfd.kl_divergence(q, p), 0.0, atol=1e-7)

    def test_kl_matches_monte_carlo_for_general_slabs(self):
        params_q = self._random_params(2, n=6)
        params_p = dict(loc=[0.5, -1.0, 0.0, 2.0, 0.1, -0.3], scale=[1.0, 0.5, 2.0, 1.5, 0.8, 1.2],
                        probs=[0.3, 0.9, 0.01, 0.5, 0.7, 0.2])
        q, p = SpikeAndSlab(**params_q), SpikeAndSlab(**params_p)
        z = q.sample(200_000, seed=(7, 8))
        # Both log-probs are densities against the same reference measure, so their difference
        # is the log Radon-Nikodym derivative and its mean under q the KL.
        log_ratio = (q.log_prob(z) - p.log_prob(z)).numpy()
        _close_to_mc(log_ratio, tfd.kl_divergence(q, p))

    def test_kl_equals_the_papers_closed_form_summed_over_latents(self):
        rng = np.random.default_rng(3)
        mu = rng.normal(size=(5, 8)).astype(np.float32)
        log_var = rng.normal(scale=0.5, size=(5, 8)).astype(np.float32)
        gamma = rng.uniform(0.01, 0.99, size=(5, 8)).astype(np.float32)
        alpha = 0.2
        q = tfd.Independent(SpikeAndSlab(mu, np.exp(0.5 * log_var), probs=gamma), 1)
        prior = tfd.Independent(SpikeAndSlab(tf.zeros(8), 1.0, probs=alpha), 1)
        kl = tfd.kl_divergence(q, prior).numpy()
        np.testing.assert_allclose(kl, _paper_kl(mu, log_var, gamma, alpha), rtol=1e-5)

        # The known peer bug differs by far more than the tolerance, so the test would catch it.
        buggy = _peer_bug_kl(mu, log_var, gamma, alpha)
        assert np.all(np.abs(kl - buggy) > 0.05 * np.abs(kl))
        # And each half of the bug on its own would be caught too.
        half_bug = _paper_kl(mu, log_var, gamma, alpha) / 8  # averaged, not summed
        assert np.all(np.abs(kl - half_bug) > 0.5 * np.abs(kl))
        wrong_log = gamma * 0.5 * (mu ** 2 + np.exp(log_var) - 1 - log_var) + (
            (1 - gamma) * np.log(1 - gamma) / (1 - alpha) + gamma * np.log(gamma / alpha))
        assert np.all(np.abs(kl - wrong_log.sum(-1)) > 1e-2)

    def test_monte_carlo_agrees_with_the_paper_and_not_with_the_peer_bug(self):
        mu = np.array([[0.5, -1.0, 2.0]], np.float32)
        log_var = np.array([[-1.0, 0.5, 0.0]], np.float32)
        gamma = np.array([[0.6, 0.3, 0.9]], np.float32)
        alpha = 0.1
        q = tfd.Independent(SpikeAndSlab(mu, np.exp(0.5 * log_var), probs=gamma), 1)
        prior = tfd.Independent(SpikeAndSlab(tf.zeros(3), 1.0, probs=alpha), 1)
        z = q.sample(200_000, seed=(9, 10))
        log_ratio = (q.log_prob(z) - prior.log_prob(z)).numpy()
        mc, stderr = log_ratio.mean(), log_ratio.std() / np.sqrt(len(log_ratio))
        assert abs(mc - _paper_kl(mu, log_var, gamma, alpha)[0]) < 5 * stderr
        assert abs(mc - _peer_bug_kl(mu, log_var, gamma, alpha)[0]) > 50 * stderr

    def test_kl_handles_the_boundaries_of_the_slab_probability(self):
        prior = SpikeAndSlab(0.0, 1.0, probs=0.01)
        q = SpikeAndSlab(loc=[1.0, 1.0], scale=[0.5, 0.5], probs=[0.0, 1.0])
        expected = [np.log(1 / 0.99),
                    0.5 * (1 + 0.25 - 1 - np.log(0.25)) + np.log(1 / 0.01)]
        np.testing.assert_allclose(tfd.kl_divergence(q, prior), expected, rtol=1e-5)
        # The prior puts no mass off the spike: a q with a slab is infinitely far from it.
        assert np.isinf(tfd.kl_divergence(SpikeAndSlab(0.0, 1.0, probs=0.5),
                                          SpikeAndSlab(0.0, 1.0, probs=0.0)).numpy())

    def test_kl_gradients_are_finite_at_the_boundaries(self):
        probs = tf.Variable([0.0, 1e-6, 0.5, 1.0 - 1e-6, 1.0])
        loc = tf.Variable(tf.fill([5], 0.7))
        scale = tf.Variable(tf.fill([5], 0.6))
        with tf.GradientTape() as tape:
            kl = tf.reduce_sum(tfd.kl_divergence(SpikeAndSlab(loc, scale, probs=probs),
                                                 SpikeAndSlab(0.0, 1.0, probs=0.3)))
        grads = tape.gradient(kl, [probs, loc, scale])
        for g in grads:
            assert np.all(np.isfinite(g.numpy()))
        # Interior: d KL / d gamma = KL_slab + log(gamma/alpha) − log((1−gamma)/(1−alpha)).
        slab_kl = 0.5 * (0.49 + 0.36 - 1 - np.log(0.36))
        np.testing.assert_allclose(grads[0].numpy()[2],
                                   slab_kl + np.log(0.5 / 0.3) - np.log(0.5 / 0.7), rtol=1e-4)


class TestSpikeAndSlabRelaxedSample:

    def test_relaxed_sample_approaches_the_exact_one_as_temperature_falls(self):
        seed = (11, 12)
        exact = SpikeAndSlab(LOC, SCALE, probs=PROBS).sample(20_000, seed=seed).numpy()
        errors = []
        for temperature in [1.0, 0.1, 0.01, 1e-4]:
            relaxed = SpikeAndSlab(LOC, SCALE, probs=PROBS, temperature=temperature)
            errors.append(np.mean(np.abs(relaxed.sample(20_000, seed=seed).numpy() - exact)))
        assert all(a > b for a, b in zip(errors, errors[1:])), errors
        assert errors[-1] < 1e-3
        # At c = 50 relaxed samples are not exactly the spike; exact ones are, with probability
        # 1 − γ.
        relaxed = SpikeAndSlab(LOC, SCALE, probs=PROBS, temperature=0.02).sample(100, seed=seed)
        assert np.all(relaxed.numpy()[:, :3] != 0)

    def test_relaxed_samples_underflow_to_exact_zeros_at_high_sharpness(self):
        # What the docstring says: in float32 the mask never drops below the smallest normal
        # number, but mask * slab underflows to exactly 0 once c (1 − γ) passes ~80: about 32 %
        # of draws at c = 200, γ = 0.1 (loc 0, scale 1), 2.6 % at c = 100, none at c = 50.
        def zeros(sharpness, probs):
            dist = SpikeAndSlab(0.0, 1.0, probs=probs, temperature=1.0 / sharpness)
            return np.mean(dist.sample(100_000, seed=(41, 42)).numpy() == 0)

        assert zeros(50.0, 0.1) == 0
        assert 0.015 < zeros(100.0, 0.1) < 0.04
        assert 0.28 < zeros(200.0, 0.1) < 0.36
        assert 0.03 < zeros(200.0, 0.5) < 0.065
        masks = RelaxedBernoulli(1.0 / 200.0, probs=0.1).sample(100_000, seed=(41, 42)).numpy()
        assert masks.min() == np.finfo(np.float32).tiny

    def test_relaxed_mean_is_the_relaxed_bernoulli_mean_times_loc(self):
        temperature = 1.0 / 50.0
        dist = SpikeAndSlab(LOC, SCALE, probs=PROBS, temperature=temperature)
        samples = dist.sample(200_000, seed=(13, 14)).numpy()
        mask_mean = RelaxedBernoulli(temperature, probs=PROBS).mean().numpy()
        _close_to_mc(samples, mask_mean * LOC)
        assert dist.reparameterization_type == tfd.FULLY_REPARAMETERIZED
        assert SpikeAndSlab(0.0, 1.0, probs=0.5).reparameterization_type == tfd.NOT_REPARAMETERIZED

    def test_pathwise_gradients_reach_probs_loc_and_scale(self):
        temperature = 0.1
        probs = tf.Variable([0.3, 0.8])
        loc = tf.Variable([1.5, -0.5])  # E[z] and E[z²] pull loc's gradient opposite ways at -0.5
        scale = tf.Variable([0.4, 1.2])
        n = 200_000
        with tf.GradientTape() as tape:
            z = SpikeAndSlab(loc, scale, probs=probs, temperature=temperature).sample(
                n, seed=(15, 16))
            first, second = tf.reduce_mean(z, 0), tf.reduce_mean(z ** 2, 0)
            objective = tf.reduce_sum(first) + tf.reduce_sum(second)
        g_probs, g_loc, g_scale = tape.gradient(objective, [probs, loc, scale])
        # E[z] = E[m] loc and E[z²] = E[m²] (loc² + scale²), m ~ RelaxedBernoulli; differentiate
        # these closed forms (E[m²] = Var + E[m]²) by central finite differences in probs.
        def moments(p):
            rb = RelaxedBernoulli(np.float64(temperature), probs=np.asarray(p, np.float64))
            m1 = rb.mean().numpy()
            return m1, rb.variance().numpy() + m1 ** 2

        p0, mu, sd = probs.numpy().astype(np.float64), loc.numpy(), scale.numpy()
        h = 1e-4
        (m1p, m2p), (m1m, m2m) = moments(p0 + h), moments(p0 - h)
        expected_probs = (m1p - m1m) / (2 * h) * mu + (m2p - m2m) / (2 * h) * (mu ** 2 + sd ** 2)
        m1, m2 = moments(p0)
        np.testing.assert_allclose(g_probs, expected_probs, rtol=0.05)
        np.testing.assert_allclose(g_loc, m1 + 2 * m2 * mu, rtol=0.05, atol=0.02)
        np.testing.assert_allclose(g_scale, 2 * m2 * sd, rtol=0.05)

    def test_log_prob_gradients_are_finite_at_probs_zero_and_one(self):
        # log_prob(0) at γ = 0 and log_prob(x ≠ 0) at γ = 1 are finite; the branch not taken
        # (log γ = −inf, resp. log(1 − γ) = −inf) must not leak a NaN into their gradients.
        probs = tf.Variable([0.0, 1.0])
        with tf.GradientTape() as tape:
            log_prob = SpikeAndSlab(0.0, 1.0, probs=probs).log_prob([0.0, 0.5])
        np.testing.assert_allclose(log_prob, [0.0, _normal_logpdf(0.5, 0.0, 1.0)], rtol=1e-6)
        np.testing.assert_allclose(tape.gradient(log_prob, probs), [-1.0, 1.0])
        # And the infinite cases are -inf, as the convention says.
        log_prob = SpikeAndSlab(0.0, 1.0, probs=[0.0, 1.0]).log_prob([0.5, 0.0])
        assert np.all(np.isneginf(log_prob.numpy()))


class TestSpikeAndSlabShapes:

    @pytest.mark.parametrize("loc_shape,scale_shape,probs_shape,temperature,batch", [
        ((), (), (), None, ()),
        ((3,), (), (), None, (3,)),
        ((2, 1), (3,), (), 0.1, (2, 3)),
        ((), (), (4,), np.full([2, 1], 0.1, np.float32), (2, 4)),
    ])
    def test_batch_shapes_broadcast(self, loc_shape, scale_shape, probs_shape, temperature, batch):
        dist = SpikeAndSlab(np.zeros(loc_shape, np.float32), np.ones(scale_shape, np.float32),
                            probs=np.full(probs_shape, 0.3, np.float32), temperature=temperature)
        assert dist.batch_shape == batch and dist.event_shape == ()
        assert tuple(dist.batch_shape_tensor().numpy()) == batch
        assert dist.sample(seed=(1, 1)).shape == batch
        assert dist.sample([5, 2], seed=(1, 1)).shape == (5, 2) + batch
        assert dist.log_prob(np.zeros(batch, np.float32)).shape == batch
        assert dist.mean().shape == batch and dist.variance().shape == batch
        assert dist.entropy().shape == batch
        # log_prob broadcasts a sample axis against the batch.
        assert dist.log_prob(np.zeros((7,) + batch, np.float32)).shape == (7,) + batch

    def test_independent_gives_an_event_of_latents(self):
        q = tfd.Independent(SpikeAndSlab(tf.zeros([6, 5]), 1.0, probs=0.3, temperature=0.1), 1)
        assert q.batch_shape == (6,) and q.event_shape == (5,)
        assert q.sample(3, seed=(2, 2)).shape == (3, 6, 5)
        prior = tfd.Independent(SpikeAndSlab(tf.zeros([5]), 1.0, probs=0.01), 1)
        assert tfd.kl_divergence(q, prior).shape == (6,)

    def test_slicing_keeps_parameters(self):
        dist = SpikeAndSlab(LOC, SCALE, probs=PROBS, temperature=0.5)
        np.testing.assert_allclose(dist[1:3].mean(), (PROBS * LOC)[1:3])
        assert dist[1:3].temperature.numpy() == pytest.approx(0.5)

    def test_incompatible_shapes_are_rejected(self):
        with pytest.raises(ValueError, match="broadcastable"):
            SpikeAndSlab(tf.zeros([3]), tf.ones([4]), probs=0.5)


class TestSpikeAndSlabValidation:

    def test_probs_and_logits_exactly_one(self):
        with pytest.raises(ValueError, match="exactly one of `probs` or `logits`"):
            SpikeAndSlab(0.0, 1.0)
        with pytest.raises(ValueError, match="exactly one of `probs` or `logits`"):
            SpikeAndSlab(0.0, 1.0, probs=0.5, logits=0.0)

    @pytest.mark.parametrize("kwargs,message", [
        (dict(probs=-0.1), "`probs` has components below 0"),
        (dict(probs=1.5), "`probs` has components above 1"),
        (dict(probs=0.5, scale=0.0), "`scale` must be positive"),
        (dict(probs=0.5, scale=-1.0), "`scale` must be positive"),
        (dict(probs=0.5, temperature=0.0), "`temperature` must be positive"),
    ])
    def test_invalid_parameters_raise_under_validate_args(self, kwargs, message):
        kwargs = dict(dict(loc=0.0, scale=1.0), **kwargs)
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            SpikeAndSlab(validate_args=True, **kwargs).mean()
        SpikeAndSlab(validate_args=False, **kwargs)  # unchecked, as in TFP

    def test_variables_are_checked_when_used(self):
        scale = tf.Variable(1.0)
        dist = SpikeAndSlab(0.0, scale, probs=0.5, validate_args=True)
        dist.mean()
        scale.assign(-1.0)
        with pytest.raises(tf.errors.InvalidArgumentError, match="`scale` must be positive"):
            dist.sample(seed=(1, 1))


class TestInGraphsAndSavedModels:

    def test_inside_tf_function(self):
        @tf.function
        def stats(loc, scale, probs, temperature):
            q = SpikeAndSlab(loc, scale, probs=probs, temperature=temperature)
            p = SpikeAndSlab(tf.zeros_like(loc), 1.0, probs=0.1)
            z = q.sample(seed=(3, 3))
            return tfd.kl_divergence(q, p), q.log_prob(tf.zeros_like(loc)), q.mean(), z

        args = (LOC, SCALE, PROBS, np.float32(0.05))
        eager = SpikeAndSlab(*args[:2], probs=args[2], temperature=args[3])
        prior = SpikeAndSlab(np.zeros(4, np.float32), 1.0, probs=0.1)
        kl, log_prob, mean, z = stats(*args)
        np.testing.assert_allclose(kl, tfd.kl_divergence(eager, prior), rtol=1e-6)
        np.testing.assert_allclose(log_prob, eager.log_prob(np.zeros(4, np.float32)), rtol=1e-6)
        np.testing.assert_allclose(mean, eager.mean(), rtol=1e-6)
        np.testing.assert_allclose(z, eager.sample(seed=(3, 3)), rtol=1e-6)

    def test_distributions_pass_through_tf_function_as_composite_tensors(self):
        @tf.function
        def kl_of(q, p):
            return tfd.kl_divergence(q, p), q.sample(seed=(4, 4))

        q = SpikeAndSlab(LOC, SCALE, probs=PROBS, temperature=0.1)
        p = SpikeAndSlab(0.0, 1.0, probs=0.2)
        kl, _ = kl_of(q, p)
        np.testing.assert_allclose(kl, tfd.kl_divergence(q, p), rtol=1e-6)
        r = RelaxedBernoulli(0.1, probs=PROBS)
        np.testing.assert_allclose(tf.function(lambda d: d.mean())(r), r.mean(), rtol=1e-6)

    def test_inside_a_saved_model(self, tmp_path):
        class SparseCoder(tf.Module):
            def __init__(self):
                super().__init__()
                self.alpha = tf.Variable(0.05)

            @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)] * 3)
            def terms(self, loc, scale, probs):
                q = SpikeAndSlab(loc, scale, probs=probs, temperature=0.02)
                prior = SpikeAndSlab(0.0, 1.0, probs=self.alpha)
                mask = RelaxedBernoulli(0.02, probs=probs)
                return dict(kl=tfd.kl_divergence(q, prior),
                            log_prob=q.log_prob(tf.zeros_like(loc)),
                            mask_mean=mask.mean(),
                            mask_log_prob=mask.log_prob(tf.fill(tf.shape(loc), 0.7)),
                            sample=q.sample(seed=tf.constant([5, 6])))

        module = SparseCoder()
        args = [np.stack([LOC, -LOC]), np.stack([SCALE, SCALE]), np.stack([PROBS, 1 - PROBS])]
        before = {k: v.numpy() for k, v in module.terms(*args).items()}
        tf.saved_model.save(module, str(tmp_path / "coder"))
        loaded = tf.saved_model.load(str(tmp_path / "coder"))
        after = {k: v.numpy() for k, v in loaded.terms(*args).items()}
        assert set(after) == set(before)
        for key in before:
            np.testing.assert_allclose(after[key], before[key], rtol=1e-6, err_msg=key)
        q = SpikeAndSlab(args[0], args[1], probs=args[2])
        np.testing.assert_allclose(
            after["kl"], tfd.kl_divergence(q, SpikeAndSlab(0.0, 1.0, probs=0.05)), rtol=1e-6)


# --------------------------------------------------------------------------- RelaxedBernoulli


class TestRelaxedBernoulli:

    @pytest.mark.parametrize("temperature", [1.0, 0.2, 0.02])
    def test_sample_mean_and_variance_match_closed_forms(self, temperature):
        probs = np.array([0.0, 0.1, 0.5, 0.93, 1.0], np.float32)
        dist = RelaxedBernoulli(temperature, probs=probs)
        samples = dist.sample(200_000, seed=(17, 18)).numpy()
        _close_to_mc(samples, dist.mean())
        _close_to_mc((samples - dist.mean().numpy()) ** 2, dist.variance())
        # The closed forms against direct quadrature of E[sigmoid(S / t)], S ~ U(p − 1, p).
        for p, mean, var in zip(probs, dist.mean().numpy(), dist.variance().numpy()):
            m1 = integrate.quad(lambda s: special.expit(s / temperature), p - 1, p)[0]
            m2 = integrate.quad(lambda s: special.expit(s / temperature) ** 2, p - 1, p)[0]
            np.testing.assert_allclose([mean, var], [m1, m2 - m1 ** 2], rtol=2e-3, atol=1e-6)

    @pytest.mark.parametrize("temperature,p", [
        (1.0, 0.3), (0.1, 0.5), (0.02, 0.05), (0.5, 1.0), (1.0 / 200.0, 0.1)])
    def test_log_prob_integrates_to_one(self, temperature, p):
        dist = RelaxedBernoulli(np.float64(temperature), probs=np.float64(p))
        lo, hi = (p - 1) / temperature, p / temperature  # the support's ends in logit space
        low, high = special.expit(lo), special.expit(hi)   # ~1e-78 at c = 200
        density = lambda y: np.exp(dist.log_prob(y).numpy())  # noqa: E731
        # Quadrature in logit space (y = sigmoid(u)), where the density is smooth:
        # dy = y (1 − y) du.
        total = integrate.quad(
            lambda u: density(special.expit(u)) * special.expit(u) * special.expit(-u),
            lo - 5.0, hi + 5.0, points=[lo, hi], limit=200)[0]
        np.testing.assert_allclose(total, 1.0, atol=1e-6)
        # The same in y directly over the support, and nothing outside it.
        np.testing.assert_allclose(_quadrature_over(density, low, high), 1.0, atol=1e-6)
        outside = [low / 2, (1 + high) / 2] if high < 1 else [low / 2]
        assert np.all(np.isneginf(dist.log_prob(np.array(outside)).numpy()))

    @pytest.mark.parametrize("sharpness", [50.0, 200.0, 1000.0])
    def test_log_prob_is_finite_on_its_own_float32_samples(self, sharpness):
        # At c >= 200 about half of the raw float32 sigmoids are exactly 0 or 1 (log_prob -inf);
        # near 1, logit(y) of a draw just inside the support can land beyond it (-inf at c = 50).
        probs = np.array([0.0, 0.05, 0.3, 0.5, 0.9, 1.0], np.float32)
        dist = RelaxedBernoulli(np.float32(1.0 / sharpness), probs=probs)
        y = dist.sample(10_000, seed=(31, 32))
        assert y.dtype == tf.float32
        y = y.numpy()
        assert np.all((y > 0) & (y < 1))
        log_prob = dist.log_prob(y).numpy()
        assert np.all(np.isfinite(log_prob)), np.mean(~np.isfinite(log_prob), axis=0)
        # The saturated regime is really exercised: many draws sit at the float32 ends of (0, 1).
        at_the_ends = np.mean((y == np.finfo(np.float32).tiny) | (y == np.float32(1 - 2 ** -24)))
        assert at_the_ends > (0.3 if sharpness >= 200 else 0.05), at_the_ends
        # And the values are the density there (see the float64 reference below) wherever the
        # float64 support test places the float32 draw inside the support: all but a few draws
        # that round across an end of it.
        reference = _relaxed_bernoulli_log_pdf(y, probs, 1.0 / sharpness)
        assert np.mean(np.isfinite(reference)) > 0.999
        # (atol: float32 rounding of log t, log y, log1p(−y), each a few units, where they cancel.)
        np.testing.assert_allclose(log_prob[np.isfinite(reference)],
                                   reference[np.isfinite(reference)], rtol=1e-6, atol=2e-6)

    def test_log_prob_is_finite_on_draws_at_the_ends_of_the_support(self):
        # A draw is relaxed_selection(p − u, t) with u on TF's uniform grid (multiples of
        # 2^-23 in [0, 1)); take the 64 grid points next to each end, for many p and t. TF's
        # float32 sigmoid is a few ulps off monotone, so some such draws land just outside the
        # support computed by the same arithmetic: a test without slack gives -inf here.
        u = np.concatenate([np.arange(64) * 2.0 ** -23, 1 - np.arange(1, 65) * 2.0 ** -23])
        u = u.astype(np.float32)[:, None]
        probs = np.linspace(0.0, 1.0, 201).astype(np.float32)
        for sharpness in [1.0, 2.0, 5.0, 10.0, 50.0, 200.0]:
            temperature = np.float32(1.0 / sharpness)
            y = relaxed_selection(tf.constant(probs - u), temperature)
            log_prob = RelaxedBernoulli(temperature, probs=probs).log_prob(y).numpy()
            assert np.all(np.isfinite(log_prob)), (sharpness, np.sum(~np.isfinite(log_prob)))

    def test_log_prob_matches_a_float64_change_of_variables(self):
        # float32 points across the whole support at c = 200, deep tails included (y from
        # 1e-37 to 1 - 5e-5), against the float64 reference.
        temperature, p = 1.0 / 200.0, 0.05
        dist = RelaxedBernoulli(np.float32(temperature), probs=np.float32(p))
        y = special.expit(np.linspace(-85.0, 9.9, 400)).astype(np.float32)
        np.testing.assert_allclose(dist.log_prob(y), _relaxed_bernoulli_log_pdf(y, p, temperature),
                                   rtol=1e-6, atol=2e-6)
        # Above the support (which ends at sigmoid(10)), inside (0, 1): zero density. (Its lower
        # end, sigmoid(-190), is below every positive float32.)
        outside = special.expit(np.array([10.5, 12.0])).astype(np.float32)
        assert np.all(np.isneginf(dist.log_prob(outside).numpy()))
        # float64 at c = 1000: the support's logits are (-300, 700], all y < 1 from logit 36.7 on.
        dist64 = RelaxedBernoulli(np.float64(1e-3), probs=np.float64(0.7))
        y64 = special.expit(np.linspace(-299.0, 36.0, 500))
        np.testing.assert_allclose(dist64.log_prob(y64), _relaxed_bernoulli_log_pdf(y64, 0.7, 1e-3),
                                   rtol=1e-12)
        assert np.isneginf(dist64.log_prob(special.expit(-301.0)).numpy())

    def test_cdf_and_quantile_agree_with_samples_and_density(self):
        dist = RelaxedBernoulli(0.3, probs=[0.2, 0.7])
        samples = dist.sample(100_000, seed=(19, 20)).numpy()
        y = np.array([0.3, 0.6], np.float32)
        _close_to_mc((samples <= y).astype(np.float64), dist.cdf(y))
        np.testing.assert_allclose(dist.cdf(dist.quantile([0.25, 0.8])), [0.25, 0.8], atol=1e-5)
        # d cdf / dy = pdf
        yv = tf.constant([0.35, 0.55], tf.float64)
        dist64 = RelaxedBernoulli(np.float64(0.3), probs=np.array([0.2, 0.7]))
        with tf.GradientTape() as tape:
            tape.watch(yv)
            cdf = dist64.cdf(yv)
        np.testing.assert_allclose(tape.gradient(cdf, yv), dist64.prob(yv), rtol=1e-8)

    def test_approaches_a_bernoulli_as_temperature_falls(self):
        probs = np.array([0.1, 0.5, 0.85], np.float32)
        for temperature, tol in [(0.1, 0.1), (0.01, 0.01), (1e-4, 1e-3)]:
            dist = RelaxedBernoulli(temperature, probs=probs)
            np.testing.assert_allclose(dist.mean(), probs, atol=tol)
            np.testing.assert_allclose(dist.variance(), probs * (1 - probs), atol=2 * tol)
        samples = RelaxedBernoulli(1e-4, probs=probs).sample(50_000, seed=(21, 22)).numpy()
        assert np.mean(np.minimum(samples, 1 - samples) > 1e-3) < 0.01  # almost all 0 or 1

    def test_differs_from_the_concrete_relaxation(self):
        ours = RelaxedBernoulli(0.5, probs=[0.0, 1.0]).sample(10_000, seed=(23, 24)).numpy()
        assert ours[:, 0].max() <= 0.5 and ours[:, 1].min() >= 0.5  # bounded supports
        concrete = tfd.RelaxedBernoulli(0.5, probs=[0.01, 0.99]).sample(10_000, seed=(23, 24))
        assert concrete.numpy()[:, 0].max() > 0.5  # logistic noise reaches all of (0, 1)

    def test_gradient_of_the_sample_with_respect_to_probs(self):
        # d/dp sigmoid((p − u)/t) = y (1 − y) / t, pathwise and per sample.
        probs = tf.Variable([0.3, 0.6])
        with tf.GradientTape() as tape:
            y = RelaxedBernoulli(0.25, probs=probs).sample(seed=(25, 26))
        grad = tape.gradient(y, probs).numpy()
        np.testing.assert_allclose(grad, y.numpy() * (1 - y.numpy()) / 0.25, rtol=1e-5)

    def test_shapes_and_logits(self):
        dist = RelaxedBernoulli(np.full([2, 1], 0.1, np.float32), logits=np.zeros(3, np.float32))
        assert dist.batch_shape == (2, 3) and dist.event_shape == ()
        assert dist.sample(4, seed=(1, 1)).shape == (4, 2, 3)
        np.testing.assert_allclose(dist.mean(),
                                   RelaxedBernoulli(0.1, probs=0.5).mean() * np.ones([2, 3]))
        bijector = dist.experimental_default_event_space_bijector()
        y = bijector(tf.constant([[-5.0, 0.0, 5.0]] * 2))  # unconstrained -> inside the support
        assert np.all(np.isfinite(dist.log_prob(y).numpy()))

    @pytest.mark.parametrize("kwargs,message", [
        (dict(temperature=0.0, probs=0.5), "`temperature` must be positive"),
        (dict(temperature=1.0, probs=-0.5), "`probs` has components below 0"),
        (dict(temperature=1.0, probs=1.5), "`probs` has components above 1"),
    ])
    def test_invalid_parameters_raise_under_validate_args(self, kwargs, message):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            RelaxedBernoulli(validate_args=True, **kwargs).mean()

    def test_probs_and_logits_exactly_one(self):
        with pytest.raises(ValueError, match="exactly one"):
            RelaxedBernoulli(0.5)
