"""Disentanglement on shapes2d, after disentanglement_lib's protocol: β-VAE and β-TCVAE over β and seeds.

The question (Higgins et al. 2017; Locatello et al. 2019; Chen et al. 2018): does raising β (the
KL weight of the β-VAE) or penalising only the total correlation (β-TCVAE) give codes whose
dimensions follow the ground-truth factors better than a plain VAE (β = 1)? Each configuration
trains on ``shapes2d`` (dSprites' full factor grid, 3 × 6 × 40 × 32 × 32 = 737,280 binary 64 × 64
images, rendered by :mod:`tfvae.data.shapes2d`; the 727,280 of the ``train`` split) with 10
latents, a Bernoulli likelihood, batch 64 and Adam, for several seeds, and is scored with
disentanglement_lib's three metrics at its sample sizes (:mod:`tfvae.evaluation.disentanglement`:
β-VAE score and FactorVAE score on 10,000 training and 5,000 evaluation points, MIG on 10,000
images with 20 bins), reported as mean ± standard deviation over the seeds.

Two sets of settings:

* ``--protocol``: disentanglement_lib's (Locatello et al. 2019): its conv net (4 × 4 stride-2
  convolutions 32-32-64-64, dense 256, mirrored decoder), Adam 1e-4, 300,000 steps, β-VAE at
  β ∈ {1, 4, 8, 16} and β-TCVAE at β = 6, seeds 0, 1, 2, float32 with XLA. A GPU job (15 runs).
* the default, what fitted a shared 2-core CPU: Higgins' MLP (encoder 1200-1200 ReLU, decoder
  1200-1200-1200 tanh), Adam **1e-3** (to get further in few steps), only **500** steps per run,
  the VAE, β-VAE at β = 16 and β-TCVAE at β = 6, seeds 0 and 1 (6 runs), mixed bfloat16, metrics
  at full sample sizes. Measured 2026-12-01 on x86_64, 2 cores shared (load average 11 to 13):
  **45 minutes** (2694 s: 91 s rendering the grid; per run 200-340 s training, 115-210 s
  encoding the grid, 10-20 s metrics); results in ``benchmarks/results_disentanglement.md``.
  At 0.4-0.7 s per step on that machine, disentanglement_lib's 300,000 steps would take about
  two days per run.

Every option can be set alone (``--runs``, ``--seeds``, ``--steps``, ``--learning-rate``,
``--architecture``, ``--precision``, ``--jit``); what ran is printed and saved.

Efficiency, all exact:

* The whole grid is rendered once per process and kept bit-packed (737,280 × 512 bytes, 360 MB);
  training batches are index batches through ``tf.data`` (shuffled each pass over the train split)
  that gather the packed rows and unpack them to float32 in the input pipeline.
* The metrics only ever look at images of grid points, and ``encode`` (the posterior mean) is a
  deterministic function of the image, so each trained model encodes the 737,280 grid images once
  into a table and the three metrics read their codes from it (:class:`GridCodes`): identical
  scores at full sample sizes (2.9 million draws, nearly every grid point) for a quarter of the
  encoder calls. The script checks the table against direct encoding on fresh images.
* ``--precision mixed_bfloat16`` (the CPU default): the networks compute in bfloat16 with float32
  weights, and the model casts their outputs to float32 before building distributions. On a CPU
  with AMX, oneDNN runs the bfloat16 matrix products fast (a training step 2.4x faster); XLA's CPU
  backend does not use it, so ``--jit auto`` compiles with XLA except for bfloat16 on a CPU (measured on this
  machine at load 10, per step of the MLP: float32 + XLA 0.44 s, float32 0.51 s, bfloat16 + XLA
  0.52 s, bfloat16 without XLA 0.21 s). Use ``--precision float32`` for disentanglement_lib's
  numerics.

    python benchmarks/disentanglement.py --figures benchmarks/figures           # the CPU run (45 min)
    python benchmarks/disentanglement.py --quick                                # smoke run (35 CPU-s; 2-3 min at load 12)
    python benchmarks/disentanglement.py --protocol --figures benchmarks/figures  # disentanglement_lib, GPU
    python benchmarks/disentanglement.py --runs vae beta-vae:8 --seeds 0 1 2 --steps 20000 --architecture conv

Writes ``OUT/results.json`` after every (configuration, seed), so an interrupted run keeps what
it finished and, started again, skips those (``--fresh`` starts over), ``OUT/results.md`` (the
table), per-run traversal and KL-bar PNGs and ``OUT/scores_vs_beta.png``; with ``--figures DIR``
grey copies of seed 0's pictures and the scores-against-β plot go to ``DIR/disentanglement_*.png``.
"""

import argparse
import os
import pathlib
import resource
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (before TensorFlow)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfvae  # noqa: E402
from tfvae import plots  # noqa: E402
from tfvae.evaluation import disentanglement  # noqa: E402
from tfvae.files import write_text_atomically  # noqa: E402
from tfvae.networks import mlp_decoder, mlp_encoder  # noqa: E402

#: model name -> (class name, name of its β option or None, default β)
MODELS = {
    "vae": ("VAE", None, 1.0),
    "beta-vae": ("BetaVAE", "beta", 4.0),
    "beta-tcvae": ("BetaTCVAE", "beta", 6.0),
    # Burgess et al. 2018: γ = 1000, C raised to 25 nats over the first 80 % of the steps
    "capacity": ("BetaVAE", None, None),
    "vsc": ("VSC", "alpha", 0.5),
}
#: disentanglement_lib's sweep (Locatello et al. 2019 train β-VAE at 1, 2, 4, 6, 8, 16)
PROTOCOL_RUNS = ["vae", "beta-vae:4", "beta-vae:8", "beta-vae:16", "beta-tcvae:6"]
CPU_RUNS = ["vae", "beta-vae:16", "beta-tcvae:6"]
#: the three scores, as stored, with their table headings
SCORES = {"beta_vae_score": "β-VAE score", "factor_vae_score": "FactorVAE score", "mig": "MIG"}
#: np.packbits' bit order: the first pixel of a byte is its most significant bit
_BIT_SHIFTS = np.arange(7, -1, -1, dtype=np.uint8)


def parse_run(text):
    """``"beta-vae:16"`` -> ``("beta-vae", 16.0)``; ``"vae"`` -> ``("vae", 1.0)``."""
    name, _, value = text.partition(":")
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r} in run {text!r}; expected one of {list(MODELS)}")
    option, default = MODELS[name][1], MODELS[name][2]
    if value and option is None:
        raise ValueError(f"model {name!r} takes no value (got {text!r})")
    try:
        number = float(value) if value else default
    except ValueError:
        raise ValueError(f"run {text!r}: {value!r} is not a number") from None
    return name, number


def run_label(name, value):
    """File-name-safe label: ``vae``, ``beta-vae_16``, ``beta-tcvae_6``."""
    if MODELS[name][1] is None:
        return name
    return f"{name}_{value:g}"


# --------------------------------------------------------------------------------- data

class PackedGrid:
    """Every image of a :class:`tfvae.data.FactorDataset`'s grid, bit-packed in grid order
    (``index_of``), with the train / test split's grid indices."""

    def __init__(self, shapes, chunk=8192):
        self.shapes = shapes
        self.pixels = int(np.prod(shapes.image_shape))
        every = np.arange(shapes.num_images)
        rows = []
        for start in range(0, len(every), chunk):
            images = shapes.images_for(shapes.factors_at(every[start:start + chunk]))
            rows.append(np.packbits(images.reshape(len(images), -1).astype(np.uint8), axis=1))
        self.packed = np.concatenate(rows)
        self.train = shapes.index_of(shapes.split_factors("train"))
        self.test = shapes.index_of(shapes.split_factors("test"))

    def images(self, indices):
        """float32 images ``[n, H, W, C]`` of grid indices."""
        bits = np.unpackbits(self.packed[np.asarray(indices)], axis=1, count=self.pixels)
        return bits.reshape((-1,) + tuple(self.shapes.image_shape)).astype(np.float32)

    def train_dataset(self, batch_size, seed):
        """Batches of float32 training images, reshuffled every pass over the train split."""
        if getattr(self, "_table", None) is None:
            self._table = tf.constant(self.packed)  # one copy in TensorFlow for every run
        table = self._table
        shifts = tf.constant(_BIT_SHIFTS)
        image_shape = tuple(self.shapes.image_shape)
        pixels = self.pixels

        def unpack(indices):
            rows = tf.gather(table, indices)  # [batch, bytes] uint8
            bits = tf.bitwise.bitwise_and(tf.bitwise.right_shift(rows[:, :, None], shifts), 1)
            bits = tf.reshape(bits, [-1, bits.shape[1] * 8])[:, :pixels]
            return tf.cast(tf.reshape(bits, (-1,) + image_shape), tf.float32)

        return (tf.data.Dataset.from_tensor_slices(self.train)
                .shuffle(len(self.train), seed=seed, reshuffle_each_iteration=True)
                .repeat().batch(batch_size, drop_remainder=True)
                .map(unpack, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))


class GridCodes:
    """A factor data set whose "images" are grid indices, with an encoder that reads a table of
    every grid point's code: the metrics of :mod:`tfvae.evaluation.disentanglement` then run
    unchanged, and give the scores the model's ``encode`` would give image by image (``encode``
    is deterministic), at the cost of encoding the grid once.

    Example:
      >>> table = GridCodes(shapes, codes)          # codes [shapes.num_images, latent]
      >>> disentanglement.mutual_information_gap(table.encode, table)
    """

    def __init__(self, dataset, codes):
        if codes.shape[0] != dataset.num_images:
            raise ValueError(f"expected one code per grid point ({dataset.num_images}), got {codes.shape}")
        self.dataset, self.codes = dataset, codes
        self.num_factors, self.factor_sizes = dataset.num_factors, dataset.factor_sizes
        self.factor_names, self.name = dataset.factor_names, dataset.name

    def sample_factors(self, num, rng=None):
        return self.dataset.sample_factors(num, rng)

    def images_for(self, factors):
        return self.dataset.index_of(factors)[:, None]

    def encode(self, indices):
        return self.codes[np.asarray(indices)[:, 0]]


def encode_grid(model, grid, chunk=4096):
    """Codes ``[num_images, latent]`` (float32) of every grid image, in grid order, and the
    model's ``encode`` as a graph function."""
    encode = tf.function(model.encode, input_signature=[
        tf.TensorSpec((None,) + tuple(grid.shapes.image_shape), tf.float32)])
    n = len(grid.packed)
    return np.concatenate([encode(grid.images(np.arange(s, min(n, s + chunk)))).numpy()
                           for s in range(0, n, chunk)]), encode


# ------------------------------------------------------------------------------- models

def build_model(name, value, args, dataset_size):
    """``name``'s objective (β or VSC's α = ``value``) on Higgins' 2D-shapes MLP or on
    disentanglement_lib's conv net."""
    class_name, option, _ = MODELS[name]
    image_shape = (args.image_size, args.image_size, 1)
    model_class = getattr(tfvae.models, class_name)
    per_latent = 3 if class_name == "VSC" else 2
    if args.architecture == "conv":
        encoder, decoder = tfvae.networks.build("conv", image_shape, per_latent * args.latent_dim,
                                                args.latent_dim)
    else:
        encoder = mlp_encoder(image_shape, per_latent * args.latent_dim, hidden_units=(args.hidden,) * 2,
                              activation="relu")
        decoder = mlp_decoder(args.latent_dim, image_shape, hidden_units=(args.hidden,) * 3,
                              activation="tanh")
    options = {} if option is None else {option: value}
    if name == "capacity":
        options = dict(capacity_max=25.0, gamma=1000.0, capacity_steps=max(1, int(0.8 * args.steps)))
    if class_name == "VSC":
        options["sharpness_steps"] = max(1, args.steps)
    if class_name == "BetaTCVAE":
        options["dataset_size"] = dataset_size
    # validate_inputs off: the data are binary by construction, and the check would cost a pass
    return model_class(image_shape=image_shape, latent_dim=args.latent_dim, encoder=encoder,
                       decoder=decoder, validate_inputs=False, **options)


def use_xla(args):
    """``--jit auto``: XLA except for bfloat16 on a CPU (XLA's CPU backend skips oneDNN / AMX)."""
    if args.jit != "auto":
        return args.jit == "on"
    return not (args.precision == "mixed_bfloat16" and not tf.config.list_physical_devices("GPU"))


def run_one(name, value, seed, args, grid, out):
    label = run_label(name, value)
    keras.utils.set_random_seed(seed)
    model = build_model(name, value, args, len(grid.train))
    model.compile(optimizer=keras.optimizers.Adam(args.learning_rate), jit_compile=use_xla(args))
    epochs = max(1, args.steps // args.steps_per_epoch)
    steps_per_epoch = args.steps // epochs
    wall, cpu = time.time(), time.process_time()
    model.fit(grid.train_dataset(args.batch_size, seed), steps_per_epoch=steps_per_epoch, epochs=epochs,
              verbose=0, shuffle=False, callbacks=[harness.epoch_log(f"{label} s{seed}", steps_per_epoch)])
    train_wall, train_cpu = time.time() - wall, time.process_time() - cpu

    wall = time.time()
    codes, encode = encode_grid(model, grid)
    encode_wall = time.time() - wall
    # the table must say what encoding the images says (a batch's rounding may differ in bf16)
    probe = np.random.default_rng(seed + 1000).integers(0, len(grid.packed), 512)
    table_error = float(np.max(np.abs(codes[probe] - encode(grid.images(probe)).numpy())))
    table = GridCodes(grid.shapes, codes)
    wall = time.time()
    beta_vae, beta_details = disentanglement.beta_vae_score(
        table.encode, table, seed=seed, return_details=True, **scaled(disentanglement.BETA_VAE_DEFAULTS, args))
    factor_vae, factor_details = disentanglement.factor_vae_score(
        table.encode, table, seed=seed, return_details=True, **scaled(disentanglement.FACTOR_VAE_DEFAULTS, args))
    mig, mig_details = disentanglement.mutual_information_gap(
        table.encode, table, seed=seed, return_details=True,
        **dict(disentanglement.MIG_DEFAULTS, num_train=args.mig_points))
    metric_wall = time.time() - wall

    test_images = grid.images(grid.test[:args.test_size])
    logs = model.evaluate(test_images, batch_size=500, verbose=0, return_dict=True)
    kl = tfvae.evaluation.kl_per_dimension(model, test_images)
    order = np.argsort(-kl)
    plots.plot_traversals(model, test_images[0], out / f"{label}_seed{seed}_traversals.png", kl=kl,
                          values=np.linspace(-2.5, 2.5, 7), max_dimensions=args.traversal_rows,
                          title=f"{label}, seed {seed}: latent traversals, by KL")
    plots.plot_kl_per_dimension(kl, out / f"{label}_seed{seed}_kl.png",
                                title=f"{label}, seed {seed}: KL per latent (nats)")
    result = dict(model=name, value=value, seed=seed, beta_vae_score=beta_vae,
                  factor_vae_score=factor_vae, mig=mig,
                  beta_vae_confusion=beta_details["confusion"].tolist(),
                  factor_vae_active_dims=factor_details["active_dims"],
                  mig_gaps=dict(zip(grid.shapes.factor_names, np.round(mig_details["gaps"], 4).tolist())),
                  test_elbo=float(logs["elbo"]), test_kl=float(logs["kl"]),
                  kl_per_dimension=np.round(kl, 3).tolist(), informative_dims=int((kl > 0.1).sum()),
                  dims_by_kl=order.tolist(), code_table_max_error=table_error,
                  train_seconds=round(train_wall, 1), train_cpu_seconds=round(train_cpu, 1),
                  encode_grid_seconds=round(encode_wall, 1), metric_seconds=round(metric_wall, 1),
                  load_average_end=round(os.getloadavg()[0], 2))
    print(f"  {label} seed {seed}: beta-VAE score {beta_vae:.3f}  FactorVAE {factor_vae:.3f}  MIG {mig:.3f}  "
          f"ELBO {result['test_elbo']:.1f}  KL {result['test_kl']:.1f} ({result['informative_dims']} latents)  "
          f"[{train_wall:.0f} s train, {encode_wall:.0f} s encoding the grid, {metric_wall:.0f} s metrics; "
          f"table error {table_error:.1e}]", flush=True)
    return result


def scaled(settings, args):
    """disentanglement_lib's sample counts times ``--metric-scale``; other settings as they are."""
    return {k: max(2, int(round(v * args.metric_scale))) if k in disentanglement.SAMPLE_COUNTS else v
            for k, v in settings.items()}


# ------------------------------------------------------------------------------ reports

def summarise(runs):
    """``{label: {"seeds": [...], score: (mean, std)}, ...}`` over seeds (sample standard deviation,
    ddof 1; None for a single seed)."""
    by_label = {}
    for r in runs:
        by_label.setdefault(run_label(r["model"], r["value"]), []).append(r)
    summary = {}
    for label, rs in by_label.items():
        entry = {"model": rs[0]["model"], "value": rs[0]["value"], "seeds": [r["seed"] for r in rs]}
        for key in list(SCORES) + ["test_elbo", "test_kl", "informative_dims"]:
            values = np.array([r[key] for r in rs], np.float64)
            entry[key] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else None)
        summary[label] = entry
    return summary


def table(summary):
    lines = ["| model | β | seeds | β-VAE score | FactorVAE score | MIG | test ELBO (nats) | KL (nats) | "
             "latents with KL > 0.1 |", "|---|---|---|---|---|---|---|---|---|"]
    for label, e in summary.items():
        def pm(key, digits=3):
            mean, std = e[key]
            return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"
        beta = "1" if e["model"] == "vae" else ("" if MODELS[e["model"]][1] != "beta" else f"{e['value']:g}")
        lines.append(f"| {e['model']} | {beta} | {len(e['seeds'])} | {pm('beta_vae_score')} | "
                     f"{pm('factor_vae_score')} | {pm('mig')} | {pm('test_elbo', 1)} | {pm('test_kl', 1)} | "
                     f"{pm('informative_dims', 1)} |")
    return "\n".join(lines)


def per_seed_table(runs):
    lines = ["| run | seed | β-VAE score | FactorVAE score | MIG | MIG gaps (shape, scale, orient., x, y) | "
             "ELBO | KL | latents | train s | grid encode s |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        gaps = ", ".join(f"{g:.2f}" for g in r["mig_gaps"].values())
        lines.append(f"| {run_label(r['model'], r['value'])} | {r['seed']} | {r['beta_vae_score']:.3f} | "
                     f"{r['factor_vae_score']:.3f} | {r['mig']:.3f} | {gaps} | {r['test_elbo']:.1f} | "
                     f"{r['test_kl']:.1f} | {r['informative_dims']} | {r['train_seconds']:.0f} | "
                     f"{r['encode_grid_seconds']:.0f} |")
    return "\n".join(lines)


def plot_scores_vs_beta(runs, path):
    """Each score against β: one point per seed, the mean with ±1 standard deviation bars; the
    VAE is the β-VAE at β = 1; β-TCVAE's β weighs the total correlation only."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(SCORES), figsize=(4.0 * len(SCORES), 3.2))
    styles = {"beta-vae": ("tab:blue", "o", "β-VAE (β = 1: VAE)"), "beta-tcvae": ("tab:red", "s", "β-TCVAE")}
    for ax, (key, heading) in zip(axes, SCORES.items()):
        for model, (colour, marker, name) in styles.items():
            members = [r for r in runs if r["model"] == model or (model == "beta-vae" and r["model"] == "vae")]
            if not members:
                continue
            betas = sorted({1.0 if r["model"] == "vae" else r["value"] for r in members})
            means, stds = [], []
            for b in betas:
                values = [r[key] for r in members if (1.0 if r["model"] == "vae" else r["value"]) == b]
                ax.scatter([b] * len(values), values, color=colour, marker=marker, alpha=0.45, s=18)
                means.append(np.mean(values))
                stds.append(np.std(values, ddof=1) if len(values) > 1 else 0.0)
            ax.errorbar(betas, means, yerr=stds, color=colour, marker=marker, capsize=4, label=name,
                        linestyle="-" if len(betas) > 1 else "none")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("β")
        ax.set_title(heading, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("shapes2d 64×64: points = seeds, bars = mean ± sd", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def shrink_png(source, target, colours=None):
    """A small copy (the figures live in the repository): grey with a 16-level palette, or with
    a palette of ``colours`` colours for plots whose lines are told apart by colour."""
    from PIL import Image

    with Image.open(source) as image:
        image = image.convert("L") if colours is None else image.convert("RGB")
        image.quantize(colors=colours or 16).save(target, optimize=True)


# --------------------------------------------------------------------------------- main

def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # shapes2d is rendered, not read: no --data-dir
    harness.add_arguments(parser, __file__, quick="smoke run: tiny nets, 32x32, few steps and samples", resume=True,
                          data_dir=False)
    parser.add_argument("--protocol", action="store_true",
                        help="disentanglement_lib's settings: conv net, Adam 1e-4, 300000 steps, "
                             f"{PROTOCOL_RUNS}, seeds 0 1 2, float32 + XLA (a GPU job)")
    parser.add_argument("--runs", nargs="+", help=f"model[:beta] of {list(MODELS)} (default {CPU_RUNS})")
    parser.add_argument("--seeds", nargs="+", type=int, help="default 0 1")
    parser.add_argument("--steps", type=int, help="optimizer steps per run (default 500)")
    parser.add_argument("--steps-per-epoch", type=int, default=250, help="steps between progress lines")
    parser.add_argument("--learning-rate", type=float, help="Adam's (default 1e-3; disentanglement_lib: 1e-4)")
    parser.add_argument("--architecture", choices=["mlp", "conv"],
                        help="mlp (default): Higgins' 1200-1200 / 1200-1200-1200; conv: disentanglement_lib's")
    parser.add_argument("--precision", choices=["float32", "mixed_bfloat16"],
                        help="network compute dtype (default mixed_bfloat16; --protocol float32)")
    parser.add_argument("--jit", choices=["auto", "on", "off"], default="auto",
                        help="XLA: auto = on except for bfloat16 on a CPU")
    parser.add_argument("--image-size", type=int, default=64, help="image side (64: dSprites')")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=1200, help="MLP hidden width (Higgins: 1200)")
    parser.add_argument("--latent-dim", type=int, default=10)
    parser.add_argument("--metric-scale", type=float, default=1.0,
                        help="fraction of disentanglement_lib's sample counts for the beta-VAE and FactorVAE "
                             "scores (default 1: 10000 / 5000 points)")
    parser.add_argument("--mig-points", type=int, default=10_000, help="MIG's images (disentanglement_lib: 10000)")
    parser.add_argument("--test-size", type=int, default=2000, help="test images for ELBO, KL and pictures")
    parser.add_argument("--traversal-rows", type=int, default=8, help="latents shown in the traversals")
    parser.add_argument("--figures", type=pathlib.Path, help="also copy seed 0's PNGs and the score plot here")
    args = harness.parse(parser, argv)
    defaults = dict(runs=CPU_RUNS, seeds=[0, 1], steps=500, learning_rate=1e-3, architecture="mlp",
                    precision="mixed_bfloat16")
    if args.protocol:
        defaults.update(runs=PROTOCOL_RUNS, seeds=[0, 1, 2], steps=300_000, learning_rate=1e-4,
                        architecture="conv", precision="float32")
    if args.quick:
        defaults.update(runs=["vae", "beta-tcvae:6"], seeds=[0, 1], steps=20)
        args.steps_per_epoch, args.hidden, args.image_size = 20, 64, 32
        args.metric_scale, args.mig_points, args.test_size = 0.05, 2000, 200
        # a coarser grid (3 x 6 x 8 x 16 x 16 = 36,864 images) renders and encodes in seconds
        args.grid = dict(num_orientations=8, num_positions=16)
    else:
        args.grid = {}  # dSprites' full grid
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    try:
        args.parsed_runs = [parse_run(r) for r in args.runs]
    except ValueError as error:
        parser.error(str(error))
    for key in ("steps", "steps_per_epoch", "batch_size", "latent_dim", "hidden", "mig_points", "test_size"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be >= 1, got {getattr(args, key)}")
    if not args.learning_rate > 0 or not args.metric_scale > 0:
        parser.error("--learning-rate and --metric-scale must be > 0")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds repeats a seed: {args.seeds}")
    return args


def main(argv=None):
    args = parse_args(argv)
    header = harness.machine_header(args.command)
    keras.mixed_precision.set_global_policy(args.precision)
    args.out.mkdir(parents=True, exist_ok=True)
    start_wall, start_cpu = time.time(), time.process_time()
    shapes = tfvae.data.factors("shapes2d", image_size=args.image_size, **args.grid)
    grid = PackedGrid(shapes)
    render_seconds = time.time() - start_wall
    settings = {k: str(v) if isinstance(v, pathlib.Path) else v for k, v in vars(args).items()
                if k not in ("parsed_runs", "command", "benchmark")}
    settings.update(xla=use_xla(args), beta_vae_metric=scaled(disentanglement.BETA_VAE_DEFAULTS, args),
                    factor_vae_metric=scaled(disentanglement.FACTOR_VAE_DEFAULTS, args),
                    mig_metric=dict(disentanglement.MIG_DEFAULTS, num_train=args.mig_points))
    print(f"shapes2d {shapes.image_shape[0]}x{shapes.image_shape[1]}, grid {shapes.factor_sizes} "
          f"({shapes.num_images} images, {len(grid.train)} train) rendered in {render_seconds:.0f} s; runs "
          f"{args.runs} x seeds {args.seeds}; {args.steps} steps of {args.batch_size}, Adam {args.learning_rate:g}; "
          f"{args.architecture}; {args.precision}, XLA {use_xla(args)}; metrics: beta-VAE {settings['beta_vae_metric']}, "
          f"FactorVAE {settings['factor_vae_metric']}, MIG {settings['mig_metric']}\n{harness.describe(header)}",
          flush=True)

    # what a run's scores depend on (not which runs and seeds, nor where the pictures go)
    comparable = {k: v for k, v in settings.items() if k not in ("runs", "seeds", "out", "figures", "fresh")}
    results = harness.Results(args.out / "results.json", header, settings=comparable, fresh=args.fresh)
    if results.records:
        print(f"resuming: {len(results.records)} runs kept", flush=True)

    def save(final=False):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        runs = list(results.records.values())
        results.save(
            arguments=settings, finished=final, load_average_now=harness.load_average(),
            render_seconds=round(render_seconds, 1), wall_seconds=round(time.time() - start_wall, 1),
            cpu_seconds=round(time.process_time() - start_cpu, 1),
            cpu_seconds_user_sys=round(usage.ru_utime + usage.ru_stime, 1),
            summary=summarise(runs) if runs else {})

    for seed in args.seeds:  # seed-major: a cut-short run still has every configuration once
        for name, value in args.parsed_runs:
            key = f"{run_label(name, value)}/seed{seed}"
            if results.done(key):
                continue
            results.records[key] = run_one(name, value, seed, args, grid, args.out)
            save()
            plot_scores_vs_beta(list(results.records.values()), args.out / "scores_vs_beta.png")
    save(final=True)
    runs = list(results.records.values())
    plot_scores_vs_beta(runs, args.out / "scores_vs_beta.png")
    markdown = table(results.extra["summary"]) + "\n\nPer seed:\n\n" + per_seed_table(runs)
    write_text_atomically(args.out / "results.md", markdown + "\n")
    print(markdown)
    print(f"wall {results.extra['wall_seconds']:.0f} s, process CPU {results.extra['cpu_seconds']:.0f} s\n"
          f"load average at the start {header['load_average']}, now {results.extra['load_average_now']}", flush=True)
    if args.figures:
        args.figures.mkdir(parents=True, exist_ok=True)
        for path in sorted(args.out.glob("*_seed0_*.png")):
            shrink_png(path, args.figures / f"disentanglement_{path.name.replace('_seed0', '')}")
        shrink_png(args.out / "scores_vs_beta.png", args.figures / "disentanglement_scores_vs_beta.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
