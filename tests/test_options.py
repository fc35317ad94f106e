"""No option is accepted and ignored: every declared option of every model survives save/load and
stays in force, unknown options are errors, and the CLI's flags are exactly the declared ones."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae import cli, models, run

#: a valid non-default value for every declared option (a new option must be added here)
NON_DEFAULT = {
    "validate_inputs": False,
    "architecture": "iwae-mlp",
    "likelihood": "gaussian-learned",
    "observation_scale": 0.3,
    "network_options": {"hidden_units": [12]},
    "standardization": {"mean": [0.25], "scale": [0.5]},
    "beta": 0.3,
    "capacity_max": 7.0,
    "capacity_steps": 11,
    "gamma": 3.0,
    "capacity_warmup_steps": 5,
    "alpha": 0.07,
    "sharpness_start": 20.0,
    "sharpness_end": 90.0,
    "sharpness_steps": 13,
    "warmup_start": 2,
    "warmup_end": 9,
    "threshold": 0.3,
    "num_samples": 3,
    "num_estimates": 2,
    "dreg": True,
    "components": 2,
    "inference_steps": 3,
    "step_size": 0.02,
    "shrinkage": 0.5,
    "center_images": False,
    "pixel_scale": 2.0,
    "basis_initial_scale": 0.07,
    "mean_initial_scale": 0.02,
    "seed": 5,
    "dataset_size": 777,
    "estimator": "mws",
    "learn_alpha": True,
    "alpha_prior_a": 2.0,
    "alpha_prior_b": 50.0,
}


def _non_default(name, option):
    if name not in NON_DEFAULT:
        pytest.fail(f"option {name!r} has no non-default value in tests/test_options.py: add one")
    value = NON_DEFAULT[name]
    assert value != option.default, name
    return value


@pytest.mark.parametrize("model_name", sorted(models.REGISTRY))
def test_every_option_survives_save_and_load(model_name, tmp_path, digits):
    cls = models.REGISTRY[model_name]
    declared = cls.declared_options()
    options = {}
    for name, option in declared.items():
        value = _non_default(name, option)
        if name == "beta" and model_name == "ciwae":
            value = 0.3  # in [0, 1]
        options[name] = value
    model = cls(image_shape=(8, 8, 1), latent_dim=3, **options)
    model.compile(optimizer="adam")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is cls
    config = loaded.get_config()
    for name, value in options.items():
        stored = getattr(loaded, declared[name].attribute or name)
        expected = value
        if name == "network_options":
            stored = {k: list(v) for k, v in stored.items()}
        if isinstance(stored, tuple):
            stored = list(stored)
        assert stored == expected, f"{model_name}: option {name} came back as {stored!r}, not {expected!r}"
        assert config[name] == expected or (name == "network_options"), name

    # in force: the reloaded model computes the same objective on the same noise
    images = digits[0][:16]
    tf.random.set_seed(3)
    before = model.compute_objective(tf.constant(images)).loss
    tf.random.set_seed(3)
    after = loaded.compute_objective(tf.constant(images)).loss
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_name", sorted(models.REGISTRY))
def test_an_unknown_option_is_an_error_naming_the_options(model_name):
    cls = models.REGISTRY[model_name]
    required = {"dataset_size": 100} if model_name == "beta-tcvae" else {}  # β-TCVAE's N has no default
    with pytest.raises(ValueError, match="unknown option.*'no_such_option'.*its options are"):
        cls(image_shape=(8, 8, 1), latent_dim=3, no_such_option=1, **required)


def test_options_a_model_does_not_have_are_refused_with_a_hint():
    with pytest.raises(ValueError, match="use MIWAE"):
        models.IWAE(image_shape=(8, 8, 1), latent_dim=3, num_estimates=3)
    with pytest.raises(ValueError, match="CIWAE has no doubly reparameterised"):
        models.CIWAE(image_shape=(8, 8, 1), latent_dim=3, dreg=True)
    with pytest.raises(ValueError, match="exactly one component"):
        models.LGAE(image_shape=(8, 8, 1), latent_dim=3, components=2)


@pytest.mark.parametrize("name,value,message", [
    ("beta", -1.0, "beta must be a finite number >= 0.0"),
    ("capacity_steps", 0, "capacity_steps must be a positive integer"),
    ("architecture", "nope", "architecture must be one of"),
    ("likelihood", "nope", "likelihood must be one of"),
    ("validate_inputs", 1, "validate_inputs must be True or False"),
])
def test_bad_option_values_name_the_option(name, value, message):
    with pytest.raises(ValueError, match=message):
        models.BetaVAE(image_shape=(8, 8, 1), latent_dim=3, **{name: value})


def test_cli_flags_are_exactly_the_declared_options():
    settings = run.model_settings()
    for model_name, cls in models.REGISTRY.items():
        for name, option in cls.declared_options().items():
            flag = option.cli_flag(name)
            if flag is not None:
                assert model_name in settings[flag.replace("-", "_")].models, (model_name, flag)
    parser = cli._parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    for name in list(settings) + list(run.SETTINGS) + list(run.EVALUATION_SETTINGS):
        assert "--" + name.replace("_", "-") in train._option_string_actions
