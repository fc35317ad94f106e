"""Training throughput on the default path, against this machine's best matmul rate.

Paths per case:

* **default**: what a user writes, with no tuning flag: the run layer's model (its default
  ``precision="auto"``: bfloat16 networks on a CPU with AMX) and optimizer
  (``model.compile(tfvae.optimizers.FusedAdam(1e-3))``, every tfvae path's; tfvae's defaults:
  ``jit_compile="auto"``, :mod:`tfvae.devices`, and 16 steps per execution) and
  ``model.fit`` on ``tfvae.data.load(..., batch_size=B, shuffle=True, seed=0,
  binarize="dynamic")`` (MNIST cases) or on in-memory random binary 64×64 images (``64×64``
  cases: ``model.fit(images, batch_size=B)``);
* **PRECISION/MODE** (``float32/step``, ``mixed_bfloat16/update``, ...): the same model and data
  with the precision and XLA mode set by hand, every combination, to find the fastest
  configuration the default must come within 90 % of;
* **tuned**: the same model on the images held in memory as a repeated, pre-batched tf.data
  pipeline and up to 100 steps per execution (a divisor of the epoch's steps), on the same data
  as the default: where the case binarises dynamically, a new draw every batch
  (:func:`tfvae.data.pipeline.draw_binary` in the pipeline);
* **tuned-once** (MNIST cases that binarise dynamically): ``tuned`` on images binarised once, as
  ``tuned`` was measured before the sixth session. It trains on other data (the same binary
  images every epoch) and skips the draw, so it is not a configuration the default must reach;
  the gap to ``tuned`` is the price of the draw;
* **unchecked** and **in-step** (MNIST cases): what the default pays for its input. ``unchecked``
  is the default with ``validate_inputs=False`` (no per-batch check of the likelihood's support in
  the pipeline); ``in-step`` a prototype of decoding inside the compiled step: the pipeline only
  shuffles and gathers uint8 pixels (with a stateless seed per batch), and the model's
  ``prepare_inputs`` scales and binarises them in the step (under XLA where the step is), also
  unchecked. ``in-step`` against ``unchecked`` is what moving the decoding into the step gains;
  **repeated** is the default's pipeline repeated, with ``steps_per_epoch`` one pass: one iterator
  for the whole fit instead of one an epoch (the same batches; tfvae then runs a divisor of the
  epoch's steps per execution);
* **bare** and **bare-bf16** (VAE, IWAE and 64×64 cases): a reference, not a tfvae path: the
  same encoder and decoder networks (float32 with the whole step under XLA; bfloat16 with only
  the update under XLA) trained by a hand-written ``tf.function`` (reparameterised samples,
  Bernoulli log-likelihood, log-sum-exp of the importance weights, Adam) on in-memory batches,
  binarised anew every batch where the case binarises dynamically (outside XLA, whose Philox is
  slower on a CPU). It
  is what the framework could reach on this machine without tfvae's training loop, so the gap to
  it is tfvae's overhead and the gap from it to the matmul rate is the machine's;
* **bare-bf16-fused** and **bare-bf16-no-update** (64×64 cases): ``bare-bf16`` with Adam's update
  by TensorFlow's fused kernel, one per variable, as the gradients come
  (:class:`tfvae.optimizers.FusedAdam`, no XLA), and with no update at all (the gradients
  computed, nothing applied). The second is the ceiling of any optimizer on these networks: the
  gap from it to ``bare-bf16`` is what the update costs;
* **torch** (64×64 cases): PyTorch eager on the same networks (``torch_reference.py``, in its own
  process); **pythae** (VAE batch 1000): pythae 0.1.2's trainer on the same networks
  (``pythae_reference.py``, in its own process). Both: ``pip install -e ".[benchmarks]"``.

The 64×64 cases are the networks of the disentanglement studies: disentanglement_lib's conv net
and Higgins et al.'s MLP (encoder 1200-1200 ReLU, decoder 1200-1200-1200 tanh), a VAE with 10
latents, batch 64 and 256.

Each case builds every path, then measures them interleaved: ``--rounds`` rounds, each timing one
window of every path (for a tfvae path, the second epoch of a ``fit(epochs=2)`` call: what every
epoch after a user's first costs), so that a machine that speeds up or slows down during the case
moves every path alike; the median window per path. The first window's first epoch traces and
compiles. The float32 matmul rate (a 2048² ``tf.matmul``, 2·n³ FLOPs) is measured before every
window, and fractions are taken against the **best** matmul rate of the whole run, not against
one slowed by other jobs. A training step counts 3x the dense layers' forward FLOPs (the decoder once per
importance sample; convolutions are not counted, so the conv cases' fractions are lower bounds).
The script records the load average and refuses to report fractions when the load
average before the run is at or above ``--max-load`` (1.5 on 2 cores): the figures would measure the other
jobs. (The load after the run is recorded too, but it counts the benchmark's own two threads, so
it cannot tell a quiet machine from a busy one.)

    python benchmarks/throughput.py                 # every case and path (about 50 min)
    python benchmarks/throughput.py --quick         # smoke run (a few seconds a case)
    python benchmarks/throughput.py --cases "vae batch 100" --json out.json
    python benchmarks/throughput.py --cases "conv 64x64 batch 64" "higgins 64x64 batch 64" --paths default torch
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (before TensorFlow)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfvae  # noqa: E402
from tfvae import devices, run  # noqa: E402
from tfvae.models.training import steps_per_execution_for  # noqa: E402
from tfvae.networks import mlp_decoder, mlp_encoder  # noqa: E402
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


def train_flops(model, samples):
    """3x the forward FLOPs per example: the encoder once, the decoder once per sample."""
    if isinstance(model, tfvae.models.LLGAE):
        # c = W^T(x − μ) for all K (2·D·K·E), T steps of G b (2·T·K·E²), residuals (≈ 2·D·K)
        d, k, e, t = model.pixels, model.components, model.latent_dim, model.inference_steps
        return 3 * (2 * d * k * e + 2 * t * k * e * e + 2 * d * k)
    return 6 * (devices.dense_multiply_adds(model.encoder) + samples * devices.dense_multiply_adds(model.decoder))


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
#: the 64×64 cases: name -> (network, batch); a VAE with 10 latents on in-memory random binary images
CASES_64 = {f"{network} 64x64 batch {batch}": (network, batch) for network in ("conv", "higgins") for batch in (64, 256)}
#: the configurations the default is measured against (precision/XLA mode)
CONFIGURATIONS = [f"{precision}/{mode}" for precision in ("float32", "mixed_bfloat16") for mode in devices.XLA_MODES]
PATHS = ["default", "tuned", "tuned-once", "unchecked", "in-step", "repeated", *CONFIGURATIONS, "bare", "bare-bf16",
         "bare-bf16-fused", "bare-bf16-no-update", "torch", "pythae"]


def setup(name, scale, precision="auto", **model_options):
    """The case's model (seed 0, networks in ``precision``; ``model_options`` for its constructor),
    its data and batch: ``(model, source or in-memory images, batch, samples, examples)``."""
    if name in CASES_64:
        network, batch = CASES_64[name]
        examples = max(batch * 4, int(4096 * scale))
        config = run.RunConfig(model="vae", dataset="shapes2d", latent_dim=10, precision=precision, batch_size=batch,
                               architecture="conv" if network == "conv" else "mlp")
        options = {}
        if network == "higgins":
            before = keras.mixed_precision.global_policy()
            keras.mixed_precision.set_global_policy(devices.resolve_precision(precision))
            try:
                keras.utils.set_random_seed(0)
                options = dict(encoder=mlp_encoder((64, 64, 1), 20, hidden_units=(1200, 1200), activation="relu"),
                               decoder=mlp_decoder(10, (64, 64, 1), hidden_units=(1200,) * 3, activation="tanh"))
            finally:
                keras.mixed_precision.set_global_policy(before)
        model = harness.build_model(config, run.open_source(config), validate_inputs=False, **options)
        images = (np.random.default_rng(0).random((examples, 64, 64, 1)) < 0.5).astype(np.float32)
        return model, images, batch, 1, examples
    settings, options, batch, samples, examples = CASES[name]
    examples = max(batch * 4, int(examples * scale))
    config = run.RunConfig(limit=examples, precision=precision, batch_size=batch, **settings)
    source = run.open_source(config)
    return harness.build_model(config, source, **options, **model_options), source, batch, samples, examples


def binarises_anew(name):
    """Whether the case's default path draws new binary images every epoch (MNIST cases not on grey levels)."""
    return name in CASES and CASES[name][0].get("binarize") != "none" and CASES[name][0]["dataset"] == "mnist"


def training_images(name, data, examples):
    """The case's training images in memory, as the paths that skip the pipeline start from:
    the 64×64 cases' binary images; for MNIST, the grey levels where the case binarises anew
    (:func:`binarises_anew`), else the images as the model sees them."""
    if name in CASES_64:
        return data
    images = data.arrays("train")[0]
    if binarises_anew(name):
        grey = tfvae.data.load_arrays(CASES[name][0]["dataset"], "train", limit=examples)[0]
        images = grey.reshape(images.shape).astype(np.float32)
    return images


def decoded_in_step(model, name, batch, examples):
    """The ``in-step`` path's data: batches ``{"pixels": uint8, "seed": int64 [2]}`` of the case's
    MNIST images (shuffled every epoch, gathered by index), and ``model.prepare_inputs`` replaced
    by their decoding (x / 255, then b ~ Bernoulli(x) from the batch's stateless seed where the
    case binarises dynamically)."""
    settings = CASES[name][0]
    images = tfvae.data.load_arrays(settings["dataset"], "train", limit=examples)[0]
    stored = tf.constant(np.round(images * 255).astype(np.uint8))
    dynamic = settings.get("binarize") != "none"
    indices = tf.data.Dataset.range(len(images)).shuffle(len(images), seed=0).batch(batch)
    seeds = tf.data.Dataset.random(seed=0, rerandomize_each_iteration=True).batch(2)
    dataset = tf.data.Dataset.zip((indices, seeds)).map(lambda index, seed: {"pixels": tf.gather(stored, index),
                                                                             "seed": seed},
                                                        num_parallel_calls=tf.data.AUTOTUNE)

    def prepare_inputs(batch):
        x = tf.cast(batch["pixels"], tf.float32) / 255.0
        if dynamic:
            x = tfvae.data.pipeline.draw_binary(x, batch["seed"])
        return x

    model.prepare_inputs = prepare_inputs
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(tfvae.data.pipeline.WITHOUT_AUTOTUNE)


class FitPath:
    """A tfvae path ("default", "tuned", "tuned-once", ``PRECISION/MODE``, ...): its model, data
    and ``fit`` call.
    A window is one ``fit(epochs=2)`` call timed over its second epoch, which pays what every
    epoch after a user's first pays (the previous epoch's iterator destroyed, a new one made);
    the first epoch of the first window traces and compiles."""

    def __init__(self, name, path, scale):
        precision, mode = path.split("/") if "/" in path else ("auto", "auto")
        options = dict(validate_inputs=False) if path in ("unchecked", "in-step") else {}
        self.model, data, self.batch, self.samples, self.examples = setup(name, scale, precision, **options)
        if path in ("in-step", "repeated"):
            self.model.compile(optimizer=tfvae.optimizers.FusedAdam(1e-3))
            self.steps = -(-self.examples // self.batch)
            self.fit = dict(x=decoded_in_step(self.model, name, self.batch, self.examples)) if path == "in-step" \
                else dict(x=data.train(self.batch, seed=0).repeat(), steps_per_epoch=self.steps)
        elif path in ("tuned", "tuned-once"):
            self.steps = self.examples // self.batch
            self.model.compile(optimizer=tfvae.optimizers.FusedAdam(1e-3),
                               steps_per_execution=steps_per_execution_for(self.steps, 100))
            images = data.arrays("train")[0] if path == "tuned-once" else training_images(name, data, self.examples)
            dataset = tf.data.Dataset.from_tensor_slices(images).repeat().batch(self.batch, drop_remainder=True)
            if path == "tuned" and binarises_anew(name):
                seeds = tf.data.Dataset.random(seed=0).batch(2)
                dataset = tf.data.Dataset.zip((dataset, seeds)).map(tfvae.data.pipeline.draw_binary,
                                                                     num_parallel_calls=tf.data.AUTOTUNE)
            self.fit = dict(x=dataset.prefetch(tf.data.AUTOTUNE), steps_per_epoch=self.steps)
        else:
            self.model.compile(optimizer=tfvae.optimizers.FusedAdam(1e-3), jit_compile=mode)
            self.steps = -(-self.examples // self.batch)
            # what a user writes: arrays in memory (64x64 cases) or the catalog's pipeline
            self.fit = dict(x=data, batch_size=self.batch) if name in CASES_64 else dict(x=data.train(self.batch, seed=0))

    def window(self):
        """Examples/s of one timed epoch."""
        seconds = []

        class Timer(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                seconds.append(time.perf_counter() - self.start)

        self.model.fit(**self.fit, epochs=2, verbose=0, callbacks=[Timer()])
        return self.steps * self.batch / seconds[1]

    def describe(self):
        networks = getattr(self.model, "encoder", self.model)  # LLGAE has no networks: its own dtype
        return dict(precision=networks.compute_dtype, xla_mode=self.model.xla_mode, batch=self.batch,
                    examples_per_epoch=self.steps * self.batch, flops_per_example=train_flops(self.model, self.samples))


class ReferencePath:
    """A PyTorch reference in a process of its own: ``torch`` (64×64 cases, PyTorch eager on the
    case's networks, ``torch_reference.py``: a window is one process measuring about 6 s after
    its warm-up) or ``pythae`` (the MNIST VAE at batch 1000 by pythae 0.1.2's own trainer,
    ``pythae_reference.py``: a window is one process's second epoch)."""

    def __init__(self, name, path):
        if path == "torch":
            network, self.batch = CASES_64[name]
            self.command = ["torch_reference.py", network, str(self.batch), "--seconds", "6"]
        else:
            self.batch = CASES[name][2]
            self.command = ["pythae_reference.py", "--epochs", "2"]

    def window(self):
        script, *arguments = self.command
        output = subprocess.run([sys.executable, str(pathlib.Path(__file__).with_name(script)), *arguments],
                                check=True, capture_output=True, text=True).stdout
        return json.loads(output.strip().splitlines()[-1])["examples_per_second"]

    def describe(self):
        return dict(batch=self.batch)


class BarePath:
    """A hand-written training step of the case's own networks (see the module docstring): float32
    with the whole step under XLA, or bfloat16 networks with only Adam's update under XLA; for the
    VAE/IWAE and 64×64 cases (one importance-weighted bound, K samples); in bfloat16 the update
    can also be :class:`tfvae.optimizers.FusedAdam`'s, or none. A window is one pass over the
    in-memory batches."""

    #: how a bfloat16 step applies Adam: "xla" (Keras' update under XLA), "fused" (TensorFlow's
    #: fused kernel per variable) or "none" (no update: the step's ceiling)
    UPDATES = ("xla", "fused", "none")

    def __init__(self, name, scale, precision="float32", update="xla"):
        if update not in self.UPDATES or (precision == "float32" and update != "xla"):
            raise ValueError(f"update={update!r} with {precision}: expected one of {self.UPDATES}, "
                             "and 'xla' in float32 (the whole step is under XLA)")
        model, data, batch, samples, examples = setup(name, scale, precision)
        self.precision, self.update, self.batch, self.flops = precision, update, batch, train_flops(model, samples)
        encoder, decoder = model.encoder, model.decoder
        variables = encoder.trainable_variables + decoder.trainable_variables
        optimizer = (tfvae.optimizers.FusedAdam if update == "fused" else keras.optimizers.Adam)(1e-3)
        optimizer.build(variables)
        images = training_images(name, data, examples)
        self.batches = tf.constant(images[: examples // batch * batch].reshape((-1, batch) + images.shape[1:]))
        self.draw = tf.function(tfvae.data.pipeline.draw_binary) if binarises_anew(name) else None
        self.draws = 0
        whole_step = precision == "float32"
        xla_update = tf.function(lambda g: optimizer.apply(g, variables), jit_compile=True)

        def log_normal(z, mean, log_scale):
            return tf.reduce_sum(-0.5 * ((z - mean) / tf.exp(log_scale)) ** 2 - log_scale - 0.9189385, -1)

        @tf.function(jit_compile=whole_step)
        def step(x):
            with tf.GradientTape() as tape:
                mean, log_scale = tf.split(tf.cast(encoder(x, training=True), tf.float32), 2, axis=-1)
                z = mean + tf.exp(log_scale) * tf.random.normal([samples] + mean.shape)
                logits = tf.cast(decoder(tf.reshape(z, [-1, z.shape[-1]]), training=True), tf.float32)
                targets = tf.tile(tf.reshape(x, [1, batch, -1]), [samples, 1, 1])
                log_px = -tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(
                    targets, tf.reshape(logits, targets.shape)), -1)
                log_w = log_px + log_normal(z, 0.0, 0.0) - log_normal(z, mean, log_scale)
                loss = -tf.reduce_mean(tf.reduce_logsumexp(log_w, 0))
            gradients = tape.gradient(loss, variables)
            if whole_step or update == "fused":
                optimizer.apply(gradients, variables)
            elif update == "xla":
                xla_update(gradients)
            else:
                return loss, gradients  # returned, so that the gradients are computed
            return loss

        self.step = step
        tf.nest.flatten(step(self.batches[0]))[0].numpy()
        if self.draw is not None:  # traced before the first window
            self.draw(self.batches[0], tf.constant([0, 0], tf.int64))

    def window(self):
        start = time.perf_counter()
        for x in self.batches:
            if self.draw is not None:
                self.draws += 1
                x = self.draw(x, tf.constant([0, self.draws], tf.int64))
            loss = self.step(x)
        tf.nest.flatten(loss)[0].numpy()
        return len(self.batches) * self.batch / (time.perf_counter() - start)

    def describe(self):
        return dict(precision=self.precision, update=self.update, batch=self.batch,
                    examples_per_epoch=len(self.batches) * self.batch, flops_per_example=self.flops)


def paths_of(name, paths, scale):
    """The case's paths that apply to it, built: ``{path: FitPath | BarePath | TorchPath}``."""
    built = {}
    for path in paths:
        if path.startswith("bare"):
            if path.startswith("bare-bf16-") and name in CASES_64:
                update = "fused" if path == "bare-bf16-fused" else "none"
                built[path] = BarePath(name, scale, "mixed_bfloat16", update)
            elif path in ("bare", "bare-bf16") and (name.startswith(("vae", "iwae")) or name in CASES_64):
                built[path] = BarePath(name, scale, "mixed_bfloat16" if path == "bare-bf16" else "float32")
        elif path in ("torch", "pythae"):
            if (name in CASES_64) if path == "torch" else name == "vae batch 1000":
                built[path] = ReferencePath(name, path)
        elif path == "tuned-once":
            if binarises_anew(name):
                built[path] = FitPath(name, path, scale)
        elif path in ("unchecked", "in-step", "repeated"):
            if name in CASES and CASES[name][0]["dataset"] == "mnist":
                built[path] = FitPath(name, path, scale)
        else:
            built[path] = FitPath(name, path, scale)
    return built


def measure_case(name, paths, rounds, probe, repeats, scale):
    """Every path of the case, interleaved: ``rounds`` rounds, each timing one window of every
    path after a matmul measurement, so that a machine that speeds up or slows down during the
    case (turbo, neighbours) moves every path alike. The median window per path."""
    built = paths_of(name, paths, scale)
    rates = {path: [] for path in built}
    for _ in range(rounds):
        for path, runner in built.items():
            probe.measure(repeats)
            rates[path].append(runner.window())
    results = {}
    for path, runner in built.items():
        rate = statistics.median(rates[path])
        result = dict(runner.describe(), examples_per_second=rate, windows=[round(r, 1) for r in rates[path]])
        result["steps_per_second"] = rate / result["batch"]
        if "flops_per_example" in result:
            result["gflops"] = rate * result.pop("flops_per_example") / 1e9
        results[path] = result
    return results


def against_fastest(cases, name):
    """One line: the default path's rate as a fraction of the case's fastest TensorFlow path, and
    the ratio to PyTorch eager where measured."""
    rates = {key[len(name) + 2:-1]: r["examples_per_second"] for key, r in cases.items() if key.startswith(name + " [")}
    not_trainers = ("torch", "pythae", "tuned-once", "bare-bf16-no-update")  # other libraries, data or no update
    tensorflow = {path: rate for path, rate in rates.items() if path not in not_trainers}
    if "default" not in rates or len(tensorflow) < 2:
        return ""
    fastest = max(tensorflow, key=tensorflow.get)
    line = f"  {name}: default at {rates['default'] / tensorflow[fastest]:.0%} of the fastest ({fastest})"
    if "tuned-once" in rates:
        line += f"; {rates['default'] / rates['tuned-once']:.0%} of tuned-once (binarised once: other data, no draw)"
    if "torch" in rates:
        line += f"; {rates['default'] / rates['torch']:.2f}x PyTorch eager"
    if "pythae" in rates:
        line += f"; {rates['default'] / rates['pythae']:.2f}x pythae 0.1.2"
    return line


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_arguments(parser, __file__, quick="a smoke run: small epochs, one window", out=False)
    parser.add_argument("--cases", nargs="*", default=list(CASES) + list(CASES_64), help="which cases (default: all)")
    parser.add_argument("--paths", nargs="*", default=PATHS, choices=PATHS,
                        help="PRECISION/MODE: a configuration set by hand; bare, bare-bf16: a hand-written step of "
                             "the same networks (VAE, IWAE and 64x64 cases); bare-bf16-fused, bare-bf16-no-update: "
                             "bare-bf16 with TensorFlow's fused Adam kernel and with no update (64x64 cases); "
                             "torch: PyTorch eager (64x64 cases); "
                             "pythae: pythae 0.1.2's trainer (VAE batch 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds: timed epochs per case and path")
    parser.add_argument("--max-load", type=float, default=1.5,
                        help="refuse fractions at this load average before the run or above")
    parser.add_argument("--json", help="also write the results here")
    args = harness.parse(parser, argv)
    header = harness.machine_header(args.command, max_load=args.max_load)  # before this process does any work
    unknown = [c for c in args.cases if c not in CASES and c not in CASES_64]
    if unknown:
        parser.error(f"unknown cases {unknown}; expected some of {list(CASES) + list(CASES_64)}")
    rounds, repeats, scale = (1, 2, 0.05) if args.quick else (args.rounds, 8, 1.0)

    probe = MatmulProbe()
    probe.measure(repeats)
    print(harness.describe(header))
    results = {"header": header, "cases": {}}
    for name in args.cases:
        for path, result in measure_case(name, args.paths, rounds, probe, repeats, scale).items():
            results["cases"][f"{name} [{path}]"] = result
            print(f"{name:<28} {path:<22} {result['examples_per_second']:>9.0f} ex/s "
                  f"{result['steps_per_second']:>7.1f} steps/s {result.get('gflops', float('nan')):>6.1f} GFLOP/s  "
                  f"windows {result['windows']}", flush=True)
        print(against_fastest(results["cases"], name), flush=True)
        if args.json:  # after every case: a run cut short keeps what it measured
            write_text_atomically(args.json, json.dumps(results, indent=2))
    load_after = harness.load_average()
    results.update(load_after=load_after, best_matmul_gflops=probe.best, matmul_gflops=probe.rates)
    quiet = header["quiet"]
    print(f"best matmul {probe.best:.1f} GFLOP/s (of {len(probe.rates)} measurements); "
          f"load average after {load_after[0]:.2f} (counts this benchmark's own threads)")
    if quiet:
        for key, result in results["cases"].items():
            if "gflops" not in result:
                continue
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
