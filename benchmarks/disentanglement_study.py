"""Disentanglement on 2 CPU cores: learning curves that separate β from the VAE on shapes2d.

disentanglement_lib's protocol (300,000 steps) takes about two days per run on 2 cores, and at
500-2,000 steps no model is separated from the VAE (``results_disentanglement.md``). This study
spends the cores on few runs that go far: each run trains on the full 64×64 shapes2d grid
(dSprites' 737,280 images, 727,280 for training) for ``--images`` images, and at four points
(1/8, 1/4, 1/2 and all of them: a learning curve against images seen) scores the code with
disentanglement_lib's three metrics at its sample sizes (β-VAE and FactorVAE scores on 10,000 +
5,000 points, MIG on 10,000 images, 20 bins), read from a table of every grid image's code
(``disentanglement.GridCodes``: the same scores as encoding image by image, for one pass over
the grid).

The runs (``--runs``; every run has the same network, batch, learning rate and images):

* the core: the VAE and the β-TCVAE at β = 6, seeds 0, 1 and 2;
* beside them, seed 0 of the β-VAE at β = 4 and at β = 16, and the capacity-annealed β-VAE
  (Burgess et al. 2018: C from 0 to 25 nats over the run, γ = 1000).

The recipe (network, batch, learning rate) is the one that learned fastest per CPU-second in the
``pilots`` (β-TCVAE, β = 6, seed 0, the same wall time each; see RESULTS.md). Models are built by
the run layer (:func:`tfvae.run.build_model`), in the run layer's default precision and XLA mode
(bfloat16 networks and only the update under XLA on a CPU with AMX; :mod:`tfvae.devices`).

**Resumable, run by run and point by point.** After each curve point the point's figures go into
``benchmarks/study/LABEL.json`` (atomically; commit it) and the model with its optimizer into
``--out/LABEL.keras``. Started again, the study skips finished runs and continues an unfinished
one from its last point (when the checkpoint is on this machine; otherwise the run starts over).

    python benchmarks/disentanglement_study.py pilots              # the recipe pilots (3 x 4 min)
    python benchmarks/disentanglement_study.py study               # every run (about 5 h on 2 cores)
    python benchmarks/disentanglement_study.py study --runs vae:0 beta-tcvae:6:0
    python benchmarks/disentanglement_study.py report              # table and figures from the JSON
    python benchmarks/disentanglement_study.py study --quick       # smoke run (32x32, tiny budgets)
"""

import argparse
import json
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (before TensorFlow)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfvae  # noqa: E402
from disentanglement import GridCodes, PackedGrid, encode_grid, scaled, shrink_png  # noqa: E402
from tfvae import devices, plots, run  # noqa: E402
from tfvae.evaluation import disentanglement  # noqa: E402
from tfvae.files import save_model_atomically, write_text_atomically  # noqa: E402
from tfvae.networks import mlp_decoder, mlp_encoder  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
#: the committed per-run figures
STUDY = HERE / "study"
#: the fractions of a run's images at which it is scored
CURVE = (0.125, 0.25, 0.5, 1.0)
#: name -> (network, batch, Adam learning rate); "higgins" is Higgins et al.'s 2D-shapes MLP
#: (encoder 1200-1200 ReLU, decoder 1200-1200-1200 tanh), "conv" disentanglement_lib's
RECIPES = {
    "conv-256": ("conv", 256, 1e-3),
    "conv-64": ("conv", 64, 1e-3),
    "higgins-256": ("higgins", 256, 1e-3),
}
#: the study's recipe, chosen by the pilots (RESULTS.md, "Disentanglement on 2 cores")
RECIPE = "conv-64"
#: model -> (run-layer model, its β option); "capacity" is Burgess et al.'s annealed β-VAE
MODELS = {"vae": ("vae", None), "beta-vae": ("beta-vae", "beta"), "beta-tcvae": ("beta-tcvae", "beta"),
          "capacity": ("beta-vae", None)}
CORE = ["vae:0", "beta-tcvae:6:0", "vae:1", "beta-tcvae:6:1", "vae:2", "beta-tcvae:6:2"]
BESIDE = ["beta-vae:4:0", "beta-vae:16:0", "capacity:0"]
SCORES = {"mig": "MIG", "factor_vae_score": "FactorVAE score", "beta_vae_score": "β-VAE score"}


def parse_run(text):
    """``"beta-tcvae:6:1"`` -> ``("beta-tcvae", 6.0, 1)``; ``"vae:2"`` -> ``("vae", None, 2)``."""
    parts = text.split(":")
    name = parts[0]
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r} in {text!r}; expected one of {list(MODELS)}")
    takes_beta = MODELS[name][1] is not None
    if len(parts) != (3 if takes_beta else 2):
        raise ValueError(f"run {text!r}: expected {name}:{'BETA:' if takes_beta else ''}SEED")
    try:
        return name, (float(parts[1]) if takes_beta else None), int(parts[-1])
    except ValueError:
        raise ValueError(f"run {text!r}: β and seed must be numbers") from None


def label_of(name, beta, seed):
    return f"{name}{'' if beta is None else f'_{beta:g}'}_seed{seed}"


def build(name, beta, seed, recipe, images, grid, image_size, capacity_warmup_steps=0):
    """The run's model through the run layer (seeded as ``tfvae.run.train`` seeds it)."""
    network, batch, learning_rate = RECIPES[recipe]
    model_name, option = MODELS[name]
    settings = dict(model=model_name, dataset="shapes2d", latent_dim=10, batch_size=batch,
                    learning_rate=learning_rate, seed=seed)
    options = {} if option is None else {option: beta}
    if name == "capacity":  # C from 0 to 25 nats over the run (Burgess et al.), γ = 1000
        options.update(capacity_max=25.0, gamma=1000.0, capacity_steps=max(1, images // batch),
                       capacity_warmup_steps=capacity_warmup_steps)
    if network == "conv":
        settings["architecture"] = "conv"
    config = run.RunConfig(**settings, **({} if name == "capacity" else options))
    extra = dict(options) if name == "capacity" else {}
    source = run.open_source(config)
    shape = (image_size, image_size, 1)
    if network == "higgins":
        keras.utils.set_random_seed(seed)
        policy = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(devices.resolve_precision(config["precision"]))
        try:
            extra.update(encoder=mlp_encoder(shape, 20, hidden_units=(1200, 1200), activation="relu"),
                         decoder=mlp_decoder(10, shape, hidden_units=(1200, 1200, 1200), activation="tanh"))
        finally:
            keras.mixed_precision.set_global_policy(policy)
    if source.feature_shape != shape:  # --quick: a smaller grid than the catalog's
        source.feature_shape = shape
    source.train_size = len(grid.train)
    model = harness.build_model(config, source, validate_inputs=False, **extra)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    return model, config


def score(model, grid, seed, args):
    """disentanglement_lib's three scores (at ``--metric-scale`` of its sample sizes) from the
    grid's code table, and the test ELBO and KL per latent."""
    start = time.time()
    codes, encode = encode_grid(model, grid)
    encode_seconds = time.time() - start
    table = GridCodes(grid.shapes, codes)
    start = time.time()
    beta_vae = disentanglement.beta_vae_score(table.encode, table, seed=seed,
                                              **scaled(disentanglement.BETA_VAE_DEFAULTS, args))
    factor_vae, details = disentanglement.factor_vae_score(
        table.encode, table, seed=seed, return_details=True, **scaled(disentanglement.FACTOR_VAE_DEFAULTS, args))
    mig, mig_details = disentanglement.mutual_information_gap(
        table.encode, table, seed=seed, return_details=True,
        **dict(disentanglement.MIG_DEFAULTS, num_train=args.mig_points))
    test = grid.images(grid.test[:args.test_size])
    logs = model.evaluate(test, batch_size=500, verbose=0, return_dict=True)
    kl = tfvae.evaluation.kl_per_dimension(model, test)
    return dict(mig=float(mig), factor_vae_score=float(factor_vae), beta_vae_score=float(beta_vae),
                mig_gaps=dict(zip(grid.shapes.factor_names, np.round(mig_details["gaps"], 4).tolist())),
                factor_vae_active_dims=details["active_dims"], test_elbo=float(logs["elbo"]),
                test_kl=float(logs["kl"]), kl_per_dimension=np.round(kl, 3).tolist(),
                informative_dims=int((kl > 0.1).sum()), encode_grid_seconds=round(encode_seconds, 1),
                metric_seconds=round(time.time() - start, 1))


class Progress(keras.callbacks.Callback):
    """A line every ``every`` seconds (steps, images/s), and a stop after ``seconds`` if given."""

    def __init__(self, label, batch, every=120.0, seconds=None):
        super().__init__()
        self.label, self.batch, self.every, self.seconds = label, batch, every, seconds

    def on_train_begin(self, logs=None):
        self.start = self.last = time.time()
        self.steps = 0

    def on_train_batch_end(self, step, logs=None):
        self.steps = step + 1
        now = time.time()
        if now - self.last >= self.every:
            self.last = now
            print(f"    {self.label}: {self.steps} steps, {self.steps * self.batch / (now - self.start):.0f} images/s, "
                  f"loss {float(logs['loss']):.1f}", flush=True)
        if self.seconds is not None and now - self.start >= self.seconds:
            self.model.stop_training = True


def train_images(model, grid, images, batch, seed, segment, label):
    """Trains on ``images`` more images (whole batches) of one stream, reshuffled every pass over
    the grid, seeded by (seed, segment). One ``fit`` call: a new call would restart the stream."""
    model.fit(grid.train_dataset(batch, seed * 1000 + segment), steps_per_epoch=images // batch, epochs=1,
              verbose=0, shuffle=False, callbacks=[Progress(label, batch)])


def study_run(name, beta, seed, args, grid, recipe):
    label = label_of(name, beta, seed)
    path, checkpoint = args.results / f"{label}.json", args.out / f"{label}.keras"
    record = json.loads(path.read_text()) if path.exists() else None
    if record is not None and (record["recipe"], record["images"]) != (recipe, args.images):
        raise SystemExit(f"{path} holds a run of recipe {record['recipe']} over {record['images']} images, not "
                         f"{recipe} over {args.images}: use those settings, or another --results folder")
    if record is not None and record.get("finished"):
        return record
    batch = RECIPES[recipe][1]
    targets = [int(round(args.images * f / batch)) * batch for f in CURVE]
    model, config = None, None
    if record is not None and record["points"] and checkpoint.exists():
        model = keras.saving.load_model(checkpoint)
        seen = int(model.optimizer.iterations.numpy()) * batch
        record["points"] = [p for p in record["points"] if p["images"] <= seen]
        if not record["points"] or record["points"][-1]["images"] != seen:
            model = None
        else:
            print(f"{label}: resuming at {seen} images (point {len(record['points'])} of {len(targets)})", flush=True)
    if model is None:
        model, config = build(name, beta, seed, recipe, args.images, grid, args.image_size,
                              args.capacity_warmup_steps)
        record = dict(model=name, beta=beta, seed=seed, recipe=recipe, network=RECIPES[recipe][0], batch=batch,
                      capacity_warmup_steps=args.capacity_warmup_steps if name == "capacity" else None,
                      learning_rate=RECIPES[recipe][2], images=args.images, config=config.as_dict(),
                      precision=model.encoder.compute_dtype, xla_mode=model.xla_mode, points=[],
                      machine=harness.machine_header())
    for i, target in enumerate(targets):
        if i < len(record["points"]):
            continue
        start = record["points"][-1]["images"] if record["points"] else 0
        wall, cpu = time.time(), time.process_time()
        train_images(model, grid, target - start, batch, seed, i, f"{label} -> {target}")
        point = dict(images=target, train_seconds=round(time.time() - wall, 1),
                     train_cpu_seconds=round(time.process_time() - cpu, 1),
                     load_average=harness.load_average(), **score(model, grid, seed, args))
        point["images_per_second"] = round((target - start) / point["train_seconds"], 1)
        record["points"].append(point)
        record["finished"] = i == len(targets) - 1
        write_text_atomically(path, json.dumps(record, indent=1) + "\n")
        if not record["finished"]:
            save_model_atomically(model, checkpoint)
        print(f"  {label} at {target} images: MIG {point['mig']:.3f}  FactorVAE {point['factor_vae_score']:.3f}  "
              f"β-VAE {point['beta_vae_score']:.3f}  ELBO {point['test_elbo']:.1f}  KL {point['test_kl']:.1f} "
              f"({point['informative_dims']} latents)  [{point['train_seconds']:.0f} s training at "
              f"{point['images_per_second']:.0f} images/s, {point['encode_grid_seconds']:.0f} s grid, "
              f"{point['metric_seconds']:.0f} s metrics]", flush=True)
    draw_end(model, grid, label, args)
    checkpoint.unlink(missing_ok=True)
    return record


def draw_end(model, grid, label, args):
    test = grid.images(grid.test[:args.test_size])
    kl = tfvae.evaluation.kl_per_dimension(model, test)
    plots.plot_traversals(model, test[0], args.out / f"{label}_traversals.png", kl=kl,
                          values=np.linspace(-2.5, 2.5, 7), max_dimensions=8,
                          title=f"{label}: latent traversals, by KL")
    plots.plot_kl_per_dimension(kl, args.out / f"{label}_kl.png", title=f"{label}: KL per latent (nats)")


def pilots(args, grid):
    """β-TCVAE (β = 6, seed 0) for ``--pilot-seconds`` of training per recipe, then scored."""
    results = {}
    path = args.results / "pilots.json"
    if path.exists():
        results = json.loads(path.read_text())
    for recipe in args.recipes:
        if recipe in results:
            continue
        network, batch, learning_rate = RECIPES[recipe]
        model, _ = build("beta-tcvae", 6.0, 0, recipe, 10 ** 9, grid, args.image_size)
        wall, cpu = time.time(), time.process_time()
        timer = Progress(f"pilot {recipe}", batch, seconds=args.pilot_seconds)
        model.fit(grid.train_dataset(batch, 0), steps_per_epoch=10 ** 7, epochs=1, verbose=0, shuffle=False,
                  callbacks=[timer])
        steps = int(model.optimizer.iterations.numpy())
        seconds = time.time() - wall
        result = dict(recipe=recipe, network=network, batch=batch, learning_rate=learning_rate, steps=steps,
                      images=steps * batch, train_seconds=round(seconds, 1),
                      train_cpu_seconds=round(time.process_time() - cpu, 1),
                      images_per_second=round(steps * batch / seconds, 1), load_average=harness.load_average(),
                      precision=model.encoder.compute_dtype, xla_mode=model.xla_mode, **score(model, grid, 0, args))
        results[recipe] = result
        write_text_atomically(path, json.dumps(results, indent=1) + "\n")
        print(f"pilot {recipe}: {result['images']} images in {seconds:.0f} s ({result['images_per_second']:.0f}/s): "
              f"MIG {result['mig']:.3f}  FactorVAE {result['factor_vae_score']:.3f}  ELBO {result['test_elbo']:.1f}  "
              f"{result['informative_dims']} latents", flush=True)
    return results


# ------------------------------------------------------------------------------ reports

def load_records(results_dir):
    return [json.loads(p.read_text()) for p in sorted(results_dir.glob("*_seed*.json"))]


def group_label(record):
    return record["model"] if record["beta"] is None else f"{record['model']} β={record['beta']:g}"


def summary_table(records):
    """Each model's final point: mean ± sd over its finished seeds (a model with no finished
    seed: its unfinished runs' last points, marked so)."""
    groups = {}
    for r in records:
        groups.setdefault(group_label(r), []).append(r)
    groups = {label: [r for r in rs if r.get("finished")] or [r for r in rs if r["points"]]
              for label, rs in groups.items()}
    lines = ["| model | seeds | images | MIG | FactorVAE score | β-VAE score | test ELBO (nats) | KL (nats) | "
             "latents (KL > 0.1) | training CPU min / run |", "|---|---|---|---|---|---|---|---|---|---|"]
    for label, rs in groups.items():
        if not rs:
            continue

        def pm(key, digits=3):
            values = np.array([r["points"][-1][key] for r in rs], float)
            sd = f" ± {values.std(ddof=1):.{digits}f}" if len(values) > 1 else ""
            return f"{values.mean():.{digits}f}{sd}"
        # CPU time, not wall time: a paused (SIGSTOP) or crowded run's wall time measures the pauses
        minutes = np.mean([sum(p["train_cpu_seconds"] for p in r["points"]) for r in rs]) / 60
        unfinished = "" if rs[0].get("finished") else " (unfinished)"
        lines.append(f"| {label}{unfinished} | {', '.join(str(r['seed']) for r in rs)} | "
                     f"{rs[0]['points'][-1]['images']:,} | {pm('mig')} | "
                     f"{pm('factor_vae_score')} | {pm('beta_vae_score')} | {pm('test_elbo', 1)} | "
                     f"{pm('test_kl', 1)} | {pm('informative_dims', 1)} | {minutes:.0f} |")
    return "\n".join(lines)


def curve_table(records):
    """Every point of every run (finished or not): the learning curves as numbers."""
    lines = ["| run | images | MIG | FactorVAE | β-VAE score | test ELBO | KL | latents | MIG gap of the best factor |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        for i, p in enumerate(r["points"]):
            factor, gap = max(p["mig_gaps"].items(), key=lambda item: item[1])
            run = f"{group_label(r)}, seed {r['seed']}{'' if r.get('finished') else ' (unfinished)'}" if i == 0 else ""
            lines.append(f"| {run} | {p['images']:,} | {p['mig']:.3f} | {p['factor_vae_score']:.3f} | "
                         f"{p['beta_vae_score']:.3f} | {p['test_elbo']:.1f} | {p['test_kl']:.1f} | "
                         f"{p['informative_dims']} | {factor} {gap:.3f} |")
    return "\n".join(lines)


def plot_curves(records, path):
    """MIG and the FactorVAE score against images seen: a thin line per seed (unfinished runs
    too), a thick line for the mean of each model's finished seeds and a band from their lowest to
    their highest."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6))
    colours = {}
    for r in records:
        colours.setdefault(group_label(r), f"C{len(colours)}")
    for ax, key in zip(axes, ("mig", "factor_vae_score")):
        for label, colour in colours.items():
            rs = [r for r in records if group_label(r) == label and r["points"]]
            for r in rs:
                ax.plot([p["images"] for p in r["points"]], [p[key] for p in r["points"]], color=colour,
                        alpha=0.35, lw=0.8, marker=".")
            finished = [r for r in rs if r.get("finished")]
            if finished:
                x = [p["images"] for p in finished[0]["points"]]
                values = np.array([[p[key] for p in r["points"]] for r in finished])
                ax.plot(x, values.mean(0), color=colour, lw=2,
                        label=f"{label} ({len(finished)} seed{'s' if len(finished) > 1 else ''})")
                if len(finished) > 1:  # the seeds' spread: lowest to highest
                    ax.fill_between(x, values.min(0), values.max(0), color=colour, alpha=0.15, lw=0)
            elif rs:  # no finished seed yet: its runs so far, dashed
                r = rs[0]
                ax.plot([p["images"] for p in r["points"]], [p[key] for p in r["points"]], color=colour, lw=2,
                        ls="--", label=f"{label} (seed {r['seed']}, unfinished)")
        ax.set_xscale("log")
        ticks = sorted({p["images"] for r in records for p in r["points"]})
        ax.set_xticks(ticks, [f"{t / 1e6:.3g}M" if t >= 1e6 else f"{t / 1e3:.0f}k" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("training images seen")
        ax.set_title(SCORES[key], fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("shapes2d 64×64 on 2 CPU cores: thin lines = seeds, thick = mean, band = lowest to highest seed",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(args):
    records = load_records(args.results)
    text = summary_table(records) + "\n\nEvery point:\n\n" + curve_table(records)
    print(text)
    write_text_atomically(args.results / "summary.md", text + "\n")
    if records:
        plot_curves(records, args.out / "curves.png")
        if args.figures:
            args.figures.mkdir(parents=True, exist_ok=True)
            shrink_png(args.out / "curves.png", args.figures / "study_curves.png", colours=64)  # 32 merged red into orange
            # the end pictures of the VAE (seed 0) and of the finished run with the highest MIG
            finished = [r for r in records if r.get("finished")]
            best = max(finished, key=lambda r: r["points"][-1]["mig"], default=None)
            vae = next((r for r in finished if r["model"] == "vae" and r["seed"] == 0), None)
            for role, record in (("vae", vae), ("best", best)):
                label = None if record is None else label_of(record["model"], record["beta"], record["seed"])
                for kind in ("traversals", "kl"):
                    picture = args.out / f"{label}_{kind}.png"
                    if label is not None and picture.exists():  # drawn on the machine that ran it
                        shrink_png(picture, args.figures / f"study_{role}_{kind}.png")
    return records


# --------------------------------------------------------------------------------- main

def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_arguments(parser, __file__, quick="smoke run: 32x32 grid, tiny budgets and samples", data_dir=False)
    parser.add_argument("task", choices=["pilots", "study", "report"])
    parser.add_argument("--runs", nargs="+", default=CORE + BESIDE, help="MODEL[:BETA]:SEED (default: the study)")
    parser.add_argument("--recipe", default=RECIPE, choices=list(RECIPES), help="network, batch and learning rate")
    parser.add_argument("--capacity-warmup-steps", type=int, default=0,
                        help="the capacity-annealed β-VAE's steps of plain ELBO first (the study: 0; RESULTS.md)")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES), help="pilots' recipes")
    parser.add_argument("--images", type=int, default=2_500_000, help="training images per run")
    parser.add_argument("--pilot-seconds", type=float, default=240.0, help="training time of each pilot")
    parser.add_argument("--metric-scale", type=float, default=1.0, help="multiple of disentanglement_lib's samples")
    parser.add_argument("--mig-points", type=int, default=10_000)
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--results", type=pathlib.Path, default=STUDY, help="the per-run JSON (committed)")
    parser.add_argument("--figures", type=pathlib.Path, help="copy the curves and end pictures here")
    args = harness.parse(parser, argv)
    args.image_size, grid_options = 64, {}
    if args.quick:
        args.image_size, grid_options = 32, dict(num_orientations=8, num_positions=16)
        args.images, args.pilot_seconds, args.metric_scale, args.mig_points, args.test_size = 6400, 10.0, 0.05, 2000, 200
        if args.results == STUDY:
            args.results = args.out / "study"
    args.out.mkdir(parents=True, exist_ok=True)
    args.results.mkdir(parents=True, exist_ok=True)
    if args.task == "report":
        report(args)
        return 0
    print(harness.describe(harness.machine_header(args.command)), flush=True)
    start = time.time()
    shapes = tfvae.data.factors("shapes2d", image_size=args.image_size, **grid_options)
    grid = PackedGrid(shapes)
    print(f"shapes2d grid {shapes.factor_sizes} ({shapes.num_images} images) in {time.time() - start:.0f} s", flush=True)
    if args.task == "pilots":
        pilots(args, grid)
        return 0
    for text in args.runs:
        try:
            name, beta, seed = parse_run(text)
        except ValueError as error:
            parser.error(str(error))
        study_run(name, beta, seed, args, grid, args.recipe)
        report(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
