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
