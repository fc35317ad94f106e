"""How tfvae compiles and in what precision it computes, chosen per model and device.

Measured on one machine (x86_64 Xeon with AVX-512 and AMX-BF16, 2 cores, TensorFlow 2.21):
images/s of a hand-written VAE training step (Bernoulli, Adam) at batch 64, medians of three
windows on 2026-12-05; ``benchmarks/throughput.py`` measures the same and the ``fit`` paths, and
RESULTS.md ("Throughput on 2 cores") has its table:

======================  ==========  =============  ===================  ===========================
network                 XLA step    no XLA         bfloat16, no XLA,    PyTorch eager (float32)
                        (float32)   (float32)      update under XLA
======================  ==========  =============  ===================  ===========================
conv 64×64 (dlib)        625         1,400          2,050                1,050
MLP 1200² (Higgins)     1,340        1,040          1,600                  930
======================  ==========  =============  ===================  ===========================

Three facts follow. XLA's CPU backend does not use oneDNN: its convolutions are 2× slower than
TensorFlow's own kernels, and it runs bfloat16 matrix products without the AMX units (a
2048² bfloat16 product: 240 GFLOP/s under XLA, 1,250 without; float32: 280 and 295). Without XLA,
Keras' Adam is a chain of separate element-wise ops over every weight, several passes over memory
per step, which XLA fuses into one. So the fast path on such a CPU is a step in three parts:
forward and backward by TensorFlow's kernels (in bfloat16 where the CPU has matrix units for it),
and the optimizer's update compiled by XLA. Or, with :class:`tfvae.optimizers.FusedAdam` (the
run layer's optimizer), no XLA at all: its update is already one pass, TensorFlow's fused kernel
per variable, which starts as each gradient is ready and measured 11-14 % faster than the
compiled update on Higgins' MLP at batch 64 (2026-12-06); :func:`xla_mode` then says ``"none"``.

A fourth: a small step is bound by the number of its ops, not by their arithmetic. The MNIST VAE
(the IWAE paper's 784-200-200 tanh network, 50 latents) at batch 100, 42 M forward
multiply-adds a step, trains 84 % as fast in bfloat16 with the update under XLA as in float32
with the whole step under XLA (five interleaved windows each, all the float32 ones above all the
bfloat16 ones); at batch 1000 (423 M) bfloat16 is 17 % faster. So ``precision="auto"`` keeps a
dense network in float32 below :data:`SMALL_STEP_MULTIPLY_ADDS`, 128 M, about the geometric mean
of the two measured sizes (where between them the two cross was not measured). Which XLA mode is
fastest for a small float32 step depends on the model, not only on its size: VSC's step (30 M at
batch 32) is 23 % faster with only the update under XLA, so a model class names its own mode
(``float32_cpu_xla_mode``).

``compile(jit_compile="auto")`` (the default) resolves to one of :data:`XLA_MODES` by
:func:`xla_mode`; ``run.train``'s ``precision="auto"`` resolves by :func:`default_precision`.
Either can be set explicitly.
"""

import functools
import pathlib

#: ``"step"``: the whole training step under XLA; ``"update"``: only the optimizer's update
#: under XLA; ``"none"``: no XLA
XLA_MODES = ("step", "update", "none")

#: the precisions a run can ask for (Keras dtype policies; "auto": :func:`default_precision`)
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


def has_gpu():
    import tensorflow as tf  # here, so that the CLI's settings (which name PRECISIONS) load without it

    return bool(tf.config.list_physical_devices("GPU"))


@functools.lru_cache(maxsize=None)
def cpu_has_bfloat16_matrix_units():
    """True on a CPU whose flags name AMX-BF16 (Intel Sapphire Rapids and later), where oneDNN
    multiplies bfloat16 matrices several times faster than float32. Linux only (reads
    ``/proc/cpuinfo``); False where it cannot tell."""
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(line.startswith("flags") and "amx_bf16" in line.split() for line in text.splitlines())


#: below this many multiply-adds in a training step's forward pass, ``precision="auto"`` keeps a
#: dense network in float32 on a CPU with bfloat16 matrix units (see the module)
SMALL_STEP_MULTIPLY_ADDS = 128_000_000


def default_precision(multiply_adds=None):
    """``"mixed_bfloat16"`` on a CPU-only machine with bfloat16 matrix units, unless the training
    step is known to be small (``multiply_adds``, from :func:`forward_multiply_adds`, below
    :data:`SMALL_STEP_MULTIPLY_ADDS`); else ``"float32"`` (on a GPU, mixed precision is a choice
    about numerics the user makes)."""
    if has_gpu() or not cpu_has_bfloat16_matrix_units():
        return "float32"
    small = multiply_adds is not None and multiply_adds < SMALL_STEP_MULTIPLY_ADDS
    return "float32" if small else "mixed_bfloat16"


def resolve_precision(precision):
    return default_precision() if precision == "auto" else precision


def forward_multiply_adds(model, batch_size):
    """Multiply-adds of one training step's forward pass through ``model``'s networks: the
    encoder once and the decoder once per draw from q (``total_samples``: K, or M·K), each
    Dense layer ``inputs × units`` per example, for ``batch_size`` examples. None when the model
    has no networks (LLGAE) or a network has convolutions, which this does not count.

    Example: the MNIST VAE (784-200-200, 50 latents: the encoder gives 100 numbers) at batch 100:
      100 · (784·200 + 200·200 + 200·100 + 50·200 + 200·200 + 200·784) = 42.36 M.
    """
    networks = [getattr(model, name, None) for name in ("encoder", "decoder")]
    if None in networks or any(_convolutional(network) for network in networks):
        return None
    encoder, decoder = (dense_multiply_adds(network) for network in networks)
    return batch_size * (encoder + getattr(model, "total_samples", 1) * decoder)


def dense_multiply_adds(network):
    """``inputs × units`` of every Dense layer in ``network`` (nested ones too): its forward
    multiply-adds per example, other layers not counted."""
    import keras

    return sum(layer.kernel.shape[0] * layer.kernel.shape[1]
               for layer in network._flatten_layers() if isinstance(layer, keras.layers.Dense))


def xla_mode(model, optimizer=None):
    """The fastest XLA mode for ``model``'s training step with ``optimizer`` on this machine (see
    the module): ``"step"`` on a GPU; on a CPU, ``"update"`` when a network has convolutions or
    computes in bfloat16, else the model class's ``float32_cpu_xla_mode`` (``"step"`` unless
    measured otherwise); and ``"none"`` instead of ``"update"`` when the optimizer's update is
    one fused kernel already (:class:`tfvae.optimizers.FusedAdam`)."""
    if has_gpu():
        return "step"
    layers = list(model._flatten_layers(include_self=False))
    bfloat16 = any(getattr(layer, "compute_dtype", None) == "bfloat16" for layer in layers)
    if bfloat16 or any(_is_convolution(layer) for layer in layers):
        mode = "update"
    else:
        mode = model.float32_cpu_xla_mode
    fused = getattr(getattr(optimizer, "inner_optimizer", optimizer), "fused_update", False)
    return "none" if mode == "update" and fused else mode


def _is_convolution(layer):
    # Keras' convolutions (Conv1-3D, their transposes, depthwise, separable) share BaseConv* bases
    return any(base.__name__.startswith(("BaseConv", "BaseDepthwiseConv", "BaseSeparableConv"))
               for base in type(layer).__mro__)


def _convolutional(network):
    return any(_is_convolution(layer) for layer in network._flatten_layers())
