"""tfvae.optimizers.FusedAdam: Keras' Adam computed by TensorFlow's fused kernel."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae import devices
from tfvae.models import VAE
from tfvae.optimizers import FusedAdam

SHAPES = [(5, 3), (3,), (7,)]


def _train(optimizer_class, steps=6, compile_mode=None, **options):
    """The variables after ``steps`` updates by ``optimizer_class(**options)`` from fixed starting
    weights and fixed gradients (a new gradient every step)."""
    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.normal(size=shape).astype("float32")) for shape in SHAPES]
    gradients = [[tf.constant(rng.normal(size=shape).astype("float32")) for shape in SHAPES] for _ in range(steps)]
    optimizer = optimizer_class(**options)
    optimizer.build(variables)

    def apply(g):
        optimizer.apply(g, variables)

    if compile_mode is not None:
        apply = tf.function(apply, jit_compile=compile_mode == "xla")
    for g in gradients:
        apply(g)
    return [v.numpy() for v in variables], optimizer


def _numpy_adam(steps=6, learning_rate=0.1, epsilon=1e-7):
    """Adam in float64 from the same start and gradients as :func:`_train`, with β₁ = 0.9 and
    β₂ = 0.999 rounded to float32 as the kernel takes them (it forms 1 − β in float32)."""
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=shape).astype("float32").astype(float) for shape in SHAPES]
    gradients = [[rng.normal(size=shape).astype("float32").astype(float) for shape in SHAPES] for _ in range(steps)]
    beta_1, beta_2 = float(np.float32(0.9)), float(np.float32(0.999))
    m, v = [0.0 * w for w in weights], [0.0 * w for w in weights]
    for t, step in enumerate(gradients, 1):
        for i, g in enumerate(step):
            m[i] = m[i] + (1 - beta_1) * (g - m[i])
            v[i] = v[i] + (1 - beta_2) * (g * g - v[i])
            alpha = learning_rate * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
            weights[i] = weights[i] - alpha * m[i] / (np.sqrt(v[i]) + epsilon)
    return weights


@pytest.mark.parametrize("compile_mode", [None, "graph", "xla"])
def test_fused_adam_is_adam(compile_mode):
    got, optimizer = _train(FusedAdam, compile_mode=compile_mode, learning_rate=0.1)
    for g, e in zip(got, _numpy_adam()):
        np.testing.assert_allclose(g, e, rtol=0, atol=2e-6)    # float32 round-off over moves of ~0.6
    assert int(optimizer.iterations.numpy()) == 6


@pytest.mark.parametrize("options", [
    dict(learning_rate=0.1),
    dict(learning_rate=keras.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5), beta_1=0.8, beta_2=0.9,
         epsilon=1e-3),
    dict(learning_rate=0.05, weight_decay=0.1, clipnorm=0.5),
    dict(learning_rate=0.1, amsgrad=True),                    # not fused: Keras' own update
], ids=["defaults", "schedule-betas-epsilon", "weight-decay-clipnorm", "amsgrad"])
def test_fused_adam_follows_keras_adam_with_all_its_options(options):
    expected, reference = _train(keras.optimizers.Adam, **options)
    got, fused = _train(FusedAdam, compile_mode="graph", **options)
    # Keras forms 1 − β₂ in double precision, the kernel in float32 (β₂ = 0.999 acts as
    # 0.99900001): v's steps differ by 1.3e-5 relative, the weights' by a few 1e-6
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=0, atol=2e-5)
    # the same slots, so a checkpoint moves between the two classes
    for mine, theirs in zip(fused._momentums + fused._velocities, reference._momentums + reference._velocities):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-4, atol=1e-7)


def _op_types(optimizer, variables):
    gradients = [tf.ones_like(v) for v in variables]
    graph = tf.function(lambda: optimizer.apply(gradients, variables)).get_concrete_function().graph
    return {op.type for op in graph.get_operations()}


def test_the_update_is_the_fused_kernel_and_amsgrad_falls_back():
    variables = [keras.Variable(np.ones(shape, "float32")) for shape in SHAPES]
    assert "ResourceApplyAdam" in _op_types(FusedAdam(0.1), variables)
    assert "ResourceApplyAdam" not in _op_types(FusedAdam(0.1, amsgrad=True), variables)
    assert "ResourceApplyAdam" not in _op_types(keras.optimizers.Adam(0.1), variables)


def test_under_a_strategy_it_trains_as_keras_adam(mirrored_strategy):
    x = np.random.default_rng(1).random((64, 4)).astype("float32")

    def trained(optimizer_class):
        with mirrored_strategy.scope():
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(4)])
            model.compile(optimizer=optimizer_class(0.05), loss="mse")
        model.fit(x, x, batch_size=16, epochs=2, shuffle=False, verbose=0)
        return model.get_weights()

    for got, expected in zip(trained(FusedAdam), trained(keras.optimizers.Adam)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(devices.has_gpu(), reason="the CPU rule (a GPU compiles the whole step)")
def test_a_fused_update_needs_no_xla_and_a_reloaded_model_keeps_it(tmp_path, digits):
    images = (digits[0][:64] > 0.5).astype("float32")
    keras.utils.set_random_seed(0)
    model = VAE(images.shape[1:], 2, architecture="conv")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    assert model.xla_mode == "update"                   # Keras' Adam: the update compiled by XLA
    model.compile(optimizer=FusedAdam(1e-3))
    assert model.xla_mode == "none"                     # one kernel per variable already
    model.compile(optimizer=FusedAdam(1e-3), jit_compile="update")
    assert model.xla_mode == "update"                   # an explicit mode is honoured
    model.compile(optimizer=FusedAdam(1e-3))
    model.fit(images, batch_size=32, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert type(again.optimizer) is FusedAdam and again.xla_mode == "none"
    assert np.all(np.isfinite(again.fit(images, batch_size=32, epochs=1, verbose=0).history["loss"]))
