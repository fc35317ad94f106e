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
and the optimizer's update compiled by XLA.

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


def default_precision():
    """``"mixed_bfloat16"`` on a CPU-only machine with bfloat16 matrix units, else ``"float32"``
    (on a GPU, mixed precision is a choice about numerics the user makes)."""
    return "mixed_bfloat16" if not has_gpu() and cpu_has_bfloat16_matrix_units() else "float32"


def resolve_precision(precision):
    return default_precision() if precision == "auto" else precision


def xla_mode(model):
    """The fastest XLA mode for ``model``'s training step on this machine (see the module):
    ``"step"`` on a GPU, and on a CPU for dense float32 networks; ``"update"`` on a CPU when a
    network has convolutions or computes in bfloat16."""
    if has_gpu():
        return "step"
    layers = list(model._flatten_layers(include_self=False))
    # Keras' convolutions (Conv1-3D, their transposes, depthwise, separable) share BaseConv* bases
    convolutional = any(base.__name__.startswith(("BaseConv", "BaseDepthwiseConv", "BaseSeparableConv"))
                        for layer in layers for base in type(layer).__mro__)
    bfloat16 = any(getattr(layer, "compute_dtype", None) == "bfloat16" for layer in layers)
    return "update" if convolutional or bfloat16 else "step"
