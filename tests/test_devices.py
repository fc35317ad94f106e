"""tfvae.devices: the XLA mode and the precision chosen per model and device, and honoured."""

import keras
import numpy as np
import pytest

from tfvae import devices, run
from tfvae.models import VAE

needs_cpu_only = pytest.mark.skipif(devices.has_gpu(), reason="the CPU rules (a GPU compiles the whole step)")


def _model(architecture, shape=(16, 16, 1)):
    keras.utils.set_random_seed(0)
    return VAE(shape, 2, architecture=architecture)


@needs_cpu_only
@pytest.mark.parametrize("architecture, mode", [("mlp", "step"), ("conv", "update")])
def test_auto_compiles_dense_float32_whole_and_convolutions_update_only(architecture, mode):
    model = _model(architecture)
    model.compile(optimizer="adam")
    assert model.xla_mode == mode and model.jit_compile is (mode == "step")


def test_explicit_modes_are_honoured_and_a_bad_one_is_rejected():
    model = _model("conv")
    for given, mode in ((True, "step"), ("step", "step"), (False, "none"), ("none", "none"), ("update", "update")):
        model.compile(optimizer="adam", jit_compile=given)
        assert model.xla_mode == mode
    with pytest.raises(ValueError, match="jit_compile must be 'auto', True, False or one of"):
        model.compile(optimizer="adam", jit_compile="sometimes")


def test_a_reloaded_model_compiles_as_it_was_asked(tmp_path, digits):
    images = (digits[0][:64] > 0.5).astype("float32")
    model = VAE(images.shape[1:], 2, architecture="conv")
    model.compile(optimizer="adam", jit_compile="update")
    model.fit(images, batch_size=32, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert again.xla_mode == "update"
    losses = again.fit(images, batch_size=32, epochs=2, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses))


def test_precision_auto_follows_the_machine_and_is_applied_to_the_networks_only():
    expected = "mixed_bfloat16" if (not devices.has_gpu() and devices.cpu_has_bfloat16_matrix_units()) else "float32"
    assert devices.resolve_precision("auto") == expected
    config = run.RunConfig(model="vae", dataset="digits", latent_dim=2, precision="mixed_bfloat16")
    model = run.build_model(config, run.open_source(config))
    assert model.encoder.compute_dtype == "bfloat16" and model.decoder.compute_dtype == "bfloat16"
    assert model.compute_dtype == "float32"                          # distributions and objectives
    assert keras.mixed_precision.global_policy().name == "float32"   # nothing else in the process changed
    float32 = run.build_model(config.replace(precision="float32"), run.open_source(config))
    assert float32.encoder.compute_dtype == "float32"
    with pytest.raises(ValueError, match="precision"):
        run.RunConfig(precision="float8")


def _amx_cpu(monkeypatch):
    """The rules of a CPU-only machine with bfloat16 matrix units, wherever the test runs."""
    monkeypatch.setattr(devices, "has_gpu", lambda: False)
    monkeypatch.setattr(devices, "cpu_has_bfloat16_matrix_units", lambda: True)


def test_forward_multiply_adds_count_every_dense_layer_once_per_draw():
    from tfvae.models import IWAE, LLGAE

    # the IWAE paper's network, counted by hand: 784-200-200-(2·50) and 50-200-200-784
    encoder, decoder = 784 * 200 + 200 * 200 + 200 * 100, 50 * 200 + 200 * 200 + 200 * 784
    vae = VAE((784,), 50, architecture="iwae-mlp")
    assert devices.forward_multiply_adds(vae, 100) == 100 * (encoder + decoder)
    iwae = IWAE((784,), 50, architecture="iwae-mlp", num_samples=7)
    assert devices.forward_multiply_adds(iwae, 10) == 10 * (encoder + 7 * decoder)
    assert devices.forward_multiply_adds(_model("conv"), 64) is None        # convolutions: not counted
    assert devices.forward_multiply_adds(LLGAE((28, 28, 1), 4, components=2), 64) is None  # no networks


def test_auto_precision_keeps_a_small_dense_step_in_float32(monkeypatch):
    _amx_cpu(monkeypatch)
    small = devices.SMALL_STEP_MULTIPLY_ADDS - 1
    assert devices.default_precision(small) == "float32"
    assert devices.default_precision(small + 1) == devices.default_precision(None) == "mixed_bfloat16"
    monkeypatch.setattr(devices, "cpu_has_bfloat16_matrix_units", lambda: False)
    assert devices.default_precision(small + 1) == "float32"


def test_the_run_layer_sizes_auto_precision_by_the_step(monkeypatch):
    _amx_cpu(monkeypatch)
    config = run.RunConfig(model="vae", dataset="digits", latent_dim=2, seed=3)   # 64 pixels: a small step
    source = run.open_source(config)
    large = config.replace(batch_size=devices.SMALL_STEP_MULTIPLY_ADDS)          # one multiply-add is enough
    assert run.build_model(large, source).decoder.compute_dtype == "bfloat16"
    keras.utils.set_random_seed(3)
    auto = run.build_model(config, source)
    keras.utils.set_random_seed(3)
    float32 = run.build_model(config.replace(precision="float32"), source)
    assert auto.encoder.compute_dtype == auto.decoder.compute_dtype == "float32"
    # the count's build left no trace: "auto" starts from precision="float32"'s weights
    for a, b in zip(auto.weights, float32.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    auto.compile(optimizer="adam")
    assert auto.xla_mode == "step"


def test_a_model_class_names_its_own_xla_mode_for_a_small_float32_step(monkeypatch):
    from tfvae.models import VSC

    _amx_cpu(monkeypatch)
    model = VSC((64,), 4)
    model.compile(optimizer="adam")
    assert model.xla_mode == VSC.float32_cpu_xla_mode == "update"
    model.compile(optimizer="adam", jit_compile=True)                            # and it is overridable
    assert model.xla_mode == "step"
