"""Evaluation split over workers (tfvae.evaluation.examples): each worker scores a part of the
test examples and the per-example values are gathered exactly, so the report equals one
process's. Here the workers run one after the other in this process, the chief's gather adding
the others' arrays (the all-reduce's result); tests/test_multiworker.py runs real workers."""

import numpy as np
import pytest

from tfvae import data
from tfvae.evaluation import budget, evaluate_model, examples
from tfvae.models import VAE, VSC


def _evaluate_in_parts(model, source, plan, num_workers):
    """The chief's report of ``num_workers`` workers, run one after the other: the others first,
    their per-example arrays recorded in the order they gather them; then the chief, whose
    ``gather`` adds the others' arrays of the same call (what the all-reduce gives every worker)."""
    total = plan.test_images or source.held_out_size
    recorded, reports = [], []
    for rank in range(1, num_workers):
        calls = []

        def record(array, calls=calls):
            calls.append(array)
            return array

        part = examples.Part.of(rank, num_workers, total, record, False, plan.batch_size)
        reports.append(evaluate_model(model, source, plan=plan, part=part, verbose=0))
        recorded.append(calls)
    count = iter(range(10_000))

    def gather(array):
        call = next(count)
        return array + sum(calls[call] for calls in recorded)

    part = examples.Part.of(0, num_workers, total, gather, True, plan.batch_size)
    return [evaluate_model(model, source, plan=plan, part=part, verbose=0)] + reports


@pytest.mark.parametrize("cls,options,num_workers", [(VAE, {}, 2), (VSC, {"alpha": 0.3}, 3)])
def test_parts_gathered_over_workers_equal_one_process(cls, options, num_workers):
    source = data.open_source("digits", seed=0)
    model = cls(image_shape=(8, 8, 1), latent_dim=3, network_options={"hidden_units": (16,)}, **options)
    # 297 held-out digits in batches of 40: uneven parts; the log-likelihood on the first 101 only
    # (a part ends inside it)
    plan = budget.full_plan(log_likelihood_samples=40, log_likelihood_images=101, batch_size=40)
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


def test_parts_cover_every_example_once_in_whole_batches():
    parts = [examples.Part.of(rank, 3, 10, None, rank == 0) for rank in range(3)]
    assert [(p.start, p.stop) for p in parts] == [(0, 3), (3, 6), (6, 10)]
    assert [examples.Part.of(r, 4, 2, None, r == 0)[:2] for r in range(4)] == [(0, 0), (0, 1), (1, 1), (1, 2)]
    assert [examples.Part.of(r, 2, 297, None, r == 0, 40)[:2] for r in range(2)] == [(0, 160), (160, 297)]


def test_the_test_objective_is_reproducible():
    source = data.open_source("digits", seed=0)
    model = VAE(image_shape=(8, 8, 1), latent_dim=3, network_options={"hidden_units": (16,)})
    plan = budget.full_plan(log_likelihood_samples=0)
    first, again = (evaluate_model(model, source, plan=plan, verbose=0) for _ in range(2))
    assert first["test_elbo"] == again["test_elbo"] and first["test_loss"] == again["test_loss"]
