"""One run: data source → model → training → evaluation → run directory.

The command line, the notebooks, the benchmarks and Python users all go through here:

    >>> import tfvae
    >>> run = tfvae.run.train(model="beta-vae", beta=4.0, dataset="mnist", latent_dim=10, epochs=20)
    >>> run.metrics["test_log_likelihood"], run.metrics["test_log_likelihood_se"]
    >>> run.model.encode(images)                        # the trained keras.Model
    >>> tfvae.run.evaluate(run.directory, evaluation="full")   # the literature's protocol

A run is declared by a :class:`RunConfig`: the run settings (:data:`SETTINGS`), the evaluation
settings (:data:`EVALUATION_SETTINGS`) and the model's options (declared by each model class,
see :mod:`tfvae.models.options`), each with its default, check and help. The ``tfvae train``
flags and ``--config`` are derived from these declarations, and ``config.json`` saves them.

:func:`train` opens the data (:func:`tfvae.data.open_source`), builds and compiles the model,
trains it on one host (``model.fit``) or, when ``TF_CONFIG`` names several workers, on all of them
(:func:`tfvae.distributed.train`), resumes after a kill from ``DIR/backup``, evaluates with a plan
sized to the training time (:mod:`tfvae.evaluation.budget`) and writes the run directory:

=====================  ======================================================================
``config.json``        the settings, resolved (reproduce the run with ``RunConfig.load``)
``model.keras``        the trained model (written atomically)
``history.json``       per-epoch training metrics, over every restart
``metrics.json``       the evaluation: every estimate with its standard error and sample sizes
``logs/``, ``*.png``   TensorBoard logs; reconstructions, samples, traversals, KL bars, history
=====================  ======================================================================

Nothing is written before the data and every setting have been checked, and every file is
written atomically, so bad input leaves nothing behind and a kill loses nothing saved.
"""

import collections
import contextlib
import dataclasses
import json
import pathlib
import random
import sys

from tfvae import devices, validation
from tfvae.data import source as sources
from tfvae.files import save_model_atomically, write_text_atomically


# ------------------------------------------------------------------------------ the settings

@dataclasses.dataclass(frozen=True)
class Setting:
    """One run setting: its default, its check ``(name, value) -> value`` and one line of help.
    ``type`` is the command line's type of the value (default: the default's type)."""

    default: object
    check: object
    help: str
    type: object = None
    metavar: str = None

    @property
    def value_type(self):
        return self.type or type(self.default)


def _optional(check):
    return lambda name, value: None if value is None else check(name, value)


def _model_name(name, value):
    from tfvae import models

    if value not in models.REGISTRY:
        raise ValueError(f"unknown model {value!r}; expected one of {', '.join(models.REGISTRY)}")
    return value


def _learning_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < float("inf")):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _label_column(name, value):
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"{name} must be a column name or a 0-based index, got {value!r}")
    return value


def _fraction(name, value):
    return validation.number(name, value, minimum=0.0, maximum=1.0, exclusive_minimum=True, exclusive_maximum=True)


#: the run's own settings
SETTINGS = {
    "model": Setting("vae", _model_name, "model name", type=str),
    "dataset": Setting("digits", sources.check_dataset, "a built-in data set; the path of your own .npy, .npz, "
                       ".csv, .tsv file or image folder; shards to stream by glob ('DIR/*.tfrecord', .npy, .csv); "
                       "or tfds:NAME[/CONFIG], a prepared TensorFlow Datasets builder", type=str),
    "latent_dim": Setting(10, validation.positive_int, "code size"),
    "epochs": Setting(50, validation.positive_int, "passes over the training data"),
    "batch_size": Setting(32, validation.positive_int, "global batch (over every replica and worker)"),
    "learning_rate": Setting(2e-3, _learning_rate, "Adam learning rate"),
    "seed": Setting(0, validation.integer, "random seed of weights, shuffling, binarisation and held-out draws"),
    "binarize": Setting(None, _optional(lambda n, v: validation.choice(n, v, sources.BINARIZE_SETTINGS)),
                        "built-in grey-level data: dynamic (a fresh Bernoulli draw each time; evaluation uses "
                        "one seeded draw), threshold or none. Default: the data set's protocol (README)",
                        type=str, metavar="{dynamic,threshold,none}"),
    "limit": Setting(None, _optional(validation.positive_int), "use only the first N training examples",
                     type=int, metavar="N"),
    "label_column": Setting(None, _optional(_label_column), "a table's column (name or 0-based index) holding "
                            "labels", type=str, metavar="COLUMN"),
    "image_size": Setting(None, _optional(validation.positive_int), "an image folder: resize images to NxN",
                          type=int, metavar="N"),
    "validation_fraction": Setting(0.1, _fraction, "a file or folder: the seeded held-out fraction for evaluation",
                                   metavar="F"),
    "precision": Setting("auto", lambda n, v: validation.choice(n, v, devices.PRECISIONS),
                         "the networks' compute dtype (weights, distributions and objectives stay float32); "
                         "auto: mixed_bfloat16 on a CPU with bfloat16 matrix units (AMX) unless the step is small "
                         "(dense, under 128 M multiply-adds), else float32",
                         metavar="{" + ",".join(devices.PRECISIONS) + "}"),
}

#: how the run is evaluated (:mod:`tfvae.evaluation.budget`)
EVALUATION_SETTINGS = {
    "evaluation": Setting("sized", lambda n, v: validation.choice(n, v, ("sized", "full")),
                          "sized: about max(training time, 60 s) of evaluation, every estimate with its standard "
                          "error; full: the literature's protocol (all test examples, K = 5000, "
                          "disentanglement_lib's sample counts)", metavar="{sized,full}"),
    "log_likelihood_samples": Setting(None, _optional(lambda n, v: validation.integer(n, v, minimum=0)),
                                      "importance samples K of the test log-likelihood (default: 5000, fewer in "
                                      "a sized evaluation; 0 skips it)", type=int, metavar="K"),
    "disentanglement_scale": Setting(None, _optional(lambda n, v: validation.number(n, v, minimum=0.0)),
                                     "data sets of known factors: multiple of disentanglement_lib's sample counts "
                                     "for the beta-VAE and FactorVAE scores and MIG (default 1, less in a sized "
                                     "evaluation; 0 skips them)", type=float, metavar="S"),
}


class ModelSetting(collections.namedtuple("ModelSetting", ["keyword", "option", "models"])):
    """A model option as a run setting: the constructor's ``keyword``, its declared
    :class:`tfvae.models.options.Option` and the names of the models that declare it."""


def model_settings():
    """Every model option a run can set, ``{name: ModelSetting}``, derived from the options the
    model classes declare (so a setting exists exactly for the models that honour it; options
    without a flag, such as networks, are the Python API's alone)."""
    from tfvae import models

    found = {}
    for model_name, cls in models.REGISTRY.items():
        for keyword, option in cls.declared_options().items():
            flag = option.cli_flag(keyword)
            if flag is None:
                continue
            setting = found.setdefault(flag.replace("-", "_"), ModelSetting(keyword, option, []))
            if setting.keyword != keyword:
                raise RuntimeError(f"the setting {flag} names two options ({setting.keyword}, {keyword})")
            setting.models.append(model_name)
    return found


class RunConfig:
    """A run's settings, checked: the run's own (:data:`SETTINGS`), the evaluation's
    (:data:`EVALUATION_SETTINGS`) and the model's options (:func:`model_settings`). Unset
    settings take their defaults; a model option the chosen model does not have is an error.

    Args:
      spell: how a setting is named in messages (the command line passes ``--flag``).
      **settings: the settings given.

    Example:
      >>> config = RunConfig(model="beta-vae", beta=4.0, dataset="mnist")
      >>> config["epochs"], config.model_options()
      (50, {'beta': 4.0})
      >>> RunConfig.load("runs/bvae/config.json").replace(seed=1)
    """

    def __init__(self, spell=str, **settings):
        declared = model_settings()
        self._spell = spell
        unknown = sorted(set(settings) - set(SETTINGS) - set(EVALUATION_SETTINGS) - set(declared))
        if unknown:
            raise ValueError(f"unknown setting(s) {', '.join(unknown)}; expected some of "
                             f"{', '.join(sorted(SETTINGS) + sorted(EVALUATION_SETTINGS))} or a model option")
        values = {}
        for key, setting in {**SETTINGS, **EVALUATION_SETTINGS}.items():
            value = settings.get(key)
            values[key] = setting.default if value is None else setting.check(spell(key), value)
        for key in sorted(set(settings) & set(declared)):
            if settings[key] is None:
                continue
            setting = declared[key]
            if values["model"] not in setting.models:
                raise ValueError(f"{spell(key)} applies to {', '.join(setting.models)}, not {values['model']}")
            values[key] = setting.option.check(spell(key), settings[key])
        self._values = values

    @classmethod
    def load(cls, path, spell=str):
        """The config of a run directory's ``config.json`` (or of that file)."""
        path = pathlib.Path(path)
        path = path / "config.json" if path.is_dir() else path
        try:
            saved = json.loads(path.read_text())["settings"]
        except FileNotFoundError:
            raise ValueError(f"no such file {path}") from None
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path} is not a tfvae config.json (no 'settings')") from None
        return cls(spell=spell, **saved)

    def __getitem__(self, key):
        return self._values[key]

    def get(self, key, default=None):
        return self._values.get(key, default)

    def as_dict(self):
        """Every setting, defaults included (what ``config.json`` stores under ``settings``)."""
        return dict(self._values)

    def replace(self, **changes):
        """A new config with ``changes`` (None resets a setting to its default)."""
        values = dict(self._values)
        if "model" in changes and changes["model"] != values["model"]:
            values = {k: v for k, v in values.items() if k in SETTINGS or k in EVALUATION_SETTINGS}
        values.update(changes)
        return RunConfig(spell=self._spell, **values)

    def model_options(self):
        """The model constructor's keywords given in this config."""
        declared = model_settings()
        return {declared[k].keyword: v for k, v in self._values.items() if k in declared}

    def __repr__(self):
        return f"RunConfig({', '.join(f'{k}={v!r}' for k, v in self._values.items())})"


# ------------------------------------------------------------------------------ the run

@dataclasses.dataclass
class Run:
    """A finished run: its directory, config, trained model, metrics and per-epoch history."""

    directory: pathlib.Path
    config: RunConfig
    model: object
    metrics: dict
    history: dict


def open_source(config, data_dir=None, split=None, likelihood=None):
    """The :class:`tfvae.data.Source` a config trains and evaluates on."""
    return sources.open_source(
        config["dataset"], data_dir=data_dir, seed=config["seed"], likelihood=likelihood,
        binarize=config["binarize"], limit=config["limit"], label_column=config["label_column"],
        image_size=config["image_size"], validation_fraction=config["validation_fraction"], split=split)


def build_model(config, source, **options):
    """The (uncompiled) model of ``config`` for ``source``: the options given, the source's
    likelihood when none is given, its standardisation and (β-TCVAE) its training-set size.
    ``options`` are constructor keywords a config does not hold (``network_options``, your own
    ``encoder`` and ``decoder``, ...); they take precedence.

    Example:
      >>> config = RunConfig(model="vsc", dataset="mnist", latent_dim=200, alpha=0.01)
      >>> build_model(config, open_source(config), network_options={"hidden_units": (400,)})
    """
    from tfvae import models

    cls = models.get(config["model"])
    declared = cls.declared_options()
    options = dict(config.model_options(), **options)
    if "likelihood" in declared and "likelihood" not in options:
        options["likelihood"] = source.likelihood
    if "standardization" in declared and source.standardization is not None:
        options.setdefault("standardization", source.standardization)
    if "dataset_size" in declared:  # N of β-TCVAE's minibatch estimate of q(z): the training set's size
        options.setdefault("dataset_size", source.train_size)

    def build(precision):
        with _global_policy(devices.resolve_precision(precision)):
            return cls(source.feature_shape, config["latent_dim"], **options)

    if config["precision"] != "auto" or devices.default_precision() == "float32":
        return build(config["precision"])
    # "auto" on a CPU with bfloat16 matrix units: the step's size decides, so build once to count
    # it. Python's random state (Keras draws its initializers' seeds from it) is put back before a
    # rebuild, so that a model "auto" puts in float32 starts from precision="float32"'s weights.
    state = random.getstate()
    model = build("auto")
    precision = devices.default_precision(devices.forward_multiply_adds(model, config["batch_size"]))
    if precision == "float32":
        random.setstate(state)
        model = build(precision)
    return model


@contextlib.contextmanager
def _global_policy(policy):
    """Networks built inside compute under the Keras dtype policy ``policy`` (their layers keep it
    and save it); the global policy is put back, so that nothing else in the process changes dtype."""
    import keras

    before = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(before)


def default_directory(config, source):
    """``runs/MODEL-NAME`` (``-2``, ``-3``, ... when a finished run is there), NAME being the
    data set's name or the file's stem."""
    base = pathlib.Path("runs") / f"{config['model']}-{source.name}"
    out, n = base, 1
    while (out / "model.keras").exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def train(config=None, *, out=None, data_dir=None, overwrite=False, verbose="auto", **settings):
    """Trains, evaluates and writes one run; returns the :class:`Run`.

    Args:
      config: a :class:`RunConfig`, or None to build one from ``settings``.
      out: the run directory (default :func:`default_directory`). An interrupted run resumes
        from ``out/backup`` when called again with the same directory.
      data_dir: where the built-in data sets' files are (default ``$TFVAE_DATA_DIR``).
      overwrite: replace a finished run in ``out`` (otherwise an error).
      verbose: 0 silent, 1 progress bars, 2 one line per epoch and stage, ``"auto"`` (1 on a
        terminal, else 2).
      **settings: the settings of a new :class:`RunConfig` (with ``config``, changes to it).

    Under ``TF_CONFIG`` naming several workers, run the same call on every worker: the chief
    writes the run directory and evaluates, the others return None.

    Example:
      >>> run = tfvae.run.train(dataset="cells.csv", label_column="type", latent_dim=8, epochs=30)
      >>> run.metrics["probe_accuracy"], run.directory
    """
    from tfvae import distributed, progress

    config = RunConfig(**settings) if config is None else (config.replace(**settings) if settings else config)
    verbose = progress.check_verbose(verbose)
    cluster = distributed.cluster_from_environment()
    if out is not None and (pathlib.Path(out) / "model.keras").exists() and not overwrite:
        raise ValueError(f"{out} already holds a finished run; choose another directory or overwrite it")
    strategy = None
    if cluster.num_workers > 1:  # before any other TensorFlow operation runs
        strategy = distributed.multi_worker_strategy(timeout=distributed.worker_timeout_from_environment())

    import keras

    from tfvae import optimizers

    keras.utils.set_random_seed(config["seed"])
    source = _checked_source(config, data_dir)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = build_model(config, source)
        if model.initializes_from_data():  # llgae/lgae: k-means + local PCA start, no dead components
            model.initialize_from_data(source.arrays("train")[0], seed=config["seed"], verbose=verbose)
        model.compile(optimizer=optimizers.FusedAdam(config["learning_rate"]))
    out = pathlib.Path(out) if out is not None else default_directory(config, source)
    # config.json records what the defaults resolved to, so loading it reproduces this run exactly
    resolved = config.replace(**source.resolved_settings())
    if isinstance(getattr(model, "likelihood_option", None), str):
        resolved = resolved.replace(likelihood=model.likelihood_option)
    if config["precision"] == "auto" and hasattr(model, "encoder"):  # what "auto" chose on this machine
        resolved = resolved.replace(precision=model.encoder.dtype_policy.name)
    if cluster.is_chief:  # the other workers write nothing in the run directory
        out.mkdir(parents=True, exist_ok=True)
        document = {"tfvae": "run", "settings": resolved.as_dict(), "model_class": type(model).__name__,
                    "model_config": model.get_config()}
        write_text_atomically(out / "config.json", json.dumps(document, indent=2, default=str))

    if strategy is None:
        history, seconds = _fit_resumably(model, source, config, out, verbose)
        save_model_atomically(model, out / "model.keras")
        write_text_atomically(out / "history.json", json.dumps(history, indent=2))
        metrics = evaluate_model(model, source, config, train_seconds=seconds, verbose=verbose)
    else:
        model, history, seconds = _train_on_workers(model, strategy, source, config, out, verbose)
        metrics = _evaluate_on_workers(model, source, config, seconds, strategy, cluster.num_workers, verbose)
        if not cluster.is_chief:  # the chief reports; wait for it to finish writing, then exit with it
            distributed.barrier(strategy)
            return None
    write_text_atomically(out / "metrics.json", json.dumps(metrics, indent=2))
    draw(model, source, out, metrics.get("kl_per_dimension"), history=history)
    if strategy is not None:
        distributed.barrier(strategy)  # the other workers waited for the report; all exit now
    return Run(out, resolved, model, metrics, history)


def _checked_source(config, data_dir, split=None):
    """The source of ``config``, its values checked against the likelihood asked for (when the
    model has one; a model without one sees the data as they are)."""
    from tfvae import models

    likelihood = config.get("likelihood")
    if "likelihood" not in models.get(config["model"]).declared_options():
        likelihood = None
        if config["binarize"] is None and not sources.is_file(config["dataset"]):
            config = config.replace(binarize="none")
    return open_source(config, data_dir, split=split, likelihood=likelihood)


def _fit_resumably(model, source, config, out, verbose):
    """``model.fit`` that resumes from ``out/backup`` (BackupAndRestore) with its history and
    training time whole across the restart. Returns ``(history, seconds)``."""
    import keras

    from tfvae import distributed

    train = source.train(config["batch_size"], seed=config["seed"])
    record = distributed.ResumableHistory(out / "backup" / "history.json", dataset=train)
    _say_if_resuming(out, config["epochs"], verbose)
    # the record before the backup: it is never behind the weights it describes
    callbacks = [record, keras.callbacks.BackupAndRestore(str(out / "backup")),
                 keras.callbacks.TensorBoard(str(out / "logs"))]
    model.fit(train, validation_data=source.held_out(), epochs=config["epochs"], callbacks=callbacks,
              shuffle=False, verbose=verbose)
    return record.history, record.seconds


def _say_if_resuming(out, epochs, verbose):
    saved = out / "backup" / "history.json"
    if verbose and saved.is_file():
        with contextlib.suppress(ValueError, KeyError, OSError):
            epoch = json.loads(saved.read_text())["epoch"]
            print(f"tfvae: resuming {out} after epoch {epoch} of {epochs} (from {out / 'backup'})", file=sys.stderr,
                  flush=True)


def _train_on_workers(model, strategy, source, config, out, verbose):
    """Multi-worker training: ``(model, history, seconds)`` on every worker, the model outside the
    strategy (Keras' evaluate cannot run under MultiWorkerMirroredStrategy): the chief's reloaded
    from ``out/model.keras``, the others' a copy of the trained weights."""
    import shutil

    import keras
    import tensorflow as tf

    from tfvae import distributed

    chief = distributed.is_chief(strategy)
    try:
        result = distributed.train(model, source.train(config["batch_size"], seed=config["seed"]), config["epochs"],
                                   strategy=strategy, checkpoint_dir=out / "backup",
                                   validation_data=source.held_out(), verbose=min(verbose, 1),
                                   callbacks=[keras.callbacks.TensorBoard(str(out / "logs"))] if chief else [])
    except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.DeadlineExceededError,
            tf.errors.CancelledError) as error:
        # a peer died: the coordination service aborts this worker's collective operations
        lines = [line.strip() for line in str(error).splitlines()
                 if line.strip() and not line.startswith(("Graph execution error", "Detected at node"))]
        detail = f"{type(error).__name__}: {lines[0][:300]}" if lines else type(error).__name__
        raise WorkerStopped(f"a worker of the cluster stopped ({detail}); start the same command on every "
                            f"worker again to resume from {out / 'backup'}") from None
    if not chief:  # the same weights in a model outside the strategy, for the shared evaluation
        trained = build_model(config, source)
        trained.set_weights(model.get_weights())
        return trained, result.history, result.seconds
    save_model_atomically(model, out / "model.keras")  # (no collective operation: the chief saves alone)
    write_text_atomically(out / "history.json", json.dumps(result.history, indent=2))
    shutil.rmtree(out / "backup", ignore_errors=True)  # the run is whole: nothing to resume
    import tfvae.models  # noqa: F401  (registers the model classes for loading)

    return keras.models.load_model(out / "model.keras"), result.history, result.seconds


class WorkerStopped(RuntimeError):
    """A peer of a multi-worker run died; rerunning the same command on every worker resumes."""


# ------------------------------------------------------------------------------ evaluation

def evaluation_plan(model, source, config, train_seconds=None):
    """The :class:`tfvae.evaluation.budget.EvaluationPlan` of ``config``'s evaluation settings:
    sized to ``max(train_seconds, 60 s)``, or the full protocol."""
    from tfvae.evaluation import budget

    given = {k: config[k] for k in ("log_likelihood_samples", "disentanglement_scale")}
    if config["evaluation"] == "full":
        return budget.full_plan(**given)
    return budget.sized_plan(model, source, train_seconds or budget.MIN_BUDGET, **given)


def _evaluate_on_workers(model, source, config, train_seconds, strategy, num_workers, verbose):
    """Every worker evaluates its part of the held-out examples; the per-example values are
    gathered exactly (:mod:`tfvae.evaluation.examples`) under the chief's plan. The chief's
    metrics are the report; the others' are not used."""
    import tensorflow as tf

    from tfvae import distributed, evaluation
    from tfvae.evaluation import budget, examples

    chief = distributed.is_chief(strategy)
    plan = evaluation_plan(model, source, config, train_seconds) if chief else budget.full_plan()
    # the chief's plan on every worker (a plan sized by its own pilots' timings)
    fields = ("test_images", "log_likelihood_samples", "log_likelihood_images", "disentanglement_scale", "probe_train")
    numbers = [-1.0 if getattr(plan, f) is None else float(getattr(plan, f)) for f in fields]
    shared = distributed.broadcast(strategy, [tf.constant(numbers, tf.float64)])[0].numpy()
    plan = dataclasses.replace(plan, **{f: (None if v < 0 else (float(v) if f == "disentanglement_scale" else int(v)))
                                        for f, v in zip(fields, shared)})
    total = plan.test_images or source.held_out_size
    part = examples.Part.of(distributed.worker_rank(strategy), num_workers, total,
                            lambda array: distributed.sum_over_workers(strategy, array), chief, plan.batch_size)
    metrics = evaluation.evaluate_model(model, source, plan=plan, part=part, verbose=verbose)
    metrics["evaluation"]["workers"] = num_workers
    metrics["train_seconds"] = round(train_seconds, 2)
    return metrics


def evaluate_model(model, source, config, train_seconds=None, verbose="auto"):
    """The metrics of a trained ``model`` on ``source`` as ``config`` asks, with ``train_seconds``."""
    from tfvae import evaluation

    plan = evaluation_plan(model, source, config, train_seconds)
    metrics = evaluation.evaluate_model(model, source, plan=plan, verbose=verbose)
    if train_seconds is not None:
        metrics["train_seconds"] = round(train_seconds, 2)
    return metrics


def load(run_dir):
    """``(model, config)`` of a finished run directory."""
    run_dir = pathlib.Path(run_dir)
    if not (run_dir / "model.keras").is_file() or not (run_dir / "config.json").is_file():
        raise ValueError(f"{run_dir} is not a finished tfvae run (expected model.keras and config.json there)")
    config = RunConfig.load(run_dir)
    import keras

    import tfvae.models  # noqa: F401  (registers the model classes for loading)

    return keras.models.load_model(run_dir / "model.keras"), config


def evaluate(run_dir, *, data_dir=None, split=None, verbose="auto", **settings):
    """Recomputes a run's metrics (and merges them into its ``metrics.json``); returns them.

    ``settings`` override the run's evaluation settings, e.g. ``evaluation="full"`` for the
    literature's protocol or ``log_likelihood_samples=0``. A sized evaluation is sized to the
    run's recorded training time.

    Example:
      >>> tfvae.run.evaluate("runs/bvae", evaluation="full")["test_log_likelihood"]
    """
    unknown = sorted(set(settings) - set(EVALUATION_SETTINGS))
    if unknown:
        raise ValueError(f"evaluate takes the evaluation settings {', '.join(EVALUATION_SETTINGS)}; got {unknown}")
    run_dir = pathlib.Path(run_dir)
    model, config = load(run_dir)
    config = config.replace(**settings)
    previous_path = run_dir / "metrics.json"
    previous = json.loads(previous_path.read_text()) if previous_path.exists() else {}
    source = _checked_source(config, data_dir, split)
    metrics = evaluate_model(model, source, config, train_seconds=previous.get("train_seconds"), verbose=verbose)
    metrics = dict(previous, **metrics)
    write_text_atomically(previous_path, json.dumps(metrics, indent=2))
    return metrics


# ------------------------------------------------------------------------------ pictures

#: the pictures :func:`draw` can make
PICTURES = ("reconstructions", "samples", "traversals", "kl")


def draw(model, source, out, kl=None, which=None, history=None):
    """Draws the run's pictures into ``out`` (those of ``which``, default all that the model can
    draw) and returns their paths."""
    from tfvae import plots

    out = pathlib.Path(out)
    images = next(iter(source.held_out(limit=10)))[0].numpy()
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


def plot(run_dir, which=None, data_dir=None):
    """Redraws a finished run's pictures (``which``: some of :data:`PICTURES`); returns the paths."""
    run_dir = pathlib.Path(run_dir)
    model, config = load(run_dir)
    source = _checked_source(config, data_dir)
    metrics_path, history_path = run_dir / "metrics.json", run_dir / "history.json"
    kl = json.loads(metrics_path.read_text()).get("kl_per_dimension") if metrics_path.exists() else None
    history = json.loads(history_path.read_text()) if history_path.exists() else None
    return draw(model, source, run_dir, kl, which, history)


def export(run_dir, out, *, name=None, version=1, overwrite=False):
    """Writes a finished run's model as a SavedModel ``out/NAME/VERSION`` (:mod:`tfvae.export`)."""
    from tfvae import export as exporting

    run_dir = pathlib.Path(run_dir)
    model, _ = load(run_dir)
    return exporting.export_saved_model(model, out, version=version, name=name or run_dir.resolve().name,
                                        overwrite=overwrite)


__all__ = ["EVALUATION_SETTINGS", "PICTURES", "Run", "RunConfig", "SETTINGS", "Setting", "WorkerStopped",
           "ModelSetting", "build_model", "default_directory", "draw", "evaluate", "evaluate_model", "evaluation_plan", "export",
           "load", "model_settings", "open_source", "plot", "train"]
