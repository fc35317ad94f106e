"""The ``tfvae`` command line: argument parsing and printing over :mod:`tfvae.run`.

    tfvae train                       # a VAE on the embedded digits data, about a minute on 2 cores
    tfvae train --model beta-vae --beta 4 --dataset mnist --latent-dim 10 --out runs/bvae
    tfvae train --config runs/bvae/config.json --out runs/bvae-again   # reproduce a run
    tfvae evaluate runs/bvae --evaluation full   # the literature's protocol; JSON on stdout
    tfvae plot runs/bvae --traversals # redraw pictures
    tfvae export runs/bvae --out serving --name bvae   # SavedModel for TF Serving: serving/bvae/1

Every ``train`` flag is derived from a declaration: the run's settings and the evaluation's
(:data:`tfvae.run.SETTINGS`, :data:`tfvae.run.EVALUATION_SETTINGS`) and each model's options.
Bad arguments print one line starting ``tfvae: error:`` and exit with status 2. Progress goes to
stderr: ``tfvae train`` writes only its summary to stdout, ``tfvae evaluate`` only the metrics'
JSON.
"""

import argparse
import contextlib
import json
import os
import pathlib
import sys

from tfvae import names

#: run settings that say where to read and write, not what the run is
_NOT_SETTINGS = ("command", "config", "out", "overwrite", "quiet", "data_dir")


def _flag(key):
    return "--" + key.replace("_", "-")


@contextlib.contextmanager
def _quiet_native_logs():
    """Silences what TensorFlow's C++ side writes to the stderr file descriptor while it loads
    (oneDNN, CUDA and CPU-feature notes that ``TF_CPP_MIN_LOG_LEVEL`` does not reach)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _parser():
    flags = json.loads(FLAGS_FILE.read_text())
    parser = argparse.ArgumentParser(
        prog="tfvae", description="Variational autoencoders on TensorFlow Probability.",
        epilog=f"models: {', '.join(names.MODELS)}. Built-in data sets: {', '.join(names.DATASETS)}; or your own "
               "file (.npy, .npz, .csv, .tsv) or image folder, shards by glob ('DIR/*.tfrecord') or tfds:NAME. "
               "'tfvae COMMAND --help' for a command's flags.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser("train", help="train a model, evaluate it and write a run directory",
                                epilog=f"models: {', '.join(names.MODELS)}. Data sets: {', '.join(names.DATASETS)}.")
    train.add_argument("--config", type=pathlib.Path, help="config.json of an earlier run to start from")
    train.add_argument("--data-dir", help="folder with the built-in data sets' files (default $TFVAE_DATA_DIR)")
    _add_flags(train, flags["train"])
    train.add_argument("--out", type=pathlib.Path, help="run directory (default runs/MODEL-DATASET)")
    train.add_argument("--overwrite", action="store_true", help="replace a finished run in --out")
    train.add_argument("--quiet", action="store_true", help="no progress output")

    evaluate = commands.add_parser("evaluate", help="recompute a run's metrics.json (JSON on stdout)")
    evaluate.add_argument("run_dir", type=pathlib.Path)
    evaluate.add_argument("--data-dir", help="folder with the built-in data sets' files")
    evaluate.add_argument("--split", default=None, help="data split to evaluate on (default: the run's held-out split)")
    _add_flags(evaluate, flags["evaluate"])
    evaluate.add_argument("--quiet", action="store_true", help="no progress output: print only the metrics")

    plot = commands.add_parser("plot", help="redraw a run's pictures")
    plot.add_argument("run_dir", type=pathlib.Path)
    plot.add_argument("--data-dir", help="folder with the built-in data sets' files")
    for name in ("reconstructions", "samples", "traversals", "kl"):
        plot.add_argument(f"--{name}", action="store_true", help=f"draw only the {name} (combinable)")

    shards = commands.add_parser("shards", help="write a file or image folder as TFRecord shards, to stream from")
    shards.add_argument("input", help="a .npy, .npz, .csv or .tsv file or an image folder")
    shards.add_argument("out_dir", help="the folder of the shards (then: tfvae train --dataset 'OUT_DIR/*.tfrecord')")
    shards.add_argument("--examples-per-shard", type=int, metavar="N",
                        help="examples per file (default tfvae.data.shards.DEFAULT_EXAMPLES_PER_SHARD, 10,000)")
    shards.add_argument("--label-column", metavar="COLUMN", help="a table's column (name or 0-based index) of labels")
    shards.add_argument("--image-size", type=int, metavar="N", help="an image folder: resize images to NxN")
    shards.add_argument("--shuffle-seed", type=int, metavar="S", help="shuffle the examples first, from S")
    shards.add_argument("--overwrite", action="store_true", help="replace the .tfrecord files in OUT_DIR")

    export = commands.add_parser("export", help="write a run's model as a SavedModel for TF Serving")
    export.add_argument("run_dir", type=pathlib.Path)
    export.add_argument("--out", type=pathlib.Path, required=True,
                        help="model root: the SavedModel goes to OUT/NAME/VERSION")
    export.add_argument("--name", help="model name under --out (default: the run directory's name)")
    export.add_argument("--version", type=int, default=1, help="version number (default 1; TF Serving serves the highest)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing version")
    return parser


# ---------------------------------------------------- the derived flags, stored for a quick start

#: ``train``'s and ``evaluate``'s flags as derived from the declarations (:func:`derived_flags`),
#: stored so that parsing and ``--help`` need not import TensorFlow (5 s); ``tests/test_run.py``
#: checks the file against the declarations, and :func:`write_flags` rewrites it
FLAGS_FILE = pathlib.Path(__file__).with_name("cli_flags.json")
_TYPES = {"int": int, "float": float, "str": str}


def derived_flags():
    """``{command: [flag]}``: the run's settings, the evaluation's and every model option a run
    can set (:func:`tfvae.run.model_settings`), each ``{"flag", "kind", "metavar", "help"}``
    (``kind`` "bool" for a ``--flag/--no-flag`` pair). Imports TensorFlow."""
    from tfvae import run

    train = _setting_flags({**run.SETTINGS, **run.EVALUATION_SETTINGS})
    for key, setting in run.model_settings().items():
        option = setting.option
        help_text = f"{', '.join(setting.models)}: {option.help}"
        if isinstance(option.default, bool):
            kind = "bool"
        else:
            kind = "int" if isinstance(option.default, int) else ("str" if isinstance(option.default, str) else "float")
            if key == "likelihood":
                help_text += " (default: what fits the data set)"
            elif option.default is not None:
                help_text += f" (default {option.default})"
        train.append(dict(flag=_flag(key), kind=kind, metavar=None, help=help_text))
    return {"train": train, "evaluate": _setting_flags(run.EVALUATION_SETTINGS, defaults="the run's")}


def write_flags(path=FLAGS_FILE):
    """Rewrites the stored flags from the declarations (after an option or a setting changed)."""
    from tfvae.files import write_text_atomically

    write_text_atomically(path, json.dumps(derived_flags(), indent=1, ensure_ascii=False) + "\n")


def _setting_flags(settings, defaults=None):
    flags = []
    for key, setting in settings.items():
        help_text = setting.help
        if key == "model":
            help_text += f": {', '.join(names.MODELS)}"
        if defaults is not None:
            help_text += f" (default {defaults})"
        elif setting.default is not None:
            help_text += f" (default {setting.default})"
        flags.append(dict(flag=_flag(key), kind=setting.value_type.__name__, metavar=setting.metavar, help=help_text))
    return flags


def _add_flags(parser, flags):
    for flag in flags:
        if flag["kind"] == "bool":
            parser.add_argument(flag["flag"], action=argparse.BooleanOptionalAction, default=None, help=flag["help"])
        else:
            parser.add_argument(flag["flag"], type=_TYPES[flag["kind"]], metavar=flag["metavar"], help=flag["help"])


# --------------------------------------------------------------------------------------- commands

def _config(args):
    """Defaults, then --config, then the flags given on the command line, checked."""
    from tfvae import run

    given = {key: value for key, value in vars(args).items() if value is not None and key not in _NOT_SETTINGS}
    if args.config is not None:
        return run.RunConfig.load(args.config, spell=_flag).replace(**given)
    return run.RunConfig(spell=_flag, **given)


def cmd_train(args):
    from tfvae import run

    config = _config(args)
    with contextlib.redirect_stdout(sys.stderr):  # progress on stderr: stdout is the summary alone
        result = run.train(config, out=args.out, data_dir=args.data_dir, overwrite=args.overwrite,
                           verbose=0 if args.quiet else "auto")
    if result is not None and not args.quiet:
        print(summary(result.directory, result.config, result.metrics))
    return 0


def cmd_evaluate(args):
    from tfvae import run

    settings = {key: getattr(args, key) for key in run.EVALUATION_SETTINGS if getattr(args, key) is not None}
    run.RunConfig(spell=_flag, **settings)  # checked here, so that a bad value names its flag
    with contextlib.redirect_stdout(sys.stderr):  # progress on stderr: stdout is the JSON alone
        metrics = run.evaluate(args.run_dir, data_dir=args.data_dir, split=args.split,
                               verbose=0 if args.quiet else "auto", **settings)
    print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, list)}, indent=2))
    return 0


def cmd_plot(args):
    from tfvae import run

    which = {name for name in run.PICTURES if getattr(args, name)} or None
    for path in run.plot(args.run_dir, which, data_dir=args.data_dir):
        print(path)
    return 0


def cmd_export(args):
    from tfvae import run

    print(run.export(args.run_dir, args.out, name=args.name, version=args.version, overwrite=args.overwrite))
    return 0


def cmd_shards(args):
    from tfvae.data import shards, source

    size = {} if args.examples_per_shard is None else {"examples_per_shard": args.examples_per_shard}
    paths = shards.write_shards_from_file(args.input, args.out_dir, **size,
                                          label_column=source.label_column_of(args.label_column),
                                          image_size=args.image_size, shuffle_seed=args.shuffle_seed,
                                          overwrite=args.overwrite)
    print(f"wrote {len(paths)} shard(s) to {args.out_dir} ({paths[0].name}, ...)")
    return 0


COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "plot": cmd_plot, "export": cmd_export, "shards": cmd_shards}


# --------------------------------------------------------------------------------------- printing

#: metrics.json key -> (what it is, its units) in the printed summary, in this order
_SUMMARY = (
    ("test_elbo", "ELBO", "nats/example"),
    ("test_reconstruction", "reconstruction E_q log p(x|z)", "nats/example"),
    ("test_kl", "KL(q(z|x) || p(z))", "nats/example"),
    ("test_log_likelihood", "log-likelihood log p(x) (importance sampled)", "nats/example"),
    ("test_bits_per_dim", "bits per dimension", "bits"),
    ("active_units", "active units", "dimensions"),
    ("probe_accuracy", "linear probe accuracy", "fraction"),
    ("code_nonzero_fraction", "non-zero code entries", "fraction"),
    ("code_mean_active_dims", "active code entries per example", "dimensions"),
    ("test_reconstruction_error", "reconstruction squared error, image-centred", "(0-255 grey levels)^2/pixel"),
    ("beta_vae_score", "beta-VAE score", "accuracy"),
    ("factor_vae_score", "FactorVAE score", "accuracy"),
    ("mig", "MIG", "normalised nats"),
)


def summary(out, config, metrics):
    """What ``tfvae train`` prints: every figure with its standard error and units, and what the
    evaluation used."""
    plan = metrics.get("evaluation", {})
    used = [f"{metrics['test_examples']} held-out examples"] if "test_examples" in metrics else []
    if "log_likelihood_samples" in metrics:
        used.append(f"log-likelihood with K = {metrics['log_likelihood_samples']} on "
                    f"{metrics['log_likelihood_images']} examples")
    if "disentanglement_scale" in metrics:
        used.append(f"disentanglement at {metrics['disentanglement_scale']:.3g}x disentanglement_lib's samples")
    lines = [f"trained {config['model']} on {plan.get('dataset', config['dataset'])} (latent {config['latent_dim']}, "
             f"{config['epochs']} epoch{'s' if config['epochs'] != 1 else ''}, {metrics.get('train_seconds', 0):.0f} s); "
             f"{plan.get('mode', 'full')} evaluation in {plan.get('seconds', 0):.0f} s: {', '.join(used)}"]
    if "likelihood" in metrics:
        lines.append(f"  likelihood: {metrics['likelihood']} ({metrics.get('log_density_units', '')})")
    for key, label, units in _SUMMARY:
        if key not in metrics:
            continue
        value, error = metrics[key], metrics.get(f"{key}_se")
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        if key == "active_units":
            text += f" of {config['latent_dim']}"
        if error is not None:
            text += f" ± {error:.2g}"
        lines.append(f"  {label:<47} {text:>18}  {units}")
    lines.append(f"run directory: {out}  (model.keras, config.json, metrics.json, *.png, logs/)")
    return "\n".join(lines)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    with _quiet_native_logs():
        import tensorflow  # noqa: F401  (every command but --help needs it; loaded without its notes)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FileNotFoundError) as error:
        if os.environ.get("TFVAE_DEBUG"):
            raise
        # the run layer's, the API's and the data loaders' checks name the bad value; a traceback
        # would only bury them
        print(f"tfvae: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tfvae: interrupted; run the same command again to resume from backup/", file=sys.stderr)
        return 130
    except RuntimeError as error:
        from tfvae import run

        if not isinstance(error, run.WorkerStopped):
            raise
        print(f"tfvae: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
