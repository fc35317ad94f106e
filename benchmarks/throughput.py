"""Training throughput as a fraction of this machine's matmul throughput.

Measures, in one process:

1. float32 matmul throughput: a 2048x2048 @ 2048x2048 ``tf.matmul`` (2·n³ FLOPs), GFLOP/s;
2. training throughput (examples/s) of each case below through ``model.fit`` on MNIST held in
   memory, and the FLOP rate that implies, counting a training step as 3x the forward FLOPs of
   the dense layers (forward, and backward for inputs and weights).

Every timed training window (an epoch of fixed steps, after a warm-up epoch that traces and
compiles) is preceded by a matmul measurement, and the fraction reported is the median of the
per-window ratios: on a shared, noisy machine both figures of a window see the same load.

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


class MatmulProbe:
    """float32 GFLOP/s of an n x n ``tf.matmul`` (2·n³ FLOPs), compiled once, measurable often."""

    def __init__(self, n=2048):
        self.n = n
        self.a = tf.random.normal([n, n])
        self.b = tf.random.normal([n, n])
        self.step = tf.function(tf.matmul)
        self.step(self.a, self.b).numpy()

    def measure(self, repeats):
        start = time.perf_counter()
        for _ in range(repeats):
            c = self.step(self.a, self.b)
        c.numpy()
        return 2 * self.n ** 3 * repeats / (time.perf_counter() - start) / 1e9


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


def iwae_case(num_samples, latent_dim=50):
    """IWAE with K importance samples on the same network: the decoder runs K times per example."""
    return lambda: tfvae.models.IWAE(image_shape=(28, 28, 1), latent_dim=latent_dim, architecture="iwae-mlp",
                                     num_samples=num_samples)


#: name -> (model factory, batch size, decoder passes per example, i.e. importance samples)
CASES = {
    "vae-iwae-mlp batch 100": (vae_case, 100, 1),
    "vae-iwae-mlp batch 1000": (vae_case, 1000, 1),
    "iwae-5 batch 100": (iwae_case(5), 100, 5),
    "iwae-50 batch 100": (iwae_case(50), 100, 50),
}


def training_throughput(factory, batch_size, images, steps, windows, probe, matmul_repeats):
    """Examples/s of model.fit in ``windows`` epochs of ``steps`` steps after a warm-up epoch, each
    epoch preceded by a matmul measurement, so that every training window has a matmul figure taken
    under the same machine load.

    Returns:
      ``(examples_per_second, matmul_gflops, model)``: two lists with one entry per window, and the
      trained model (for its FLOP count).
    """
    keras.utils.set_random_seed(0)
    model = factory()
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    data = tf.data.Dataset.from_tensor_slices(images).repeat().batch(batch_size, drop_remainder=True)
    data = data.prefetch(tf.data.AUTOTUNE)

    class Windows(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.matmul = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.matmul.append(probe.measure(matmul_repeats))
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    timer = Windows()
    model.fit(data, steps_per_epoch=steps, epochs=windows + 1, verbose=0, shuffle=False, callbacks=[timer])
    rates = [steps * batch_size / s for s in timer.seconds[1:]]  # the first epoch compiles
    return rates, timer.matmul[1:], model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run with few steps")
    parser.add_argument("--cases", nargs="*", default=list(CASES), help="which cases to run")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; expected some of {list(CASES)}")

    steps, windows, repeats = (5, 2, 2) if args.quick else (60, 7, 8)
    images, _ = tfvae.data.load_arrays("mnist", "train")
    probe = MatmulProbe()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"TensorFlow {tf.__version__}, load average {os.getloadavg()[0]:.1f}")
    results = {"cases": {}}
    print(f"{'case':<28} {'examples/s':>11} {'GFLOP/s':>9} {'matmul GFLOP/s':>15} {'of matmul':>10}")
    for name in args.cases:
        factory, batch_size, samples = CASES[name]
        rates, matmul, model = training_throughput(factory, batch_size, images, steps, windows, probe, repeats)
        flops_per_example = train_flops_per_example(model, samples)
        fractions = [r * flops_per_example / 1e9 / m for r, m in zip(rates, matmul)]
        rate, gflops = statistics.median(rates), statistics.median(matmul)
        results["cases"][name] = dict(
            examples_per_second=rate, gflops=rate * flops_per_example / 1e9, matmul_gflops=gflops,
            fraction_of_matmul=statistics.median(fractions), window_fractions=fractions,
            window_examples_per_second=rates, window_matmul_gflops=matmul,
            train_flops_per_example=flops_per_example)
        print(f"{name:<28} {rate:>11.0f} {rate * flops_per_example / 1e9:>9.1f} {gflops:>15.1f} "
              f"{statistics.median(fractions):>9.0%}")
    print(f"(medians over {windows} windows; 'of matmul' is the median of per-window ratios; "
          f"load average now {os.getloadavg()[0]:.1f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
