"""LLGAE on Fashion-MNIST against the reference (REFERENCES.md section 4): test error vs time.

The reference setting: E = 20 coefficients, K = 11 components, T = 5 inference steps of size
β = 0.01 with the −b shrinkage term, RMSprop with learning rate 1e-3, batch 360, each image minus
its own mean. Here the pixels are in [0, 1] (``pixel_scale`` 1, so β = 0.01 applies to [0, 1]
units; see the "Step size and pixel scale" paragraph of :mod:`tfvae.models.llgae`). The metric is
``tfvae.evaluation.reconstruction_error`` ("centered_l2_255") on the 10,000 test images.
Reference: LLGAE 768 after about 540 epochs; PCA-20 1208.

Runs, each for at most ``--epochs`` (540, the reference's count) or a wall-time budget:

1. PCA-20 (``tfvae.evaluation.pca_baseline``, on the mean-subtracted training images);
2. LLGAE started by ``initialize_from_data`` (k-means + local PCA on 20,000 training images),
   ``--minutes`` (60);
3. LLGAE from random values (no data initialisation, as far as the reference says anything
   about its start), ``--random-minutes`` (15): with random offsets about half of the 11
   components never win an image and stay unused;
4. LGAE (K = 1) from random values, ``--lgae-minutes`` (10): does training find PCA-20?

Every ``--eval-every`` epochs (and before the first) it records the test error with the wall
time, the process CPU time (user + system of all threads: a figure that does not depend on the
other processes sharing the machine) and the 1-minute load average, all counted from the start
of the run, initialisation and XLA compilation included. It writes ``results.json`` (after every
run, atomically; a killed study resumes after the runs it finished, ``--fresh`` starts over), the
trained ``llgae.keras`` and ``lgae.keras``, and pictures (component means μ_k, test
reconstructions, error vs time) into ``--out``.

    python benchmarks/llgae_fashion.py --quick                 # smoke run, about a minute
    nohup python benchmarks/llgae_fashion.py > benchmarks/out/llgae_fashion.log 2>&1 &
                                                               # the full run, at most 90 minutes
"""

import argparse
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (before TensorFlow)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfvae import plots, run  # noqa: E402
from tfvae.evaluation import pca_baseline, reconstruction_error  # noqa: E402
from tfvae.files import save_model_atomically  # noqa: E402

REFERENCE = {"llgae": 768.0, "pca_20": 1208.0, "reference_epochs": 540}


class Clock:
    """Wall time and this process's CPU time (all threads) since construction, and load."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self):
        return dict(wall_s=round(time.perf_counter() - self.wall, 2), cpu_s=round(time.process_time() - self.cpu, 2),
                    load_1min=round(os.getloadavg()[0], 2))


class Progress(keras.callbacks.Callback):
    """Every ``every`` epochs (and before the first): the test error, wall/CPU time since
    ``clock`` started (so including the initialisation) and load; stops after ``minutes``."""

    def __init__(self, test, every, minutes, label, clock, target=None):
        super().__init__()
        self.test, self.every, self.seconds, self.label, self.target = test, every, 60.0 * minutes, label, target
        self.clock, self.curve, self.reached = clock, [], None

    def record(self, epoch, train_error=None):
        error = float(self.model.evaluate(self.test, verbose=0, return_dict=True)["reconstruction_error"])
        point = dict(epoch=epoch, test_error=round(error, 2),
                     train_error=None if train_error is None else round(train_error, 2), **self.clock.read())
        self.curve.append(point)
        if self.target is not None and self.reached is None and error <= self.target:
            self.reached = point
        print(f"{self.label} " + " ".join(f"{k} {v}" for k, v in point.items()), flush=True)

    def on_train_begin(self, logs=None):
        self.record(0)

    def on_epoch_end(self, epoch, logs=None):
        out_of_time = self.clock.read()["wall_s"] >= self.seconds
        if (epoch + 1) % self.every == 0 or out_of_time or epoch + 1 == self.params["epochs"]:
            self.record(epoch + 1, logs["reconstruction_error"])
        if out_of_time:
            self.model.stop_training = True


def config(args, model="llgae"):
    """The reference's LLGAE (``model="lgae"``: K = 1) on Fashion-MNIST."""
    return run.RunConfig(model=model, dataset="fashion_mnist", latent_dim=args.latent_dim, inference_steps=args.steps,
                         step_size=args.step_size, batch_size=args.batch_size, learning_rate=args.learning_rate,
                         seed=args.seed, limit=6000 if args.quick else None,
                         **({"components": args.components} if model == "llgae" else {}))


def train(model_name, args, source, train_data, test_data, minutes, label, init_images=None, target=None,
          target_name="reached"):
    """Builds, optionally initialises from ``init_images`` (k-means + local PCA), trains."""
    clock = Clock()
    model = harness.build_model(config(args, model_name), source, center_images=True, pixel_scale=1.0, seed=args.seed)
    if init_images is not None:
        model.initialize_from_data(init_images, seed=args.seed)
    model.compile(optimizer=keras.optimizers.RMSprop(args.learning_rate), jit_compile=not args.no_xla,
                  steps_per_execution=args.steps_per_execution)
    progress = Progress(test_data, args.eval_every, minutes, label, clock, target)
    model.fit(train_data, epochs=args.epochs, verbose=0, callbacks=[progress])
    save_model_atomically(model, args.out / f"{label}.keras")  # before its record: a resumed study reads it
    return model, {"curve": progress.curve, target_name: progress.reached}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    harness.add_arguments(parser, __file__, quick="smoke run: 3 epochs on 6000 images", resume=True)
    parser.add_argument("--minutes", type=float, default=60.0, help="LLGAE wall-time budget (default 60)")
    parser.add_argument("--epochs", type=int, default=540, help="epoch limit of every run (default 540, the reference's)")
    parser.add_argument("--random-minutes", type=float, default=15.0,
                        help="wall-time budget of LLGAE from random values, no data initialisation (default 15)")
    parser.add_argument("--lgae-minutes", type=float, default=10.0, help="LGAE wall-time budget (default 10)")
    parser.add_argument("--eval-every", type=int, default=5, help="epochs between test evaluations")
    parser.add_argument("--batch-size", type=int, default=360)
    parser.add_argument("--components", type=int, default=11)
    parser.add_argument("--latent-dim", type=int, default=20)
    parser.add_argument("--steps", type=int, default=5, help="inference steps T")
    parser.add_argument("--step-size", type=float, default=0.01, help="inference step size beta ([0, 1] pixels)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="RMSprop learning rate")
    parser.add_argument("--steps-per-execution", type=int, default=20)
    parser.add_argument("--no-xla", action="store_true", help="train without jit_compile")
    parser.add_argument("--seed", type=int, default=0)
    args = harness.parse(parser, argv)
    header = harness.machine_header(args.command)
    if args.quick:
        args.minutes, args.epochs, args.random_minutes, args.lgae_minutes, args.eval_every = 5.0, 3, 5.0, 5.0, 1
    args.out.mkdir(parents=True, exist_ok=True)
    print(harness.describe(header), flush=True)
    settings = {k: v for k, v in vars(args).items() if k not in ("out", "fresh", "data_dir", "command", "benchmark")}
    results = harness.Results(args.out / "results.json", header, settings=settings, fresh=args.fresh)
    results.save(pixel_scale=1.0, step_size_units="pixels in [0, 1]", reference=REFERENCE)

    source = run.open_source(config(args))
    train_data = source.train(args.batch_size, seed=args.seed)
    test_data = source.held_out(batch_size=2000)
    train_images, _ = source.arrays("train")
    test_images, _ = source.arrays("held_out")

    clock = Clock()  # PCA takes seconds: computed again in every session, for the pictures
    pca = pca_baseline(train_images, test_images, args.latent_dim)
    results.add("pca", dict(time=clock.read(), test_error=round(float(pca.error), 2)))
    print(f"PCA-{args.latent_dim}: test error {pca.error:.1f} ({results.records['pca']['time']['wall_s']} s)", flush=True)

    trained = {}
    # label -> (model, budget in minutes, data initialisation, target error and its record's name);
    # the LGAE from random values: does training alone find the PCA subspace?
    runs = {"llgae": ("llgae", args.minutes, train_images, REFERENCE["llgae"], "reached_768"),
            "llgae-random-init": ("llgae", args.random_minutes, None, REFERENCE["llgae"], "reached_768"),
            "lgae": ("lgae", args.lgae_minutes, None, pca.error, "reached_pca")}
    for label, (model_name, minutes, init_images, target, target_name) in runs.items():
        if results.done(label):
            print(f"[{label}] done earlier", flush=True)
            if label != "llgae-random-init":  # only its curve is drawn
                trained[label] = keras.models.load_model(args.out / f"{label}.keras")
            continue
        trained[label], record = train(model_name, args, source, train_data, test_data, minutes, label,
                                       init_images=init_images, target=target, target_name=target_name)
        results.add(label, record)
    llgae, lgae = trained["llgae"], trained["lgae"]

    # the final figures, from reconstruct() and the independent metric function
    errors = {"pca": pca.error}
    reconstructions = {"pca": pca.reconstructions}
    for name, model in (("llgae", llgae), ("lgae", lgae)):
        reconstructions[name] = np.concatenate([model.reconstruct(test_images[i:i + 2000]).numpy()
                                                for i in range(0, len(test_images), 2000)])
        errors[name] = reconstruction_error(test_images, reconstructions[name])
    usage = np.bincount(np.concatenate([llgae.encode(test_images[i:i + 2000]).components.numpy()
                                        for i in range(0, len(test_images), 2000)]), minlength=args.components)
    results.save(test_error={k: round(float(v), 2) for k, v in errors.items()},
                 llgae_components_used_on_test=usage.tolist())
    print(json.dumps(results.extra["test_error"]), flush=True)
    draw(args.out, llgae, test_images, reconstructions, errors,
         {"LLGAE K=11 (k-means + local PCA start)": results.records["llgae"]["curve"],
          "LLGAE K=11 (random start)": results.records["llgae-random-init"]["curve"],
          "LGAE K=1 (random start)": results.records["lgae"]["curve"]},
         pca.error)
    return 0


def draw(out, llgae, test_images, reconstructions, errors, curves, pca_error):
    # μ_k are centred images: shown around mid-grey so that both signs are visible
    means = llgae.component_means().numpy() + 0.5
    plots.image_grid([means], out / "llgae_component_means.png",
                     title="LLGAE component means μ_k (+0.5)", column_labels=[f"k={k}" for k in range(len(means))])
    picks = np.arange(0, len(test_images), len(test_images) // 10)[:10]
    rows = [test_images[picks]] + [np.clip(reconstructions[name][picks], 0, 1) for name in ("llgae", "lgae", "pca")]
    labels = ["test"] + [f"{name}\n{errors[name]:.0f}" for name in ("llgae", "lgae", "pca")]
    plots.image_grid(rows, out / "llgae_reconstructions.png", row_labels=labels,
                     title="Fashion-MNIST test images and reconstructions (centered_l2_255 error)")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    for name, curve in curves.items():
        ax.plot([p["wall_s"] / 60 for p in curve], [p["test_error"] for p in curve], marker=".", label=name)
    ax.axhline(pca_error, color="gray", linestyle="--", label=f"PCA-20 {pca_error:.0f}")
    ax.axhline(REFERENCE["llgae"], color="black", linestyle=":", label="reference LLGAE 768")
    ax.set_xlabel("wall time (minutes)")
    ax.set_ylabel("test error (centered_l2_255)")
    ax.set_ylim(500, 2000)
    ax.legend(fontsize=8)
    fig.savefig(out / "llgae_error_vs_time.png", dpi=90, bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
