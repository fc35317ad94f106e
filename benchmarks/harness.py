"""What every benchmark shares: the machine header, a resumable results file, the common flags and
models built through the run layer (:mod:`tfvae.run`).

Import it before TensorFlow: it quiets TensorFlow's logging and points ``TFVAE_DATA_DIR`` at
``../shared/datasets`` beside the checkout when the variable is unset.

    import harness
    parser = argparse.ArgumentParser(description=__doc__)
    harness.add_arguments(parser, __file__, quick="smoke run: ...", resume=True)
    args = harness.parse(parser, argv)            # --out default: benchmarks/out/NAME (NAME_quick)
    header = harness.machine_header(args.command)  # first: its load average is the machine's before we work
    results = harness.Results(args.out / "results.json", header, settings={...}, fresh=args.fresh)
    for key in jobs:
        if not results.done(key):
            results.add(key, measure(key))          # the whole file, atomically, after every run
"""

import datetime
import json
import os
import pathlib
import platform
import shlex
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
HERE = pathlib.Path(__file__).resolve().parent
#: where the project keeps the data files beside the checkout (as tests/conftest.py)
SHARED_DATA = HERE.parents[1] / "shared" / "datasets"
if "TFVAE_DATA_DIR" not in os.environ and SHARED_DATA.is_dir():
    os.environ["TFVAE_DATA_DIR"] = str(SHARED_DATA)

from tfvae.files import write_text_atomically  # noqa: E402  (imports no TensorFlow)

#: a machine is quiet below this 1-minute load average per core (1.5 on the 2-core development
#: machine): above it, speed figures measure the other jobs as much as the benchmark
QUIET_LOAD_PER_CORE = 0.75
#: the benchmarks' output folders
OUT = HERE / "out"


def now():
    """The UTC date and time, to the second (ISO 8601)."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def load_average():
    """The 1, 5 and 15-minute load averages, rounded to 0.01."""
    return [round(v, 2) for v in os.getloadavg()]


def machine_header(command=None, max_load=None):
    """Where, when and under what load a benchmark ran. Call it before the benchmark works: its
    load average is then the other jobs', and ``quiet`` says whether it is below ``max_load``
    (default :data:`QUIET_LOAD_PER_CORE` per core).

    Example:
      >>> harness.machine_header("python benchmarks/serving.py")["quiet"]
      True
    """
    load = load_average()  # first, before the imports below cost anything
    import keras
    import tensorflow as tf

    import tfvae

    cores = os.cpu_count()
    max_load = QUIET_LOAD_PER_CORE * cores if max_load is None else max_load
    return dict(date=now(), command=command, machine=platform.machine(), cores=cores, platform=platform.platform(),
                gpu=bool(tf.config.list_physical_devices("GPU")), tensorflow=tf.__version__, keras=keras.__version__,
                tfvae=tfvae.__version__, load_average=load, quiet=load[0] < max_load, max_load=max_load)


def describe(header):
    """One line of a header, for the log."""
    return (f"{header['date']}  {header['machine']}, {header['cores']} cores{', GPU' if header['gpu'] else ''}, "
            f"TensorFlow {header['tensorflow']}, Keras {header['keras']}, tfvae {header['tfvae']}; load average "
            f"{' '.join(f'{v:.2f}' for v in header['load_average'])} ({'quiet' if header['quiet'] else 'busy'})")


class Results:
    """A study's ``results.json``: ``{key: record}`` of the finished runs, the settings that make
    them comparable and the :func:`machine_header` of every session that added to them. The whole
    file is rewritten atomically (:func:`tfvae.files.write_text_atomically`) after every finished
    run, so a killed study keeps every run it finished and, started again, resumes after them.

    Args:
      path: the JSON file.
      header: this session's :func:`machine_header`.
      settings: JSON-ready settings the records depend on; a file saved under other settings is an
        error (``fresh`` or another folder starts over), since mixing them would compare runs of
        different protocols.
      fresh: ignore what the file holds (it is replaced at the first save).

    Example:
      >>> results = Results(out / "results.json", header, settings=dict(steps=500), fresh=args.fresh)
      >>> results.done("vae/seed0") or results.add("vae/seed0", {"mig": 0.12})
    """

    def __init__(self, path, header, settings=None, fresh=False):
        self.path = pathlib.Path(path)
        self.settings = _jsonable(settings)
        self.records, self.sessions, self.extra = {}, [], {}
        if self.path.exists() and not fresh:
            try:
                saved = json.loads(self.path.read_text())
                records, sessions, settings = saved["results"], saved["sessions"], saved["settings"]
            except (ValueError, KeyError, TypeError):
                raise ValueError(f"{self.path} is not a benchmark results file (expected 'results', 'sessions' "
                                 "and 'settings'); use --fresh or another --out") from None
            if settings != self.settings:
                changed = sorted(k for k in set(settings or {}) | set(self.settings or {})
                                 if (settings or {}).get(k) != (self.settings or {}).get(k))
                raise ValueError(f"{self.path} holds results of other settings ({', '.join(changed) or 'all'}); "
                                 "use --fresh to start over, or another --out")
            self.records, self.sessions = records, sessions
        self.sessions.append(header)

    @property
    def first(self):
        """The header of the session that started the study."""
        return self.sessions[0]

    def done(self, key):
        return key in self.records

    def add(self, key, record):
        """Records a finished run and saves the whole file."""
        self.records[key] = record
        self.save()

    def save(self, **extra):
        """Saves the whole file, with ``extra`` top-level entries (kept for later saves)."""
        self.extra.update(extra)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = dict(sessions=self.sessions, settings=self.settings, **self.extra, results=self.records)
        write_text_atomically(self.path, json.dumps(_jsonable(document), indent=1, default=str) + "\n")


def _jsonable(value):
    """What ``value`` reads back as from JSON (tuples as lists, paths as strings)."""
    return json.loads(json.dumps(value, default=str))


def add_arguments(parser, script, *, quick=None, out=True, resume=False, data_dir=True):
    """The common flags of the benchmark ``script`` (its ``__file__``):

    * ``--out`` (``out``): the output folder, default ``benchmarks/out/NAME`` (``NAME_quick``
      with ``--quick``), NAME being the script's;
    * ``--quick`` (``quick``: its help, None for none): the script's smoke run;
    * ``--resume`` (the default) / ``--fresh`` (``resume``): keep or discard the finished runs of
      ``OUT/results.json`` (:class:`Results`);
    * ``--data-dir`` (``data_dir``): the data files' folder (default ``$TFVAE_DATA_DIR``, else
      ``../shared/datasets``); it sets ``TFVAE_DATA_DIR``, so it reaches every read, subprocesses too.

    Parse with :func:`parse`."""
    parser.set_defaults(benchmark=pathlib.Path(script).stem)
    if out:
        parser.add_argument("--out", type=pathlib.Path, default=None,
                            help="output folder (default benchmarks/out/NAME, or NAME_quick with --quick)")
    if quick is not None:
        parser.add_argument("--quick", action="store_true", help=quick)
    if resume:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--resume", dest="fresh", action="store_false",
                           help="keep the runs already in OUT/results.json (the default)")
        group.add_argument("--fresh", dest="fresh", action="store_true", help="discard them and start over")
        parser.set_defaults(fresh=False)  # (store_false's default, True, would win otherwise)
    if data_dir:
        parser.add_argument("--data-dir", type=pathlib.Path, default=None,
                            help="folder with the data sets' files (default $TFVAE_DATA_DIR or ../shared/datasets)")


def parse(parser, argv=None):
    """``parser.parse_args(argv)`` with the common flags applied: ``args.command`` (how to rerun
    it), ``args.out`` resolved, ``--data-dir`` checked and exported as ``TFVAE_DATA_DIR``."""
    args = parser.parse_args(argv)
    given = sys.argv[1:] if argv is None else list(argv)
    args.command = shlex.join(["python", f"benchmarks/{args.benchmark}.py"] + given)
    if getattr(args, "data_dir", None) is not None:
        if not args.data_dir.is_dir():
            parser.error(f"--data-dir {args.data_dir} is not a folder")
        os.environ["TFVAE_DATA_DIR"] = str(args.data_dir.resolve())
    if "out" in vars(args) and args.out is None:
        args.out = OUT / (args.benchmark + ("_quick" if getattr(args, "quick", False) else ""))
    return args


def epoch_log(label, steps_per_epoch=None):
    """A Keras callback printing one line per epoch: ``[label] epoch e/E (step s)  seconds since
    it was made  metric value ...`` (the step with ``steps_per_epoch``)."""
    import time

    import keras

    class EpochLog(keras.callbacks.Callback):
        start = time.time()

        def on_epoch_end(self, epoch, logs=None):
            step = f" step {(epoch + 1) * steps_per_epoch}" if steps_per_epoch else ""
            shown = "  ".join(f"{k} {v:.3f}" for k, v in sorted((logs or {}).items()))
            print(f"[{label}] epoch {epoch + 1}/{self.params['epochs']}{step}  {time.time() - self.start:.0f} s  "
                  f"{shown}", flush=True)

    return EpochLog()


def build_model(config, source, **options):
    """:func:`tfvae.run.build_model`, seeded with the config's seed as :func:`tfvae.run.train`
    seeds it (``options``: constructor keywords a config does not hold, e.g. ``network_options``)."""
    import keras

    from tfvae import run

    keras.utils.set_random_seed(config["seed"])
    return run.build_model(config, source, **options)


def arrays(source, test_examples=None):
    """``(train images, train labels, test images, test labels)`` of a :class:`tfvae.data.Source`
    (the first ``test_examples`` of its held-out split), as the model sees them."""
    return source.arrays("train") + source.arrays("held_out", limit=test_examples)
