"""Mixed precision (keras.mixed_precision): the networks compute in float16/bfloat16 with float32
weights, while distributions, log-densities and objectives stay float32; float16 trains through
loss scaling. bfloat16 runs on CPU, so every family trains here; float16's step is compared with
float32's; a mixed-precision model exports and serves float32.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae import devices
from tfvae.export import export_saved_model
from tfvae.models import (CIWAE, IWAE, LGAE, LLGAE, MIWAE, PIWAE, VAE, VSC, BetaTCVAE, BetaVAE,
                          VariationalModel)


@pytest.fixture(autouse=True)
def float32_afterwards():
    """Every test sets its own policy; the global policy is float32 again after each."""
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def images(digits):
    return (digits[0][:128] > 0.5).astype("float32")


FAMILIES = [
    (VAE, {}), (VAE, dict(likelihood="gaussian-learned", observation_scale=0.5)), (BetaVAE, dict(beta=2.0)),
    (BetaTCVAE, dict(dataset_size=128)), (VSC, {}),
    (IWAE, dict(num_samples=3)), (IWAE, dict(num_samples=3, dreg=True)),
    (MIWAE, dict(num_estimates=2, num_samples=2)), (CIWAE, dict(num_samples=3, beta=0.5)),
    (PIWAE, dict(num_estimates=2, num_samples=2)), (PIWAE, dict(num_estimates=2, num_samples=2, dreg=True)),
    (LLGAE, dict(components=3, latent_dim=2, step_size=0.1)), (LGAE, dict(latent_dim=2, step_size=0.1)),
]


def _id(family):
    cls, options = family
    return "-".join([cls.__name__] + [str(v) for k, v in options.items() if k in ("likelihood", "dreg") and v])


@pytest.mark.parametrize("cls, options", FAMILIES, ids=[_id(f) for f in FAMILIES])
def test_every_family_trains_in_bfloat16(images, tiny_model, cls, options):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = tiny_model(cls, **options)
    # the model (objectives, distributions) is float32; its networks compute in bfloat16
    assert model.dtype_policy.name == "float32"
    assert all(v.dtype == "float32" for v in model.trainable_variables)
    if isinstance(model, VariationalModel):
        assert model.encoder.layers[-1].compute_dtype == "bfloat16"
        assert model.decoder.layers[-2].compute_dtype == "bfloat16"
        x = tf.constant(images[:4])
        assert model.encoder(x).dtype == tf.bfloat16            # (what encode_params casts)
        assert model.encode_params(x).dtype == tf.float32
        assert model.likelihood(model.encode(x)).log_prob(x).dtype == tf.float32
        assert model.log_weights(x, 2).dtype == tf.float32
        assert model.compute_objective(x).loss.dtype == tf.float32
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    history = model.fit(images, batch_size=64, epochs=3, verbose=0).history
    assert np.all(np.isfinite(history["loss"])) and history["loss"][-1] < history["loss"][0], history["loss"]
    assert model.predict(images[:4], verbose=0).dtype == np.float32       # model(x) takes float32 images
    codes = model.encode(images[:4])
    codes = codes if isinstance(model, VariationalModel) else codes.coefficients
    assert codes.dtype == tf.float32 and np.all(np.isfinite(codes))


@pytest.mark.parametrize("jit_compile", ["auto", True])
def test_bfloat16_trains_under_the_default_compile_and_under_xla(images, tiny_model, jit_compile):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = tiny_model(PIWAE, num_estimates=2, num_samples=2, dreg=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=jit_compile)
    # on a CPU, bfloat16 products run on oneDNN's kernels (XLA's skip the AMX units): only the
    # update is compiled by XLA (tfvae.devices)
    assert model.xla_mode == ("update" if jit_compile == "auto" and not devices.has_gpu() else "step")
    history = model.fit(images, batch_size=32, epochs=3, verbose=0).history
    assert history["loss"][-1] < history["loss"][0]


@pytest.mark.parametrize("cls, options", [(VAE, {}), (IWAE, dict(num_samples=3, dreg=True)),
                                          (PIWAE, dict(num_estimates=2, num_samples=2))],
                         ids=["VAE", "IWAE-dreg", "PIWAE"])
def test_a_float16_step_equals_the_float32_step(images, tiny_model, cls, options):
    # Same initial weights (one seed; the weights are float32 under both policies) and fixed
    # noise, one SGD step on one batch. Under mixed_float16 compile() wraps SGD in a
    # LossScaleOptimizer, the loop passes the loss through its scale_loss (×2^15) and the
    # optimizer divides the gradients back: without the scaling in the loop the float16 update
    # would be 2^15 times too small, without the division 2^15 times too large.
    updates, initial = {}, {}
    for policy in ("float32", "mixed_float16"):
        keras.mixed_precision.set_global_policy(policy)
        model = tiny_model(cls, fixed_noise=True, **options)
        model.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=True)
        initial[policy] = [v.numpy() for v in model.trainable_variables]
        if policy == "mixed_float16":
            assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
            assert model.encoder.layers[-1].compute_dtype == "float16"
        model.fit(images[:32], batch_size=32, epochs=1, verbose=0)
        updates[policy] = [v.numpy() - w for v, w in zip(model.trainable_variables, initial[policy])]
    # scaled by the initial 2^15, and the step was not skipped (a skip halves the scale)
    assert float(model.optimizer.dynamic_scale) == model.optimizer.initial_scale == 2.0 ** 15
    for a, b in zip(initial["float32"], initial["mixed_float16"]):
        np.testing.assert_array_equal(a, b)
    for single, half in zip(updates["float32"], updates["mixed_float16"]):
        # float16 keeps ~3 significant digits
        np.testing.assert_allclose(half, single, atol=3e-3 * np.abs(single).max() + 1e-7)
    assert max(np.abs(u).max() for u in updates["float32"]) > 1e-2


def test_a_mixed_precision_model_exports_and_serves_float32(images, tiny_model, tmp_path):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = tiny_model(VAE)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)
    model.fit(images, batch_size=32, epochs=1, verbose=0)
    path = export_saved_model(model, tmp_path / "serving", name="vae")
    keras.mixed_precision.set_global_policy("float32")          # a serving process knows no policy
    served = tf.saved_model.load(path)
    x = tf.constant(images[:5])
    outputs = {name: served.signatures[name](images=x) for name in ("serving_default", "reconstruct")}
    outputs["decode"] = served.signatures["decode"](codes=tf.zeros([2, 3]))
    outputs["log_likelihood"] = served.signatures["log_likelihood"](images=x, num_samples=tf.constant(8),
                                                                   seed=tf.constant(1))
    for signature, result in outputs.items():
        for name, value in result.items():
            assert value.dtype == tf.float32 and np.all(np.isfinite(value)), (signature, name)
    # the same bfloat16 networks (the served graph may fuse and round differently: ~1 bf16 ulp)
    np.testing.assert_allclose(outputs["serving_default"]["code_mean"], model.encode(x), rtol=2e-2, atol=1e-2)
    np.testing.assert_allclose(outputs["reconstruct"]["images"], model.reconstruct(x), rtol=2e-2, atol=1e-2)
    assert outputs["log_likelihood"]["log_likelihood"].shape == (5,)
