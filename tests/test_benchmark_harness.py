"""benchmarks/harness.py: the results file every benchmark resumes from, the common flags, the
machine header and models built through the run layer."""

import argparse
import importlib.util
import json
import os
import pathlib

import keras
import numpy as np
import pytest


def _harness():
    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "harness.py"
    spec = importlib.util.spec_from_file_location("harness", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_are_saved_whole_after_every_run_and_resumed_under_the_same_settings(tmp_path):
    harness = _harness()
    path = tmp_path / "results.json"
    results = harness.Results(path, {"session": 1}, settings={"steps": 500, "shape": (28, 28)})
    results.add("vae/seed0", {"mig": 0.1})
    assert json.loads(path.read_text())["results"] == {"vae/seed0": {"mig": 0.1}}
    results.add("vae/seed1", {"mig": 0.2})
    results.save(finished=False)

    # a new session with the same settings (a tuple reads back as a list) keeps both runs
    again = harness.Results(path, {"session": 2}, settings={"steps": 500, "shape": (28, 28)})
    assert again.done("vae/seed0") and again.done("vae/seed1") and not again.done("vae/seed2")
    assert again.first == {"session": 1}
    again.add("vae/seed2", {"mig": 0.3})
    saved = json.loads(path.read_text())
    assert list(saved["results"]) == ["vae/seed0", "vae/seed1", "vae/seed2"]
    assert saved["sessions"] == [{"session": 1}, {"session": 2}]
    assert not list(tmp_path.glob(".results.json.*"))  # no temporary file left behind

    # other settings: one error naming what changed, the file untouched
    with pytest.raises(ValueError, match="other settings \\(steps\\)"):
        harness.Results(path, {"session": 3}, settings={"steps": 20, "shape": (28, 28)})
    assert json.loads(path.read_text()) == saved
    # --fresh starts over, whatever the file holds
    fresh = harness.Results(path, {"session": 3}, settings={"steps": 20}, fresh=True)
    assert fresh.records == {} and fresh.sessions == [{"session": 3}]
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a benchmark results file"):
        harness.Results(path, {"session": 4}, settings={"steps": 20})


def test_the_common_flags_resume_by_default_and_resolve_out_and_the_data_folder(tmp_path, monkeypatch):
    harness = _harness()

    def parse(*argv):
        parser = argparse.ArgumentParser()
        harness.add_arguments(parser, "benchmarks/some_study.py", quick="smoke run", resume=True)
        return harness.parse(parser, list(argv))

    args = parse()
    assert args.fresh is False and args.quick is False
    assert args.out == harness.OUT / "some_study" and args.command == "python benchmarks/some_study.py"
    assert parse("--fresh").fresh is True and parse("--resume").fresh is False
    assert parse("--quick").out == harness.OUT / "some_study_quick"
    assert parse("--quick", "--out", str(tmp_path)).out == tmp_path
    with pytest.raises(SystemExit):
        parse("--resume", "--fresh")
    monkeypatch.setenv("TFVAE_DATA_DIR", "/nowhere")
    parse("--data-dir", str(tmp_path))
    assert os.environ["TFVAE_DATA_DIR"] == str(tmp_path.resolve())
    with pytest.raises(SystemExit):
        parse("--data-dir", str(tmp_path / "missing"))


def test_the_machine_header_is_quiet_below_the_load_limit(monkeypatch):
    harness = _harness()
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.49, 2.0, 3.0))
    header = harness.machine_header("python benchmarks/x.py")
    assert header["quiet"] is True and header["max_load"] == 1.5 and header["load_average"] == [1.49, 2.0, 3.0]
    assert header["cores"] == 2 and header["keras"] == keras.__version__ and header["date"].endswith("+00:00")
    monkeypatch.setattr(os, "getloadavg", lambda: (1.5, 0.0, 0.0))
    assert harness.machine_header()["quiet"] is False
    assert harness.machine_header(max_load=2.0)["quiet"] is True


def test_build_model_with_options_a_run_cannot_hold_gives_the_model_built_by_hand():
    """run.build_model's resolution (the source's likelihood, the config's options), the extra
    options over it, and the weights of one construction by hand from the config's seed."""
    harness = _harness()
    from tfvae import run
    from tfvae.models import VSC

    config = run.RunConfig(model="vsc", dataset="digits", latent_dim=6, alpha=0.05, seed=7)
    source = run.open_source(config)
    model = harness.build_model(config, source, network_options={"hidden_units": (16,)}, validate_inputs=False)
    after = np.random.random()
    keras.utils.set_random_seed(7)
    expected = VSC(image_shape=(8, 8, 1), latent_dim=6, alpha=0.05, likelihood="bernoulli",
                   network_options={"hidden_units": (16,)}, validate_inputs=False,
                   dataset_size=source.train_size)
    assert np.random.random() == after  # the random state after building is the same too
    assert model.options_config() == expected.options_config()
    assert [w.shape for w in model.get_weights()] == [w.shape for w in expected.get_weights()]
    for ours, theirs in zip(model.get_weights(), expected.get_weights()):
        np.testing.assert_array_equal(ours, theirs)
    # without extra options: run.build_model itself, seeded
    plain = harness.build_model(config.replace(model="vae"), source)
    keras.utils.set_random_seed(7)
    for ours, theirs in zip(plain.get_weights(), run.build_model(config.replace(model="vae"), source).get_weights()):
        np.testing.assert_array_equal(ours, theirs)
