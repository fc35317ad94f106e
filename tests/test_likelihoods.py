"""Likelihood layers (tfvae.models.likelihoods) against independent float64 computations: scipy's
distributions, the continuous Bernoulli's closed form and numerical integrals."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import integrate, special, stats

from tfvae.models import likelihoods

NAMES = ("bernoulli", "continuous-bernoulli", "gaussian", "gaussian-learned", "poisson",
         "negative-binomial")
SCALE = 0.3  # observation_scale used for the Gaussians
EVENT_SHAPES = [(5,), (3, 4, 2)]


def _data(support, shape, rng):
    if support == "binary":
        return rng.integers(0, 2, size=shape).astype("float32")
    if support == "unit-interval":
        return rng.uniform(size=shape).astype("float32")
    if support == "real":
        return rng.normal(size=shape).astype("float32")
    return rng.poisson(3.0, size=shape).astype("float32")


def _cb_log_prob(x, logits):
    """log CB(x; λ) = log C(λ) + x log λ + (1 − x) log(1 − λ), C(λ) = 2 artanh(1 − 2λ)/(1 − 2λ),
    in float64 numpy from λ = sigmoid(logit); C(½) = 2 (the limit)."""
    lam = special.expit(np.asarray(logits, np.float64))
    y = 1.0 - 2.0 * lam
    safe = np.where(y == 0.0, 0.5, y)  # any value with a finite artanh
    log_c = np.where(y == 0.0, np.log(2.0), np.log(2.0 * np.arctanh(safe) / safe))
    return log_c + x * np.log(lam) + (1.0 - x) * np.log1p(-lam)


def _reference(name, params, x):
    """Element-wise float64 log-density of x under the likelihood ``name`` with raw ``params``."""
    params, x = params.astype(np.float64), x.astype(np.float64)
    if name == "bernoulli":
        return stats.bernoulli(special.expit(params)).logpmf(x)
    if name == "continuous-bernoulli":
        return _cb_log_prob(x, params)
    if name in ("gaussian", "gaussian-learned"):
        return stats.norm(params, SCALE).logpdf(x)
    if name == "poisson":
        return stats.poisson(np.exp(params)).logpmf(x)
    # tfd counts successes (prob sigmoid(logit)) before r failures; scipy counts failures before
    # n successes with success prob p, so scipy's p is tfd's 1 − sigmoid(logit)
    raw, logits = np.split(params, 2, axis=-1)
    total_count = np.logaddexp(0.0, raw) + 1e-4
    return stats.nbinom(total_count, special.expit(-logits)).logpmf(x)


@pytest.mark.parametrize("event_shape", EVENT_SHAPES, ids=lambda s: f"F{list(s)}")
@pytest.mark.parametrize("name", NAMES)
def test_log_prob_matches_scipy_and_sums_over_the_event_axes(name, event_shape):
    rng = np.random.default_rng([NAMES.index(name), len(event_shape)])
    layer = likelihoods.get(name, SCALE, event_ndims=len(event_shape))
    leading = (2, 3)  # [samples, batch]
    params_shape = leading + event_shape[:-1] + (event_shape[-1] * layer.params_per_pixel,)
    params = rng.normal(size=params_shape).astype("float32")
    x = _data(layer.support, leading + event_shape, rng)
    p = layer.distribution(params)
    assert tuple(p.batch_shape) == leading and tuple(p.event_shape) == event_shape
    got = p.log_prob(x).numpy()
    assert got.dtype == np.float32 and got.shape == leading
    event_axes = tuple(range(len(leading), len(leading) + len(event_shape)))
    expected = _reference(name, params, x).sum(axis=event_axes)
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-4)
    assert p.mean().shape == leading + event_shape


@pytest.mark.parametrize("name", NAMES)
def test_event_ndims_chooses_which_axes_are_summed(name):
    """event_ndims=1 on images keeps H and W as batch axes; summing those gives event_ndims=3."""
    rng = np.random.default_rng(5)
    per_pixel = likelihoods.get(name, SCALE, event_ndims=1)
    params = rng.normal(size=(2, 3, 4, 2 * per_pixel.params_per_pixel)).astype("float32")
    x = _data(per_pixel.support, (2, 3, 4, 2), rng)
    pixels = per_pixel.distribution(params).log_prob(x).numpy()
    assert pixels.shape == (2, 3, 4)
    images = likelihoods.get(name, SCALE).distribution(params).log_prob(x).numpy()
    assert images.shape == (2,)
    np.testing.assert_allclose(images, pixels.sum(axis=(1, 2)), rtol=1e-5)


def test_negative_binomial_takes_total_count_then_logits_on_the_last_axis():
    layer = likelihoods.NegativeBinomialLikelihood(event_ndims=1)
    assert layer.params_per_pixel == 2
    raw = np.array([[-200.0, 0.0, 3.0]], np.float32)  # -200: softplus underflows to 0
    logits = np.array([[0.5, -1.0, 2.0]], np.float32)
    p = layer.distribution(np.concatenate([raw, logits], axis=-1))
    total_count = np.logaddexp(0.0, raw.astype(np.float64)) + 1e-4
    np.testing.assert_allclose(p.distribution.total_count.numpy(), total_count, rtol=1e-6)
    np.testing.assert_allclose(p.mean().numpy(), total_count * np.exp(logits), rtol=1e-5)
    # the floor keeps log p and its gradient finite where softplus gives r = 0
    x = tf.constant([[2.0, 1.0, 4.0]])
    params = tf.constant(np.concatenate([raw, logits], axis=-1))
    with tf.GradientTape() as tape:
        tape.watch(params)
        log_prob = layer.distribution(params).log_prob(x)
    assert np.isfinite(log_prob.numpy()).all()
    assert np.isfinite(tape.gradient(log_prob, params).numpy()).all()


# ---------------------------------------------------------------- continuous Bernoulli numerics

CB_LOGITS = np.array([0.0, 1e-7, -1e-7, 1e-5, -1e-5, 1e-3, -1e-3, 0.1, -0.1, 2.0, -2.0, 20.0,
                      -20.0], np.float32)


def _cb_moments(logits):
    """E[x] and ∫ p over [0, 1] of the float64 closed-form density, by Simpson's rule."""
    grid = np.linspace(0.0, 1.0, 4001)
    density = np.exp(_cb_log_prob(grid[:, None], logits.astype(np.float64)[None, :]))
    return (integrate.simpson(grid[:, None] * density, x=grid, axis=0),
            integrate.simpson(density, x=grid, axis=0))


def test_continuous_bernoulli_matches_its_closed_form_near_logit_zero():
    layer = likelihoods.ContinuousBernoulliLikelihood(event_ndims=1)
    x = np.array([0.0, 0.25, 0.5, 0.9, 1.0], np.float32)[:, None] * np.ones_like(CB_LOGITS)
    logits = tf.constant(np.broadcast_to(CB_LOGITS, x.shape))
    with tf.GradientTape() as tape:
        tape.watch(logits)
        p = layer.distribution(logits[..., None])
        log_prob = p.log_prob(x[..., None])
    np.testing.assert_allclose(log_prob.numpy(), _cb_log_prob(x, logits.numpy()), atol=2e-6)
    mean, mass = _cb_moments(CB_LOGITS)
    np.testing.assert_allclose(mass, 1.0, atol=1e-9)  # the reference itself is normalised
    np.testing.assert_allclose(p.mean().numpy()[0, :, 0], mean, atol=2e-6)
    # exponential family with natural parameter logit and statistic x: d log p / d logit = x − E[x]
    np.testing.assert_allclose(tape.gradient(log_prob, logits).numpy(), x - mean, atol=2e-5)


def test_continuous_bernoulli_density_integrates_to_one():
    layer = likelihoods.ContinuousBernoulliLikelihood(event_ndims=1)
    grid = np.linspace(0.0, 1.0, 4001)
    log_prob = layer.distribution(np.broadcast_to(CB_LOGITS, (grid.size, CB_LOGITS.size))[..., None]
                                  ).log_prob(grid[:, None, None].astype(np.float32))
    mass = integrate.simpson(np.exp(log_prob.numpy().astype(np.float64)), x=grid, axis=0)
    np.testing.assert_allclose(mass, 1.0, atol=1e-5)


# ---------------------------------------------------------------- the learned observation scale

def test_learned_scale_starts_at_the_documented_value_and_trains():
    layer = likelihoods.get("gaussian-learned", SCALE)
    np.testing.assert_allclose(float(layer.current_scale()), SCALE, rtol=1e-6)
    assert [w.path for w in layer.trainable_weights] == [layer.log_scale.path]
    rng = np.random.default_rng(2)
    loc = rng.normal(size=(4, 3, 3, 1)).astype("float32")
    x = loc + 0.05 * rng.normal(size=loc.shape).astype("float32")  # residuals ≪ σ: σ should shrink
    with tf.GradientTape() as tape:
        loss = -tf.reduce_sum(layer.distribution(loc).log_prob(x))
    (grad,) = tape.gradient(loss, layer.trainable_weights)
    # −log p = n log σ + Σ r² / (2σ²) + const, σ = min_scale + e^l: ∂/∂l = (n/σ − Σr²/σ³)(σ − min)
    r2, n, sigma = float(np.sum((x - loc) ** 2)), x.size, SCALE
    expected = (n / sigma - r2 / sigma ** 3) * (sigma - layer.min_scale)
    assert grad is not None and float(grad) != 0.0
    np.testing.assert_allclose(float(grad), expected, rtol=1e-4)
    keras.optimizers.SGD(learning_rate=1e-3).apply_gradients([(grad, layer.log_scale)])
    assert float(layer.current_scale()) < SCALE - 1e-3


def test_fixed_scale_has_no_weights():
    layer = likelihoods.get("gaussian", SCALE)
    assert layer.trainable_weights == [] and float(layer.current_scale()) == pytest.approx(SCALE)


@pytest.mark.parametrize("scale", [1e-3, 5e-4, 0.0, -1.0, float("nan"), float("inf")])
def test_learned_scale_must_exceed_its_floor(scale):
    with pytest.raises(ValueError, match="observation"):
        likelihoods.get("gaussian-learned", scale)


# ---------------------------------------------------------------- saving and the registry

LAYERS = [lambda: likelihoods.get(name, SCALE, event_ndims=nd) for name in NAMES for nd in (1, 3)] + [
    lambda: likelihoods.GaussianLikelihood(scale=0.25, learn_scale=True, min_scale=0.01, event_ndims=2),
    lambda: likelihoods.NegativeBinomialLikelihood(min_total_count=0.5, event_ndims=1),
]


@pytest.mark.parametrize("make", LAYERS)
def test_serialisation_round_trip_keeps_the_settings(make):
    layer = make()
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == layer.get_config()
    assert (restored.kind, restored.support, restored.event_ndims) == \
        (layer.kind, layer.support, layer.event_ndims)
    rng = np.random.default_rng(3)
    shape = (2,) + (3,) * layer.event_ndims
    params = rng.normal(size=shape[:-1] + (3 * layer.params_per_pixel,)).astype("float32")
    x = _data(layer.support, shape, rng)
    np.testing.assert_allclose(restored.distribution(params).log_prob(x).numpy(),
                               layer.distribution(params).log_prob(x).numpy(), rtol=1e-6)


def test_get_builds_every_name_and_passes_layers_through():
    assert set(likelihoods.names()) == set(NAMES)
    for name in NAMES:
        layer = likelihoods.get(name)
        assert layer.kind == name and layer.event_ndims == 3
    layer = likelihoods.PoissonLikelihood(event_ndims=1)
    assert likelihoods.get(layer) is layer and likelihoods.get(layer, event_ndims=1) is layer
    with pytest.raises(ValueError, match="event_ndims=1.*event_ndims=3"):
        likelihoods.get(layer, event_ndims=3)


@pytest.mark.parametrize("bad", ["gausian", "Bernoulli", "", None, 3])
def test_unknown_likelihood_names_are_rejected(bad):
    with pytest.raises(ValueError, match=r"unknown likelihood .*expected one of .*'negative-binomial'"):
        likelihoods.get(bad)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_bad_event_ndims_are_rejected(bad):
    with pytest.raises(ValueError, match="event_ndims must be a positive integer"):
        likelihoods.get("bernoulli", event_ndims=bad)


def test_bad_settings_and_params_shapes_are_rejected():
    with pytest.raises(ValueError, match="min_total_count"):
        likelihoods.NegativeBinomialLikelihood(min_total_count=0.0)
    with pytest.raises(ValueError, match="min_scale"):
        likelihoods.GaussianLikelihood(min_scale=-1.0)
    with pytest.raises(ValueError, match="2 parameters per feature.*got 5"):
        likelihoods.get("negative-binomial", event_ndims=1).distribution(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="rank >= 3"):
        likelihoods.get("bernoulli").distribution(np.zeros((2, 5)))


# ---------------------------------------------------------------- mixed precision

@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", NAMES)
def test_low_precision_params_give_float32_densities(name, dtype):
    layer = likelihoods.get(name, SCALE, event_ndims=1)
    rng = np.random.default_rng(4)
    params = tf.cast(rng.normal(size=(3, 4 * layer.params_per_pixel)), dtype)
    x = _data(layer.support, (3, 4), rng)
    p = layer.distribution(params)
    log_prob, mean = p.log_prob(x), p.mean()
    assert log_prob.dtype == tf.float32 and mean.dtype == tf.float32
    exact = layer.distribution(tf.cast(params, tf.float32))  # the same rounded values in float32
    np.testing.assert_allclose(log_prob.numpy(), exact.log_prob(x).numpy(), rtol=1e-6)


def test_learned_scale_stays_float32_inside_a_mixed_precision_layer():
    """Keras autocasts float32 variables read inside a mixed-precision layer's call; σ must not
    be rounded to float16 there."""
    layer = likelihoods.get("gaussian-learned", SCALE, event_ndims=1)
    x = tf.zeros((2, 3))

    class Outer(keras.layers.Layer):
        def call(self, params):
            p = layer.distribution(params)
            return p.log_prob(x), p.distribution.scale

    log_prob, scale = Outer(dtype="mixed_float16")(np.zeros((2, 3), np.float32))
    assert log_prob.dtype == tf.float32
    np.testing.assert_allclose(float(scale), SCALE, rtol=1e-6)


# ---------------------------------------------------------------- data checks

def test_support_and_the_derived_unit_interval_flag():
    supports = {name: likelihoods.get(name).support for name in NAMES}
    assert supports == {"bernoulli": "binary", "continuous-bernoulli": "unit-interval",
                        "gaussian": "real", "gaussian-learned": "real", "poisson": "counts",
                        "negative-binomial": "counts"}
    assert set(supports.values()) == set(likelihoods.SUPPORTS)
    for name in NAMES:
        layer = likelihoods.get(name)
        assert layer.requires_unit_interval == (name in ("bernoulli", "continuous-bernoulli"))
    with pytest.raises(AttributeError):
        layer.requires_unit_interval = True


@pytest.mark.parametrize("name, good, bad, words", [
    ("bernoulli", [0.0, 0.4, 1.0], [-0.5, 0.5, 1.5], ["bernoulli", "[0, 1]", "below 0 (min -0.5)",
                                                       "above 1 (max 1.5)"]),
    ("continuous-bernoulli", [0.0, 0.4, 1.0], [0.5, 2.0], ["continuous-bernoulli", "above 1 (max 2.0)"]),
    ("gaussian", [-3.0, 0.0, 7.5], [0.0, np.nan, np.inf], ["finite", "2 NaN or Inf"]),
    ("poisson", [0, 3, 17], [0.0, -2.0, 3.0], ["poisson", "counts", "negative values (min -2.0)"]),
    ("poisson", [0.0, 3.0, 17.0], [0.0, 2.5, 3.0], ["non-integer values (e.g. 2.5)"]),
    ("negative-binomial", [0.0, 1.0], [-1.0, 0.5], ["negative-binomial", "negative values",
                                                     "non-integer values (e.g. 0.5)"]),
])
def test_check_data_names_the_values_outside_the_support(name, good, bad, words):
    layer = likelihoods.get(name)
    assert layer.check_data(np.array(good)) is None
    message = layer.check_data(np.array(bad))
    assert message is not None
    for word in words:
        assert word in message
    for check in layer.data_assertions(tf.constant(good, tf.float32)):
        pass  # eager: raises on failure
    with pytest.raises(tf.errors.InvalidArgumentError):
        layer.data_assertions(tf.constant(bad, tf.float32))


def test_grey_levels_under_bernoulli_get_a_warning_naming_the_alternatives():
    bernoulli = likelihoods.get("bernoulli")
    assert bernoulli.data_warning(np.array([0.0, 1.0, 1.0, 0.0])) is None
    message = bernoulli.data_warning(np.array([0.0, 0.5, 1.0, 0.2]))
    assert "50.0%" in message and "continuous-bernoulli" in message and "binarize" in message
    for name in NAMES[1:]:
        assert likelihoods.get(name).data_warning(np.array([0.0, 0.5, 1.0])) is None


# ---------------------------------------------------------------- facts: the one home of what a likelihood is for

FACTS = {  # name: (support, discrete, standardization, encoder input), from the module's table
    "bernoulli": ("binary", True, False, "x"),
    "continuous-bernoulli": ("unit-interval", False, False, "x"),
    "gaussian": ("real", False, True, "x"),
    "gaussian-learned": ("real", False, True, "x"),
    "poisson": ("counts", True, False, "log1p"),
    "negative-binomial": ("counts", True, False, "log1p"),
}


def test_facts_of_every_likelihood_are_read_without_building_a_layer(monkeypatch):
    assert set(FACTS) == set(likelihoods.names())
    built = {name: likelihoods.get(name) for name in NAMES}

    def refuse(*args, **kwargs):
        raise AssertionError("facts() built a layer")

    monkeypatch.setattr(likelihoods.Likelihood, "__init__", refuse)
    for name, (support, discrete, standardization, encoder_input) in FACTS.items():
        known = likelihoods.facts(name)
        assert (known.name, known.support, known.discrete, known.standardization, known.encoder_input) == \
            (name, support, discrete, standardization, encoder_input)
        assert likelihoods.facts(built[name]) == known  # a layer has the facts of its name
        with pytest.raises(dataclasses.FrozenInstanceError):
            known.support = "real"
    with pytest.raises(ValueError, match=r"unknown likelihood 'normal'; expected one of .*'negative-binomial'"):
        likelihoods.facts("normal")


@pytest.mark.parametrize("name", NAMES)
def test_module_check_data_is_the_layers_and_outside_support_marks_its_values(name):
    bad = {"binary": [0.0, 1.0, -0.5, 1.5], "unit-interval": [0.2, 2.0, -1.0, 0.5],
           "real": [0.0, -3.0, np.nan, np.inf], "counts": [0.0, 2.5, -1.0, 4.0]}
    outside = {"binary": [False, False, True, True], "unit-interval": [False, True, True, False],
               "real": [False, False, True, True], "counts": [False, True, True, False]}
    support = FACTS[name][0]
    x = np.array([bad[support]])
    np.testing.assert_array_equal(likelihoods.outside_support(name, x), [outside[support]])
    assert likelihoods.check_data(name, x) == likelihoods.get(name).check_data(x) is not None
    assert likelihoods.check_data(name, x).startswith(f"the {name} likelihood models ")
    fine = x[~likelihoods.outside_support(name, x)]
    assert likelihoods.check_data(name, fine) is None


@pytest.mark.parametrize("name", [n for n in NAMES if not FACTS[n][2]])
def test_model_constructor_rejects_standardization_with_a_non_gaussian_likelihood(name):
    """It used to accept it and score the raw data as standardised values (log p = +4.83, -inf,
    -inf, NaN on valid data): one ValueError naming the likelihood and the fix, for a name and
    for a layer."""
    from tfvae.models import VAE

    standardization = {"mean": [1.0, 2.0, 3.0], "scale": [1.0, 2.0, 0.5]}
    for likelihood in (name, likelihoods.get(name, event_ndims=1)):
        with pytest.raises(ValueError) as refused:
            VAE(input_shape=(3,), latent_dim=2, likelihood=likelihood, standardization=standardization)
        message = str(refused.value)
        assert message == likelihoods.standardization_problem(name)
        assert f"'{name}' likelihood" in message and "standardization=None" in message
        assert "'gaussian', 'gaussian-learned'" in message
    assert VAE(input_shape=(3,), latent_dim=2, likelihood=name).likelihood_layer.kind == name


@pytest.mark.parametrize("name", ["gaussian", "gaussian-learned"])
def test_gaussian_likelihoods_take_standardization(name):
    from tfvae.models import VAE

    assert likelihoods.standardization_problem(name) is None
    model = VAE(input_shape=(3,), latent_dim=2, likelihood=name,
                standardization={"mean": [0.0, 0.0, 0.0], "scale": [1.0, 1.0, 1.0]})
    assert model.get_config()["standardization"] is not None


@pytest.mark.parametrize("name", NAMES)
def test_metrics_units_follow_the_facts(name):
    """metrics.json names the support, and bits per dimension only for discrete data, where
    −log₂ p(x) / D is a code length."""
    from tfvae.evaluation import report
    from tfvae.models import VAE

    model = VAE(input_shape=(4,), latent_dim=2, likelihood=name)
    units = report._likelihood_units(model, {"test_log_likelihood": -8.0})
    assert (units["likelihood"], units["likelihood_support"]) == (name, FACTS[name][0])
    if FACTS[name][1]:
        assert units["test_bits_per_dim"] == pytest.approx(8.0 / (4 * np.log(2.0)))
    else:
        assert "test_bits_per_dim" not in units
