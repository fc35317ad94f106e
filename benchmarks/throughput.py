"""Training throughput as a fraction of this machine's matmul throughput.

Measures, in one process:

1. float32 matmul throughput: a 2048x2048 @ 2048x2048 ``tf.matmul`` (2·n³ FLOPs), GFLOP/s;
2. training throughput (examples/s) of each case below through ``model.fit`` on MNIST held in
   memory, and the FLOP rate that implies, counting a training step as 3x the forward FLOPs of
   the dense layers (forward, and backward for inputs and weights).

Each figure is the median of several timed windows after a warm-up (tracing and XLA compilation),
so the noise of a shared machine shows up as spread, not bias.

    python benchmarks/throughput.py            # all cases
    python benchmarks/throughput.py --quick    # smoke run: few steps
    python benchmarks/throughput.py --json out.json
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfvae  # noqa: E402


def matmul_gflops(n=2048, repeats=20, windows=5):
    """Median GFLOP/s of an n x n float32 matmul."""
    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])

    @tf.function
    def step(a, b):
        return tf.matmul(a, b)

    step(a, b).numpy()
    rates = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(repeats):
            c = step(a, b)
        c.numpy()
        rates.append(2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates), rates


def dense_forward_flops(network):
    """2·in·out FLOPs (a multiply and an add) of every Dense layer of a network, per example."""
    return sum(2 * layer.kernel.shape[0] * layer.kernel.shape[1]
               for layer in network.layers if isinstance(layer, keras.layers.Dense))


def train_flops_per_example(model, samples):
    """3x the forward FLOPs: the encoder runs once per example, the decoder once per sample."""
    return 3 * (dense_forward_flops(model.encoder) + samples * dense_forward_flops(model.decoder))


def vae_case(latent_dim=50):
    """The VAE with the IWAE paper's MLP (784-200-200-50, tanh, Bernoulli)."""
    return tfvae.models.VAE(image_shape=(28, 28, 1), latent_dim=latent_dim, architecture="iwae-mlp")


#: name -> (model factory, batch size, decoder passes per example, i.e. importance samples)
CASES = {
    "vae-iwae-mlp batch 100": (vae_case, 100, 1),
    "vae-iwae-mlp batch 1000": (vae_case, 1000, 1),
}


def training_throughput(factory, batch_size, images, steps, windows):
    """Median examples/s of model.fit over ``windows`` epochs of ``steps`` steps (after a warm-up)."""
    keras.utils.set_random_seed(0)
    model = factory()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    data = tf.data.Dataset.from_tensor_slices(images).repeat().batch(batch_size, drop_remainder=True)
    data = data.prefetch(tf.data.AUTOTUNE)

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    timer = Timer()
    model.fit(data, steps_per_epoch=steps, epochs=windows + 1, verbose=0, callbacks=[timer])
    rates = [steps * batch_size / s for s in timer.seconds[1:]]  # the first epoch compiles
    return statistics.median(rates), rates, model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run with few steps")
    parser.add_argument("--cases", nargs="*", default=list(CASES), help="which cases to run")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; expected some of {list(CASES)}")

    steps, windows = (5, 2) if args.quick else (60, 5)
    images, _ = tfvae.data.load_arrays("mnist", "train")
    gflops, matmul_rates = matmul_gflops(repeats=3 if args.quick else 20, windows=windows)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"TensorFlow {tf.__version__}")
    print(f"float32 matmul 2048x2048: {gflops:.1f} GFLOP/s (median of {len(matmul_rates)}: "
          f"{', '.join(f'{r:.0f}' for r in matmul_rates)})")
    results = {"matmul_gflops": gflops, "matmul_windows": matmul_rates, "cases": {}}
    print(f"{'case':<28} {'examples/s':>11} {'GFLOP/s':>9} {'of matmul':>10}")
    for name in args.cases:
        factory, batch_size, samples = CASES[name]
        rate, rates, model = training_throughput(factory, batch_size, images, steps, windows)
        flops_per_example = train_flops_per_example(model, samples)
        achieved = rate * flops_per_example / 1e9
        results["cases"][name] = dict(examples_per_second=rate, windows=rates, gflops=achieved,
                                      fraction_of_matmul=achieved / gflops,
                                      train_flops_per_example=flops_per_example)
        print(f"{name:<28} {rate:>11.0f} {achieved:>9.1f} {achieved / gflops:>9.0%}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
