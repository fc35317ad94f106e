"""Serving latency and throughput: the exported SavedModel beside the in-memory Keras model.

For the MNIST MLP VAE (``iwae-mlp``: 784-200-200-50 tanh, or ``mlp``: 784-256-128), measured in
one process on the same MNIST test images:

* latency of the encode signature (``serving_default``: code mean and scale) at batch 1, median
  and 99th percentile over single calls;
* throughput at batch 256, images/s from the median call time;

each for three paths to the same outputs:

``savedmodel``   ``tf.saved_model.load(dir).signatures["serving_default"](images=x)``: what a
                 Python client of the SavedModel calls (in-graph input checks included);
``keras``        ``tf.function(model.serving_encode)``: the Keras model, compiled the usual way
                 (the baseline the target compares against);
``keras-checked`` ``tf.function`` of ``tfvae.export.serving_functions(model)["serving_default"]``:
                 the Keras model with the signature's in-graph input checks, i.e. exactly the
                 exported computation, in memory (separates what the checks cost from what
                 loading a SavedModel costs);
``keras-eager``  ``model.serving_encode(x)`` eagerly, for reference.

Timed calls alternate between the paths in short rounds, so that all of them see the same
machine load (the machine is shared); latencies and throughputs are medians (or the 99th
percentile) over all calls, and the SavedModel / Keras time ratio is the median over rounds of
the ratio of the two paths' median call times within a round.
Targets (issue 6): the SavedModel no slower than Keras, batch-1 median under 1 ms on 2 cores.

    python benchmarks/serving.py                       # iwae-mlp
    python benchmarks/serving.py --architecture mlp
    python benchmarks/serving.py --quick               # smoke run
    python benchmarks/serving.py --json serving.json
"""

import argparse
import json
import math
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (before TensorFlow)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfvae  # noqa: E402
from tfvae import export  # noqa: E402
from tfvae.files import write_text_atomically  # noqa: E402


def mnist_test_images(count):
    """MNIST test images when the data files are there, else uniform noise of the same shape
    (the encoder's cost does not depend on the pixel values)."""
    try:
        images, _ = tfvae.data.load_arrays("mnist", "test", limit=count)
        return images, "MNIST test images"
    except (tfvae.data.DataNotFoundError, ValueError, OSError):
        rng = np.random.default_rng(0)
        return rng.uniform(size=(count, 28, 28, 1)).astype(np.float32), "uniform noise (no MNIST files)"


def paths(model, served):
    signature = served.signatures["serving_default"]
    return {
        "savedmodel": lambda x: signature(images=x),
        "keras": tf.function(model.serving_encode),
        "keras-checked": tf.function(export.serving_functions(model)["serving_default"].function),
        "keras-eager": model.serving_encode,
    }


def time_calls(function, inputs):
    """Seconds of each call, outputs fetched to numpy (so that the call has finished)."""
    seconds = []
    for x in inputs:
        start = time.perf_counter()
        outputs = function(x)
        for value in outputs.values():
            value.numpy()
        seconds.append(time.perf_counter() - start)
    return seconds


def measure(functions, batches, rounds, calls_per_round):
    """Per-call seconds of every function, per round, interleaved: each round times
    ``calls_per_round`` calls of each function in turn (a different order each round), so the
    functions' figures within a round were taken under the same machine load."""
    seconds = {name: [] for name in functions}
    names = list(functions)
    for round_index in range(rounds):
        order = names[round_index % len(names):] + names[:round_index % len(names)]
        for name in order:
            start = (round_index * calls_per_round) % len(batches)
            chosen = [batches[(start + i) % len(batches)] for i in range(calls_per_round)]
            seconds[name].append(time_calls(functions[name], chosen))
    return seconds


def paired_ratio(numerator, denominator):
    """The median over rounds of (median call time of one path / of the other) in that round."""
    return statistics.median(statistics.median(a) / statistics.median(b) for a, b in zip(numerator, denominator))


def summary(rounds, batch):
    ordered = sorted(s for calls in rounds for s in calls)
    p99 = ordered[min(len(ordered), math.ceil(0.99 * len(ordered))) - 1]  # nearest-rank percentile
    median = statistics.median(ordered)
    return dict(median_ms=median * 1e3, p99_ms=p99 * 1e3, images_per_second=batch / median, calls=len(ordered))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_arguments(parser, __file__, quick="a smoke run with few calls", out=False)
    parser.add_argument("--architecture", default="iwae-mlp", choices=["iwae-mlp", "mlp"])
    parser.add_argument("--latent-dim", type=int, default=50)
    parser.add_argument("--json", help="also write the results to this file")
    args = harness.parse(parser, argv)
    header = harness.machine_header(args.command)

    rounds, calls_1, calls_256 = (3, 20, 3) if args.quick else (30, 100, 10)
    keras.utils.set_random_seed(0)
    model = tfvae.models.VAE(image_shape=(28, 28, 1), latent_dim=args.latent_dim, architecture=args.architecture)
    images, source = mnist_test_images(2048)
    with tempfile.TemporaryDirectory() as folder:
        version_dir = export.export_saved_model(model, folder, name="vae")
        served = tf.saved_model.load(version_dir)
        functions = paths(model, served)

        batch1 = [tf.constant(images[i:i + 1]) for i in range(256)]
        batch256 = [tf.constant(images[i:i + 256]) for i in range(0, len(images) - 255, 256)]
        for function in functions.values():  # trace, compile, warm caches
            for x in batch1[:20] + batch256[:2]:
                function(x)
        # the paths compute the same thing
        reference = functions["keras"](batch256[0])
        for name, function in functions.items():
            for key, value in function(batch256[0]).items():
                np.testing.assert_allclose(value.numpy(), reference[key].numpy(), rtol=1e-5, atol=1e-5,
                                           err_msg=f"{name} {key}")

        print(f"{harness.describe(header)}; load average before timing {os.getloadavg()[0]:.1f}")
        print(f"model: VAE {args.architecture}, 28x28x1 -> {args.latent_dim} latents; inputs: {source}")
        latency = measure(functions, batch1, rounds, calls_1)
        throughput = measure(functions, batch256, rounds, calls_256)

    results = {"header": header, "architecture": args.architecture, "latent_dim": args.latent_dim, "inputs": source,
               "paths": {}}
    print(f"{'path':<14} {'batch-1 median ms':>18} {'batch-1 p99 ms':>15} {'batch-256 images/s':>19}")
    for name in functions:
        one, many = summary(latency[name], 1), summary(throughput[name], 256)
        results["paths"][name] = {"batch_1": one, "batch_256": many}
        print(f"{name:<14} {one['median_ms']:>18.3f} {one['p99_ms']:>15.3f} {many['images_per_second']:>19.0f}")
    saved = results["paths"]["savedmodel"]
    for baseline in ("keras", "keras-checked"):
        ratio_1 = paired_ratio(latency["savedmodel"], latency[baseline])
        ratio_256 = paired_ratio(throughput["savedmodel"], throughput[baseline])
        results[f"savedmodel_over_{baseline}_time"] = {"batch_1": ratio_1, "batch_256": ratio_256}
        print(f"SavedModel time / {baseline} time (median of per-round ratios): batch 1 {ratio_1:.2f}, "
              f"batch 256 {ratio_256:.2f}")
    ratios = results["savedmodel_over_keras_time"]
    met = max(ratios.values()) <= 1.0 and saved["batch_1"]["median_ms"] < 1.0
    print(f"targets (SavedModel / keras <= 1, batch-1 median < 1 ms): {'met' if met else 'NOT met'}; "
          f"load average now {os.getloadavg()[0]:.1f}")
    if args.json:
        write_text_atomically(args.json, json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
