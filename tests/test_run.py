"""The run layer (tfvae.run): one call from data to a trained, evaluated run directory; its
config; evaluation sized to the run; bad input that writes nothing."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tfvae import cli, data, models, names, run
from tfvae.evaluation import budget

TINY = dict(epochs=1, latent_dim=2, limit=200, batch_size=50, verbose=0)


def test_one_call_trains_evaluates_and_writes_the_run(tmp_path):
    out = tmp_path / "r"
    result = run.train(model="beta-vae", beta=2.0, dataset="digits", out=out, log_likelihood_samples=50, **TINY)
    assert result.directory == out and result.model.beta == 2.0
    for name in ("model.keras", "config.json", "metrics.json", "history.json", "traversals.png", "history.png"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics == result.metrics
    # every estimate with its standard error and what it used
    for key in ("test_elbo", "test_reconstruction", "test_kl", "test_log_likelihood", "probe_accuracy"):
        assert 0 < metrics[f"{key}_se"] < abs(metrics[key]) + 1, key
    assert metrics["test_examples"] == 297 and metrics["log_likelihood_samples"] == 50
    assert metrics["log_likelihood_images"] == 297 and metrics["probe_train"] == 200
    assert metrics["evaluation"]["mode"] == "sized" and metrics["evaluation"]["budget_seconds"] == 60.0
    np.testing.assert_allclose(metrics["test_elbo"], metrics["test_reconstruction"] - metrics["test_kl"], rtol=1e-4)
    # config.json holds every setting, resolved: loading it reproduces the run
    config = run.RunConfig.load(out)
    assert config["binarize"] == "dynamic" and config["likelihood"] == "bernoulli" and config["beta"] == 2.0
    assert config["precision"] == result.model.encoder.dtype_policy.name       # what "auto" chose
    assert config.as_dict() == result.config.as_dict()
    # the run layer's optimizer: Keras' Adam with its update in one kernel, at the config's rate
    assert type(result.model.optimizer).__name__ == "FusedAdam"
    assert float(result.model.optimizer.learning_rate.numpy()) == pytest.approx(config["learning_rate"])


def test_the_config_checks_every_setting_and_model_option():
    with pytest.raises(ValueError, match="latent_dim must be a positive integer, got -2"):
        run.RunConfig(latent_dim=-2)
    with pytest.raises(ValueError, match="beta applies to beta-vae, beta-tcvae, not vae"):
        run.RunConfig(beta=2.0)
    with pytest.raises(ValueError, match="unknown setting"):
        run.RunConfig(epoch=3)
    with pytest.raises(ValueError, match="evaluation must be one of"):
        run.RunConfig(evaluation="quick")
    config = run.RunConfig(model="vsc", alpha=0.2)
    assert config.model_options() == {"alpha": 0.2}
    assert "alpha" not in config.replace(model="vae").model_options()   # another model: its options go
    assert run.RunConfig(spell=lambda key: f"--{key}")  # messages may name command-line flags
    with pytest.raises(ValueError, match="--limit must be a positive integer"):
        run.RunConfig(spell=lambda key: f"--{key}", limit=0)


def test_names_for_the_help_match_the_registries():
    assert set(names.MODELS) == set(models.REGISTRY)
    assert set(names.DATASETS) == set(data.DATASETS)


def test_beta_tcvae_gets_the_training_set_size_from_the_source():
    source = data.open_source("digits", limit=300)
    model = run.build_model(run.RunConfig(model="beta-tcvae"), source)
    assert model.dataset_size == 300


def test_a_table_with_labels_gets_the_probe_and_a_learned_scale(tmp_path, cancer_csv):
    source = data.open_source(cancer_csv, label_column="target")
    assert source.likelihood == "gaussian-learned" and source.num_classes == 2 and source.name == "cancer"
    result = run.train(dataset=str(cancer_csv), label_column="target", out=tmp_path / "r", epochs=2, latent_dim=2,
                       batch_size=64, log_likelihood_samples=20, verbose=0)
    assert result.metrics["likelihood"] == "gaussian-learned"
    assert 0.5 < result.metrics["probe_accuracy"] <= 1.0 and result.metrics["probe_test"] == 57


@pytest.mark.parametrize("content,label_column,problem", [
    ("a,b\n1,2\n3,x\n", None, "row 3"),
    ("a,b\n1,2\n3\n", None, "row 3"),
    ("", None, "empty file"),
    (None, None, "no such file"),
    ("a,b\n1,2\n3,4\n", "c", "no column named 'c'"),
])
def test_bad_input_writes_nothing(tmp_path, monkeypatch, capsys, content, label_column, problem):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "data" / "table.csv"
    path.parent.mkdir()
    if content is not None:
        path.write_text(content)
    argv = ["train", "--dataset", str(path), "--epochs", "1"]
    argv += [] if label_column is None else ["--label-column", label_column]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("tfvae: error:") and problem in error and len(error.splitlines()) == 1, error
    assert not (tmp_path / "runs").exists()


def test_runs_are_named_after_the_file_stem(tmp_path, monkeypatch, cancer_csv):
    monkeypatch.chdir(tmp_path / "..")
    relative = os.path.relpath(cancer_csv)
    source = data.open_source(relative, label_column="target")
    assert str(run.default_directory(run.RunConfig(dataset=relative), source)) == os.path.join("runs", "vae-cancer")
    source = data.open_source(str(cancer_csv.resolve()), label_column="target")
    assert str(run.default_directory(run.RunConfig(), source)) == os.path.join("runs", "vae-cancer")


def test_the_sized_plan_shares_the_budget_by_measured_costs(monkeypatch):
    """With the pilots' costs fixed, the plan's arithmetic: passes over every image that fits,
    K = 5000 only while it leaves at least MIN_IMAGES images, a disentanglement scale from the
    encoding rate; given settings are kept."""
    source = data.open_source("shapes2d", limit=100)
    model = models.VAE(image_shape=(64, 64, 1), latent_dim=2, network_options={"hidden_units": (4,)})
    costs = iter([])

    def fixed(call):
        return next(costs)

    monkeypatch.setattr(budget, "_seconds", fixed)
    monkeypatch.setattr(budget, "log_likelihood", lambda *args, **kwargs: None)
    # 100 images per forward pass: 0.1 ms per image; log-likelihood: 20 images x 250 samples in 0.5 s
    # (0.1 ms per image-sample); disentanglement: 256 images encoded in 0.0256 s (0.1 ms per image)
    costs = iter([0.01, 0.5, 0.0256])
    plan = budget.sized_plan(model, source, budget_seconds=10)     # below the floor: 60 s
    assert plan.budget_seconds == 60.0 and plan.test_images is None      # 0.2 * 60 s buys 40,000 > 10,000
    # 0.5 * 60 s = 30 s buys 300,000 image-samples: K = 5000 on 60 images would be < 200, so K shrinks
    assert plan.log_likelihood_samples == 1500 and plan.log_likelihood_images == 200
    # 0.25 * 60 s = 15 s buys 150,000 images; 140,000 after MIG's 10,000
    assert plan.disentanglement_scale == pytest.approx(140_000 / budget._DISENTANGLEMENT_IMAGES)
    costs = iter([0.01, 0.5, 0.0256])
    plan = budget.sized_plan(model, source, budget_seconds=600, log_likelihood_samples=100)
    assert plan.log_likelihood_samples == 100 and plan.log_likelihood_images == 10_000


def test_old_run_directories_still_evaluate(tmp_path, tiny_model):
    """A run directory as an earlier tfvae wrote it: settings without evaluation settings."""
    out = tmp_path / "old"
    out.mkdir()
    model = tiny_model(models.VAE, latent_dim=2)
    model.compile(optimizer="adam")
    model.save(out / "model.keras")
    settings = dict(model="vae", dataset="digits", latent_dim=2, epochs=1, batch_size=32, learning_rate=2e-3,
                    seed=0, binarize="dynamic", limit=None, label_column=None, image_size=None,
                    validation_fraction=0.1, likelihood="bernoulli")
    (out / "config.json").write_text(json.dumps({"tfvae": "run", "settings": settings}))
    (out / "metrics.json").write_text(json.dumps({"train_seconds": 1.0, "kept": 1}))
    metrics = run.evaluate(out, log_likelihood_samples=10, verbose=0)
    assert metrics["kept"] == 1 and metrics["log_likelihood_samples"] == 10 and metrics["test_examples"] == 297
    assert json.loads((out / "metrics.json").read_text()) == metrics


def test_help_is_quiet_and_names_the_models_and_data_sets():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0")
    top = subprocess.run([sys.executable, "-m", "tfvae.cli", "--help"], capture_output=True, text=True, env=env,
                         timeout=120)
    train = subprocess.run([sys.executable, "-m", "tfvae.cli", "train", "--help"], capture_output=True, text=True,
                           env=env, timeout=120)
    for done in (top, train):
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert "beta-tcvae" in done.stdout and "fashion_mnist" in done.stdout
    assert "(default: what fits the data set)" in " ".join(train.stdout.split())
    assert "default bernoulli" not in train.stdout


def test_help_and_parsing_need_no_tensorflow():
    probe = ("import sys\nfrom tfvae import cli\nparser = cli._parser()\n"
             "parser.parse_args(['train', '--model', 'beta-vae', '--beta', '4', '--no-dreg'])\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_the_stored_flags_are_the_declarations():
    # the command line reads its flags from tfvae/cli_flags.json (no TensorFlow import for --help)
    assert json.loads(cli.FLAGS_FILE.read_text()) == cli.derived_flags(), \
        "the stored flags are stale: python -c 'from tfvae import cli; cli.write_flags()'"


def test_a_resumed_run_says_so(tmp_path, capsys):
    (tmp_path / "backup").mkdir()
    (tmp_path / "backup" / "history.json").write_text(json.dumps({"epoch": 3, "history": {}, "seconds": 1.0}))
    run._say_if_resuming(tmp_path, 5, verbose=2)
    assert f"resuming {tmp_path} after epoch 3 of 5" in capsys.readouterr().err
    run._say_if_resuming(tmp_path, 5, verbose=0)
    assert capsys.readouterr().err == ""


def test_missing_data_names_the_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TFVAE_DATA_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setattr(data.sources, "prepared_tfds_builder", lambda *args: None)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--dataset", "mnist", "--epochs", "1"]) == 2
    assert "--data-dir" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
