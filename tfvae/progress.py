"""Progress of long stages (log-likelihood, disentanglement metrics, probes, k-means starts), in
Keras' manner.

Every long public function takes ``verbose`` with the meaning of ``model.fit``'s:

* ``0``: silent;
* ``1``: a ``keras.utils.Progbar`` under a line naming the stage (the bar shows the time left);
* ``2``: one line per tenth of the work, with the time spent and the time left, and one line at
  the end (what a log file wants: no carriage returns);
* ``"auto"``: 1 when stdout is a terminal, else 2.

The time left after ``done`` of ``total`` units is the linear extrapolation
``elapsed · (total − done) / done``: right for stages whose units all cost about the same (the
batches of an estimator, the clusters of a k-means start).

A step that cannot report its own progress (a scikit-learn fit) is bracketed by
:func:`timed`: one line when it starts, one with its duration when it ends.

Example:
  >>> progress = Progress("my_metric", total=len(images), unit="image", verbose=2)
  >>> for start in range(0, len(images), 500):
  ...     encode(images[start:start + 500])
  ...     progress.add(len(images[start:start + 500]))
  >>> progress.finish()
  >>> with timed("my_metric", "fitting the classifier", verbose=2):
  ...     classifier.fit(codes, labels)
"""

import contextlib
import sys
import time

import keras

#: the values ``verbose`` takes
VERBOSE = ("auto", 0, 1, 2)

#: the clock of elapsed times (monotonic: a changed system clock does not skew an estimate)
_clock = time.monotonic


def check_verbose(verbose):
    """``verbose`` as 0, 1 or 2 (``"auto"``: 1 when stdout is a terminal, else 2); a ValueError
    for anything else (``True`` included: a flag is not a level)."""
    if isinstance(verbose, bool) or verbose not in VERBOSE:
        raise ValueError(f"verbose must be 'auto', 0, 1 or 2, got {verbose!r}")
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(verbose)


def duration(seconds):
    """``"0.4 s"``, ``"12 s"``, ``"3 min 05 s"``, ``"1 h 02 min"``."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """Progress of one stage over ``total`` units (None: unknown, e.g. a tf.data.Dataset).

    Args:
      stage: the name printed before every line (e.g. ``"log_likelihood"``).
      total: units of work in all, or None.
      unit: the unit's name in the singular (``"example"``, ``"image"``, ``"cluster"``).
      units: its plural (default ``unit + "s"``).
      verbose: 0, 1, 2 or ``"auto"`` (see the module doc).

    Call :meth:`update` with the units done so far (or :meth:`add` with those just done) and
    :meth:`finish` at the end.
    """

    def __init__(self, stage, total, unit="example", verbose="auto", units=None):
        self.stage, self.total, self.unit = stage, total, unit
        self.units = unit + "s" if units is None else units
        self.verbose = check_verbose(verbose)
        self.start = _clock()
        self.done = 0
        self.printed_tenths = 0
        self.bar = None
        if self.verbose == 1:
            print(f"{stage}:", flush=True)
            self.bar = keras.utils.Progbar(total, verbose=1, unit_name=unit)

    def _units(self, count):
        return self.unit if count == 1 else self.units

    def update(self, done):
        """``done`` units of ``total`` are finished."""
        self.done = done
        if self.bar is not None:
            self.bar.update(done)
        elif self.verbose == 2 and self.total:
            tenths = 10 * done // self.total
            if tenths > self.printed_tenths and done < self.total:
                self.printed_tenths = tenths
                elapsed = _clock() - self.start
                left = elapsed * (self.total - done) / done
                print(f"{self.stage}: {done}/{self.total} {self._units(self.total)} "
                      f"({100 * done // self.total}%), {duration(elapsed)}, about {duration(left)} left",
                      flush=True)

    def add(self, count):
        """``count`` more units are finished."""
        self.update(self.done + count)

    def finish(self, done=None, summary=None):
        """The stage is over (after ``done`` units; default: those reported so far). With
        ``verbose=2`` this prints ``"stage: <summary> in <time>"``, the summary being
        ``"<done> <units>"`` unless given (e.g. the examples in ``done`` batches)."""
        done = self.done if done is None else done
        if self.bar is not None:
            if self.total is None or done < self.total:  # a bar that has not reached its end
                self.bar.update(done, finalize=True)
        elif self.verbose == 2:
            summary = f"{done} {self._units(done)}" if summary is None else summary
            print(f"{self.stage}: {summary} in {duration(_clock() - self.start)}", flush=True)


def note(stage, message, verbose="auto"):
    """One line ``"stage: message"`` unless ``verbose`` is 0."""
    if check_verbose(verbose):
        print(f"{stage}: {message}", flush=True)


@contextlib.contextmanager
def timed(stage, what, verbose="auto"):
    """A step that cannot report progress: ``"stage: what ..."`` when it starts and
    ``"stage: what took 3.2 s"`` when it ends (nothing with ``verbose=0``)."""
    verbose = check_verbose(verbose)
    start = _clock()
    if verbose:
        print(f"{stage}: {what} ...", flush=True)
    yield
    if verbose:
        print(f"{stage}: {what} took {duration(_clock() - start)}", flush=True)


__all__ = ["VERBOSE", "Progress", "check_verbose", "duration", "note", "timed"]
