"""The shared training loop (tfvae.models.training.TrainingLoop) and the estimators it trains with.

Each test checks one mechanism against an independent computation and fails when that mechanism
is broken: ``training`` reaching both networks, regularisation losses in every gradient group,
``optimizer.scale_loss``, sample weights, compiled and uncompiled steps agreeing, input checks
under the default XLA compile, compile settings surviving save/load; then the ESS metric with
M ≠ K, the learned Gaussian σ, MIWAE-DReG's unbiasedness. Most use ``tiny_model(...,
fixed_noise=True)`` (conftest.py): q's draws are a fixed function of the example, so two runs
see the same "noise" and their updates compare exactly.
"""

import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae.models import (CIWAE, IWAE, LLGAE, MIWAE, PIWAE, VAE, VSC, BetaTCVAE, BetaVAE,
                          ObjectiveValue)
from tfvae.models.iwae import _grouped_ess
from tfvae.data.pipeline import index_batches
from tfvae.models.training import DEFAULT_STEPS_PER_EXECUTION

#: one model of every VariationalModel family (and both estimators of the IWAE family)
FAMILIES = [
    (VAE, {}), (BetaVAE, dict(beta=2.0)), (BetaTCVAE, dict(dataset_size=1000)), (VSC, {}),
    (IWAE, dict(num_samples=2)), (IWAE, dict(num_samples=2, dreg=True)),
    (MIWAE, dict(num_estimates=2, num_samples=2)), (MIWAE, dict(num_estimates=2, num_samples=2, dreg=True)),
    (CIWAE, dict(num_samples=2, beta=0.5)),
    (PIWAE, dict(num_estimates=2, num_samples=2)), (PIWAE, dict(num_estimates=2, num_samples=2, dreg=True)),
]


def _ids(families):
    return [cls.__name__ + ("-dreg" if options.get("dreg") else "") for cls, options in families]


@pytest.fixture
def images(digits):
    """256 binarised 8x8 digits (binary data: the Bernoulli likelihood is then a density)."""
    return (digits[0][:256] > 0.5).astype("float32")


def _update(model, step):
    """The change of every trainable variable made by ``step()``."""
    before = [v.numpy() for v in model.trainable_variables]
    step()
    return [v.numpy() - b for v, b in zip(model.trainable_variables, before)]


def _gap(a, b):
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


# -------------------------------------------------------------- (a) training reaches every network

class TrainingProbe(keras.layers.Layer):
    """The identity; records the ``training`` value of every call (in graph mode at trace time)."""

    calls = []

    def call(self, inputs, training=None):
        TrainingProbe.calls.append((self.name, training))
        return inputs


@pytest.mark.parametrize("cls, options", FAMILIES, ids=_ids(FAMILIES))
def test_training_flag_reaches_the_encoder_and_the_decoder(images, tiny_model, cls, options):
    model = tiny_model(cls, layer=TrainingProbe, **options)
    probes = {net: [layer.name for layer in getattr(model, net).layers if isinstance(layer, TrainingProbe)][0]
              for net in ("encoder", "decoder")}
    model.compile(optimizer="sgd", run_eagerly=True)

    def seen(action):
        TrainingProbe.calls.clear()
        action()
        return {net: {training for name, training in TrainingProbe.calls if name == probe}
                for net, probe in probes.items()}

    x = images[:32]
    both = {"encoder": {True}, "decoder": {True}}
    assert seen(lambda: model.fit(x, batch_size=16, epochs=1, verbose=0)) == both
    neither = {"encoder": {False}, "decoder": {False}}
    assert seen(lambda: model.evaluate(x, batch_size=16, verbose=0)) == neither
    assert seen(lambda: model.predict(x, batch_size=16, verbose=0)) == neither
    assert seen(lambda: model(x)) == neither
    assert seen(lambda: model.encode(x)) == {"encoder": {False}, "decoder": set()}
    assert seen(lambda: model.decode(np.zeros((2, 3), "float32"))) == {"encoder": set(), "decoder": {False}}


# ---------------------------------------------------- (b) regularisation losses in every group

@pytest.mark.parametrize("cls, options", [(VAE, {}), (IWAE, dict(num_samples=3, dreg=True)),
                                          (PIWAE, dict(num_estimates=2, num_samples=2)),
                                          (PIWAE, dict(num_estimates=2, num_samples=2, dreg=True))],
                         ids=["VAE", "IWAE-dreg", "PIWAE", "PIWAE-dreg"])
def test_regularisation_losses_enter_every_gradient_group(images, tiny_model, cls, options):
    # L2(λ) on the hidden kernels of both networks adds λ Σ W² to the loss: its gradient 2λW is
    # the whole difference between the SGD updates with and without the regulariser (the data
    # gradients are equal: same weights, same fixed noise), in the encoder's and the decoder's
    # group alike, whichever surrogate each group follows.
    lam, rate = 0.5, 0.1
    updates, initial = {}, None
    for name, regularizer in (("with", keras.regularizers.L2(lam)), ("without", None)):
        model = tiny_model(cls, kernel_regularizer=regularizer, fixed_noise=True, **options)
        model.compile(optimizer=keras.optimizers.SGD(rate), run_eagerly=True)
        initial = [v.numpy() for v in model.trainable_variables]
        updates[name] = _update(model, lambda: model.train_step(images[:16]))
        if regularizer is not None:
            regularised = [getattr(v, "regularizer", None) is not None for v in model.trainable_variables]
            assert len(model.losses) == 2 and sum(regularised) == 2
            encoder_ids = {id(v) for v in model.encoder.trainable_variables}
            owners = {id(v) in encoder_ids for v, r in zip(model.trainable_variables, regularised) if r}
            assert owners == {True, False}              # one regularised kernel in each network
    for extra, weights, is_regularised in zip(
            [a - b for a, b in zip(updates["with"], updates["without"])], initial, regularised):
        want = -rate * 2.0 * lam * weights if is_regularised else np.zeros_like(weights)
        np.testing.assert_allclose(extra, want, atol=2e-6)
    assert max(np.abs(-rate * 2.0 * lam * w).max() for w, r in zip(initial, regularised) if r) > 1e-2


# ------------------------------------------------------------------ (c) optimizer.scale_loss

class ScalingSGD(keras.optimizers.SGD):
    """SGD whose ``scale_loss`` multiplies the loss by 8 and never divides back: its update is 8
    times SGD's exactly when the loop differentiates the scaled loss (what a LossScaleOptimizer
    relies on)."""

    def scale_loss(self, loss):
        return loss * 8.0


@pytest.mark.parametrize("cls, options", [(VAE, {}), (PIWAE, dict(num_estimates=2, num_samples=2, dreg=True))],
                         ids=["VAE", "PIWAE-dreg"])
def test_the_loss_goes_through_optimizer_scale_loss(images, tiny_model, cls, options):
    updates = {}
    for optimizer in (keras.optimizers.SGD(0.01), ScalingSGD(0.01)):
        model = tiny_model(cls, fixed_noise=True, **options)
        model.compile(optimizer=optimizer, run_eagerly=True)
        updates[type(optimizer)] = _update(model, lambda: model.fit(images[:32], batch_size=32, verbose=0))
    for plain, scaled in zip(updates[keras.optimizers.SGD], updates[ScalingSGD]):
        np.testing.assert_allclose(scaled, 8.0 * plain, rtol=1e-4, atol=1e-6)
    assert _gap(updates[keras.optimizers.SGD], [0 * u for u in updates[ScalingSGD]]) > 1e-3


# ---------------------------------------------------------------------- (d) sample weights

@pytest.mark.parametrize("cls, options", [(VAE, {}), (PIWAE, dict(num_estimates=2, num_samples=2, dreg=True))],
                         ids=["VAE", "PIWAE-dreg"])
def test_sample_weights_weigh_the_loss_and_the_metrics(images, tiny_model, cls, options):
    # Weights 2 on the first 8 examples and 0 on the other 8 of a batch of 16: the loss
    # Σ w_i l_i / 16 is the mean loss of the first 8 (per-example losses are deterministic with
    # fixed noise), so the update and the reported loss equal those of an unweighted batch of 8.
    x = images[:16]
    weights = np.repeat([2.0, 0.0], 8).astype("float32")
    runs = {}
    for name, data, sample_weight in (("weighted", x, weights), ("first half", x[:8], None)):
        model = tiny_model(cls, fixed_noise=True, **options)
        model.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=True)
        history = {}
        update = _update(model, lambda: history.update(model.fit(
            data, sample_weight=sample_weight, batch_size=len(data), verbose=0).history))
        runs[name] = update, history["loss"][0]
    np.testing.assert_allclose(runs["weighted"][1], runs["first half"][1], rtol=1e-5)
    assert _gap(runs["weighted"][0], runs["first half"][0]) < 1e-6
    # and the second half weighs nothing: an unweighted batch of 16 is another update
    model = tiny_model(cls, fixed_noise=True, **options)
    model.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=True)
    assert _gap(_update(model, lambda: model.fit(x, batch_size=16, verbose=0)), runs["weighted"][0]) > 1e-3
    evaluated = model.evaluate(x, sample_weight=weights, batch_size=16, verbose=0, return_dict=True)
    assert evaluated["loss"] == pytest.approx(float(np.mean(model.compute_objective(x[:8]).loss)), rel=1e-5)


# --------------------------------------------------- (e) XLA, graph and eager give one update

def test_compiled_and_uncompiled_steps_give_the_same_update(images, tiny_model):
    # PIWAE with DReG (surrogate groups) and a regulariser, 4 steps of SGD with fixed noise: the
    # default compile (XLA, 16 steps per call into the graph), only the update under XLA, a graph
    # without XLA one step per call, and eager execution.
    options = dict(num_estimates=2, num_samples=2, dreg=True, kernel_regularizer=keras.regularizers.L2(0.05),
                   fixed_noise=True)
    runs = {}
    for name, settings in (("default", {}), ("update", dict(jit_compile="update")),
                           ("graph", dict(jit_compile=False, steps_per_execution=1)), ("eager", dict(run_eagerly=True))):
        model = tiny_model(PIWAE, **options)
        model.compile(optimizer=keras.optimizers.SGD(0.05), **settings)
        if name == "default":  # dense float32 networks on a CPU: the whole step under XLA
            assert model.xla_mode == "step" and model.jit_compile is True
            assert model.steps_per_execution == DEFAULT_STEPS_PER_EXECUTION
        if name == "update":
            assert model.xla_mode == "update" and model.jit_compile is False
        history = model.fit(images[:64], batch_size=16, epochs=1, verbose=0, shuffle=False).history
        runs[name] = [v.numpy() for v in model.trainable_variables], history
    initial = [v.numpy() for v in tiny_model(PIWAE, **options).trainable_variables]
    assert _gap(runs["eager"][0], initial) > 1e-2                      # the weights moved
    for name in ("default", "update", "graph"):
        for got, want in zip(runs[name][0], runs["eager"][0]):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-6)
        for metric in ("loss", "iwae", "miwae", "ess"):
            np.testing.assert_allclose(runs[name][1][metric], runs["eager"][1][metric], rtol=1e-5)


# ---------------------------------------------- (f) bad data stopped under the default compile

@pytest.mark.parametrize("cls", [VAE, LLGAE])
def test_bad_batches_are_rejected_under_the_default_xla_compile(images, tiny_model, cls):
    model = tiny_model(cls, **(dict(components=2, latent_dim=2) if cls is LLGAE else {}))
    model.compile(optimizer="sgd")
    assert model.jit_compile is True            # XLA drops assertion ops: the checks must be outside
    # (arrays are checked up front, datasets batch by batch in the input pipeline; the bad value
    # sits in the first batch, so a check that XLA dropped would let the step run on it)
    for value, message, streamed in ((np.nan, "NaN or Inf", "NaN or Inf"),
                                     (1.5, r"above 1|values from 0 to 1.5", "above 1"),
                                     (-0.5, r"below 0|values from -0.5 to 1", "below 0")):
        bad = images[:64].copy()
        bad[3, 3, 3, 0] = value
        with pytest.raises(ValueError, match=message):
            model.fit(bad, batch_size=16, epochs=1, verbose=0)
        with pytest.raises(ValueError, match=message):
            model.fit(images[:64], validation_data=(bad,), batch_size=16, epochs=1, verbose=0)
        with pytest.raises(ValueError, match=message):
            model.evaluate(bad, batch_size=16, verbose=0)
        with pytest.raises(tf.errors.InvalidArgumentError, match=streamed):
            model.fit(tf.data.Dataset.from_tensor_slices(bad).batch(16), epochs=1, verbose=0)
        with pytest.raises(tf.errors.InvalidArgumentError, match=streamed):
            model.fit(tf.data.Dataset.from_tensor_slices((bad, np.zeros(64))).batch(16), epochs=1, verbose=0)


def test_a_tfvae_pipeline_is_checked_once_by_its_values_and_other_datasets_batch_by_batch(tiny_model):
    from tfvae.data import pipeline

    stored = np.random.default_rng(0).integers(0, 17, size=(64, 8, 8, 1)).astype(np.uint8)  # 17 levels of 16
    labels = np.zeros(64, np.int64)
    grey = pipeline.make_dataset(stored, labels, 16, batch_size=16)
    # every value a batch holds is among those the dataset says it can take, exactly (float32)
    held = np.unique(np.concatenate([x.numpy().ravel() for x, _ in grey]))
    assert set(held) <= set(getattr(grey, pipeline.VALUES_ATTRIBUTE))
    binary = pipeline.make_dataset(stored, labels, 16, batch_size=16, binarize="dynamic", seed=0)
    np.testing.assert_array_equal(getattr(binary, pipeline.VALUES_ATTRIBUTE), [0.0, 1.0])

    vae = tiny_model(VAE, likelihood="continuous-bernoulli")
    assert vae.checked_data(grey) is grey          # in [0, 1]: no per-batch check left to run
    vae.compile(optimizer="sgd")
    vae.fit(grey, epochs=1, verbose=0)
    shifted = grey.map(lambda x, y: (x + 0.5, y))  # a new dataset: checked batch by batch
    assert vae.checked_data(shifted) is not shifted
    with pytest.raises(tf.errors.InvalidArgumentError, match="above 1"):
        vae.fit(shifted, epochs=1, verbose=0)
    # grey levels are not counts: the once-check fails, so every batch is checked, and the first fails
    poisson = tiny_model(VAE, likelihood="poisson")
    assert poisson.checked_data(grey) is not grey
    assert poisson.checked_data(binary) is binary  # 0 and 1 are counts
    poisson.compile(optimizer="sgd")
    with pytest.raises(tf.errors.InvalidArgumentError, match="non-integer"):
        poisson.fit(grey, epochs=1, verbose=0)


def test_fitting_a_dataset_does_not_warn_about_the_ignored_shuffle_flag(images, tiny_model):
    # Keras ignores fit(shuffle=...) for a tf.data.Dataset but warns whenever it is left at True
    model = tiny_model(VAE)
    model.compile(optimizer="sgd")
    dataset = tf.data.Dataset.from_tensor_slices(images[:64]).batch(16)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(dataset, epochs=1, verbose=0)
    assert not [w for w in caught if "shuffle" in str(w.message)]


# ------------------------------------------ arrays: the batches Keras makes, without its adapter

def _fit_both_ways(tiny_model, data, **fit_options):
    """Weights and steps after tfvae's ``fit`` and after Keras' own (``keras.Model.fit``: its
    array adapter), from the same start, noise and data."""
    results = []
    for fit in ("tfvae", "keras"):
        model = tiny_model(VAE, fixed_noise=True)
        model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
        keras.utils.set_random_seed(1)
        if fit == "tfvae":
            model.fit(data(), epochs=3, verbose=0, **fit_options)
        else:
            keras.Model.fit(model, data(), epochs=3, verbose=0, **fit_options)
        results.append(([v.numpy() for v in model.trainable_variables], int(model.optimizer.iterations)))
    return results


@pytest.mark.parametrize("batch_size", [None, 24], ids=["keras-default-32", "24"])
def test_fit_on_arrays_makes_the_batches_keras_makes(images, tiny_model, batch_size):
    # without shuffling, batch for batch; 70 examples: a partial last batch either way
    (ours, our_steps), (theirs, their_steps) = _fit_both_ways(
        tiny_model, lambda: images[:70], batch_size=batch_size, shuffle=False)
    assert our_steps == their_steps == 3 * math.ceil(70 / (batch_size or 32))
    assert _gap(ours, theirs) < 1e-6


def test_fit_on_arrays_shuffles_every_epoch_over_every_example():
    batches = index_batches(np.arange(70), 32, shuffle=True, seed=0)
    assert [len(b) for b in batches] == [32, 32, 6]
    passes = [np.concatenate([b.numpy() for b in batches]) for _ in range(2)]
    for order in passes:
        np.testing.assert_array_equal(np.sort(order), np.arange(70))  # each example once per epoch
    assert not np.array_equal(passes[0], passes[1])                      # a new order every epoch
    # destroying an autotuned iterator (every epoch) waits for its tuning thread: often 2-3 s
    assert batches.options().autotune.enabled is False


def test_steps_on_endless_data_are_exactly_the_steps_asked_for(images, tiny_model):
    # Keras runs whole executions of steps_per_execution steps while data last: 7 asked, 16 run
    model = tiny_model(VAE, fixed_noise=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    endless = tf.data.Dataset.from_tensor_slices(images[:64]).batch(8).repeat()
    model.fit(endless, steps_per_epoch=7, epochs=2, verbose=0)
    assert int(model.optimizer.iterations) == 14
    # evaluate(steps=5) on endless data scores the same 5 batches as the finite first 5
    asked = model.evaluate(endless, steps=5, verbose=0, return_dict=True)
    first_five = model.evaluate(endless.take(5), verbose=0, return_dict=True)
    assert asked["loss"] == pytest.approx(first_five["loss"], rel=1e-6)
    model.fit(images[:64], batch_size=8, epochs=1, verbose=0)  # finite data: the default again
    assert model.steps_per_execution == DEFAULT_STEPS_PER_EXECUTION


def test_steps_that_a_given_steps_per_execution_cannot_divide_are_refused(images, tiny_model):
    model = tiny_model(VAE)
    model.compile(optimizer="adam", steps_per_execution=4)
    with pytest.raises(ValueError, match=r"steps_per_epoch=7 is not a multiple of steps_per_execution=4"):
        model.fit(tf.data.Dataset.from_tensor_slices(images[:64]).batch(8).repeat(), steps_per_epoch=7, verbose=0)


@pytest.mark.parametrize("steps", [0, -3, 2.5])
def test_steps_that_are_not_a_positive_whole_number_are_refused(images, tiny_model, steps):
    model = tiny_model(VAE)
    model.compile(optimizer="adam")
    endless = tf.data.Dataset.from_tensor_slices(images[:64]).batch(8).repeat()
    with pytest.raises(ValueError, match=rf"steps_per_epoch must be a positive integer, got {steps} or None"):
        model.fit(endless, steps_per_epoch=steps, verbose=0)
    with pytest.raises(ValueError, match=rf"steps must be a positive integer, got {steps}"):
        model.evaluate(endless, steps=steps, verbose=0)


# ------------------------------------------------------- (g) compile settings survive saving

@pytest.mark.parametrize("settings", [{}, dict(jit_compile=False, steps_per_execution=3)], ids=["default", "given"])
def test_a_reloaded_model_keeps_its_compile_settings(images, tiny_model, tmp_path, settings):
    model = tiny_model(VAE)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), **settings)
    want = (True, DEFAULT_STEPS_PER_EXECUTION) if not settings else (False, 3)
    assert (model.jit_compile, model.steps_per_execution) == want
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.compiled and (loaded.jit_compile, loaded.steps_per_execution) == want
    assert isinstance(loaded.optimizer, keras.optimizers.Adam)
    assert float(loaded.optimizer.learning_rate) == pytest.approx(2e-3)
    if not settings:  # still tfvae's choice: exact steps on endless data
        loaded.fit(tf.data.Dataset.from_tensor_slices(images[:64]).batch(8).repeat(), steps_per_epoch=7, verbose=0)
        assert int(loaded.optimizer.iterations) == 7


# ------------------------------------------------------------------- the ESS metric, M ≠ K

def test_ess_is_the_mean_over_the_m_estimates_of_each_ones_effective_sample_size(images, tiny_model):
    num_estimates, num_samples = 2, 3
    rng = np.random.default_rng(0)
    log_weights = rng.normal(scale=1.5, size=(num_estimates * num_samples, 5)).astype("float32")

    def by_hand(w):
        # estimate m holds rows m*K … m*K + K − 1 (the layout of tfvae.objectives)
        ess = []
        for m in range(num_estimates):
            block = w[m * num_samples:(m + 1) * num_samples].astype(np.float64)
            normalised = np.exp(block - block.max(0)) / np.exp(block - block.max(0)).sum(0)
            ess.append(1.0 / np.sum(normalised ** 2, axis=0))
        return np.mean(ess, axis=0)

    np.testing.assert_allclose(_grouped_ess(log_weights, num_estimates), by_hand(log_weights), rtol=1e-5)
    # power: the ESS of the M weights of each k, averaged over K (M and K swapped), is another number
    swapped = np.mean([1.0 / np.sum((np.exp(c) / np.exp(c).sum(0)) ** 2, axis=0)
                       for c in log_weights.reshape(num_estimates, num_samples, 5).transpose(1, 0, 2)], axis=0)
    assert np.max(np.abs(swapped - by_hand(log_weights))) > 0.1
    # the metric the models report, on their own log-weights (fixed noise: the same draws twice)
    for cls, options in ((MIWAE, {}), (PIWAE, {})):
        model = tiny_model(cls, num_estimates=num_estimates, num_samples=num_samples, fixed_noise=True, **options)
        x = images[:8]
        reported = model.compute_objective(x, training=True).metrics["ess"].numpy()
        np.testing.assert_allclose(reported, by_hand(model.log_weights(x, 6, training=True).numpy()), rtol=1e-5)


# ------------------------------------------------------- the learned Gaussian σ trains

@pytest.mark.parametrize("cls, options", [(VAE, {}), (PIWAE, dict(num_estimates=2, num_samples=2, dreg=True))],
                         ids=["VAE", "PIWAE-dreg"])
def test_the_learned_gaussian_scale_gets_its_gradient_and_moves(images, tiny_model, cls, options):
    model = tiny_model(cls, likelihood="gaussian-learned", observation_scale=0.5, fixed_noise=True, **options)
    layer = model.likelihood_layer
    log_scale = layer.log_scale
    assert any(v is log_scale for v in model.variable_groups()["decoder"])
    x = tf.constant(images[:16])
    gradients, variables, _ = model.compute_gradients(x)
    gradient = [g for g, v in zip(gradients, variables) if v is log_scale][0]
    assert gradient is not None
    if cls is VAE:
        # by hand: −log N(x; μ, σ) = log σ + (x − μ)²/(2σ²) + const per pixel, σ = floor + e^s, so
        # ∂/∂s of the batch mean = mean over examples of Σ_pixels (1/σ − (x − μ)²/σ³) e^s
        z = model.posterior(x, training=True).sample()
        residual = (images[:16] - model.likelihood(z, training=True).mean().numpy()).astype(np.float64)
        sigma, exp_s = float(layer.current_scale()), math.exp(float(log_scale.numpy()))
        want = np.mean(np.sum(1.0 / sigma - residual ** 2 / sigma ** 3, axis=(1, 2, 3))) * exp_s
        assert float(gradient) == pytest.approx(want, rel=1e-4)
    assert abs(float(gradient)) > 1.0
    before = float(log_scale.numpy())
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    model.fit(images[:64], batch_size=16, epochs=2, verbose=0)
    assert abs(float(log_scale.numpy()) - before) > 1e-3     # Adam moves it ~1e-2 a step


# --------------------------------------------------------- MIWAE-DReG is unbiased for MIWAE

def _encoder_gradients(model, x, repeats, seed):
    """``repeats`` independent encoder-group gradients of what train_step applies, ``[R, P]``."""
    encoder_ids = {id(v) for v in model.variable_groups()["encoder"]}

    def one(_):
        gradients, variables, _ = model.compute_gradients(x, training=True)
        return tf.concat([tf.reshape(g, [-1]) for g, v in zip(gradients, variables) if id(v) in encoder_ids], 0)

    tf.random.set_seed(seed)
    # one graph with a loop: the stateful random ops draw afresh in every iteration
    draws = tf.function(lambda: tf.map_fn(one, tf.range(repeats), fn_output_signature=tf.float32))
    return draws().numpy().astype(np.float64)


class _WholeGroupDReG(MIWAE):
    """The grouping bug: DReG over all M·K weights as one group (the DReG gradient of IWAE_{M·K},
    not of MIWAE(M, K))."""

    def compute_objective(self, images, training=False):
        from tfvae import objectives

        value = super().compute_objective(images, training)
        w = self._log_weights(images, training)
        return ObjectiveValue(value.loss, value.metrics,
                              dict(value.surrogates, encoder=-objectives.dreg_surrogate(w, 1)))


def _z_scores(a, b):
    """Differences of the means in standard errors, for the parameters whose gradient varies
    (weights from pixels that are 0 in every image get exactly 0)."""
    varies = (a.var(0) > 0) | (b.var(0) > 0)
    a, b = a[:, varies], b[:, varies]
    return (a.mean(0) - b.mean(0)) / np.sqrt((a.var(0, ddof=1) + b.var(0, ddof=1)) / len(a))


def test_miwae_dreg_encoder_gradient_is_unbiased_for_miwae(images, tiny_model):
    x = images[:4]
    options = dict(num_estimates=3, num_samples=2, latent_dim=2, hidden=8)
    repeats = 300
    standard = _encoder_gradients(tiny_model(MIWAE, **options), x, repeats, seed=1)
    dreg = _encoder_gradients(tiny_model(MIWAE, dreg=True, **options), x, repeats, seed=2)
    z = _z_scores(dreg, standard)
    # P parameters: under equal means the z-scores are ~N(0, 1)
    assert np.max(np.abs(z)) < 4.5, z
    assert np.mean(z ** 2) < 1.6, np.mean(z ** 2)
    assert np.mean(dreg.var(0)) < np.mean(standard.var(0))
    # power: the grouping bug moves the mean by many standard errors
    whole = _encoder_gradients(tiny_model(_WholeGroupDReG, dreg=True, **options), x, repeats, seed=3)
    assert np.mean(_z_scores(whole, standard) ** 2) > 4.0
