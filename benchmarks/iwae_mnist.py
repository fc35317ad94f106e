"""The IWAE family on dynamically binarised MNIST (Burda et al. 2015; Rainforth et al. 2018).

Trains, at equal epochs, VAE, IWAE k=5, IWAE k=50, MIWAE(8, 8), CIWAE(β=0.05, K=64) and
PIWAE(8, 8) with the IWAE paper's network (784-200-200-50, tanh, Bernoulli decoder, one
stochastic layer of 50 units), batch 20, Adam(β1 0.9, β2 0.999, ε 1e-4), then reports for each:

* test NLL = −log p̂(x), the importance-sampled estimate with K = 5000 (``--nll-samples``) on the
  first ``--nll-examples`` test images, binarised once by a seeded Bernoulli draw, with its
  standard error and the *paired* difference to the VAE on the same images (the paired standard
  error is much smaller than either model's own, since the image-to-image spread cancels);
* active units (Var_x E_q[z_j] > 0.01 over the whole 10,000-image test set);
* wall time of training.

It also measures the encoder's and decoder's gradient SNR (|E g| / std g over repeated estimates
on one fixed batch of 20 test images) against K for IWAE_K and PIWAE(8, K) on the trained IWAE-50
network, and draws them (``snr_vs_k.png``).

Schedules
---------
Burda et al. train for 3280 epochs: 8 passes, pass i (0..7) running 3^i epochs at learning rate
1e-3 · 10^(−i/7). ``--full`` runs exactly that. The default compresses the same eight rates into
``--epochs`` epochs by giving the eight passes equal lengths (a per-step piecewise-constant
schedule): a geometric schedule squeezed into a handful of epochs would spend two thirds of it at
the smallest rate. Models are compared at equal epochs, never against the paper's 3280-epoch
numbers directly.

    python benchmarks/iwae_mnist.py --epochs 5               # about an hour on 2 shared CPU cores
    python benchmarks/iwae_mnist.py --full --nll-examples 10000   # the paper's schedule (a GPU job)
    python benchmarks/iwae_mnist.py --quick                  # smoke run, a minute or two

Results go to ``--out`` (default benchmarks/out/iwae_mnist/): ``results.json`` (rewritten
atomically after each model, so a long run can be inspected while it goes, and read back on start, so
an interrupted run resumes after the models it finished; ``--fresh`` starts over), ``snr.json``,
``snr_vs_k.png``, ``<model>.keras``, ``<model>-log_likelihood.npy`` and progress lines on stdout.
"""

import argparse
import json
import math
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (before TensorFlow)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfvae  # noqa: E402
from tfvae import objectives, run  # noqa: E402
from tfvae.files import save_model_atomically, write_text_atomically  # noqa: E402

#: the paper's reference after 3280 epochs: test NLL in nats (Burda et al. 2015; Rainforth et al.
#: 2018, whose CIWAE, MIWAE and PIWAE use 64 samples per example)
REFERENCE_NLL = {"vae": 86.76, "iwae-5": 85.54, "iwae-50": 84.78, "miwae-8x8": 84.97,
                 "ciwae-0.05": 84.57, "piwae-8x8": 84.46}

#: name -> its run settings (tfvae.run.RunConfig)
MODELS = {
    "vae": dict(model="vae"),
    "iwae-5": dict(model="iwae", num_samples=5),
    "iwae-50": dict(model="iwae", num_samples=50),
    "miwae-8x8": dict(model="miwae", num_estimates=8, num_samples=8),
    "ciwae-0.05": dict(model="ciwae", num_samples=64, ciwae_beta=0.05),
    "piwae-8x8": dict(model="piwae", num_estimates=8, num_samples=8),
}

BATCH_SIZE = 20
PASSES = 8


def learning_rates():
    """Burda et al.'s eight rates, 1e-3 · 10^(−i/7) for i = 0..7."""
    return [1e-3 * 10 ** (-i / 7) for i in range(PASSES)]


def schedule(steps_per_epoch, epochs=None, full=False):
    """A per-step piecewise-constant schedule over Burda's eight rates: pass i lasts 3^i epochs
    with ``full`` (3280 epochs), or ``epochs`` / 8 epochs each (compressed). Returns
    ``(schedule, total_epochs)``."""
    if full:
        lengths = [3 ** i * steps_per_epoch for i in range(PASSES)]
    else:
        total = epochs * steps_per_epoch
        lengths = [total // PASSES + (i < total % PASSES) for i in range(PASSES)]
    boundaries = list(np.cumsum(lengths)[:-1].astype(int))
    total_epochs = sum(lengths) // steps_per_epoch
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, learning_rates()), total_epochs


def config(name, args, limit):
    """The IWAE paper's network and data: one stochastic layer of 50, 784-200-200-50 tanh, a
    Bernoulli decoder, dynamically binarised MNIST in batches of 20."""
    return run.RunConfig(dataset="mnist", latent_dim=50, architecture="iwae-mlp", likelihood="bernoulli",
                         binarize="dynamic", batch_size=BATCH_SIZE, seed=args.seed, limit=limit, **MODELS[name])


def test_images(count, seed=123):
    """The first ``count`` test images, binarised once by a seeded Bernoulli draw (a fixed
    sample of the same distribution the models were trained on)."""
    data = tfvae.data.load("mnist", "test", batch_size=10_000, binarize="dynamic", seed=seed)
    images = next(iter(data))[0].numpy()
    return images[:count], images


def train_and_evaluate(name, args, source, train_data, steps_per_epoch, nll_images, all_test, out):
    model = harness.build_model(config(name, args, source.train_size), source)
    lr, epochs = schedule(steps_per_epoch, args.epochs, args.full)
    model.compile(optimizer=keras.optimizers.Adam(lr, beta_1=0.9, beta_2=0.999, epsilon=1e-4),
                  steps_per_execution=50)
    start = time.time()
    history = model.fit(train_data, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0, shuffle=False,
                        callbacks=[harness.epoch_log(name)])
    train_seconds = time.time() - start
    save_model_atomically(model, out / f"{name}.keras")

    start = time.time()
    mean, se, per_example = tfvae.evaluation.log_likelihood(
        model, nll_images, num_samples=args.nll_samples, seed=args.seed, return_per_example=True)
    nll_seconds = time.time() - start
    units, _ = tfvae.evaluation.active_units(model, all_test)
    np.save(out / f"{name}-log_likelihood.npy", per_example)  # before the record: a resumed run reads it
    result = dict(test_nll=-mean, test_nll_se=se, active_units=units, train_seconds=train_seconds,
                  nll_seconds=nll_seconds, epochs=epochs,
                  final_train=dict((k, float(v[-1])) for k, v in history.history.items()),
                  reference_nll_3280_epochs=REFERENCE_NLL[name])
    print(f"[{name}] test NLL {-mean:.2f} ± {se:.2f} (K={args.nll_samples}, {len(nll_images)} images), "
          f"active units {units}, train {train_seconds:.0f} s, NLL eval {nll_seconds:.0f} s", flush=True)
    return result, per_example, model


def snr_curves(model, images, ks, repeats, num_estimates=8):
    """Encoder/decoder gradient SNR of IWAE_K, IWAE_K with DReG, and PIWAE(M, K) for each K."""
    curves = {"iwae": [], "iwae-dreg": [], f"piwae-{num_estimates}xK": []}
    for k in ks:
        iwae = tfvae.diagnostics.gradient_snr(
            model, images, repeats, seed=k, objective=lambda m, x, k=k: -objectives.iwae(m.log_weights(x, k)))

        def dreg(m, x, k=k):
            w = m.log_weights(x, k, stop_posterior_gradient=True)
            return tfvae.models.ObjectiveValue(-objectives.iwae(w), {}, dict(
                encoder=-objectives.dreg_surrogate(w), decoder=-objectives.iwae(w)))

        def piwae(m, x, k=k):
            bounds = objectives.piwae(m.log_weights(x, num_estimates * k), num_estimates)
            return tfvae.models.ObjectiveValue(-bounds["decoder"], {},
                                               dict(encoder=-bounds["encoder"], decoder=-bounds["decoder"]))

        curves["iwae"].append(iwae)
        curves["iwae-dreg"].append(tfvae.diagnostics.gradient_snr(model, images, repeats, seed=k, objective=dreg))
        curves[f"piwae-{num_estimates}xK"].append(
            tfvae.diagnostics.gradient_snr(model, images, repeats, seed=k, objective=piwae))
        print(f"[snr] K={k}: " + "  ".join(f"{n} enc {c[-1]['encoder']:.3f} dec {c[-1]['decoder']:.2f}"
                                          for n, c in curves.items()), flush=True)
    return curves


def plot_snr(ks, curves, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, group in zip(axes, ("encoder", "decoder")):
        for name, values in curves.items():
            ax.plot(ks, [v[group] for v in values], marker="o", label=name)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("K (importance samples per estimate)")
        ax.set_ylabel("mean per-parameter SNR |E g| / std g")
        ax.set_title(f"{group} gradient")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_arguments(parser, __file__, quick="smoke run: 2000 training images, 1 epoch, small K", resume=True)
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the compressed schedule (default 5)")
    parser.add_argument("--full", action="store_true", help="the paper's 3280-epoch schedule")
    parser.add_argument("--models", nargs="*", default=list(MODELS), help=f"subset of {list(MODELS)}")
    parser.add_argument("--nll-samples", type=int, default=5000, help="K of the log-likelihood estimate")
    parser.add_argument("--nll-examples", type=int, default=1000, help="test images for the NLL (max 10000)")
    parser.add_argument("--snr-ks", type=int, nargs="*", default=[1, 4, 16, 64], help="K values of the SNR plot")
    parser.add_argument("--snr-repeats", type=int, default=200, help="gradient estimates per SNR value")
    parser.add_argument("--seed", type=int, default=0)
    args = harness.parse(parser, argv)
    header = harness.machine_header(args.command)
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; expected some of {list(MODELS)}")
    if args.epochs < 1 or not 1 <= args.nll_examples <= 10_000 or args.nll_samples < 1:
        parser.error("--epochs and --nll-samples must be positive and --nll-examples in 1..10000")
    limit = None
    if args.quick:
        args.epochs, args.nll_samples, args.nll_examples, args.snr_repeats = 1, 200, 100, 10
        args.snr_ks, limit = [1, 8], 2000
    args.out.mkdir(parents=True, exist_ok=True)
    print(harness.describe(header), flush=True)

    source = run.open_source(config("vae", args, limit))
    # one pipeline for every model, as it always was (each fit continues its seeded reshuffling)
    train_data = source.train(BATCH_SIZE, seed=args.seed).repeat()
    steps_per_epoch = source.train_size // BATCH_SIZE
    nll_images, all_test = test_images(args.nll_examples)
    settings = dict(schedule="full (3280 epochs)" if args.full else f"compressed to {args.epochs} epochs",
                    learning_rates=learning_rates(), batch_size=BATCH_SIZE, train_examples=source.train_size,
                    nll_samples=args.nll_samples, nll_examples=len(nll_images), seed=args.seed)
    results = harness.Results(args.out / "results.json", header, settings=settings, fresh=args.fresh)
    per_example, models = {}, {}
    for name in args.models:
        if results.done(name):  # finished in an earlier session: its model and per-image estimates are saved
            print(f"[{name}] done earlier: test NLL {results.records[name]['test_nll']:.2f}", flush=True)
            per_example[name] = np.load(args.out / f"{name}-log_likelihood.npy")
            models[name] = keras.models.load_model(args.out / f"{name}.keras")
            continue
        record, per_example[name], models[name] = train_and_evaluate(
            name, args, source, train_data, steps_per_epoch, nll_images, all_test, args.out)
        results.records[name] = record
        if "vae" in per_example:
            for other, values in per_example.items():
                diff = -(values - per_example["vae"])         # NLL(other) − NLL(VAE), per image
                results.records[other]["nll_minus_vae"] = float(diff.mean())
                results.records[other]["nll_minus_vae_se"] = float(diff.std(ddof=1) / math.sqrt(len(diff)))
        results.save()

    print(f"\n{'model':<12} {'test NLL':>16} {'− VAE (paired)':>16} {'AU':>4} {'train s':>8}  paper (3280 ep)")
    for name, r in results.records.items():
        paired = f"{r['nll_minus_vae']:+.2f} ± {r['nll_minus_vae_se']:.2f}" if "nll_minus_vae" in r else "-"
        print(f"{name:<12} {r['test_nll']:>9.2f} ± {r['test_nll_se']:.2f} {paired:>16} {r['active_units']:>4} "
              f"{r['train_seconds']:>8.0f}  {r['reference_nll_3280_epochs']}")

    snr_model = models.get("iwae-50") or next(iter(models.values()))
    snr_images = all_test[:BATCH_SIZE]
    start = time.time()
    curves = snr_curves(snr_model, snr_images, args.snr_ks, args.snr_repeats)
    snr = dict(model="iwae-50" if "iwae-50" in models else args.models[0], ks=args.snr_ks,
               repeats=args.snr_repeats, batch=BATCH_SIZE, curves=curves, seconds=time.time() - start)
    write_text_atomically(args.out / "snr.json", json.dumps(snr, indent=2))
    plot_snr(args.snr_ks, curves, args.out / "snr_vs_k.png",
             f"gradient SNR on the trained {snr['model']} network, one batch of {BATCH_SIZE} test images, "
             f"{args.snr_repeats} estimates per point")
    print(f"wrote {args.out / 'results.json'}, {args.out / 'snr.json'}, {args.out / 'snr_vs_k.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
