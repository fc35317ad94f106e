"""The tfvae command line end to end, and its one-line errors."""

import json
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

from tfvae import cli, run

ROOT = pathlib.Path(__file__).resolve().parents[1]
TIMEOUT_S = 600  # one tiny run in a fresh process, on shared cores
FAST = ["--epochs", "2", "--latent-dim", "3", "--limit", "256", "--log-likelihood-samples", "20", "--quiet"]


def _error_line(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("tfvae: error:")]
    assert len(lines) == 1, err
    return lines[0]


class _Console:
    """``python -m tfvae.cli ARGV`` started in a fresh process, as a user runs it (the checkout's
    tfvae), its stdout and stderr going to files in ``logs`` (no pipe to fill while it runs)."""

    def __init__(self, argv, logs, name):
        self.stdout, self.stderr = logs / f"{name}.out", logs / f"{name}.err"
        with open(self.stdout, "w") as out, open(self.stderr, "w") as err:
            self.process = subprocess.Popen([sys.executable, "-m", "tfvae.cli", *argv], stdout=out, stderr=err,
                                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), cwd=ROOT)

    def finish(self, timeout=TIMEOUT_S):
        """``(returncode, stdout, stderr)`` once the process has ended."""
        code = self.process.wait(timeout=timeout)
        return code, self.stdout.read_text(), self.stderr.read_text()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The console script's processes of this module, side by side (most of a tiny run is
    single-threaded tracing and compiling, and the machine has two cores):

    * ``first``: a run shared by the tests below, in ``out``;
    * ``second``: the same run again from its config.json, in ``again``
      (test_config_reproduces_the_run), started as soon as ``first`` has written config.json,
      before its training;
    * ``bad``: a run with a bad flag (test_the_console_script_reports_errors_without_a_traceback).
    """
    root = tmp_path_factory.mktemp("runs")
    out, again = root / "bvae", root / "again"
    argv = ["train", "--model", "beta-vae", "--beta", "2", "--seed", "3", "--out", str(out)] + FAST
    first = _Console([a for a in argv if a != "--quiet"], root, "first")  # not quiet: the summary ends stdout
    bad = _Console(["train", "--latent-dim", "-2"], root, "bad")
    began = time.monotonic()
    while not (out / "config.json").exists() and first.process.poll() is None and time.monotonic() - began < TIMEOUT_S:
        time.sleep(0.1)  # (config.json is written atomically)
    second = _Console(["train", "--config", str(out / "config.json"), "--out", str(again), "--quiet"], root, "second")
    yield dict(out=out, first=first, again=again, second=second, bad=bad)
    for console in (first, second, bad):
        if console.process.poll() is None:
            console.process.kill()
            console.process.wait()


@pytest.fixture(scope="module")
def run_dir(runs):
    code, stdout, stderr = runs["first"].finish()
    assert code == 0, stderr[-2000:]
    out = runs["out"]
    lines = stdout.splitlines()  # the summary alone: the progress went to stderr
    assert lines[0].startswith("trained beta-vae on digits (latent 3, 2 epochs"), stdout
    assert "Epoch 2/2" in stderr and "Epoch" not in stdout
    assert any(line.startswith("  ELBO ") and "±" in line and line.endswith("nats/example") for line in lines)
    assert lines[-1].startswith(f"run directory: {out}")
    return out


def test_train_writes_a_complete_run_directory(run_dir):
    for name in ("model.keras", "config.json", "metrics.json", "history.json", "reconstructions.png",
                 "samples.png", "traversals.png", "kl_per_dimension.png"):
        assert (run_dir / name).is_file(), name
    assert any((run_dir / "logs").rglob("events.out.tfevents*"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test_elbo", "test_reconstruction", "test_kl", "active_units", "kl_per_dimension",
                "test_log_likelihood"):
        assert key in metrics, key
    assert len(metrics["kl_per_dimension"]) == 3
    np.testing.assert_allclose(metrics["test_elbo"], metrics["test_reconstruction"] - metrics["test_kl"], rtol=1e-4)
    # the importance-sampled log-likelihood bounds the ELBO from above (up to Monte Carlo error)
    assert metrics["test_log_likelihood"] > metrics["test_elbo"] - 0.5
    settings = json.loads((run_dir / "config.json").read_text())["settings"]
    assert settings["model"] == "beta-vae" and settings["beta"] == 2.0
    model, config = run.load(run_dir)  # keras.models.load_model, with tfvae's classes registered
    assert type(model).__name__ == "BetaVAE" and model.beta == 2.0 and model.latent_dim == 3
    assert config.as_dict() == settings


def test_evaluate_recomputes_the_metrics(run_dir, capsys):
    metrics_path = run_dir / "metrics.json"
    before = json.loads(metrics_path.read_text())
    metrics_path.write_text(json.dumps({"train_seconds": before["train_seconds"]}))
    assert cli.main(["evaluate", str(run_dir), "--log-likelihood-samples", "0"]) == 0
    after = json.loads(metrics_path.read_text())
    # the test ELBO is a one-sample Monte Carlo estimate per image: equal up to that noise
    np.testing.assert_allclose(after["test_elbo"], before["test_elbo"], atol=0.5)
    np.testing.assert_allclose(after["test_kl"], before["test_kl"], rtol=1e-5)
    assert after["active_units"] == before["active_units"] and "test_log_likelihood" not in after
    assert '"test_elbo"' in capsys.readouterr().out


def test_plot_redraws_only_what_is_asked(run_dir, capsys):
    (run_dir / "traversals.png").unlink()
    (run_dir / "samples.png").unlink()
    assert cli.main(["plot", str(run_dir), "--traversals"]) == 0
    assert (run_dir / "traversals.png").stat().st_size > 1000
    assert not (run_dir / "samples.png").exists()
    assert "traversals.png" in capsys.readouterr().out


def test_config_reproduces_the_run(run_dir, runs):
    """The run again from its config.json, in a fresh process as a user reruns a command: the same
    settings and the same training losses as the run from the command-line flags. (Under XLA, the
    default, the sampling noise is a function of the seed per process: a second model trained in
    the same process continues XLA's random state; README, "Fast by default".)"""
    code, _, stderr = runs["second"].finish()
    assert code == 0, stderr[-2000:]
    again = runs["again"]
    settings = [json.loads((d / "config.json").read_text())["settings"] for d in (run_dir, again)]
    assert settings[0] == settings[1]
    a, b = (json.loads((d / "history.json").read_text()) for d in (run_dir, again))
    assert len(a["loss"]) == 2
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5)


def test_a_finished_run_is_not_overwritten(run_dir, capsys):
    stamp = (run_dir / "model.keras").stat().st_mtime
    assert cli.main(["train", "--out", str(run_dir)] + FAST) == 2
    assert "already holds a finished run" in _error_line(capsys)
    assert (run_dir / "model.keras").stat().st_mtime == stamp


@pytest.mark.parametrize("argv,message", [
    (["train", "--model", "gan"], "unknown model 'gan'"),
    (["train", "--dataset", "cifar"], "unknown data set 'cifar'"),
    (["train", "--latent-dim", "0"], "--latent-dim must be a positive integer"),
    (["train", "--model", "beta-vae", "--beta", "-1"], "beta must be a finite number >= 0"),
    (["train", "--model", "vae", "--beta", "4"], "--beta applies to"),
    (["train", "--epochs", "-3"], "--epochs must be a positive integer"),
    (["train", "--learning-rate", "0"], "--learning-rate must be a positive number"),
    (["train", "--architecture", "resnet"], "architecture must be one of 'mlp', 'iwae-mlp', 'conv'; got 'resnet'"),
    (["train", "--config", "/nonexistent/config.json"], "no such file"),
    (["evaluate", "/nonexistent/run"], "is not a finished tfvae run"),
    (["plot", "/nonexistent/run"], "is not a finished tfvae run"),
])
def test_bad_arguments_give_one_clear_line(argv, message, capsys, tmp_path):
    if argv[0] == "train":
        argv = argv + ["--out", str(tmp_path / "x"), "--epochs", "1", "--quiet"] \
            if "--epochs" not in argv else argv + ["--out", str(tmp_path / "x"), "--quiet"]
    assert cli.main(argv) == 2
    assert message in _error_line(capsys)


def test_the_console_script_reports_errors_without_a_traceback(runs):
    code, _, stderr = runs["bad"].finish()  # train --latent-dim -2
    assert code == 2
    assert "Traceback" not in stderr
    assert "tfvae: error: --latent-dim must be a positive integer, got -2" in stderr
