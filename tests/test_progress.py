"""Progress of the long stages (tfvae.progress): the time-left estimate, Keras' verbose levels,
and the functions and commands that use it (log-likelihood through evaluate_model, the
disentanglement metrics, the probe, LLGAE's k-means start, ``tfvae evaluate --quiet``)."""

import json
import re

import numpy as np
import pytest

from tfvae import cli, progress
from tfvae.evaluation import disentanglement as dis
from tfvae.evaluation import report
from tfvae.evaluation.probe import linear_probe_accuracy

#: "stage: done/total units (p%), <elapsed>, about <left> left"
LINE = re.compile(r"^(\w+): (\d+)/(\d+) (\w+) \((\d+)%\), [\d.]+ (?:s|min)[^,]*, about .+ left$")


def _progress_lines(out, stage):
    return [line for line in out.splitlines() if line.startswith(stage + ": ") and LINE.match(line)]


# ----------------------------------------------------------------------------- the mechanism

def test_time_left_is_the_linear_extrapolation_and_lines_come_per_tenth(monkeypatch, capsys):
    clock = iter([100.0, 110.0, 120.0, 125.0, 200.0])   # start, then one reading per printed line
    monkeypatch.setattr(progress, "_clock", lambda: next(clock))
    shown = progress.Progress("stage", 10, "cluster", verbose=2)
    shown.update(2)                      # 20 % after 10 s: 8 more at 5 s each
    shown.update(2)                      # no new tenth: nothing
    shown.add(2)                         # 40 % after 20 s: 6 more at 5 s each
    shown.update(9)                      # 90 % after 25 s
    shown.update(10)                     # the end is the finish line's
    shown.finish()
    assert capsys.readouterr().out.splitlines() == [
        "stage: 2/10 clusters (20%), 10 s, about 40 s left",
        "stage: 4/10 clusters (40%), 20 s, about 30 s left",
        "stage: 9/10 clusters (90%), 25 s, about 2.8 s left",
        "stage: 10 clusters in 1 min 40 s"]


def test_verbose_levels_in_keras_manner(capsys):
    assert progress.check_verbose("auto") == 2          # captured stdout is not a terminal
    assert [progress.check_verbose(v) for v in (0, 1, 2)] == [0, 1, 2]
    for bad in (3, -1, True, "2", None):
        with pytest.raises(ValueError, match=r"verbose must be 'auto', 0, 1 or 2, got"):
            progress.check_verbose(bad)
    shown = progress.Progress("quiet", 5, verbose=0)
    shown.update(3)
    shown.finish()
    with progress.timed("quiet", "a fit", verbose=0):
        pass
    progress.note("quiet", "a note", verbose=0)
    assert capsys.readouterr().out == ""
    shown = progress.Progress("bar", 4, "image", verbose=1)         # keras.utils.Progbar
    for done in (1, 2, 3, 4):
        shown.update(done)
    shown.finish()
    out = capsys.readouterr().out
    assert out.startswith("bar:\n") and "4/4" in out and "image" in out
    with progress.timed("fit", "fitting", verbose=2):
        pass
    assert re.fullmatch(r"fit: fitting \.\.\.\nfit: fitting took [\d.]+ s\n", capsys.readouterr().out)
    assert [progress.duration(s) for s in (0.42, 12.4, 185, 3720)] == ["0.4 s", "12 s", "3 min 05 s", "1 h 02 min"]


# ------------------------------------------------------------------------------- its users

class _Factors:
    """A cheap data set of known factors whose 'image' is the factor vector itself."""
    factor_sizes, num_factors, factor_names, image_shape = (3, 4, 5), 3, ("a", "b", "c"), (3,)

    def sample_factors(self, num, rng):
        rng = np.random.default_rng(rng)
        return np.stack([rng.integers(0, size, num) for size in self.factor_sizes], axis=1)

    def images_for(self, factors):
        return np.asarray(factors, np.float64)


def test_disentanglement_metrics_show_progress_over_the_images_encoded(monkeypatch, capsys):
    monkeypatch.setattr(dis, "ENCODE_BATCH", 64)                     # many small batches
    data = _Factors()
    quiet = dis.beta_vae_score(lambda x: x, data, batch_size=8, num_train=100, num_eval=50, verbose=0)
    assert capsys.readouterr().out == ""
    assert dis.beta_vae_score(lambda x: x, data, batch_size=8, num_train=100, num_eval=50, verbose=2) == quiet
    out = capsys.readouterr().out
    lines = _progress_lines(out, "beta_vae_score")
    assert len(lines) == 9 and lines[0].startswith("beta_vae_score: ") and " images (" in lines[0], out
    assert all(int(LINE.match(line)[3]) == 2 * 8 * 150 for line in lines)  # both images of 8 pairs per point
    assert "beta_vae_score: 2400 images in" in out
    assert "beta_vae_score: fitting the classifier on 100 points took" in out
    dis.factor_vae_score(lambda x: x, data, batch_size=8, num_train=100, num_eval=50, num_variance_estimate=200,
                         verbose=2)
    lines = _progress_lines(capsys.readouterr().out, "factor_vae_score")
    assert len(lines) == 9 and LINE.match(lines[0])[3] == str(200 + 8 * 150)
    dis.mutual_information_gap(lambda x: x, data, num_train=1000, verbose=2)
    assert len(_progress_lines(capsys.readouterr().out, "mig")) == 9
    # the evaluator passes options["verbose"] on, and evaluate_model resolves "auto" for it
    seen = []
    monkeypatch.setattr(dis, "disentanglement_scores", lambda *args, **kwargs: seen.append(kwargs) or {})
    source = type("Source", (), {"factors": lambda self: data})()
    model = type("Encoder", (), {"encode": lambda self, x: x})()
    dis.disentanglement_metrics(model, {"source": source, "options": {"verbose": 0}})
    dis.disentanglement_metrics(model, {"source": source, "options": {}})
    assert seen[0]["verbose"] == 0 and "verbose" not in seen[1]
    options = []
    monkeypatch.setattr(report, "EVALUATORS", [lambda model, context: options.append(context["options"]) or {}])
    monkeypatch.setattr(report, "_likelihood_units", lambda model, metrics: {})
    for given, expected in ((0, 0), (1, 1), ("auto", 2)):
        report.evaluate_model(model, None, verbose=given)
        assert options[-1]["verbose"] == expected
    with pytest.raises(ValueError, match="verbose must be"):
        report.evaluate_model(model, None, verbose="loud")


def test_probe_shows_encoding_progress_and_times_the_fit(capsys):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 400)
    codes = labels[:, None] + 0.1 * rng.normal(size=(400, 2))
    args = (lambda x: x, codes[:300], labels[:300], codes[300:], labels[300:])
    quiet = linear_probe_accuracy(*args, num_train=200, batch_size=30, verbose=0)
    assert capsys.readouterr().out == ""
    assert linear_probe_accuracy(*args, num_train=200, batch_size=30, verbose=2) == quiet
    out = capsys.readouterr().out
    lines = _progress_lines(out, "linear_probe")
    assert len(lines) >= 8 and all(LINE.match(line)[3] == "300" for line in lines), out  # 200 + 100 images
    assert "linear_probe: 300 images in" in out
    assert re.search(r"^linear_probe: fitting the logistic regression on 200 codes \.\.\.$", out, re.M)
    assert re.search(r"^linear_probe: fitting the logistic regression on 200 codes took [\d.]+ s$", out, re.M)


def test_llgae_start_announces_k_means_and_shows_the_clusters_pca(digits, tiny_model, capsys):
    from tfvae.models import LLGAE

    images = digits[0][:300]
    model = tiny_model(LLGAE, latent_dim=2, components=5)
    counts = model.initialize_from_data(images, verbose=0)
    assert capsys.readouterr().out == ""
    again = tiny_model(LLGAE, latent_dim=2, components=5)
    np.testing.assert_array_equal(again.initialize_from_data(images, verbose=2), counts)
    np.testing.assert_allclose(again.bases.numpy(), model.bases.numpy())
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "initialize_from_data: k-means into 5 clusters of 300 images ..."
    assert re.fullmatch(r"initialize_from_data: k-means into 5 clusters of 300 images took [\d.]+ s", lines[1])
    assert [LINE.match(line).group(2, 3, 4) for line in lines[2:-1]] == [(str(k), "5", "clusters") for k in range(1, 5)]
    assert lines[-1].startswith("initialize_from_data: PCA of 5 clusters in")
    with pytest.raises(ValueError, match="verbose must be"):
        model.initialize_from_data(images, verbose="yes")


# --------------------------------------------------------------------------------- the CLI

@pytest.mark.filterwarnings("ignore:Skipping variable loading for optimizer")  # never stepped: nothing to load
def test_evaluate_shows_progress_unless_quiet(tmp_path, tiny_model, capsys, monkeypatch):
    """A run directory written by hand (no training): a digits VAE and its config.json."""
    from tfvae.evaluation.likelihood import log_likelihood_metrics
    from tfvae.models import VAE

    run = tmp_path / "run"
    run.mkdir()
    model = tiny_model(VAE, latent_dim=2)
    model.compile(optimizer="adam")                              # as tfvae train saves it
    model.save(run / "model.keras")
    settings = dict(dataset="digits", latent_dim=2)
    (run / "config.json").write_text(json.dumps({"tfvae": "run", "settings": settings}))
    # the 1500 training digits: three batches of 500, so progress lines with the time left
    argv = ["evaluate", str(run), "--split", "train", "--log-likelihood-samples", "3", "--evaluation", "full"]
    assert cli.main(argv + ["--quiet"]) == 0
    quiet = capsys.readouterr()
    assert json.loads(quiet.out)["log_likelihood_samples"] == 3   # stdout: the JSON and nothing else
    assert quiet.err == ""
    monkeypatch.setattr(report, "EVALUATORS", [log_likelihood_metrics])  # the stage that shows progress, alone
    assert cli.main(argv) == 0
    shown = capsys.readouterr()
    lines = shown.err.splitlines()                               # progress: stderr
    assert [LINE.match(line).group(2, 3, 4) for line in lines[:-1]] == [("1", "3", "batches"), ("2", "3", "batches")]
    assert lines[-1].startswith("log_likelihood: 1500 examples in"), shown.err
    assert json.loads(shown.out)["test_log_likelihood"] == pytest.approx(json.loads(quiet.out)["test_log_likelihood"])
