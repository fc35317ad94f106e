"""Evaluation split over workers (tfvae.evaluation.examples): each worker scores a part of the
test examples and the per-example values are gathered exactly, so the report equals one
process's. Two threads stand in for two workers here (the gather is a sum over the threads, as
the all-reduce is over the workers); tests/test_multiworker.py runs real workers."""

import threading

import numpy as np
import pytest

from tfvae import data
from tfvae.evaluation import budget, evaluate_model, examples
from tfvae.models import VAE, VSC


class _ThreadSum:
    """``gather`` for threads: every caller gets the sum of the arrays all of them passed."""

    def __init__(self, parties):
        self.barrier, self.arrays, self.lock = threading.Barrier(parties), [], threading.Lock()

    def __call__(self, array):
        with self.lock:
            self.arrays.append(array)
        self.barrier.wait()
        total = np.sum(self.arrays, axis=0)
        if self.barrier.wait() == 0:
            self.arrays.clear()
        self.barrier.wait()
        return total


def _evaluate_in_parts(model, source, plan, num_workers):
    total = plan.test_images or source.held_out_size
    gather, results, errors = _ThreadSum(num_workers), [None] * num_workers, []

    def worker(rank):
        try:
            part = examples.Part.of(rank, num_workers, total, gather, chief=rank == 0)
            results[rank] = evaluate_model(model, source, plan=plan, part=part, verbose=0)
        except Exception as error:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(error)
            gather.barrier.abort()

    threads = [threading.Thread(target=worker, args=(rank,)) for rank in range(num_workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("cls,options,num_workers", [(VAE, {}, 2), (VSC, {"alpha": 0.3}, 3)])
def test_parts_gathered_over_workers_equal_one_process(cls, options, num_workers):
    source = data.open_source("digits", seed=0)
    model = cls(image_shape=(8, 8, 1), latent_dim=3, network_options={"hidden_units": (16,)}, **options)
    # 297 held-out digits: uneven parts; the log-likelihood on the first 101 only (a part ends inside it)
    plan = budget.full_plan(log_likelihood_samples=40, log_likelihood_images=101)
    single = evaluate_model(model, source, plan=plan, verbose=0)
    chief, *others = _evaluate_in_parts(model, source, plan, num_workers)
    assert single["log_likelihood_images"] == chief["log_likelihood_images"] == 101
    assert single["test_examples"] == chief["test_examples"] == 297
    for key, value in single.items():
        if isinstance(value, (float, int)) and key != "evaluation":
            np.testing.assert_allclose(chief[key], value, rtol=1e-6, atol=1e-9, err_msg=key)
    np.testing.assert_allclose(chief["kl_per_dimension"], single["kl_per_dimension"], atol=1e-5)
    assert set(chief) == set(single)
    # the other workers ran the per-example parts only (no probe: the chief's alone)
    assert all("probe_accuracy" not in other for other in others)


def test_parts_cover_every_example_once():
    parts = [examples.Part.of(rank, 3, 10, None, rank == 0) for rank in range(3)]
    assert [(p.start, p.stop) for p in parts] == [(0, 3), (3, 6), (6, 10)]
    assert [examples.Part.of(r, 4, 2, None, r == 0)[:2] for r in range(4)] == [(0, 0), (0, 1), (1, 1), (1, 2)]
