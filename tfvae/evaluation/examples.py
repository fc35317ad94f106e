"""Per-example evaluation split over workers and combined exactly.

Under several workers (``TF_CONFIG``) each worker evaluates a contiguous part of the test
examples (:class:`Part`) and the per-example values are gathered: a worker writes its values into
its own rows of a zero array of all examples, and the arrays are summed over the workers, which is
exact (adding zeros changes nothing). Every statistic (means, standard errors, variances of the
codes) is then computed from all the values, in the same order, as on one process; the
importance-sampled log-likelihood draws each example's samples from its index in the whole test
set (``first_index``), so the values themselves are those of one process too.

One process has no :class:`Part`: :func:`local_data` is the whole test data and
:func:`gathered` the identity.
"""

import collections

import numpy as np


class Part(collections.namedtuple("Part", ["start", "stop", "total", "gather", "chief"])):
    """This worker's test examples ``[start, stop)`` of ``total``; ``gather(array [total, ...])``
    sums an array over the workers; ``chief``: whether this worker reports (and runs the
    evaluators that are not per-example)."""

    @classmethod
    def of(cls, rank, num_workers, total, gather, chief, batch_size=1):
        """The ``rank``-th of ``num_workers`` near-equal contiguous parts of ``total`` examples,
        made of whole batches of ``batch_size`` (so that each batch, and the draws seeded by its
        index, is the one a single process evaluates)."""
        batches = -(-total // batch_size)
        first, last = rank * batches // num_workers, (rank + 1) * batches // num_workers
        return cls(min(first * batch_size, total), min(last * batch_size, total), total, gather, chief)


def local_data(context, limit=None, batch_size=500):
    """``(batches, first_index)``: this worker's part of the first ``limit`` test examples (all of
    them without a part), and the index of its first example; None for the batches when the part
    is empty."""
    data, part = context["test_data"], context.get("part")
    if part is None:
        return (data if limit is None else data.unbatch().take(limit).batch(batch_size)), 0
    stop = part.stop if limit is None else min(part.stop, limit)
    if stop <= part.start:
        return None, part.start
    return data.unbatch().skip(part.start).take(stop - part.start).batch(batch_size), part.start


def gathered(context, values, first_index=0, total=None, shape=()):
    """The values of every example: ``values`` (this worker's, ``[n, *shape]``, or None for none)
    gathered over the workers into ``[total, *shape]`` (total: the part's). The identity on one
    process."""
    part = context.get("part")
    if part is None:
        return np.asarray(values)
    total = part.total if total is None else total
    full = np.zeros((total,) + tuple(shape), np.float64)
    if values is not None and len(values):
        full[first_index:first_index + len(values)] = values
    return part.gather(full)


def is_reporting(context):
    """Whether this worker runs the evaluators that are not per-example (the chief; always on
    one process)."""
    part = context.get("part")
    return part is None or part.chief


__all__ = ["Part", "gathered", "is_reporting", "local_data"]
