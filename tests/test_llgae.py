"""LGAE / LLGAE: inference against closed forms and a direct
per-component computation, gradients through the unrolled steps, LGAE against PCA, training,
saving, the CLI and bad input. (The reconstruction metric: tests/test_reconstruction.py.)"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae import cli
from tfvae.data import load_arrays
from tfvae.evaluation import pca_baseline, reconstruction_error
from tfvae.models import LGAE, LLGAE, REGISTRY


def _model(cls=LLGAE, image_shape=(4, 4, 1), latent_dim=3, **kwargs):
    kwargs.setdefault("seed", 0)
    return cls(image_shape=image_shape, latent_dim=latent_dim, **kwargs)


def _set_parameters(model, seed, mean_scale=0.3, basis_scale=0.5):
    rng = np.random.default_rng(seed)
    model.means.assign(rng.normal(scale=mean_scale, size=model.means.shape).astype("float32"))
    model.bases.assign(rng.normal(scale=basis_scale, size=model.bases.shape).astype("float32"))
    return model.means.numpy().astype(np.float64), model.bases.numpy().astype(np.float64)


def _direct_inference(x, means, bases, step_size, steps, shrinkage):
    """The method as written, one component at a time in float64: the T steps on b, then the
    residual from the reconstruction itself (no Gram-matrix algebra)."""
    coefficients, residuals = [], []
    for mu, w in zip(means, bases):
        b = np.zeros((len(x), w.shape[1]))
        for _ in range(steps):
            b = b + step_size * ((x - mu - b @ w.T) @ w - shrinkage * b)
        coefficients.append(b)
        residuals.append(((x - mu - b @ w.T) ** 2).sum(axis=1))
    return np.stack(coefficients, axis=1), np.stack(residuals, axis=1)


# ------------------------------------------------------------------------------ inference

@pytest.mark.parametrize("shrinkage", [0.0, 1.0])
def test_one_component_with_enough_steps_reaches_the_least_squares_coefficients(shrinkage):
    rng = np.random.default_rng(1)
    mu, w = rng.normal(scale=0.3, size=16), rng.normal(scale=0.5, size=(16, 3))
    # a step size inside the stable range 0 < β < 2 / λ_max(WᵀW + λI)
    step_size = float(1.0 / np.linalg.eigvalsh(w.T @ w + shrinkage * np.eye(3)).max())
    model = _model(LGAE, inference_steps=400, shrinkage=shrinkage, center_images=False, step_size=step_size)
    model.means.assign(mu[None].astype("float32"))
    model.bases.assign(w[None].astype("float32"))
    x = np.random.default_rng(2).uniform(size=(6, 4, 4, 1)).astype("float32")
    flat = x.reshape(6, 16).astype(np.float64)
    # least squares: argmin_b ‖x − μ − W b‖² + λ‖b‖², as ‖[W; √λ I] b − [x − μ; 0]‖²
    design = np.vstack([w, np.sqrt(shrinkage) * np.eye(3)])
    targets = np.hstack([flat - mu, np.zeros((6, 3))])
    expected = np.linalg.lstsq(design, targets.T, rcond=None)[0].T
    code = model.encode(x)
    np.testing.assert_array_equal(code.components.numpy(), 0)
    np.testing.assert_allclose(code.coefficients.numpy(), expected, rtol=1e-4, atol=1e-4)
    residual = ((flat - mu - expected @ w.T) ** 2).sum(axis=1)
    np.testing.assert_allclose(model.infer(x).squared_residuals.numpy()[:, 0], residual, rtol=1e-4)


def test_every_component_matches_a_direct_computation_and_the_smallest_residual_wins():
    model = _model(components=4, inference_steps=6, step_size=0.05)
    means, bases = _set_parameters(model, seed=3, mean_scale=0.15, basis_scale=0.05)
    # zero-mean offsets and bases, so that images near a component's plane stay near it once
    # they lose their own mean; then images near different components' planes
    means -= means.mean(axis=1, keepdims=True)
    bases -= bases.mean(axis=1, keepdims=True)
    model.means.assign(means.astype("float32"))
    model.bases.assign(bases.astype("float32"))
    rng = np.random.default_rng(4)
    truth = np.arange(12) % 4
    flat = 0.5 + means[truth] + np.einsum("nde,ne->nd", bases[truth], rng.normal(size=(12, 3))) \
        + 0.01 * rng.normal(size=(12, 16))
    images = np.clip(flat, 0.0, 1.0)
    x = images.reshape(12, 4, 4, 1).astype("float32")
    centred = images - images.mean(axis=1, keepdims=True)
    coefficients, residuals = _direct_inference(centred, means, bases, 0.05, 6, 1.0)

    inference = model.infer(x)
    np.testing.assert_allclose(inference.coefficients.numpy(), coefficients, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(inference.squared_residuals.numpy(), residuals, rtol=1e-4, atol=1e-5)
    code = model.encode(x)
    chosen = residuals.argmin(axis=1)
    assert len(np.unique(chosen)) >= 3, "the check needs a batch whose images choose different components"
    np.testing.assert_array_equal(code.components.numpy(), chosen)
    np.testing.assert_allclose(code.coefficients.numpy(), coefficients[np.arange(12), chosen], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(code.image_means.numpy(), images.mean(axis=1), rtol=1e-6)
    # reconstruction = own mean + μ_k* + W_k* b
    expected = (images.mean(axis=1, keepdims=True) + means[chosen]
                + np.einsum("nde,ne->nd", bases[chosen], coefficients[np.arange(12), chosen]))
    np.testing.assert_allclose(model.reconstruct(x).numpy().reshape(12, 16), expected, rtol=1e-4, atol=1e-5)


def test_inference_is_pixel_scale_equivariant_for_a_fixed_basis():
    """Pixels × s with μ × s and the same W give coefficients × s: β does not depend on the pixel
    units through the iteration (the module docstring's claim)."""
    x = np.random.default_rng(5).uniform(size=(5, 4, 4, 1)).astype("float32")
    unit = _model(components=3, pixel_scale=1.0)
    means, bases = _set_parameters(unit, seed=6)
    scaled = _model(components=3, pixel_scale=255.0)
    scaled.means.assign((255.0 * means).astype("float32"))
    scaled.bases.assign(bases.astype("float32"))
    code, scaled_code = unit.encode(x), scaled.encode(x)
    np.testing.assert_array_equal(code.components.numpy(), scaled_code.components.numpy())
    np.testing.assert_allclose(255.0 * code.coefficients.numpy(), scaled_code.coefficients.numpy(), rtol=2e-4)
    np.testing.assert_allclose(unit.reconstruct(x).numpy(), scaled.reconstruct(x).numpy(), atol=1e-5)


def test_the_training_gradient_flows_through_the_unrolled_steps():
    model = _model(components=3, inference_steps=4, step_size=0.1)
    _set_parameters(model, seed=7)
    x = np.random.default_rng(8).uniform(size=(10, 4, 4, 1)).astype("float32")

    def direct_loss(means, bases, stop_steps):
        """The method written plainly: per component, per step, residual from the reconstruction."""
        flat = tf.reshape(x, [10, 16])
        flat = flat - tf.reduce_mean(flat, axis=1, keepdims=True)
        residuals = []
        for k in range(3):
            w, mu = bases[k], means[k]
            b = tf.zeros([10, 3])
            for _ in range(4):
                b = b + 0.1 * (tf.matmul(flat - mu - tf.matmul(b, w, transpose_b=True), w) - b)
            if stop_steps:
                b = tf.stop_gradient(b)
            residuals.append(tf.reduce_sum(tf.square(flat - mu - tf.matmul(b, w, transpose_b=True)), axis=1))
        return tf.reduce_mean(tf.reduce_min(tf.stack(residuals, axis=1), axis=1))

    variables = [model.means, model.bases]
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(model.compute_objective(tf.constant(x)).loss)
    got = tape.gradient(loss, variables)
    for stop_steps in (False, True):
        with tf.GradientTape() as tape:
            reference = direct_loss(model.means, model.bases, stop_steps)
        expected = tape.gradient(reference, variables)
        if not stop_steps:
            np.testing.assert_allclose(float(loss), float(reference), rtol=1e-5)
            for g, e in zip(got, expected):
                np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=2e-3, atol=2e-5)
        else:  # the steps' own dependence on μ and W is not negligible here: the check has power
            assert np.abs(got[1].numpy() - expected[1].numpy()).max() > 1e-2 * np.abs(expected[1].numpy()).max()


def test_the_reported_metrics_match_the_metric_function_on_the_reconstructions(digits):
    images, _ = digits
    x = images[:64]
    model = _model(image_shape=(8, 8, 1), components=3, latent_dim=4)
    _set_parameters(model, seed=9, mean_scale=0.1, basis_scale=0.2)
    model.compile(optimizer="sgd")
    logs = model.evaluate(x, batch_size=64, verbose=0, return_dict=True)
    reconstructions = model.reconstruct(x).numpy()
    np.testing.assert_allclose(logs["reconstruction_error"], reconstruction_error(x, reconstructions), rtol=1e-4)
    raw = ((x - reconstructions) ** 2).reshape(64, -1).sum(axis=1).mean()
    np.testing.assert_allclose(logs["loss"], raw, rtol=1e-4)


# --------------------------------------------------------------------------- training

def test_lgae_trained_to_convergence_matches_pca(digits):
    images, _ = digits
    train, test = images[:1500], images[1500:]
    keras.utils.set_random_seed(0)
    model = LGAE(image_shape=(8, 8, 1), latent_dim=5, inference_steps=5, step_size=0.05, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(0.02), steps_per_execution=250)
    data = tf.data.Dataset.from_tensor_slices(train).cache().repeat().batch(1500)
    model.fit(data, steps_per_epoch=250, epochs=8, verbose=0,
              callbacks=[keras.callbacks.LearningRateScheduler(lambda epoch: 0.02 * 0.6 ** epoch)])
    pca = pca_baseline(train, train, 5).error
    lgae = reconstruction_error(train, model.reconstruct(train).numpy())
    assert lgae == pytest.approx(pca, rel=0.01), (lgae, pca)
    pca_test = pca_baseline(train, test, 5).error
    assert reconstruction_error(test, model.reconstruct(test).numpy()) == pytest.approx(pca_test, rel=0.02)


def test_initialization_from_data_finds_every_local_plane():
    """Images near 3 planes of dimension 2: k-means + local PCA must put one component on each,
    with bases scaled so that β WᵀW = I, before any training."""
    rng = np.random.default_rng(10)
    offsets = rng.normal(scale=0.2, size=(3, 16))
    planes = rng.normal(scale=0.1, size=(3, 16, 2))
    offsets -= offsets.mean(axis=1, keepdims=True)
    planes -= planes.mean(axis=1, keepdims=True)
    truth = rng.integers(0, 3, size=600)
    flat = 0.5 + offsets[truth] + np.einsum("nde,ne->nd", planes[truth], rng.normal(size=(600, 2))) \
        + 0.005 * rng.normal(size=(600, 16))
    images = np.clip(flat, 0, 1).reshape(600, 4, 4, 1).astype("float32")
    model = _model(components=3, latent_dim=2, step_size=0.05)
    before = reconstruction_error(images, model.reconstruct(images).numpy())
    counts = model.initialize_from_data(images, seed=0, max_images=400)
    assert counts.sum() == 400 and counts.min() > 80
    chosen = model.encode(images).components.numpy()
    # each true plane maps to one component
    assert all(len(np.unique(chosen[truth == t])) == 1 for t in range(3)) and len(np.unique(chosen)) == 3
    after = reconstruction_error(images, model.reconstruct(images).numpy())
    assert after < 0.02 * before, (after, before)
    gram = np.einsum("kdi,kdj->kij", model.bases.numpy(), model.bases.numpy())
    np.testing.assert_allclose(0.05 * gram, np.broadcast_to(np.eye(2), (3, 2, 2)), atol=1e-4)
    with pytest.raises(ValueError, match="at least components=3 images"):
        model.initialize_from_data(images[:2])


def test_training_lowers_the_metric_and_reports_it(digits):
    images, _ = digits
    keras.utils.set_random_seed(1)
    model = LLGAE(image_shape=(8, 8, 1), latent_dim=4, components=3, inference_steps=5, step_size=0.05, seed=1)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-2))
    before = reconstruction_error(images[1500:], model.reconstruct(images[1500:]).numpy())
    history = model.fit(images[:1500], batch_size=150, epochs=4, verbose=0, validation_data=(images[1500:],))
    for key in ("loss", "reconstruction_error", "val_loss", "val_reconstruction_error"):
        assert len(history.history[key]) == 4, key
    errors = history.history["reconstruction_error"]
    assert errors[-1] < 0.7 * errors[0]
    after = reconstruction_error(images[1500:], model.reconstruct(images[1500:]).numpy())
    assert after < 0.5 * before
    np.testing.assert_allclose(history.history["val_reconstruction_error"][-1], after, rtol=1e-4)


def test_one_mirrored_step_equals_one_single_device_step(digits, mirrored_strategy):
    images, _ = digits
    x = images[:64]

    def one_step(strategy):
        with strategy.scope():
            model = _model(image_shape=(8, 8, 1), components=2, latent_dim=3, seed=4)
            model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.fit(tf.data.Dataset.from_tensor_slices(x).batch(64), epochs=1, verbose=0)
        return model.bases.numpy(), model.means.numpy()

    single = one_step(tf.distribute.get_strategy())
    mirrored = one_step(mirrored_strategy)
    for a, b in zip(single, mirrored):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------- API, saving, CLI

def test_shapes_and_dtypes():
    model = _model(components=3, latent_dim=2)
    x = np.random.default_rng(0).uniform(size=(5, 4, 4, 1)).astype("float32")
    code = model.encode(x)
    assert code.components.shape == (5,) and code.components.dtype == tf.int32
    assert code.coefficients.shape == (5, 2) and code.image_means.shape == (5,)
    inference = model.infer(x)
    assert inference.coefficients.shape == (5, 3, 2) and inference.squared_residuals.shape == (5, 3)
    assert model.reconstruct(x).shape == (5, 4, 4, 1) and model(x).shape == (5, 4, 4, 1)
    assert model.predict(x, verbose=0).shape == (5, 4, 4, 1)
    assert model.component_means().shape == (3, 4, 4, 1)
    # decode takes any leading shape, and without means gives the centred images
    decoded = model.decode(np.zeros((2, 3), np.int32), np.zeros((2, 3, 2), np.float32))
    assert decoded.shape == (2, 3, 4, 4, 1)
    np.testing.assert_allclose(decoded.numpy()[1, 2], model.component_means().numpy()[0], rtol=1e-6)
    assert model.serving_encode(x)["coefficients"].shape == (5, 2)
    assert REGISTRY["llgae"] is LLGAE and REGISTRY["lgae"] is LGAE


@pytest.mark.parametrize("cls,kwargs", [(LLGAE, dict(components=3, shrinkage=0.5, pixel_scale=2.0)), (LGAE, {})])
def test_save_and_load_round_trip(digits, tmp_path, cls, kwargs):
    images, _ = digits
    model = cls(image_shape=(8, 8, 1), latent_dim=3, inference_steps=3, step_size=0.05, seed=2, **kwargs)
    # without XLA: the default compile trains in test_training_lowers_the_metric_and_reports_it
    # and the command-line test
    model.compile(optimizer=keras.optimizers.RMSprop(1e-2), jit_compile=False)
    model.fit(images[:300], batch_size=100, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is cls and loaded.get_config() == model.get_config()
    code, loaded_code = model.encode(images[:20]), loaded.encode(images[:20])
    np.testing.assert_array_equal(code.components.numpy(), loaded_code.components.numpy())
    np.testing.assert_allclose(model.reconstruct(images[:20]).numpy(), loaded.reconstruct(images[:20]).numpy(),
                               rtol=1e-6)
    loaded.fit(images[:300], batch_size=100, epochs=1, verbose=0)  # the optimizer state came along


def test_the_saved_model_encodes_decodes_and_reconstructs_like_the_keras_model(tmp_path, digits):
    from tfvae import export

    images, _ = digits
    model = LLGAE(image_shape=(8, 8, 1), latent_dim=3, components=4, seed=3)
    model.initialize_from_data(images[:500])
    served = tf.saved_model.load(export.export_saved_model(model, tmp_path, name="llgae"))
    assert sorted(served.signatures) == ["decode", "reconstruct", "serving_default"]
    x = tf.constant(images[:6])
    code = served.signatures["serving_default"](images=x)
    expected = model.encode(x)
    np.testing.assert_array_equal(code["component"].numpy(), expected.components.numpy())
    np.testing.assert_allclose(code["coefficients"].numpy(), expected.coefficients.numpy(), rtol=1e-5, atol=1e-6)
    # serving_default's outputs go to decode unchanged
    decoded = served.signatures["decode"](**code)["images"].numpy()
    np.testing.assert_allclose(decoded, model.reconstruct(x).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(served.signatures["reconstruct"](images=x)["images"].numpy(), decoded, atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"input component must hold whole numbers in \[0, 3\]"):
        served.signatures["decode"](**dict(code, component=code["component"] + 0.5))


def test_the_command_line_trains_and_evaluates_an_llgae(tmp_path, capsys):
    out = tmp_path / "llgae"
    assert cli.main(["train", "--model", "llgae", "--components", "3", "--inference-steps", "3",
                     "--step-size", "0.05", "--latent-dim", "4", "--epochs", "2", "--limit", "300",
                     "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["reconstruction_metric"] == "centered_l2_255"
    model = keras.models.load_model(out / "model.keras")
    test_images, _ = load_arrays("digits", "test")
    np.testing.assert_allclose(metrics["test_reconstruction_error"],
                               reconstruction_error(test_images, model.reconstruct(test_images).numpy()), rtol=1e-5)
    assert type(model) is LLGAE and model.components == 3 and model.inference_steps == 3
    assert (out / "reconstructions.png").is_file() and (out / "component_means.png").is_file()
    assert not (out / "samples.png").exists()
    assert cli.main(["train", "--model", "vae", "--components", "3", "--out", str(tmp_path / "x")]) == 2
    assert "--components applies to llgae, not vae" in capsys.readouterr().err
    assert cli.main(["train", "--model", "lgae", "--likelihood", "gaussian", "--out", str(tmp_path / "y")]) == 2
    assert "--likelihood applies to vae, beta-vae, iwae, miwae, ciwae, piwae, vsc, beta-tcvae, not lgae" in capsys.readouterr().err


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs,message", [
    (dict(latent_dim=0), "latent_dim must be a positive integer"),
    (dict(components=0), "components must be a positive integer"),
    (dict(inference_steps=2.5), "inference_steps must be a positive integer"),
    (dict(step_size=0.0), "step_size must be a finite number > 0"),
    (dict(step_size=float("nan")), "step_size must be a finite number > 0"),
    (dict(shrinkage=-1.0), "shrinkage must be a finite number >= 0"),
    (dict(pixel_scale=0), "pixel_scale must be a finite number > 0"),
    (dict(seed="zero"), "seed must be an integer, got"),
    (dict(image_shape=(4, 4)), "image_shape"),
])
def test_bad_model_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _model(**kwargs)


def test_bad_calls_are_named():
    with pytest.raises(ValueError, match="LGAE has exactly one component"):
        LGAE(image_shape=(4, 4, 1), latent_dim=2, components=3)
    model = _model(components=3, latent_dim=2)
    with pytest.raises(ValueError, match=r"images must have shape \[batch, 4, 4, 1\]"):
        model.encode(np.zeros((2, 4, 4), np.float32))
    with pytest.raises(ValueError, match=r"components must be indices in \[0, 2\]"):
        model.decode(np.array([0, 3]), np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match="components must be integer"):
        model.decode(np.array([0.0, 1.0]), np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match=r"coefficients must be shaped \[\.\.\., 2\]"):
        model.decode(np.array([0, 1]), np.zeros((2, 5), np.float32))
    # bad training data (NaN, pixels outside [0, 1]) under the default XLA compile: tests/test_training.py
