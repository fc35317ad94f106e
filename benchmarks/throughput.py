"""Training throughput on the default path, against this machine's best matmul rate.

Three paths per case:

* **default**: what a user writes, with no tuning flag: ``tfvae.data.load(..., batch_size=B,
  shuffle=True, seed=0, binarize="dynamic")`` and ``model.compile(Adam)`` + ``model.fit`` (tfvae's
  compile defaults: XLA and 16 steps per execution);
* **tuned**: the same model on the images held in memory as a repeated, pre-batched tf.data
  pipeline and ``steps_per_execution=100``;
* **bare** (VAE and IWAE cases): a reference, not a tfvae path: the same encoder and decoder
  networks trained by a hand-written XLA ``tf.function`` (reparameterised samples, Bernoulli
  log-likelihood, log-sum-exp of the importance weights, Adam) on in-memory batches. It is what
  the framework could reach on this machine without tfvae's training loop, so the gap to it is
  tfvae's overhead and the gap from it to the matmul rate is the machine's.

Each case trains a warm-up epoch (tracing and compiling) and then ``--windows`` timed epochs. The
float32 matmul rate (a 2048² ``tf.matmul``, 2·n³ FLOPs) is measured before every window, and
fractions are taken against the **best** matmul rate of the whole run, not against one slowed by
other jobs. A training step counts 3x the dense layers' forward FLOPs (the decoder once per
importance sample). The script records the load average and refuses to report fractions when it
before the run is at or above ``--max-load`` (1.5 on 2 cores): the figures would measure the other
jobs. (The load after the run is recorded too, but it counts the benchmark's own two threads, so
it cannot tell a quiet machine from a busy one.)

    python benchmarks/throughput.py                 # every case, default, tuned and bare paths
    python benchmarks/throughput.py --quick         # smoke run (a few seconds a case)
    python benchmarks/throughput.py --cases "vae batch 100" --json out.json
"""

import argparse
import json
import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (before TensorFlow)

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfvae  # noqa: E402
from tfvae import run  # noqa: E402
from tfvae.files import write_text_atomically  # noqa: E402


class MatmulProbe:
    """float32 GFLOP/s of an n x n ``tf.matmul`` (2·n³ FLOPs); remembers the best rate seen."""

    def __init__(self, n=2048):
        self.n = n
        self.a, self.b = tf.random.normal([n, n]), tf.random.normal([n, n])
        self.step = tf.function(tf.matmul)
        self.step(self.a, self.b).numpy()
        self.rates = []

    def measure(self, repeats):
        start = time.perf_counter()
        for _ in range(repeats):
            c = self.step(self.a, self.b)
        c.numpy()
        rate = 2 * self.n ** 3 * repeats / (time.perf_counter() - start) / 1e9
        self.rates.append(rate)
        return rate

    @property
    def best(self):
        return max(self.rates)


def dense_forward_flops(network):
    """2·in·out FLOPs of every Dense layer of a network, per example."""
    return sum(2 * layer.kernel.shape[0] * layer.kernel.shape[1]
               for layer in network.layers if isinstance(layer, keras.layers.Dense))


def train_flops(model, samples):
    """3x the forward FLOPs per example: the encoder once, the decoder once per sample."""
    if isinstance(model, tfvae.models.LLGAE):
        # c = W^T(x − μ) for all K (2·D·K·E), T steps of G b (2·T·K·E²), residuals (≈ 2·D·K)
        d, k, e, t = model.pixels, model.components, model.latent_dim, model.inference_steps
        return 3 * (2 * d * k * e + 2 * t * k * e * e + 2 * d * k)
    return 3 * (dense_forward_flops(model.encoder) + samples * dense_forward_flops(model.decoder))


#: case -> (run settings, options a run cannot set, batch, importance samples, training examples per
#: epoch); every model on the data's default binarisation, LLGAE on grey levels
CASES = {
    "vae batch 100": (dict(model="vae", dataset="mnist", latent_dim=50, architecture="iwae-mlp"), {}, 100, 1, 60000),
    "vae batch 1000": (dict(model="vae", dataset="mnist", latent_dim=50, architecture="iwae-mlp"), {}, 1000, 1, 60000),
    "iwae k=50 batch 100": (dict(model="iwae", dataset="mnist", latent_dim=50, architecture="iwae-mlp", num_samples=50),
                            {}, 100, 50, 6000),
    "piwae (8, 8) batch 100": (dict(model="piwae", dataset="mnist", latent_dim=50, architecture="iwae-mlp",
                                    num_estimates=8, num_samples=8), {}, 100, 64, 6000),
    "vsc latent 200 batch 32": (dict(model="vsc", dataset="mnist", latent_dim=200, alpha=0.01),
                                dict(network_options={"hidden_units": (400,)}), 32, 1, 20000),
    "llgae K=11 E=20 batch 360": (dict(model="llgae", dataset="mnist", latent_dim=20, components=11, binarize="none"),
                                  {}, 360, 1, 60000),
    "shapes2d mlp batch 64": (dict(model="beta-vae", dataset="shapes2d", latent_dim=10, beta=4.0),
                              dict(network_options={"hidden_units": (1200, 1200)}), 64, 1, 6400),
}


def setup(name, scale):
    """The case's model (seed 0), its source (the first ``examples`` training images) and batch."""
    settings, options, batch, samples, examples = CASES[name]
    examples = max(batch * 4, int(examples * scale))
    config = run.RunConfig(limit=examples, **settings)
    source = run.open_source(config)
    return harness.build_model(config, source, **options), source, batch, samples, examples


def _timed_fit(model, data, steps_per_epoch, epochs, probe, repeats):
    class Windows(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.matmul = [], []

        def on_epoch_begin(self, epoch, logs=None):
            self.matmul.append(probe.measure(repeats))
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self.start)

    timer = Windows()
    model.fit(data, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0, callbacks=[timer])
    return timer.seconds[1:]  # the first epoch traces and compiles


def run_case(name, path, windows, probe, repeats, scale):
    model, source, batch, samples, examples = setup(name, scale)
    if path == "default":
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        seconds = _timed_fit(model, source.train(batch, seed=0), None, windows + 1, probe, repeats)
        steps = -(-examples // batch)
    else:
        steps = examples // batch
        model.compile(optimizer=keras.optimizers.Adam(1e-3), steps_per_execution=min(100, steps))
        images, _ = source.arrays("train")  # binarised once where the default path binarises dynamically
        dataset = tf.data.Dataset.from_tensor_slices(images).repeat().batch(batch, drop_remainder=True)
        seconds = _timed_fit(model, dataset.prefetch(tf.data.AUTOTUNE), steps, windows + 1, probe, repeats)
    rate = statistics.median(steps * batch / s for s in seconds)
    return dict(examples_per_second=rate, steps_per_second=rate / batch,
                gflops=rate * train_flops(model, samples) / 1e9, batch=batch, examples_per_epoch=examples)


def bare_rate(name, windows, scale):
    """Examples/s of a hand-written XLA training step of the case's own networks (see the module
    docstring); only for the VAE/IWAE cases (one importance-weighted bound, K samples)."""
    model, source, batch, samples, examples = setup(name, scale)
    encoder, decoder = model.encoder, model.decoder
    variables = encoder.trainable_variables + decoder.trainable_variables
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(variables)
    images, _ = source.arrays("train")  # one seeded Bernoulli draw
    batches = tf.constant(images[: examples // batch * batch].reshape((-1, batch) + images.shape[1:]))

    def log_normal(z, mean, log_scale):
        return tf.reduce_sum(-0.5 * ((z - mean) / tf.exp(log_scale)) ** 2 - log_scale - 0.9189385, -1)

    @tf.function(jit_compile=True)
    def step(x):
        with tf.GradientTape() as tape:
            mean, log_scale = tf.split(encoder(x, training=True), 2, axis=-1)
            z = mean + tf.exp(log_scale) * tf.random.normal([samples] + mean.shape)
            logits = decoder(tf.reshape(z, [-1, z.shape[-1]]), training=True)
            targets = tf.tile(tf.reshape(x, [1, batch, -1]), [samples, 1, 1])
            log_px = -tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(
                targets, tf.reshape(logits, targets.shape)), -1)
            log_w = log_px + log_normal(z, 0.0, 0.0) - log_normal(z, mean, log_scale)
            loss = -tf.reduce_mean(tf.reduce_logsumexp(log_w, 0))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    step(batches[0]).numpy()
    rates = []
    for _ in range(windows):
        start = time.perf_counter()
        for x in batches:
            loss = step(x)
        loss.numpy()
        rates.append(len(batches) * batch / (time.perf_counter() - start))
    rate = statistics.median(rates)
    return dict(examples_per_second=rate, steps_per_second=rate / batch,
                gflops=rate * train_flops(model, samples) / 1e9, batch=batch, examples_per_epoch=examples)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_arguments(parser, __file__, quick="a smoke run: small epochs, one window", out=False)
    parser.add_argument("--cases", nargs="*", default=list(CASES), help="which cases (default: all)")
    parser.add_argument("--paths", nargs="*", default=["default", "tuned", "bare"], choices=["default", "tuned", "bare"],
                        help="bare: a hand-written XLA step of the same networks, for VAE/IWAE cases only")
    parser.add_argument("--windows", type=int, default=3, help="timed epochs per case and path")
    parser.add_argument("--max-load", type=float, default=1.5,
                        help="refuse fractions at this load average before the run or above")
    parser.add_argument("--json", help="also write the results here")
    args = harness.parse(parser, argv)
    header = harness.machine_header(args.command, max_load=args.max_load)  # before this process does any work
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown cases {unknown}; expected some of {list(CASES)}")
    windows, repeats, scale = (1, 2, 0.05) if args.quick else (args.windows, 8, 1.0)

    probe = MatmulProbe()
    probe.measure(repeats)
    print(harness.describe(header))
    results = {"header": header, "cases": {}}
    for name in args.cases:
        for path in args.paths:
            if path == "bare":
                if not name.startswith(("vae", "iwae")):
                    continue
                probe.measure(repeats)
                result = bare_rate(name, windows, scale)
            else:
                result = run_case(name, path, windows, probe, repeats, scale)
            results["cases"][f"{name} [{path}]"] = result
            print(f"{name:<28} {path:<8} {result['examples_per_second']:>9.0f} ex/s "
                  f"{result['steps_per_second']:>7.1f} steps/s {result['gflops']:>6.1f} GFLOP/s", flush=True)
    load_after = harness.load_average()
    results.update(load_after=load_after, best_matmul_gflops=probe.best, matmul_gflops=probe.rates)
    quiet = header["quiet"]
    print(f"best matmul {probe.best:.1f} GFLOP/s (of {len(probe.rates)} measurements); "
          f"load average after {load_after[0]:.2f} (counts this benchmark's own threads)")
    if quiet:
        for key, result in results["cases"].items():
            result["fraction_of_best_matmul"] = result["gflops"] / probe.best
            print(f"  {key:<40} {result['fraction_of_best_matmul']:>6.0%} of matmul")
    else:
        print(f"load average before the run above {args.max_load}: fractions of matmul NOT reported (they would measure "
              "the other jobs); rerun on a quiet machine")
    results["fractions_reported"] = quiet
    if args.json:
        write_text_atomically(args.json, json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
