"""The one training loop every tfvae model shares.

A model says what its per-example loss is (:meth:`TrainingLoop.compute_objective`, returning an
:class:`ObjectiveValue`) and, for estimators that train parameter groups on different objectives
(PIWAE, DReG), which variables belong to which group (:meth:`TrainingLoop.variable_groups`).
Everything else is written once, here, in the manner of Keras' own ``train_step``:

* ``training`` reaches every network call: True in ``fit``, False in ``evaluate`` and ``predict``;
* the gradient of each group is that of its own loss **plus** the model's regularisation losses
  (``self.losses``), so a custom network's L2 penalty trains every variable it touches;
* per-example losses are summed and divided by the *global* batch
  (``tf.nn.compute_average_loss``), so the gradients that MirroredStrategy (or the multi-worker
  loop of :mod:`tfvae.distributed`) sums over replicas equal the single-device mean;
* losses go through ``optimizer.scale_loss`` (float16 loss scaling; the optimizer divides the
  gradients back);
* data are unpacked with ``keras.utils.unpack_x_y_sample_weight``; sample weights weight both the
  loss and the metrics;
* :meth:`TrainingLoop.compute_gradients` is the single gradient computation: ``train_step``, the
  multi-worker loop and :func:`tfvae.diagnostics.gradient_snr` all call it.

**Compiled by default.** ``compile()`` resolves ``jit_compile="auto"`` to XLA (Keras itself
resolves it to no XLA on CPU) except under a tf.distribute strategy, and runs
``steps_per_execution=DEFAULT_STEPS_PER_EXECUTION`` steps per call into the graph. XLA drops
assertion ops, so the input checks do not live in the compiled step: ``fit`` and ``evaluate``
check NumPy arrays once up front and map the check over a ``tf.data.Dataset`` (it then runs in
the input pipeline, outside the XLA cluster).
"""

import collections
import warnings

import keras
import numpy as np
import tensorflow as tf

from tfvae import validation
from tfvae.models.options import DeclaredOptions, Option

#: batches per call into the compiled graph when ``compile()`` is not told otherwise. Per-epoch
#: callbacks, the progress bar's epoch figures and ``BackupAndRestore(save_freq="epoch")`` are
#: unaffected; per-batch callbacks run every this many batches (as Keras documents).
DEFAULT_STEPS_PER_EXECUTION = 16


class ObjectiveValue(collections.namedtuple("ObjectiveValue", ["loss", "metrics", "surrogates"])):
    """What :meth:`TrainingLoop.compute_objective` returns.

    Attributes:
      loss: per-example loss ``[batch]`` (the negative objective), reported as ``loss``.
      metrics: dict of name -> per-example values ``[batch]``, averaged by keras.metrics.Mean.
      surrogates: ``None`` when the gradient of ``loss`` trains every variable; otherwise a dict
        ``{group: per-example loss}`` with one entry per group of
        :meth:`TrainingLoop.variable_groups`, whose gradient trains only that group's variables
        (for estimators such as PIWAE that give the encoder and the decoder different objectives
        from the same samples).
    """

    def __new__(cls, loss, metrics, surrogates=None):
        return super().__new__(cls, loss, metrics, surrogates)


class TrainingLoop(DeclaredOptions, keras.Model):
    """Base of every tfvae model: the shared ``train_step`` / ``test_step`` (see the module).

    Subclasses define :meth:`compute_objective`, ``metric_names`` and, for their own data checks,
    :meth:`data_problem`, :meth:`data_assertions` and :meth:`data_warnings`.

    Options (see :mod:`tfvae.models.options`):
      validate_inputs: check that the data are finite and inside the likelihood's support before
        they reach the compiled step (arrays once, datasets as they stream); a bad batch stops
        training with a message naming the problem.
    """

    #: metric names reported by train_step / test_step, in progress-bar order
    metric_names = ("loss",)

    OPTIONS = {"validate_inputs": Option(True, validation.flag, "check the data before training", flag=None)}

    def __init__(self, **options):
        # the options first: subclasses' constructors and hooks read them
        keras_kwargs = self.set_options(options)
        # Under a mixed-precision policy only the networks (built under the global policy)
        # compute in float16/bfloat16; the model itself computes distributions and objectives,
        # so it is float32: Keras then does not cast the inputs of model(x) to the low dtype nor
        # autocast the model's own weights (LLGAE's bases, a learned prior). Loss scaling is
        # decided in compile() from the networks (see _computes_in_float16).
        keras_kwargs.setdefault("dtype", "float32")
        super().__init__(**keras_kwargs)
        self._trackers = [keras.metrics.Mean(name=n) for n in self.metric_names]

    # ----------------------------------------------------------------- what a model defines

    def compute_objective(self, inputs, training=False):
        """Per-example loss and metrics for a batch: an :class:`ObjectiveValue`."""
        raise NotImplementedError

    def variable_groups(self):
        """Trainable variables by role; ``ObjectiveValue.surrogates`` names these groups. Every
        trainable variable belongs to exactly one group."""
        return {"all": list(self.trainable_variables)}

    def prepare_inputs(self, inputs):
        """The batch as the objective takes it (float32). No assertions: this runs under XLA."""
        inputs = tf.convert_to_tensor(inputs)
        return inputs if inputs.dtype == tf.float32 else tf.cast(inputs, tf.float32)

    def data_problem(self, array):
        """A message when a NumPy array of data is unfit for the model (None when fine); checked
        outside the compiled step. Here: finite numbers."""
        if array.dtype.kind not in "uifb":
            return f"expected numbers, got an array of dtype {array.dtype}"
        finite = np.isfinite(array)
        if not finite.all():
            return f"the data contain {int((~finite).sum())} NaN or Inf values"
        return None

    def data_assertions(self, values):
        """:meth:`data_problem` as ``tf.debugging`` assertions on a float tensor (run in the
        tf.data pipeline, not under XLA)."""
        return [tf.debugging.assert_all_finite(values, f"tfvae: {type(self).__name__}: the data contain NaN or Inf")]

    def data_warnings(self, sample):
        """Warnings (strings) about a NumPy sample of the data that do not stop training."""
        return []

    # ------------------------------------------------------- capabilities (what a model can do)

    def is_probabilistic(self):
        """True when the model has a prior, an encoder distribution and a likelihood: it can
        sample, report ELBOs and importance-sampled log-likelihoods, and export them."""
        return False

    def has_sparse_codes(self):
        """True when ``encode`` gives codes with exact zeros (sparsity metrics and probes apply)."""
        return False

    def plots(self):
        """The pictures :mod:`tfvae.plots` can draw for this model (``tfvae plot`` flags)."""
        return ("reconstructions",)

    def initializes_from_data(self):
        """True when :meth:`initialize_from_data` does something (``tfvae train`` then calls it)."""
        return False

    def initialize_from_data(self, examples, seed=0):
        """A data-driven start before training (nothing here; LLGAE's k-means + local PCA)."""
        return None

    # ------------------------------------------------------------------- the shared loop

    @property
    def metrics(self):
        return list(self._trackers)

    def compute_gradients(self, inputs, sample_weight=None, training=True, objective=None):
        """The gradients ``train_step`` applies, for one (per-replica) batch.

        Each group's loss is ``compute_average_loss(per-example loss, sample_weight)`` (a sum over
        the replica's examples divided by the global batch) plus the scaled regularisation
        losses, passed through ``optimizer.scale_loss`` when an optimizer is set; with
        ``surrogates`` each group is differentiated with respect to its own variables only.

        Args:
          inputs: a prepared batch (see :meth:`prepare_inputs`).
          sample_weight: optional ``[batch]`` weights.
          training: passed to the networks.
          objective: ``None`` for :meth:`compute_objective`, or a callable
            ``(model, inputs) -> ObjectiveValue`` (or per-example loss ``[batch]``).

        Returns:
          ``(gradients, variables, result)``: parallel lists over ``trainable_variables`` (``None``
          where a variable gets no gradient), and the
          :class:`ObjectiveValue`.
        """
        groups = self.variable_groups()
        optimizer = getattr(self, "optimizer", None)
        with tf.GradientTape(persistent=True) as tape:
            if objective is None:
                result = self.compute_objective(inputs, training=training)
            else:
                result = objective(self, inputs)
                if not isinstance(result, ObjectiveValue):
                    result = ObjectiveValue(loss=result, metrics={})
            per_example = result.surrogates if result.surrogates is not None \
                else dict.fromkeys(groups, result.loss)
            if set(per_example) != set(groups):
                raise ValueError(f"{type(self).__name__}: surrogates name the groups {sorted(per_example)}, "
                                 f"but the variable groups are {sorted(groups)}")
            regularization = tf.nn.scale_regularization_loss(tf.add_n(self.losses)) if self.losses else 0.0
            losses = {}
            for name in groups:
                # float32 whatever the compute dtype: the objective is computed in float32
                loss = tf.nn.compute_average_loss(tf.cast(per_example[name], tf.float32),
                                                  sample_weight=sample_weight) + regularization
                losses[name] = optimizer.scale_loss(loss) if optimizer is not None else loss
        # in trainable_variables' order: the optimizer builds its slots in the order of the first
        # apply(), and a reloaded model's optimizer in trainable_variables' order
        variables = list(self.trainable_variables)
        if result.surrogates is None:
            gradients = tape.gradient(losses[next(iter(groups))], variables)
        else:
            by_id = {}
            for name, group in groups.items():
                by_id.update({id(v): g for v, g in zip(group, tape.gradient(losses[name], group))})
            gradients = [by_id[id(v)] for v in variables]
        del tape
        return gradients, variables, result

    def train_step(self, data):
        inputs, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        inputs = self.prepare_inputs(inputs)
        gradients, variables, result = self.compute_gradients(inputs, sample_weight, training=True)
        self.optimizer.apply(gradients, variables)
        return self.update_metrics(result, sample_weight)

    def test_step(self, data):
        inputs, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        result = self.compute_objective(self.prepare_inputs(inputs), training=False)
        return self.update_metrics(result, sample_weight)

    def predict_step(self, data):
        inputs, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self(self.prepare_inputs(inputs), training=False)

    def update_metrics(self, result, sample_weight=None):
        values = dict(result.metrics, loss=result.loss)
        for tracker in self._trackers:
            if tracker.name in values:
                tracker.update_state(tf.cast(values[tracker.name], tf.float32), sample_weight=sample_weight)
        return {tracker.name: tracker.result() for tracker in self._trackers}

    # ------------------------------------------------------- compile: XLA by default

    def compile(self, optimizer="rmsprop", *, jit_compile="auto", steps_per_execution=None, **kwargs):
        """``keras.Model.compile`` with tfvae's defaults: ``jit_compile="auto"`` means XLA (but
        under a tf.distribute strategy or with ``run_eagerly``), ``steps_per_execution=None``
        means :data:`DEFAULT_STEPS_PER_EXECUTION` (1 under a tf.distribute strategy). Any
        explicit value is used as given."""
        distributed = tf.distribute.has_strategy() or self.distribute_strategy.num_replicas_in_sync > 1
        if jit_compile == "auto":
            jit_compile = not (kwargs.get("run_eagerly") or distributed)
        if steps_per_execution is None:
            # Keras 3 (3.15) fails under MirroredStrategy with more than one step per execution
            # ("You must feed a value for placeholder tensor ... while/cond", keras-team/keras#19246)
            steps_per_execution = 1 if distributed else DEFAULT_STEPS_PER_EXECUTION
        # Keras wraps the optimizer for loss scaling only when the model's own policy is
        # mixed_float16; here the model is float32 and its networks may be float16.
        if optimizer is not None and kwargs.get("auto_scale_loss", True) and self._computes_in_float16():
            optimizer = keras.optimizers.get(optimizer)
            if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        super().compile(optimizer=optimizer, jit_compile=jit_compile,
                        steps_per_execution=steps_per_execution, **kwargs)

    def _computes_in_float16(self):
        """Whether a layer of the model computes in float16 (then gradients need loss scaling)."""
        return any(layer.compute_dtype == "float16" for layer in self._flatten_layers(include_self=False))

    def compile_from_config(self, config):
        # Keras restores the compile state only for models that keep keras.Model.compile;
        # this is its body, so a reloaded model comes back compiled as it was saved.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if getattr(self, "optimizer", None) is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    # ------------------------------------------- input checks outside the compiled step

    def fit(self, x=None, y=None, *args, **kwargs):
        if isinstance(x, tf.data.Dataset) and len(args) < 7:
            # Keras ignores ``shuffle`` for a dataset (it is shuffled by its pipeline) but warns
            # on every fit because the default is True; say what actually happens instead.
            kwargs.setdefault("shuffle", False)
        if self.validate_inputs:
            x = self.checked_data(x, "x")
            if kwargs.get("validation_data") is not None:
                kwargs["validation_data"] = self.checked_data(kwargs["validation_data"], "validation_data")
        return super().fit(x, _targets_for(x, y, kwargs), *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        if self.validate_inputs:
            x = self.checked_data(x, "x")
        return super().evaluate(x, _targets_for(x, y, kwargs), *args, **kwargs)

    def checked_data(self, data, what="data"):
        """``data`` with the checks of :meth:`data_problem` attached: NumPy arrays and
        tensors are checked now (``ValueError``); a ``tf.data.Dataset`` gets a ``map`` that
        checks each batch as it streams (``tf.errors.InvalidArgumentError`` naming the problem).
        Also issues :meth:`data_warnings` for the first batch."""
        if isinstance(data, tf.data.Dataset):
            first = next(iter(data.take(1)), None)
            if first is not None:
                self._warn(_first_of(first))
            return data.map(self._dataset_check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if isinstance(data, (tuple, list)) and data and _is_array(data[0]):
            return type(data)([self.checked_data(data[0], what)] + list(data[1:]))
        if _is_array(data):
            array = np.asarray(data)
            problem = self.data_problem(array)
            if problem is not None:
                raise ValueError(f"{type(self).__name__}: {what}: {problem}")
            self._warn(array[:1000])
        return data

    def _warn(self, sample):
        for message in self.data_warnings(np.asarray(sample)):
            warnings.warn(f"{type(self).__name__}: {message}", stacklevel=4)

    def _dataset_check(self, *element):
        inputs = element[0]  # tf.data passes (x, y[, w]) as separate arguments, x alone as one
        if not isinstance(inputs, dict):
            with tf.control_dependencies(self.data_assertions(tf.cast(inputs, tf.float32))):
                element = tf.nest.map_structure(tf.identity, element)
        return element if len(element) > 1 else element[0]


def _targets_for(x, y, kwargs):
    """``y`` for ``fit``/``evaluate``: Keras' array adapter drops ``sample_weight`` when ``y`` is
    None (it packs ``x`` alone), and tfvae's models take no targets, so weights given with arrays
    get a placeholder ``y`` of zeros, which the steps ignore."""
    if y is None and kwargs.get("sample_weight") is not None and _is_array(x):
        return np.zeros(len(x), np.float32)
    return y


def _first_of(element):
    while isinstance(element, (tuple, list)):
        element = element[0]
    return element.numpy() if hasattr(element, "numpy") else element


def _is_array(value):
    return isinstance(value, (np.ndarray, tf.Tensor)) or (
        hasattr(value, "__array__") and not isinstance(value, (dict, str)))


__all__ = ["DEFAULT_STEPS_PER_EXECUTION", "ObjectiveValue", "TrainingLoop"]
