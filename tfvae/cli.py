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

from tfvae.files import save_model_atomically, write_text_atomically

#: run settings (not model options) and their defaults; "likelihood" and "binarize" default per
#: data set (DATASET_LIKELIHOODS), the model options to their declarations (tfvae.models.options)
DEFAULTS = dict(
    model="vae", dataset="digits", latent_dim=10, epochs=50, batch_size=32, learning_rate=2e-3, seed=0,
    binarize=None, limit=None, label_column=None, image_size=None, validation_fraction=0.1,
)

#: data set -> (likelihood, training binarisation) when neither is given. Grey-level digits are
#: binarised dynamically for training and by one seeded draw for evaluation, so the reported
#: log-likelihood is a normalised density comparable with the literature (REFERENCES §6);
#: Fashion-MNIST's grey levels carry the texture, so it keeps them under the continuous Bernoulli.
DATASET_LIKELIHOODS = {
    "digits": ("bernoulli", "dynamic"), "mnist": ("bernoulli", "dynamic"),
    "fashion_mnist": ("continuous-bernoulli", None), "binarized_mnist": ("bernoulli", None),
    "shapes2d": ("bernoulli", None), "dsprites": ("bernoulli", None),
}

#: settings that say where to read and write, not what the run is (not stored in config.json)
_NOT_SETTINGS = ("command", "config", "out", "overwrite", "quiet", "data_dir", "log_likelihood_samples",
                 "disentanglement_scale")


def model_flags():
    """Every model option with a flag: ``{flag: {"keyword", "option", "models"}}``, derived from
    the options the model classes declare (so a flag exists exactly for the models that honour it)."""
    from tfvae import models

    flags = {}
    for model_name, cls in models.REGISTRY.items():
        for keyword, option in cls.declared_options().items():
            flag = option.cli_flag(keyword)
            if flag is None:
                continue
            entry = flags.setdefault(flag, {"keyword": keyword, "option": option, "models": []})
            if entry["keyword"] != keyword:
                raise RuntimeError(f"--{flag} names two options ({entry['keyword']}, {keyword})")
            entry["models"].append(model_name)
    return flags


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
    train.add_argument("--dataset", help=f"a data set name, or the path of your own .npy, .npz, .csv, .tsv or "
                                         f"image folder (default {DEFAULTS['dataset']})")
    train.add_argument("--data-dir", help="folder with the original data files (default $TFVAE_DATA_DIR)")
    train.add_argument("--latent-dim", type=int, help=f"code size (default {DEFAULTS['latent_dim']})")
    train.add_argument("--epochs", type=int, help=f"passes over the training data (default {DEFAULTS['epochs']})")
    train.add_argument("--batch-size", type=int, help=f"global batch (default {DEFAULTS['batch_size']})")
    train.add_argument("--learning-rate", type=float, help=f"Adam learning rate (default {DEFAULTS['learning_rate']})")
    train.add_argument("--seed", type=int, help="random seed for weights, shuffling and sampling (default 0)")
    train.add_argument("--binarize", choices=["dynamic", "threshold", "none"],
                       help="binarise grey levels for training (dynamic: a fresh Bernoulli draw each time; "
                            "evaluation then uses one seeded draw). Default per data set, see README")
    train.add_argument("--limit", type=int, help="use only the first N training examples")
    train.add_argument("--label-column", help="--dataset FILE.csv/.tsv: the column (name or 0-based index) "
                                              "holding labels")
    train.add_argument("--image-size", type=int, metavar="N", help="--dataset FOLDER: resize images to NxN")
    train.add_argument("--validation-fraction", type=float, metavar="F",
                       help="--dataset FILE/FOLDER: held-out fraction for evaluation (default 0.1)")
    for flag, entry in model_flags().items():
        option = entry["option"]
        default = option.default
        help_text = f"{', '.join(entry['models'])}: {option.help}"
        if isinstance(default, bool):
            train.add_argument(f"--{flag}", action=argparse.BooleanOptionalAction, default=None, help=help_text)
            continue
        kind = int if isinstance(default, int) else (str if isinstance(default, str) else float)
        if default is not None:
            help_text += f" (default {default})"
        train.add_argument(f"--{flag}", type=kind, help=help_text)
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
    evaluate.add_argument("--quiet", action="store_true", help="no progress output: print only the metrics")

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
        if value is not None and key not in _NOT_SETTINGS:
            settings[key] = value
    return settings


def _is_file_dataset(name):
    return isinstance(name, str) and (os.sep in name or "." in name or pathlib.Path(name).exists())


def _check_settings(settings):
    from tfvae import data, models

    if settings["model"] not in models.REGISTRY:
        raise UsageError(f"unknown model {settings['model']!r}; expected one of {', '.join(sorted(models.REGISTRY))}")
    if settings["dataset"] not in data.DATASETS and not _is_file_dataset(settings["dataset"]):
        raise UsageError(f"unknown data set {settings['dataset']!r}; expected one of "
                         f"{', '.join(sorted(data.DATASETS))}, or the path of a .npy, .npz, .csv, .tsv file or "
                         "an image folder")
    for key in ("latent_dim", "epochs", "batch_size"):
        if not isinstance(settings[key], int) or settings[key] <= 0:
            raise UsageError(f"--{key.replace('_', '-')} must be a positive integer, got {settings[key]}")
    if settings["limit"] is not None and settings["limit"] <= 0:
        raise UsageError(f"--limit must be a positive integer, got {settings['limit']}")
    if not (settings["learning_rate"] > 0 and math.isfinite(settings["learning_rate"])):
        raise UsageError(f"--learning-rate must be a positive number, got {settings['learning_rate']}")
    if not _is_file_dataset(settings["dataset"]):
        for key in ("label_column", "image_size"):
            if settings.get(key) is not None:
                raise UsageError(f"--{key.replace('_', '-')} applies to --dataset FILE or FOLDER, "
                                 f"not the built-in {settings['dataset']!r}")
    for flag, entry in model_flags().items():
        if settings.get(flag.replace("-", "_")) is not None and settings["model"] not in entry["models"]:
            raise UsageError(f"--{flag} applies to {', '.join(entry['models'])}, not {settings['model']}")


def _model_options(settings, source):
    """The model's constructor options from the settings: the flags given, the data set's
    likelihood default, its standardisation and (β-TCVAE) its size."""
    from tfvae import models

    cls = models.get(settings["model"])
    declared = cls.declared_options()
    options = {entry["keyword"]: settings[flag.replace("-", "_")] for flag, entry in model_flags().items()
               if settings["model"] in entry["models"] and settings.get(flag.replace("-", "_")) is not None}
    if "likelihood" in declared and "likelihood" not in options:
        options["likelihood"] = source.likelihood
    if "standardization" in declared and source.standardization is not None:
        options["standardization"] = source.standardization
    if "dataset_size" in declared:  # N of β-TCVAE's minibatch estimate of q(z): the training set's size
        options["dataset_size"] = source.train_size
    return cls, options


def _build_model(settings, source):
    cls, options = _model_options(settings, source)
    return cls(source.feature_shape, settings["latent_dim"], **options)


class DataSource:
    """What a run trains and evaluates on: a built-in data set or the user's file, with its
    pipelines, example shape, default likelihood and (real values) standardisation."""

    def __init__(self, settings, data_dir, split=None, with_train=True):
        from tfvae import data, models

        name, batch = settings["dataset"], settings["batch_size"]
        self.name = name
        if _is_file_dataset(name):
            user = data.load_file(name, label_column=_label_column(settings.get("label_column")),
                                  image_size=settings.get("image_size"),
                                  validation_fraction=settings.get("validation_fraction", 0.1),
                                  seed=settings["seed"])
            if user.validation_fraction == 0:
                raise UsageError("--validation-fraction must be > 0: the run is evaluated on held-out data")
            self.feature_shape, self.likelihood = user.feature_shape, user.likelihood
            self.standardization = None if user.standardizer is None else {
                "mean": user.standardizer.mean.numpy().tolist(), "scale": user.standardizer.std.numpy().tolist()}
            self.train_size = len(user.train_indices)
            self.train = user.datasets(batch, shuffle=True, seed=settings["seed"])[0] if with_train else None
            self.held_out = user.datasets(500, shuffle=False)[1]
            self.dataset_name, self.user_data = None, user
            return
        info = data.info(name)
        likelihood, binarize = DATASET_LIKELIHOODS.get(name, ("bernoulli", None))
        if settings.get("likelihood") not in (None, likelihood) \
                or "likelihood" not in models.get(settings["model"]).declared_options():
            binarize = None  # the data set's binarisation goes with its default likelihood only
        if settings["binarize"] is not None:  # given: "dynamic", "threshold" or "none"
            binarize = None if settings["binarize"] == "none" else settings["binarize"]
        self.binarize = binarize
        self.feature_shape, self.likelihood, self.standardization = info.image_shape, likelihood, None
        size = info.num_examples["train"]
        self.train_size = min(size, settings["limit"] or size)
        self.dataset_name, self.user_data = name, None
        # evaluate and plot need no training split (shapes2d would render all 727,280 images for it)
        self.train = data.load(name, "train", data_dir=data_dir, batch_size=batch, shuffle=True,
                               seed=settings["seed"], binarize=binarize, limit=settings["limit"]) \
            if with_train else None
        held_out = split or ("valid" if "valid" in info.splits else "test")
        # a binarised training set is evaluated on one seeded draw of the test set (a normalised
        # log-likelihood comparable with the literature); "threshold" stays "threshold"
        evaluation = {"dynamic": "fixed", "threshold": "threshold"}.get(binarize)
        self.held_out = data.load(name, held_out, data_dir=data_dir, batch_size=500, binarize=evaluation,
                                  seed=settings["seed"])

    def arrays(self):
        """The training examples as an array (LLGAE's k-means start)."""
        from tfvae import data

        if self.user_data is not None:
            return self.user_data.arrays("train")[0]
        return data.load_arrays(self.name, "train")[0]


def _label_column(value):
    if value is None:
        return None
    return int(value) if str(value).lstrip("-").isdigit() else value


def _default_out(settings):
    base = pathlib.Path("runs") / f"{settings['model']}-{settings['dataset']}"
    out, n = base, 1
    while (out / "model.keras").exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def cmd_train(args):
    """Trains on one host (``model.fit``; MirroredStrategy is not used here) or, when ``TF_CONFIG``
    names several workers, on all of them with :func:`tfvae.distributed.train`: the same command
    runs on every worker, the chief writes the run directory, and evaluation runs once, on the
    chief. Both resume from ``OUT/backup`` when rerun after an interruption."""
    import contextlib

    settings = _train_settings(args)
    _check_settings(settings)
    evaluation_options = _evaluation_options(args)
    cluster = _cluster()
    out = args.out or _default_out(settings)
    if (out / "model.keras").exists() and not args.overwrite:
        raise UsageError(f"{out} already holds a finished run; choose another --out or pass --overwrite")
    if cluster.is_chief:  # the other workers write nothing in the run directory
        out.mkdir(parents=True, exist_ok=True)
    strategy = _worker_strategy(cluster)  # before any other TensorFlow operation runs

    import keras

    from tfvae import evaluation

    keras.utils.set_random_seed(settings["seed"])
    source = DataSource(settings, args.data_dir)
    train, held_out = source.train, source.held_out
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = _build_model(settings, source)
        # config.json records what the defaults resolved to, so --config reproduces this run exactly
        if source.dataset_name is not None:
            settings["binarize"] = source.binarize or "none"
        if isinstance(getattr(model, "likelihood_option", None), str):
            settings["likelihood"] = model.likelihood_option
        if model.initializes_from_data():  # llgae/lgae: k-means + local PCA start, no dead components
            model.initialize_from_data(source.arrays()[:settings["limit"]], seed=settings["seed"],
                                       verbose=0 if args.quiet else "auto")
        model.compile(optimizer=keras.optimizers.Adam(settings["learning_rate"]))
    if cluster.is_chief:
        config = {"tfvae": "run", "settings": settings, "model_class": type(model).__name__,
                  "model_config": model.get_config()}
        write_text_atomically(out / "config.json", json.dumps(config, indent=2, default=str))

    if strategy is None:
        history, seconds = _fit_resumably(model, train, held_out, out, settings["epochs"], args.quiet)
        save_model_atomically(model, out / "model.keras")
        write_text_atomically(out / "history.json", json.dumps(history, indent=2))
    else:
        trained = _train_on_workers(model, strategy, train, held_out, out, settings["epochs"], args.quiet)
        if trained is None:  # not the chief: the chief evaluates and writes the rest
            return 0
        model, history, seconds = trained
    metrics = evaluation.evaluate_model(model, held_out, dataset=source.dataset_name, data_dir=args.data_dir,
                                        verbose=0 if args.quiet else "auto", **evaluation_options)
    metrics["train_seconds"] = round(seconds, 2)
    write_text_atomically(out / "metrics.json", json.dumps(metrics, indent=2))
    _draw(model, held_out, out, metrics.get("kl_per_dimension"), which=None, history=history)
    if not args.quiet:
        print(_summary(out, settings, metrics))
    if strategy is not None:
        from tfvae import distributed

        distributed.barrier(strategy)  # the other workers waited for this evaluation; all exit now
    return 0


def _cluster():
    """The cluster of ``TF_CONFIG`` (:class:`tfvae.distributed.Cluster`), checked up front."""
    from tfvae import distributed

    try:
        cluster = distributed.cluster_from_environment()
        if cluster.num_workers > 1:
            distributed.worker_timeout_from_environment()
    except ValueError as error:
        raise UsageError(str(error)) from None
    return cluster


def _worker_strategy(cluster):
    """MultiWorkerMirroredStrategy when ``TF_CONFIG`` names several workers, else None."""
    if cluster.num_workers == 1:
        return None
    from tfvae import distributed

    return distributed.multi_worker_strategy(timeout=distributed.worker_timeout_from_environment())


def _fit_resumably(model, train, held_out, out, epochs, quiet):
    """``model.fit`` that resumes from ``out/backup`` (BackupAndRestore) with its history and
    training time whole across the restart (:class:`tfvae.distributed.ResumableHistory`).
    Returns ``(history, seconds)``."""
    import keras

    from tfvae import distributed

    record = distributed.ResumableHistory(out / "backup" / "history.json", dataset=train)
    # the record before the backup: it is never behind the weights it describes
    callbacks = [record, keras.callbacks.BackupAndRestore(str(out / "backup")),
                 keras.callbacks.TensorBoard(str(out / "logs"))]
    model.fit(train, validation_data=held_out, epochs=epochs, callbacks=callbacks, shuffle=False,
              verbose=0 if quiet else (1 if sys.stdout.isatty() else 2))
    return record.history, record.seconds


def _train_on_workers(model, strategy, train, held_out, out, epochs, quiet):
    """Multi-worker training; on the chief ``(model, history, seconds)`` with the model reloaded
    from ``out/model.keras`` outside the strategy (Keras' evaluate cannot run under
    MultiWorkerMirroredStrategy, and the other workers are gone), elsewhere None."""
    import shutil

    import keras

    from tfvae import distributed

    import tensorflow as tf

    chief = distributed.is_chief(strategy)
    try:
        result = distributed.train(model, train, epochs, strategy=strategy, checkpoint_dir=out / "backup",
                                   validation_data=held_out, verbose=0 if quiet else 1,
                                   callbacks=[keras.callbacks.TensorBoard(str(out / "logs"))] if chief else [])
    except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.DeadlineExceededError,
            tf.errors.CancelledError) as error:
        # a peer died: the coordination service aborts this worker's collective operations
        lines = [line.strip() for line in str(error).splitlines()
                 if line.strip() and not line.startswith(("Graph execution error", "Detected at node"))]
        detail = f"{type(error).__name__}: {lines[0][:300]}" if lines else type(error).__name__
        print(f"tfvae: error: a worker of the cluster stopped ({detail}); start the same command on every "
              f"worker again to resume from {out / 'backup'}", file=sys.stderr)
        raise SystemExit(1) from None
    if not chief:  # (model.save involves no collective operation: the chief saves alone)
        distributed.barrier(strategy)  # wait for the chief's evaluation (see tfvae.distributed.barrier)
        return None
    save_model_atomically(model, out / "model.keras")
    write_text_atomically(out / "history.json", json.dumps(result.history, indent=2))
    shutil.rmtree(out / "backup", ignore_errors=True)  # the run is whole: nothing to resume
    import tfvae.models  # noqa: F401  (registers the model classes for loading)

    return keras.models.load_model(out / "model.keras"), result.history, result.seconds


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
    for key in ("likelihood", "test_elbo", "test_reconstruction", "test_kl", "test_log_likelihood", "test_bits_per_dim",
                "active_units",
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
    source = DataSource(settings, args.data_dir, split=args.split, with_train=False)
    metrics = evaluation.evaluate_model(model, source.held_out, dataset=source.dataset_name, data_dir=args.data_dir,
                                        verbose=0 if args.quiet else "auto", **_evaluation_options(args))
    previous = args.run_dir / "metrics.json"
    if previous.exists():
        metrics = dict(json.loads(previous.read_text()), **metrics)
    write_text_atomically(previous, json.dumps(metrics, indent=2))
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, list)}, indent=2))
    return 0


def cmd_plot(args):
    model, settings = _load_run(args.run_dir)
    held_out = DataSource(settings, args.data_dir, with_train=False).held_out
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
    can = set(model.plots())
    if len(images.shape) == 2:  # vectors: profiles of reconstructions; no image grids to draw
        can &= {"reconstructions", "kl"}
    if "reconstructions" in can and (which is None or "reconstructions" in which):
        drawn.append(plots.plot_reconstructions(model, images[:10], out / "reconstructions.png"))
    if "samples" in can and (which is None or "samples" in which):
        drawn.append(plots.plot_samples(model, out / "samples.png"))
    if "traversals" in can and (which is None or "traversals" in which):
        drawn.append(plots.plot_traversals(model, images[0], out / "traversals.png", kl=kl))
    if "component_means" in can and which is None:  # llgae: μ_k, centred, around mid-grey
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
