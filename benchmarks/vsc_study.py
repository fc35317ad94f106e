"""Variational Sparse Coding: the published reproduction's protocol, the accuracy/sparsity
frontier, learned slab probabilities and the ELBO study (issue 15).

One training protocol for every model, the published PyTorch reproduction's as it was run
(REFERENCES.md section 2): MLP 784-400-(3J) encoder and J-400-784 decoder (ReLU), Bernoulli
likelihood (BCE) on the grey levels, batch 32, 11 epochs (20,625 steps), Adam 1e-3, no warm-up,
VSC relaxation sharpness c = 50 fixed (their value). Each trained model is then measured in
every way the four parts need:

1. **reproduction protocol** — their classifier on the *ungated* slab mean μ (VAE: the posterior
   mean): one Linear layer with a ReLU on its logits, softmax cross-entropy, SGD lr 1e-3,
   momentum 0.9, 20 epochs, batch 32 (REFERENCES does not give their batch size), PyTorch's
   default Linear initialisation, on 5,000 random labelled training images, tested on all
   10,000 test images (:func:`reproduction_classifier`; mean of 3 classifier seeds);
2. **the honest picture** — our logistic-regression probe
   (:func:`tfvae.evaluation.linear_probe_accuracy`) on the codes VSC actually gives
   (:meth:`tfvae.models.VSC.encode`, exact zeros) against their mean number of active
   dimensions, beside the VAE's posterior means truncated to the k dimensions of largest KL
   (:func:`tfvae.evaluation.kl_per_dimension` on 10,000 training images) for matching k;
3. **learned slab probabilities** — ``VSC(learn_alpha=True)`` (α_j per dimension, empirical
   Bayes / MAP under a Beta hyperprior), the same probe on its sparse codes;
4. **ELBO study** — the test ELBO (exact samples; nats of a Bernoulli on grey levels, not a
   normalised log-likelihood) against latent size.

Plans (``--plan``): ``default`` (MNIST and Fashion-MNIST; VAE and VSC α = 0.01 at latent 8, 48,
96, 200; VSC α = 0.05, 0.2, 0.5 and learned α (flat and Beta(1, N) hyperpriors) at 200: 26
models), ``full`` (adds latent 20 and 400 for the VAE and VSC α = 0.01, 0.2, 0.5, and α = 0.2 /
0.5 at 8, 48, 96: 54 models), ``quick`` (a smoke run: MNIST, latent 8, 60 steps without XLA,
small probes; the frontier at latent 8). The default plan ran in 55 minutes on two idle cores
(2026-12-01, results_vsc.md; 66-162 s of training per model, the batch-32 step keeps about one
core busy). Jobs run in the
order of the plan, most important first, and ``results.json`` is rewritten (atomically) after
each one and read back on start, so an interrupted run resumes; ``--report-only`` redraws the
tables and figures from it.

Beyond the plans, ``--only`` runs named jobs: ``vsc-<alpha>``, ``vsc-learned[-b<b>][-i<alpha>]``
and ``thresholded-<λ>`` (:class:`ThresholdedVAE`, a prototype tried for part 3). ``--seed-runs``
adds a table of the models trained under other ``--seed`` values (each in its own ``--out``);
``--gate-sweep`` reads the saved fixed-α VSC codes with stricter gates.

    python benchmarks/vsc_study.py                          # default plan
    python benchmarks/vsc_study.py --plan full
    python benchmarks/vsc_study.py --quick
    python benchmarks/vsc_study.py --report-only
    python benchmarks/vsc_study.py --seed 1 --out benchmarks/out/vsc_study_seed1 --only mnist/vsc-0.01/200
    python benchmarks/vsc_study.py --report-only --seed-runs benchmarks/out/vsc_study_seed1

Writes to ``--out`` (default benchmarks/out/vsc_study/, ``vsc_study_quick`` for the quick plan):
``results.json``, ``tables.md``, ``frontier.png``, ``elbo_vs_latent.png``, ``reproduction.png``
and the ``.keras`` models; ``--fresh`` starts over.
"""

import argparse
import json
import pathlib
import sys
import time
import warnings

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (before TensorFlow)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfvae import run  # noqa: E402
from tfvae.evaluation import encode_all, kl_per_dimension, linear_probe_accuracy, sparsity  # noqa: E402
from tfvae.files import save_model_atomically, write_text_atomically  # noqa: E402
from tfvae.models import VAE, VSC  # noqa: E402
from tfvae.models.options import Option, number  # noqa: E402

DATASETS = ("mnist", "fashion_mnist")
EPOCHS, BATCH, TRAIN_SIZE = 11, 32, 60_000
SHARPNESS = 50.0

#: the published reproduction (REFERENCES.md section 2), accuracy of its classifier on μ, %
REPRODUCTION = {
    "mnist": {"vae": {8: 69.4, 48: 86.9, 96: 87.5, 200: 86.6},
              "vsc-0.01": {8: 68.2, 48: 81.1, 96: 87.0, 200: 91.8},
              "vsc-0.5": {8: 84.3, 48: 86.4, 96: 85.8, 200: 86.6}},
    "fashion_mnist": {"vae": {8: 72.9, 48: 73.1, 96: 75.5, 200: 67.1},
                      "vsc-0.01": {8: 66.9, 48: 71.5, 96: 76.7, 200: 79.7}},
}
#: issue 15, part 3: sparse codes within 2 points of the VAE's probe, at most 10 % non-zero
TARGET_PROBE = {"mnist": 0.897, "fashion_mnist": 0.791}
TARGET_NONZERO = 0.10
#: k for the VAE truncated to its k most informative dimensions
TRUNCATIONS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40)
REPRO_LATENTS = (8, 48, 96, 200)
ALPHAS = (0.01, 0.05, 0.2, 0.5)


@keras.saving.register_keras_serializable("vsc_study")
class ThresholdedVAE(VAE):
    """A prototype tried for part 3, kept in the benchmark (not the library) because it does not
    reach the target either: Fallah and Rozell's (ICML 2022) thresholded samples on a Gaussian.

    The latent s ~ N(0, I) reaches the decoder through the soft threshold
    h_λ(s) = sign(s) max(|s| − λ, 0), so z = h_λ(s) has a spike-and-slab prior with
    P(z_j = 0) = 1 − 2Φ(−λ). h_λ belongs to the generative model, p(x|s) = p_θ(x | h_λ(s)), so the
    VAE's ELBO with KL(q(s|x) ‖ N(0, I)) is a true lower bound on log p(x), and every path that
    calls :meth:`likelihood` (training, ``evaluate``, importance sampling, ``sample``) uses it.
    Gradients are the exact pathwise ones (h_λ is continuous and piecewise linear; zero inside
    the dead zone), not the paper's straight-through estimate. The sparse code is the posterior
    median of z, h_λ(μ) (h_λ is monotone): exactly zero where |μ_j| ≤ λ. ``encode`` stays the
    mean of q(s|x), the base contract."""

    OPTIONS = {"dead_zone": Option(0.3, number(minimum=0.0), "soft threshold λ >= 0 on the latent")}

    def soft_threshold(self, values):
        return tf.sign(values) * tf.nn.relu(tf.abs(values) - self.dead_zone)

    def likelihood(self, codes, training=False):
        return super().likelihood(self.soft_threshold(tf.convert_to_tensor(codes, tf.float32)), training)

    def sparse_codes(self, images):
        """h_λ(μ), the posterior median of z = h_λ(s): ``[batch, latent]``, exact zeros."""
        return self.soft_threshold(self.encode(images))


def spec(name):
    """Model settings from a job name: ``vae``, ``vsc-<alpha>``, or ``vsc-learned`` (α_j learned,
    started at 0.5, flat Beta(1, 1)) with optional ``-b<b>`` (Beta(1, b·N): ``-b1`` is Beta(1, 60000))
    and ``-i<alpha>`` (started at alpha), e.g. ``vsc-learned-i0.9``."""
    if name == "vae":
        return {"model": "vae"}
    if name.startswith("thresholded-"):
        return {"model": "thresholded", "dead_zone": float(name.split("-")[1])}
    if name.startswith("vsc-learned"):
        settings = {"model": "vsc", "alpha": 0.5, "learn_alpha": True, "alpha_prior_b": 1.0}
        for token in name[len("vsc-learned"):].split("-")[1:]:
            if token[:1] == "b":
                settings["alpha_prior_b"] = float(token[1:]) * TRAIN_SIZE
            elif token[:1] == "i":
                settings["alpha"] = float(token[1:])
            else:
                raise SystemExit(f"unknown part {token!r} of the model name {name!r}")
        return settings
    return {"model": "vsc", "alpha": float(name.split("-")[1])}


def plan(name):
    """[(dataset, model name, latent)], most important first."""
    if name == "quick":
        return [("mnist", m, 8) for m in ("vae", "vsc-0.01", "vsc-learned")]
    jobs = []
    for dataset in DATASETS:  # the headline: latent 200, parts 1-3
        jobs += [(dataset, m, 200) for m in ("vae", "vsc-0.01", "vsc-learned")]
    for dataset in DATASETS:  # the frontier
        jobs += [(dataset, f"vsc-{a:g}", 200) for a in ALPHAS[1:]] + [(dataset, "vsc-learned-b1", 200)]
    for latent in (96, 48, 8):  # the reproduction's other latent sizes
        for dataset in DATASETS:
            jobs += [(dataset, m, latent) for m in ("vae", "vsc-0.01")]
    if name == "full":
        for latent in (20, 400):
            for dataset in DATASETS:
                jobs += [(dataset, m, latent) for m in ("vae", "vsc-0.01", "vsc-0.2", "vsc-0.5")]
        for latent in (8, 48, 96):
            for dataset in DATASETS:
                jobs += [(dataset, m, latent) for m in ("vsc-0.2", "vsc-0.5")]
    return jobs


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    harness.add_arguments(parser, __file__, quick="same as --plan quick", resume=True)
    parser.add_argument("--plan", choices=("default", "full", "quick"), default="default")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, help="only these data sets")
    parser.add_argument("--only", nargs="+", metavar="DATASET/MODEL/LATENT",
                        help="run just these jobs, e.g. mnist/vsc-learned/200")
    parser.add_argument("--max-jobs", type=int, default=None, help="stop after this many new jobs")
    parser.add_argument("--report-only", action="store_true", help="tables and figures from results.json")
    parser.add_argument("--gate-sweep", action="store_true",
                        help="read the saved fixed-alpha VSC codes at the frontier latent with stricter gates "
                             "(gate_sweep.json), then report")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seed-runs", nargs="+", type=pathlib.Path, default=(), metavar="OUT",
                        help="--out folders of runs with other --seed values: the report adds a table "
                             "of every model trained under more than one seed")
    parser.add_argument("--figures", type=pathlib.Path, default=None,
                        help="also copy the figures here as vsc_<name>.png (e.g. benchmarks/figures)")
    args = harness.parse(parser, argv)
    if args.plan == "quick" and not args.quick:  # --plan quick is --quick (its --out too)
        return parse_args(list(sys.argv[1:] if argv is None else argv) + ["--quick"])
    if args.quick:
        args.plan = "quick"
    args.steps = 60 if args.plan == "quick" else EPOCHS * TRAIN_SIZE // BATCH
    args.probe_train = 500 if args.plan == "quick" else 5000
    args.test_examples = 1000 if args.plan == "quick" else None
    args.classifier_epochs = 2 if args.plan == "quick" else 20
    args.classifier_seeds = 1 if args.plan == "quick" else 3
    args.train_limit = 5000 if args.plan == "quick" else None
    args.frontier_latent = 8 if args.plan == "quick" else 200
    jobs = plan(args.plan)
    if args.datasets:
        jobs = [j for j in jobs if j[0] in args.datasets]
    if args.only:
        jobs = [tuple(_split_key(k)) for k in args.only]
    args.jobs = jobs
    args.datasets = sorted({j[0] for j in jobs}, key=DATASETS.index)
    return args


def _split_key(key):
    dataset, name, latent = key.split("/")
    if dataset not in DATASETS:
        raise SystemExit(f"unknown data set in {key!r}")
    spec(name)
    return dataset, name, int(latent)


def key(dataset, name, latent):
    return f"{dataset}/{name}/{latent}"


# ------------------------------------------------------------------------------ training

def build(dataset, name, latent, args):
    """The protocol's model (seeded): a Bernoulli decoder on grey levels, one hidden layer of 400;
    VSC's sharpness fixed and its hyperprior weighed by N = 60,000 (the quick plan's too)."""
    settings = dict(spec(name))
    kind = settings.pop("model")
    options = dict(network_options={"hidden_units": (400,)}, validate_inputs=False)
    if kind == "thresholded":  # the prototype, not a tfvae model
        keras.utils.set_random_seed(args.seed)
        return ThresholdedVAE(image_shape=(28, 28, 1), latent_dim=latent, likelihood="bernoulli", **settings, **options)
    if kind == "vsc":
        settings.update(sharpness_start=SHARPNESS, sharpness_end=SHARPNESS)
        options["dataset_size"] = TRAIN_SIZE
    config = run.RunConfig(model=kind, dataset=dataset, latent_dim=latent, likelihood="bernoulli", binarize="none",
                           batch_size=BATCH, seed=args.seed, **settings)
    return harness.build_model(config, run.open_source(config), **options)


def train(model, images, label, args):
    data = (tf.data.Dataset.from_tensor_slices(images).shuffle(len(images), seed=args.seed)
            .batch(BATCH, drop_remainder=True).repeat())
    reports = 1 if args.plan == "quick" else EPOCHS
    steps = args.steps // reports
    # quick: no XLA, whose compilation would take most of a smoke run
    model.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=min(125, steps),
                  jit_compile=args.plan != "quick")
    start = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the grey-level Bernoulli warning: the protocol's choice
        history = model.fit(data, epochs=reports, steps_per_epoch=steps, verbose=0,
                            callbacks=[harness.epoch_log(label)])
    return time.time() - start, {k: float(v[-1]) for k, v in history.history.items()}


# ---------------------------------------------------------------------------- evaluation

def slab_means(model, images):
    """The reproduction's classifier input: VSC's ungated slab means μ (dense), the VAE's μ."""
    return np.split(np.asarray(model.encode_params(tf.convert_to_tensor(images))),
                    model.posterior_params_per_latent(), axis=-1)[0]


def classifier_gradients(x, onehot, weights, bias):
    """Gradients of the mean softmax cross-entropy of the logits ``relu(x W + b)`` with respect
    to W and b, and the loss (the ReLU passes no gradient where x W + b ≤ 0)."""
    pre = x @ weights + bias
    logits = np.maximum(pre, 0.0)
    logits = logits - logits.max(axis=1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    grad_pre = (np.exp(log_probs) - onehot) * (pre > 0) / len(x)
    return x.T @ grad_pre, grad_pre.sum(axis=0), float(-(onehot * log_probs).sum(axis=1).mean())


def reproduction_classifier(train_x, train_y, test_x, test_y, epochs=20, batch_size=32, lr=1e-3,
                            momentum=0.9, seed=0, num_classes=10):
    """The reproduction's classifier, written out in numpy: ``relu(x W + b)`` as logits, softmax
    cross-entropy (mean over the batch), SGD with momentum as PyTorch does it (buf = m·buf + g,
    p −= lr·buf), PyTorch's default nn.Linear initialisation U(±1/√fan_in) for W and b, a fresh
    shuffle each epoch. Prediction is the first argmax of ``relu(x W + b)``, so an example whose
    logits are all ≤ 0 (dead) is called class 0, as torch.max does on ties. Returns the test
    accuracy in [0, 1]."""
    rng = np.random.default_rng(seed)
    train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
    dim = train_x.shape[1]
    bound = 1.0 / np.sqrt(dim)
    weights = rng.uniform(-bound, bound, (dim, num_classes))
    bias = rng.uniform(-bound, bound, num_classes)
    velocity_w, velocity_b = np.zeros_like(weights), np.zeros_like(bias)
    onehot = np.eye(num_classes)[train_y]
    for _ in range(epochs):
        order = rng.permutation(len(train_x))
        for start in range(0, len(order), batch_size):
            batch = order[start:start + batch_size]
            grad_w, grad_b, _ = classifier_gradients(train_x[batch], onehot[batch], weights, bias)
            velocity_w = momentum * velocity_w + grad_w
            velocity_b = momentum * velocity_b + grad_b
            weights -= lr * velocity_w
            bias -= lr * velocity_b
    predicted = np.argmax(np.maximum(test_x @ weights + bias, 0.0), axis=1)
    return float(np.mean(predicted == test_y))


def evaluate(model, name, arrays, args):
    train_images, train_labels, test_images, test_labels = arrays
    result = {}
    # 1. their classifier on μ, on their kind of subset (5,000 random training images)
    accuracies = []
    for seed in range(args.classifier_seeds):
        subset = np.random.default_rng(seed).choice(len(train_images), args.probe_train, replace=False)
        accuracies.append(reproduction_classifier(
            slab_means(model, train_images[subset]), train_labels[subset],
            np.concatenate([slab_means(model, b) for b in np.array_split(test_images, 20)]), test_labels,
            epochs=args.classifier_epochs, seed=seed))
    result["repro_classifier_on_mu"] = float(np.mean(accuracies))
    result["repro_classifier_on_mu_seeds"] = accuracies
    # 2./3. our probe on the codes the model gives (VSC: sparse), their sparsity
    codes_of = model.sparse_codes if isinstance(model, ThresholdedVAE) else model
    result["probe_accuracy"] = linear_probe_accuracy(codes_of, train_images, train_labels, test_images,
                                                     test_labels, num_train=args.probe_train, seed=args.seed)
    codes = encode_all(codes_of, test_images)
    stats = sparsity(codes)
    result.update(nonzero_fraction=stats["nonzero_fraction"], mean_active_dims=stats["mean_active_dims"],
                  dims_used=stats["dims_used"])
    usage = (codes != 0).mean(axis=0)
    result["dims_always_on"] = int((usage > 0.99).sum())          # a VAE-like dense part
    result["dims_example_specific"] = int(((usage > 0) & (usage <= 0.99)).sum())
    result["active_from_example_specific"] = float(usage[usage <= 0.99].sum())
    # 4. the test ELBO, exact samples
    test = model.evaluate(test_images, batch_size=500, verbose=0, return_dict=True)
    result.update(test_elbo=float(test["elbo"]), test_reconstruction=float(test["reconstruction"]),
                  test_kl=float(test["kl"]))
    if isinstance(model, VSC):
        alphas = model.slab_prior_probabilities().numpy()
        result["alpha_j_quantiles"] = [float(q) for q in np.quantile(alphas, [0, 0.5, 0.9, 0.95, 1])]
        result["alpha_j_above_0.5"] = int((alphas > 0.5).sum())
    elif not isinstance(model, ThresholdedVAE):
        kl = kl_per_dimension(model, train_images[:10_000])  # chosen on training images
        order = np.argsort(-kl)
        result["kl_per_dim_sorted"] = [float(v) for v in kl[order]]
        result["dims_kl_above_0.1"] = int((kl > 0.1).sum())
        truncated = {}
        for k in (k for k in TRUNCATIONS if k <= model.latent_dim):
            keep = order[:k]
            truncated[str(k)] = linear_probe_accuracy(
                lambda x, keep=keep: np.asarray(model.encode(x))[:, keep], train_images, train_labels,
                test_images, test_labels, num_train=args.probe_train, seed=args.seed)
        result["probe_truncated"] = truncated
    return result


GATE_THRESHOLDS = (0.5, 0.55, 0.6, 0.7, 0.9)


def gate_sweep(results, args):
    """Every saved fixed-α VSC model at the frontier latent, its codes read with stricter gates:
    exact zeros where γ < t for each t in :data:`GATE_THRESHOLDS` (VSC's ``threshold`` option; 0.5
    is the default). It tells confident entries (γ near 1) from dimensions the model left at the
    prior, whose γ sits near α: at α = 0.5, on both sides of the default gate. Returns
    ``{key: {"gamma_quantiles": [...], "by_threshold": {t: {mean_active_dims, probe_accuracy}}}}``."""
    sweep, arrays = {}, {}
    for label in results:
        dataset, name, latent = label.split("/")
        if int(latent) != args.frontier_latent or not name.startswith("vsc-") or name.startswith("vsc-learned"):
            continue
        if dataset not in arrays:
            arrays[dataset] = load_arrays(dataset, args)
        train_images, train_labels, test_images, test_labels = arrays[dataset]
        model = keras.saving.load_model(args.out / f"{dataset}-{name}-{latent}.keras")
        gammas = np.concatenate([model.slab_probabilities(b).numpy() for b in np.array_split(test_images, 20)])
        rows = {}
        for threshold in GATE_THRESHOLDS:
            model.threshold = threshold  # what encode() reads
            rows[str(threshold)] = dict(
                mean_active_dims=sparsity(encode_all(model, test_images))["mean_active_dims"],
                probe_accuracy=linear_probe_accuracy(model, train_images, train_labels, test_images, test_labels,
                                                     num_train=args.probe_train, seed=args.seed, verbose=0))
        sweep[label] = dict(gamma_quantiles=[float(q) for q in np.quantile(gammas, [0.1, 0.5, 0.9, 0.99])],
                            by_threshold=rows)
        print(f"[{label}] gate sweep " + "  ".join(f"γ≥{t}: {r['mean_active_dims']:.1f} active, "
                                                  f"{_pct(r['probe_accuracy'])} %" for t, r in rows.items()), flush=True)
    return sweep


def gate_sweep_table(sweep):
    if not sweep:
        return []
    lines = ["### Stricter gates on the same codes", "",
             "The saved fixed-α VSC models, their sparse codes with exact zeros where γ < t (VSC's `threshold`; "
             "0.5 by default): mean active entries per test image and our probe. γ quantiles (10, 50, 90, 99 %) "
             "over all test entries.", "",
             "| model | γ quantiles | " + " | ".join(f"γ ≥ {t}: active, probe %" for t in GATE_THRESHOLDS) + " |",
             "| --- | --- |" + " ---: |" * len(GATE_THRESHOLDS)]
    for label, entry in sweep.items():
        cells = [f"{r['mean_active_dims']:.1f}, {_pct(r['probe_accuracy'])}" for r in entry["by_threshold"].values()]
        lines.append(f"| {label} | {', '.join(f'{q:.2f}' for q in entry['gamma_quantiles'])} | "
                     + " | ".join(cells) + " |")
    return lines + [""]


def load_arrays(dataset, args):
    """(train images, labels, test images, labels): the grey levels, the first ``train_limit``
    training and ``test_examples`` test images."""
    config = run.RunConfig(dataset=dataset, binarize="none", limit=args.train_limit, seed=args.seed)
    return harness.arrays(run.open_source(config), args.test_examples)


# ----------------------------------------------------------------------------- reporting

def _pct(value, digits=1):
    return "-" if value is None else f"{100 * value:.{digits}f}"


def _num(value):
    return "-" if value is None else f"{value:.1f}"


def tables(results, header, seed_runs=None, sweep=None):
    get, F = results.get, header["frontier_latent"]
    lines = [f"Command: `{header['command']}`; started {header['date']}; machine {header['machine']}, "
             f"{header['cores']} cores, {header['platform']}; load average at start {header['load_average']}. "
             "Per model: training seconds and the "
             "load average before it in results.json.", ""]
    # part 1
    lines += ["### Reproduction protocol", "",
              "Their classifier (Linear + ReLU on the logits, SGD 1e-3 momentum 0.9, 20 epochs, batch 32) "
              "on the ungated slab mean μ (VAE: posterior mean), 5,000 random training images, all "
              "10,000 test images; ours is the mean of 3 classifier seeds. Accuracy %.", ""]
    for dataset in DATASETS:
        reference = REPRODUCTION[dataset]
        rows = [m for m in ("vae", "vsc-0.01", "vsc-0.5") if m in reference or any(
            key(dataset, m, lat) in results for lat in REPRO_LATENTS)]
        lines += [f"**{dataset}**", "", "| model | " + " | ".join(f"J={lat} ours / theirs" for lat in REPRO_LATENTS)
                  + " |", "| --- |" + " ---: |" * len(REPRO_LATENTS)]
        for m in rows:
            cells = []
            for lat in REPRO_LATENTS:
                ours = get(key(dataset, m, lat), {}).get("repro_classifier_on_mu")
                theirs = reference.get(m, {}).get(lat)
                cells.append(f"{_pct(ours)} / {'-' if theirs is None else theirs}")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    # part 2
    lines += [f"### Accuracy against active dimensions (latent {F})", "",
              "Our logistic-regression probe (scikit-learn, C = 1) on the codes the model gives: VSC's "
              "sparse codes (`encode`, exact zeros where γ < 0.5), the VAE's posterior means truncated to the "
              "k dimensions of largest KL (chosen on 10,000 training images). Active = non-zero entries per "
              "test example; always-on = dimensions non-zero for > 99 % of test examples.", ""]
    for dataset in DATASETS:
        lines += [f"**{dataset}**", "", "| codes | mean active dims | non-zero | probe % | always-on / used dims "
                  "| test ELBO | their classifier on μ % |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        names = ([f"vsc-{a:g}" for a in fixed_alphas(results, dataset, F)] + learned_names(results, dataset, F)
                 + thresholded_names(results, dataset, F))
        for m in names:
            r = get(key(dataset, m, F))
            if r:
                label = (learned_label(m) if m.startswith("vsc-learned") else
                         f"thresholded N(0, 1), λ = {m.split('-')[1]} (prototype)" if m.startswith("thresholded")
                         else f"VSC α = {m[4:]}")
                lines.append(f"| {label} | {r['mean_active_dims']:.1f} | {_pct(r['nonzero_fraction'])} % | "
                             f"{_pct(r['probe_accuracy'])} | {r['dims_always_on']} / {r['dims_used']} | "
                             f"{_num(r['test_elbo'])} | {_pct(r['repro_classifier_on_mu'])} |")
        vae = get(key(dataset, "vae", F))
        if vae:
            for k, acc in vae["probe_truncated"].items():
                lines.append(f"| VAE, top {k} dims by KL | {k} | {_pct(int(k) / F)} % | {_pct(acc)} | - | - | - |")
            lines.append(f"| VAE, all {F} (means) | {F} | 100 % | {_pct(vae['probe_accuracy'])} | - | "
                         f"{_num(vae['test_elbo'])} | {_pct(vae['repro_classifier_on_mu'])} |")
            lines.append(f"| (VAE dimensions with KL > 0.1 nats: {vae['dims_kl_above_0.1']}) | | | | | | |")
        lines.append("")
    # part 3
    lines += ["### Sparse codes that classify (targets)", ""]
    for dataset in DATASETS:
        for m in learned_names(results, dataset, F):
            r = get(key(dataset, m, F))
            if r:
                ok_probe = r["probe_accuracy"] >= TARGET_PROBE[dataset]
                ok_sparse = r["nonzero_fraction"] <= TARGET_NONZERO
                lines.append(f"- {dataset} {m}: probe {_pct(r['probe_accuracy'])} % (target ≥ "
                             f"{_pct(TARGET_PROBE[dataset])}: {'MET' if ok_probe else 'NOT MET'}), non-zero "
                             f"{_pct(r['nonzero_fraction'])} % (target ≤ 10 %: {'MET' if ok_sparse else 'NOT MET'}); "
                             f"{r['mean_active_dims']:.1f} active per example, of which "
                             f"{r['active_from_example_specific']:.1f} from example-specific dimensions; "
                             f"α_j quantiles (0, .5, .9, .95, 1) "
                             f"{', '.join(f'{q:.3g}' for q in r['alpha_j_quantiles'])}")
    lines.append("")
    # part 4
    latents = sorted({int(k.split("/")[2]) for k in results})
    order = ("vae", "vsc-0.01", "vsc-0.05", "vsc-0.2", "vsc-0.5")
    models = sorted({k.split("/")[1] for k in results},
                    key=lambda m: (order.index(m) if m in order else len(order), m))
    lines += ["### Test ELBO against latent size", "",
              "Nats per test image, exact samples (1 per image); the Bernoulli on grey levels is the "
              "protocol's objective, not a normalised log-likelihood.", ""]
    for dataset in DATASETS:
        lines += [f"**{dataset}**", "", "| model | " + " | ".join(f"J={lat}" for lat in latents) + " |",
                  "| --- |" + " ---: |" * len(latents)]
        for m in models:
            lines.append(f"| {m} | " + " | ".join(_num(get(key(dataset, m, lat), {}).get("test_elbo"))
                                                 for lat in latents) + " |")
        lines.append("")
    lines += gate_sweep_table(sweep or {})
    if seed_runs:
        lines += seed_tables(seed_runs)
    return "\n".join(lines)


def seed_tables(runs):
    """Models trained under several seeds (``{seed: results}``): each seed's figures and their mean,
    and part 1's target on the mean over model seeds."""
    every = dict.fromkeys(k for results in runs.values() for k in results)  # in order of first appearance
    keys = [k for k in every if sum(k in results for results in runs.values()) > 1]
    if not keys:
        return []
    seeds = sorted(runs)
    lines = ["### Model seeds", "",
             f"Models trained under several seeds ({', '.join(map(str, seeds))}; '-' where a seed was not run). "
             "Each cell: seed values, then their mean. Their classifier's value per seed is already the mean of "
             "3 classifier seeds.", "",
             "| model | their classifier on μ % | theirs | probe % | active dims | test ELBO |",
             "| --- | --- | ---: | --- | --- | --- |"]
    for k in keys:
        dataset, name, latent = k.split("/")
        per_seed = [runs[s].get(k) for s in seeds]

        def cells(field, scale, digits):
            values = [None if r is None else scale * r[field] for r in per_seed]
            present = [v for v in values if v is not None]
            shown = " / ".join("-" if v is None else f"{v:.{digits}f}" for v in values)
            return f"{shown}; **{np.mean(present):.{digits}f}**", np.mean(present)

        repro, repro_mean = cells("repro_classifier_on_mu", 100, 1)
        theirs = REPRODUCTION.get(dataset, {}).get(name, {}).get(int(latent))
        verdict = "" if theirs is None else (" (met)" if repro_mean >= theirs else " (not met)")
        lines.append(f"| {k} | {repro}{verdict} | {'-' if theirs is None else theirs} | "
                     f"{cells('probe_accuracy', 100, 1)[0]} | {cells('mean_active_dims', 1, 1)[0]} | "
                     f"{cells('test_elbo', 1, 1)[0]} |")
    return lines + [""]


def _names_at(results, dataset, latent):
    """The model names with results for this data set and latent size."""
    return [k.split("/")[1] for k in results if k.startswith(f"{dataset}/") and k.endswith(f"/{latent}")]


def fixed_alphas(results, dataset, latent):
    """Every fixed α with results at this latent size (:data:`ALPHAS` and any run with ``--only``)."""
    return sorted({spec(n)["alpha"] for n in _names_at(results, dataset, latent)
                   if n.startswith("vsc-") and not n.startswith("vsc-learned")})


def learned_names(results, dataset, latent):
    return sorted(n for n in _names_at(results, dataset, latent) if n.startswith("vsc-learned"))


def thresholded_names(results, dataset, latent):
    """The thresholded prototypes run at this latent size, by increasing λ."""
    return sorted((n for n in _names_at(results, dataset, latent) if n.startswith("thresholded-")),
                  key=lambda n: spec(n)["dead_zone"])


def learned_label(name):
    settings = spec(name)
    b = settings["alpha_prior_b"]
    prior = "Beta(1, 1)" if b == 1 else f"Beta(1, {b / TRAIN_SIZE:g}N)"
    return f"VSC learned α_j from {settings['alpha']:g}, {prior}"


def _footer(fig, header):
    fig.text(0.01, 0.005, f"{header['command']} | {header['date'][:16]} | {header['machine']} {header['cores']} cores | "
             f"load avg {header['load_average']}", fontsize=6, color="grey")


def _two_panels():
    """One panel per data set, drawn with matplotlib's Agg backend (headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, 2, figsize=(11, 4.2))


def _save_two_panels(fig, header, path):
    """The run's command, date, machine and load under the panels; saved as PNG."""
    import matplotlib.pyplot as plt

    _footer(fig, header)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_frontier(results, header, path):
    F = header["frontier_latent"]
    fig, axes = _two_panels()
    for ax, dataset in zip(axes, DATASETS):
        vae = results.get(key(dataset, "vae", F))
        if vae:
            ks = [int(k) for k in vae["probe_truncated"]]
            ax.plot(ks, [100 * v for v in vae["probe_truncated"].values()], "o-", color="C0",
                    label="VAE, top-k dims by KL")
            ax.axhline(100 * vae["probe_accuracy"], color="C0", ls=":", lw=1, label=f"VAE, all {F} means")
        points = [(a, results.get(key(dataset, f"vsc-{a:g}", F))) for a in fixed_alphas(results, dataset, F)]
        points = [(a, r) for a, r in points if r]
        if points:
            ax.plot([r["mean_active_dims"] for _, r in points], [100 * r["probe_accuracy"] for _, r in points],
                    "s--", color="C1", label="VSC fixed α (sparse codes)")
            for a, r in points:
                ax.annotate(f"α={a:g}", (r["mean_active_dims"], 100 * r["probe_accuracy"]), fontsize=7,
                            xytext=(3, -9), textcoords="offset points")
        points = [r for r in (results.get(key(dataset, m, F)) for m in thresholded_names(results, dataset, F)) if r]
        if points:
            ax.plot([r["mean_active_dims"] for r in points], [100 * r["probe_accuracy"] for r in points],
                    "v:", color="C2", label="thresholded N(0, 1), λ (prototype)")
            for m, r in zip(thresholded_names(results, dataset, F), points):
                ax.annotate(f"λ={spec(m)['dead_zone']:g}", (r["mean_active_dims"], 100 * r["probe_accuracy"]),
                            fontsize=7, xytext=(3, 4), textcoords="offset points", color="C2")
        for m, style in zip(learned_names(results, dataset, F), "D^vP*"):
            r, label = results.get(key(dataset, m, F)), learned_label(m)
            if r:
                ax.plot([r["mean_active_dims"]], [100 * r["probe_accuracy"]], style, color="C3", ms=8,
                        label=label)
        ax.axhline(100 * TARGET_PROBE[dataset], color="grey", ls="--", lw=1, label="target (VAE − 2)")
        ax.axvline(F / 10, color="grey", ls="-.", lw=1, label=f"10 % of {F}")
        ax.set_xscale("log")
        ax.set_xlabel("mean active (non-zero) dimensions per example")
        ax.set_ylabel("logistic probe accuracy (%)")
        ax.set_title(f"{dataset}, latent {F}")
        ax.legend(fontsize=7, loc="lower right")
    return _save_two_panels(fig, header, path)


def plot_elbo(results, header, path):
    fig, axes = _two_panels()
    for ax, dataset in zip(axes, DATASETS):
        for i, m in enumerate(("vae", "vsc-0.01", "vsc-0.2", "vsc-0.5", "vsc-learned")):
            points = sorted((int(k.split("/")[2]), r["test_elbo"]) for k, r in results.items()
                            if k.startswith(f"{dataset}/{m}/"))
            if points:
                lat, elbo = zip(*points)
                ax.plot(lat, elbo, "o-" if m == "vae" else "s--", color=f"C{i}", label=m)
        ax.set_xscale("log")
        ax.set_xlabel("latent size J")
        ax.set_ylabel("test ELBO (nats, Bernoulli on grey levels)")
        ax.set_title(dataset)
        ax.legend(fontsize=7)
    return _save_two_panels(fig, header, path)


def plot_reproduction(results, header, path):
    fig, axes = _two_panels()
    for ax, dataset in zip(axes, DATASETS):
        for i, (m, reference) in enumerate(REPRODUCTION[dataset].items()):
            lat, acc = zip(*sorted(reference.items()))
            ax.plot(lat, acc, ":", marker="x", color=f"C{i}", label=f"{m} (theirs)")
            points = sorted((int(k.split("/")[2]), 100 * r["repro_classifier_on_mu"]) for k, r in results.items()
                            if k.startswith(f"{dataset}/{m}/") and int(k.split("/")[2]) in REPRO_LATENTS)
            if points:
                lat, acc = zip(*points)
                ax.plot(lat, acc, "o-", color=f"C{i}", label=f"{m} (ours)")
        ax.set_xscale("log")
        ax.set_xticks(REPRO_LATENTS)
        ax.set_xticklabels([str(v) for v in REPRO_LATENTS])
        ax.minorticks_off()
        ax.set_xlabel("latent size J")
        ax.set_ylabel("their classifier on μ, test accuracy (%)")
        ax.set_title(f"{dataset}: reproduction protocol")
        ax.legend(fontsize=7)
    return _save_two_panels(fig, header, path)


def load_seed_runs(results, args):
    """``{seed: results}``: this run's and those of ``--seed-runs``."""
    runs = {args.seed: results}
    for out in args.seed_runs:
        saved = json.loads((out / "results.json").read_text())
        seed = saved["settings"]["seed"]
        if seed in runs:
            raise SystemExit(f"{out} holds seed {seed} again; --seed-runs takes runs of other seeds")
        runs[seed] = saved["results"]
    return runs


def report(results, header, args):
    sweep_path = args.out / "gate_sweep.json"
    sweep = json.loads(sweep_path.read_text()) if sweep_path.exists() else None
    text = tables(results, header, load_seed_runs(results, args) if args.seed_runs else None, sweep)
    write_text_atomically(args.out / "tables.md", text + "\n")
    paths = [plot_frontier(results, header, args.out / "frontier.png"),
             plot_elbo(results, header, args.out / "elbo_vs_latent.png"),
             plot_reproduction(results, header, args.out / "reproduction.png")]
    if args.figures is not None:
        args.figures.mkdir(parents=True, exist_ok=True)
        for path in paths:
            (args.figures / f"vsc_{path.name}").write_bytes(path.read_bytes())
    return text


def main(argv=None):
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results = harness.Results(args.out / "results.json", harness.machine_header(args.command),
                              settings=_settings(args), fresh=args.fresh)
    # the study's first session: the command, date, machine and load under the tables and figures
    header = dict(results.first, frontier_latent=args.frontier_latent)

    if args.gate_sweep:
        write_text_atomically(args.out / "gate_sweep.json", json.dumps(gate_sweep(results.records, args), indent=1))
    elif not args.report_only:
        arrays, done = {}, 0
        for dataset, name, latent in args.jobs:
            label = key(dataset, name, latent)
            if results.done(label):
                continue
            if args.max_jobs is not None and done >= args.max_jobs:
                break
            if dataset not in arrays:
                arrays[dataset] = load_arrays(dataset, args)
            before = dict(load_average=harness.load_average(), started=harness.now())
            model = build(dataset, name, latent, args)
            cpu = time.process_time()
            seconds, final = train(model, arrays[dataset][0], label, args)
            # CPU seconds / cores: what the training would take on idle cores (the machine is shared)
            train_cpu_seconds = time.process_time() - cpu
            result = dict(before, **evaluate(model, name, arrays[dataset], args), train_seconds=seconds,
                          train_cpu_seconds=train_cpu_seconds, final_train=final)
            save_model_atomically(model, args.out / f"{dataset}-{name}-{latent}.keras")
            results.add(label, result)
            done += 1
            print(f"[{label}] their classifier on μ {_pct(result['repro_classifier_on_mu'])} %  probe "
                  f"{_pct(result['probe_accuracy'])} %  active {result['mean_active_dims']:.1f}  "
                  f"test ELBO {result['test_elbo']:.1f}  train {seconds:.0f} s", flush=True)
    print(report(results.records, header, args))
    return 0


def _settings(args):
    return dict(steps=args.steps, probe_train=args.probe_train, test_examples=args.test_examples,
                classifier_epochs=args.classifier_epochs, classifier_seeds=args.classifier_seeds,
                train_limit=args.train_limit, seed=args.seed, sharpness=SHARPNESS)


if __name__ == "__main__":
    sys.exit(main())
