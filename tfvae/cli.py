"""The ``tfvae`` command line: a thin layer over the Python API.

    tfvae train                       # a VAE on the embedded digits data, about a minute on 2 cores
    tfvae train --model beta-vae --beta 4 --dataset mnist --latent-dim 10 --out runs/bvae
    tfvae train --config runs/bvae/config.json --out runs/bvae-again   # reproduce a run
    tfvae evaluate runs/bvae          # recompute metrics.json
    tfvae plot runs/bvae --traversals # redraw pictures
    tfvae export runs/bvae --out serving --name bvae   # SavedModel for TF Serving: serving/bvae/1

A run directory holds ``model.keras``, ``config.json`` (everything needed to reproduce the run),
``metrics.json``, ``history.json``, TensorBoard logs in ``logs/`` and PNG plots. Training that is
interrupted resumes from ``backup/`` (keras.callbacks.BackupAndRestore) when the same command runs
again. Bad arguments print one line starting ``tfvae: error:`` and exit with status 2.
"""

import argparse
import json
import math
import os
import pathlib
import sys
import tempfile
import time

DEFAULTS = dict(
    model="vae", dataset="digits", latent_dim=10, architecture="mlp", likelihood="bernoulli",
    observation_scale=0.1, epochs=50, batch_size=32, learning_rate=2e-3, seed=0, binarize=None,
    limit=None,
)

#: model options: CLI destination -> (constructor keyword, the models that accept it)
MODEL_OPTIONS = {
    "beta": ("beta", ("beta-vae",)),
    "capacity_max": ("capacity_max", ("beta-vae",)),
    "capacity_steps": ("capacity_steps", ("beta-vae",)),
    "gamma": ("gamma", ("beta-vae",)),
    "alpha": ("alpha", ("vsc",)),
    "sharpness_start": ("sharpness_start", ("vsc",)),
    "sharpness_end": ("sharpness_end", ("vsc",)),
    "sharpness_steps": ("sharpness_steps", ("vsc",)),
    "warmup_start": ("warmup_start", ("vsc",)),
    "warmup_end": ("warmup_end", ("vsc",)),
    "num_samples": ("num_samples", ("iwae", "miwae", "ciwae", "piwae")),
    "num_estimates": ("num_estimates", ("miwae", "piwae")),
    "ciwae_beta": ("beta", ("ciwae",)),
    "dreg": ("dreg", ("iwae", "miwae", "piwae")),
    "components": ("components", ("llgae",)),
    "inference_steps": ("inference_steps", ("llgae", "lgae")),
    "step_size": ("step_size", ("llgae", "lgae")),
}


DISENTANGLEMENT_HELP = ("multiple of disentanglement_lib's sample counts for the beta-VAE and FactorVAE "
                        "scores and MIG, reported on data sets of known factors (shapes2d, dsprites); "
                        "default 1, 0 skips them")


class UsageError(Exception):
    """A bad argument: reported as one line, exit status 2."""


def _parser():
    parser = argparse.ArgumentParser(prog="tfvae", description="Variational autoencoders on TensorFlow Probability.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser("train", help="train a model and write a run directory")
    train.add_argument("--config", type=pathlib.Path, help="config.json of an earlier run to start from")
    train.add_argument("--model", help=f"model name (default {DEFAULTS['model']})")
    train.add_argument("--dataset", help=f"data set name (default {DEFAULTS['dataset']})")
    train.add_argument("--data-dir", help="folder with the original data files (default $TFVAE_DATA_DIR)")
    train.add_argument("--latent-dim", type=int, help=f"code size (default {DEFAULTS['latent_dim']})")
    train.add_argument("--architecture", help=f"network: mlp, iwae-mlp, conv (default {DEFAULTS['architecture']})")
    train.add_argument("--likelihood", help="bernoulli, gaussian or gaussian-learned (default bernoulli)")
    train.add_argument("--observation-scale", type=float, help="sigma of the Gaussian likelihood")
    train.add_argument("--epochs", type=int, help=f"passes over the training data (default {DEFAULTS['epochs']})")
    train.add_argument("--batch-size", type=int, help=f"(default {DEFAULTS['batch_size']})")
    train.add_argument("--learning-rate", type=float, help=f"Adam learning rate (default {DEFAULTS['learning_rate']})")
    train.add_argument("--seed", type=int, help="random seed for weights, shuffling and sampling (default 0)")
    train.add_argument("--binarize", choices=["dynamic", "threshold"], help="binarize pixels on the fly")
    train.add_argument("--limit", type=int, help="use only the first N training examples")
    train.add_argument("--beta", type=float, help="KL weight of beta-vae")
    train.add_argument("--capacity-max", type=float, help="beta-vae: target KL C_max in nats (capacity annealing)")
    train.add_argument("--capacity-steps", type=int, help="beta-vae: steps over which C rises to C_max")
    train.add_argument("--gamma", type=float, help="beta-vae: weight of |KL - C|")
    train.add_argument("--alpha", type=float, help="vsc: prior slab probability in (0, 1) (default 0.5)")
    train.add_argument("--sharpness-start", type=float, help="vsc: relaxation sharpness c at step 0 (default 50)")
    train.add_argument("--sharpness-end", type=float, help="vsc: sharpness c after --sharpness-steps (default 200)")
    train.add_argument("--sharpness-steps", type=int, help="vsc: steps over which c rises (default 20000)")
    train.add_argument("--warmup-start", type=int, help="vsc: spike warm-up: step where the slab starts to open")
    train.add_argument("--warmup-end", type=int, help="vsc: spike warm-up: step where the slab is fully open (0: off)")
    train.add_argument("--num-samples", type=int, metavar="K",
                       help="iwae/miwae/ciwae/piwae: importance samples K per estimate")
    train.add_argument("--num-estimates", type=int, metavar="M", help="miwae/piwae: independent estimates M")
    train.add_argument("--ciwae-beta", type=float, help="ciwae: weight of the ELBO in [0, 1] (default 0.05)")
    train.add_argument("--dreg", action="store_true", default=None,
                       help="iwae/miwae/piwae: doubly reparameterised encoder gradient")
    train.add_argument("--components", type=int, metavar="K", help="llgae: local linear components (default 11)")
    train.add_argument("--inference-steps", type=int, metavar="T", help="llgae/lgae: inference gradient steps (default 5)")
    train.add_argument("--step-size", type=float, help="llgae/lgae: inference step size for [0, 1] pixels (default 0.01)")
    train.add_argument("--out", type=pathlib.Path, help="run directory (default runs/MODEL-DATASET)")
    train.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    train.add_argument("--quiet", action="store_true", help="no progress output")
    train.add_argument("--log-likelihood-samples", type=int, metavar="K",
                       help="importance samples for the test log-likelihood (default 5000; 0 skips it)")
    train.add_argument("--disentanglement-scale", type=float, metavar="S",
                       help=DISENTANGLEMENT_HELP)

    evaluate = commands.add_parser("evaluate", help="recompute a run's metrics.json")
    evaluate.add_argument("run_dir", type=pathlib.Path)
    evaluate.add_argument("--data-dir", help="folder with the original data files")
    evaluate.add_argument("--split", default=None, help="data split to evaluate on (default test)")
    evaluate.add_argument("--log-likelihood-samples", type=int, metavar="K",
                          help="importance samples for the test log-likelihood (default 5000; 0 skips it)")
    evaluate.add_argument("--disentanglement-scale", type=float, metavar="S",
                          help=DISENTANGLEMENT_HELP)

    plot = commands.add_parser("plot", help="redraw a run's pictures")
    plot.add_argument("run_dir", type=pathlib.Path)
    plot.add_argument("--data-dir", help="folder with the original data files")
    for name in ("reconstructions", "samples", "traversals", "kl"):
        plot.add_argument(f"--{name}", action="store_true", help=f"draw only the {name} (combinable)")

    export = commands.add_parser("export", help="write a run's model as a SavedModel for TF Serving")
    export.add_argument("run_dir", type=pathlib.Path)
    export.add_argument("--out", type=pathlib.Path, required=True,
                        help="model root: the SavedModel goes to OUT/NAME/VERSION")
    export.add_argument("--name", help="model name under --out (default: the run directory's name)")
    export.add_argument("--version", type=int, default=1, help="version number (default 1; TF Serving serves the highest)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing version")
    return parser


# --------------------------------------------------------------------------------------- train

def _train_settings(args):
    """Defaults, then --config, then the flags given on the command line."""
    settings = dict(DEFAULTS)
    if args.config is not None:
        try:
            saved = json.loads(args.config.read_text())["settings"]
        except FileNotFoundError:
            raise UsageError(f"--config: no such file {args.config}") from None
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"--config: {args.config} is not a tfvae config.json (no 'settings')") from None
        settings.update(saved)
    for key, value in vars(args).items():
        if value is not None and key not in ("command", "config", "out", "overwrite", "quiet", "data_dir",
                                             "log_likelihood_samples", "disentanglement_scale"):
            settings[key] = value
    return settings


def _check_settings(settings):
    from tfvae import data, models

    if settings["model"] not in models.REGISTRY:
        raise UsageError(f"unknown model {settings['model']!r}; expected one of {', '.join(sorted(models.REGISTRY))}")
    if settings["dataset"] not in data.DATASETS:
        raise UsageError(f"unknown data set {settings['dataset']!r}; expected one of {', '.join(sorted(data.DATASETS))}")
    for key in ("latent_dim", "epochs", "batch_size"):
        if not isinstance(settings[key], int) or settings[key] <= 0:
            raise UsageError(f"--{key.replace('_', '-')} must be a positive integer, got {settings[key]}")
    if settings["limit"] is not None and settings["limit"] <= 0:
        raise UsageError(f"--limit must be a positive integer, got {settings['limit']}")
    if not (settings["learning_rate"] > 0 and math.isfinite(settings["learning_rate"])):
        raise UsageError(f"--learning-rate must be a positive number, got {settings['learning_rate']}")
    for key, (_, accepted) in MODEL_OPTIONS.items():
        if settings.get(key) is not None and settings["model"] not in accepted:
            raise UsageError(f"--{key.replace('_', '-')} applies to {', '.join(accepted)}, not {settings['model']}")
    if not issubclass(models.REGISTRY[settings["model"]], models.VariationalModel):
        # decoder-only models (llgae, lgae) have no encoder network and no likelihood
        for key in ("architecture", "likelihood", "observation_scale"):
            if settings[key] != DEFAULTS[key]:
                raise UsageError(f"--{key.replace('_', '-')} applies to the variational models, not "
                                 f"{settings['model']} (it has no encoder network or likelihood)")


def _build_model(settings, image_shape):
    from tfvae import models

    kwargs = {keyword: settings[key] for key, (keyword, accepted) in MODEL_OPTIONS.items()
              if settings.get(key) is not None and settings["model"] in accepted}
    cls = models.get(settings["model"])
    if issubclass(cls, models.VariationalModel):
        kwargs.update(architecture=settings["architecture"], likelihood=settings["likelihood"],
                      observation_scale=settings["observation_scale"])
    return cls(image_shape=image_shape, latent_dim=settings["latent_dim"], **kwargs)


def _datasets(settings, data_dir, split=None, with_train=True):
    from tfvae import data

    info = data.info(settings["dataset"])
    # evaluate and plot need no training split (shapes2d would render all 727,280 images for it)
    train = data.load(settings["dataset"], "train", data_dir=data_dir, batch_size=settings["batch_size"],
                      shuffle=True, seed=settings["seed"], binarize=settings["binarize"],
                      limit=settings["limit"]) if with_train else None
    held_out = split or ("valid" if "valid" in info.splits else "test")
    evaluation = data.load(settings["dataset"], held_out, data_dir=data_dir, batch_size=500,
                           binarize="threshold" if settings["binarize"] else None)
    return info, train, evaluation


def _atomic_write_text(path, text):
    """Writes ``text`` so that ``path`` holds either the old or the new content, never half."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def save_model_atomically(model, path):
    """``model.save`` to a temporary file beside ``path``, then rename it into place."""
    path = pathlib.Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _default_out(settings):
    base = pathlib.Path("runs") / f"{settings['model']}-{settings['dataset']}"
    out, n = base, 1
    while (out / "model.keras").exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def cmd_train(args):
    settings = _train_settings(args)
    _check_settings(settings)
    evaluation_options = _evaluation_options(args)
    out = args.out or _default_out(settings)
    if (out / "model.keras").exists() and not args.overwrite:
        raise UsageError(f"{out} already holds a finished run; choose another --out or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)

    import keras

    from tfvae import evaluation

    keras.utils.set_random_seed(settings["seed"])
    info, train, held_out = _datasets(settings, args.data_dir)
    model = _build_model(settings, info.image_shape)
    if hasattr(model, "initialize_from_data"):  # llgae/lgae: k-means + local PCA start, no dead components
        from tfvae import data

        train_images, _ = data.load_arrays(settings["dataset"], "train", data_dir=args.data_dir)
        model.initialize_from_data(train_images[:settings["limit"]], seed=settings["seed"])
    model.compile(optimizer=keras.optimizers.Adam(settings["learning_rate"]))
    config = {"tfvae": "run", "settings": settings, "model_class": type(model).__name__,
              "model_config": model.get_config()}
    _atomic_write_text(out / "config.json", json.dumps(config, indent=2, default=str))

    callbacks = [keras.callbacks.BackupAndRestore(str(out / "backup")),
                 keras.callbacks.TensorBoard(str(out / "logs"))]
    start = time.time()
    history = model.fit(train, validation_data=held_out, epochs=settings["epochs"], callbacks=callbacks, shuffle=False,
                        verbose=0 if args.quiet else (1 if sys.stdout.isatty() else 2))
    seconds = time.time() - start
    save_model_atomically(model, out / "model.keras")
    _atomic_write_text(out / "history.json", json.dumps(history.history, indent=2))
    metrics = evaluation.evaluate_model(model, held_out, dataset=settings["dataset"], data_dir=args.data_dir,
                                        **evaluation_options)
    metrics["train_seconds"] = round(seconds, 2)
    _atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    _draw(model, held_out, out, metrics.get("kl_per_dimension"), which=None, history=history.history)
    if not args.quiet:
        print(_summary(out, settings, metrics))
    return 0


def _evaluation_options(args):
    samples = args.log_likelihood_samples
    if samples is not None and samples < 0:
        raise UsageError(f"--log-likelihood-samples must be >= 0, got {samples}")
    options = {} if samples is None else {"log_likelihood_samples": samples}
    scale = args.disentanglement_scale
    if scale is not None:
        if not (scale >= 0 and math.isfinite(scale)):
            raise UsageError(f"--disentanglement-scale must be a number >= 0, got {scale}")
        options["disentanglement_scale"] = scale
    return options


def _summary(out, settings, metrics):
    lines = [f"trained {settings['model']} on {settings['dataset']} "
             f"(latent {settings['latent_dim']}, {settings['epochs']} epochs, "
             f"{metrics.get('train_seconds', 0):.0f} s)"]
    for key in ("test_elbo", "test_reconstruction", "test_kl", "test_log_likelihood", "active_units",
                "probe_accuracy", "code_nonzero_fraction", "code_mean_active_dims", "test_reconstruction_error",
                "beta_vae_score", "factor_vae_score", "mig"):
        if key in metrics:
            value = metrics[key]
            lines.append(f"  {key:<20} {value:.3f}" if isinstance(value, float) else f"  {key:<20} {value}")
    lines.append(f"run directory: {out}  (model.keras, config.json, metrics.json, *.png, logs/)")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ evaluate / plot

def _load_run(run_dir):
    run_dir = pathlib.Path(run_dir)
    if not (run_dir / "model.keras").is_file() or not (run_dir / "config.json").is_file():
        raise UsageError(f"{run_dir} is not a finished tfvae run (expected model.keras and config.json there)")
    settings = json.loads((run_dir / "config.json").read_text())["settings"]
    import keras

    import tfvae.models  # noqa: F401  (registers the model classes for loading)

    return keras.models.load_model(run_dir / "model.keras"), settings


def cmd_evaluate(args):
    from tfvae import evaluation

    model, settings = _load_run(args.run_dir)
    _, _, held_out = _datasets(settings, args.data_dir, split=args.split, with_train=False)
    metrics = evaluation.evaluate_model(model, held_out, dataset=settings["dataset"], data_dir=args.data_dir,
                                        **_evaluation_options(args))
    previous = args.run_dir / "metrics.json"
    if previous.exists():
        metrics = dict(json.loads(previous.read_text()), **metrics)
    _atomic_write_text(previous, json.dumps(metrics, indent=2))
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, list)}, indent=2))
    return 0


def cmd_plot(args):
    model, settings = _load_run(args.run_dir)
    _, _, held_out = _datasets(settings, args.data_dir, with_train=False)
    which = {name for name in ("reconstructions", "samples", "traversals", "kl") if getattr(args, name)} or None
    metrics_path = args.run_dir / "metrics.json"
    kl = json.loads(metrics_path.read_text()).get("kl_per_dimension") if metrics_path.exists() else None
    history_path = args.run_dir / "history.json"
    history = json.loads(history_path.read_text()) if history_path.exists() else None
    for path in _draw(model, held_out, args.run_dir, kl, which, history):
        print(path)
    return 0


def _draw(model, held_out, out, kl, which, history=None):
    from tfvae import plots

    images = next(iter(held_out))[0].numpy()
    drawn = []
    if which is None or "reconstructions" in which:
        drawn.append(plots.plot_reconstructions(model, images[:10], out / "reconstructions.png"))
    generative = hasattr(model, "sample")  # decoder-only models (llgae) have no prior to sample
    if generative and (which is None or "samples" in which):
        drawn.append(plots.plot_samples(model, out / "samples.png"))
    if generative and (which is None or "traversals" in which):
        drawn.append(plots.plot_traversals(model, images[0], out / "traversals.png", kl=kl))
    if hasattr(model, "component_means") and which is None:  # llgae: μ_k, centred, around mid-grey
        drawn.append(plots.image_grid([model.component_means().numpy() + 0.5], out / "component_means.png",
                                      title="component means (+0.5)"))
    if kl is not None and (which is None or "kl" in which):
        drawn.append(plots.plot_kl_per_dimension(kl, out / "kl_per_dimension.png"))
    if history is not None and which is None:
        drawn.append(plots.plot_history(history, out / "history.png"))
    return drawn


def cmd_export(args):
    from tfvae import export

    model, _ = _load_run(args.run_dir)
    name = args.name or args.run_dir.resolve().name
    print(export.export_saved_model(model, args.out, version=args.version, name=name, overwrite=args.overwrite))
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "plot": cmd_plot, "export": cmd_export}


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except (UsageError, ValueError, FileNotFoundError) as error:
        if os.environ.get("TFVAE_DEBUG"):
            raise
        # ValueError and FileNotFoundError come from the API's own argument checks and data loaders,
        # whose messages name the bad value; a traceback would only bury them.
        print(f"tfvae: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tfvae: interrupted; run the same command again to resume from backup/", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
