"""Adam with TensorFlow's fused kernel: the optimizer tfvae's run layer and command line train with.

Keras 3's Adam writes its update as separate element-wise ops: without XLA each is a pass over
every weight, so tfvae compiles the update alone by XLA where the rest of the step runs on
TensorFlow's own kernels (``compile(jit_compile="update")``, :mod:`tfvae.devices`). TensorFlow
has had the whole update as one kernel since its first releases (``ResourceApplyAdam``, what
tf.keras 2 called): one pass over the weight, its gradient and both moments, split across the
intra-op threads, and one op per variable, so that a layer's update starts as soon as its
gradient is ready instead of after the whole backward pass. On 2 CPU cores (2026-12-06,
``benchmarks/RESULTS.md``) it makes the training step of Higgins' 64×64 MLP (14.2 M weights,
batch 64) 11-14 % faster than the update compiled by XLA (5-11 % for VSC and the shapes2d and
batch-256 MLPs), and changes nothing measurable on the conv nets and the MNIST VAE.

The kernel computes Keras' formula (Kingma & Ba's, with ε outside the square root)::

    m ← m + (1 − β₁)(g − m),   v ← v + (1 − β₂)(g² − v),
    w ← w − η · √(1 − β₂ᵗ) / (1 − β₁ᵗ) · m / (√v + ε)

on the same slot variables, so a checkpoint moves between this class and ``keras.optimizers.Adam``.
The two agree to float32 round-off (tested): the kernel forms 1 − β₂ in float32 (0.999 acts as
0.99900001), Keras in double precision. Whatever else Keras' ``apply`` does (learning-
rate schedules, clipping, weight decay, EMA, gradient accumulation, loss scaling) is untouched: only
the per-variable ``update_step`` changes. It falls back to Keras' own ``update_step`` where the
kernel does not apply: AMSGrad, sparse gradients, and variables under a ``tf.distribute`` strategy
(whose mirrored variables the raw kernel cannot update).

Example:
  >>> model.compile(optimizer=tfvae.optimizers.FusedAdam(1e-3))
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfvae")
class FusedAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` (same arguments, same slots, same result) whose update of a dense
    float variable is TensorFlow's fused ``ResourceApplyAdam`` kernel (see the module)."""

    #: tells :func:`tfvae.devices.xla_mode` that the update needs no XLA to be one pass
    fused_update = True

    def update_step(self, gradient, variable, learning_rate):
        fused = (not self.amsgrad and not isinstance(gradient, tf.IndexedSlices)
                 and not tf.distribute.has_strategy())
        if not fused:
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=_resource(variable).handle, m=_resource(self._momentums[index]).handle,
            v=_resource(self._velocities[index]).handle, beta1_power=beta_1 ** step, beta2_power=beta_2 ** step,
            lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2, epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype))


def _resource(variable):
    """The ``tf.Variable`` behind a Keras variable (Keras' TensorFlow backend passes ``update_step``
    either)."""
    return variable.value if isinstance(variable, keras.Variable) else variable
