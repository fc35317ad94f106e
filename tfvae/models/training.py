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
* **uneven batches under a strategy.** A batch that does not split evenly over the replicas
  (the last batch of most data sets; any batch not a multiple of the replicas) is padded in the
  input pipeline (:func:`pad_batches`: ``fit`` and ``evaluate`` under a strategy, and the
  multi-worker loop) to a multiple of the replicas with weight-0 copies of a real example, and the
  global batch of ``compute_average_loss`` is the cross-replica sum of the real examples
  (:func:`global_batch_size`), so every step, and every metric, equals the single-device step on
  the unpadded batch. Without a strategy nothing is padded and nothing is all-reduced;
* losses go through ``optimizer.scale_loss`` (float16 loss scaling; the optimizer divides the
  gradients back);
* data are unpacked with ``keras.utils.unpack_x_y_sample_weight``; sample weights weight both the
  loss and the metrics;
* :meth:`TrainingLoop.compute_gradients` is the single gradient computation: ``train_step``, the
  multi-worker loop and :func:`tfvae.diagnostics.gradient_snr` all call it.

**Compiled where it is faster.** ``compile()`` resolves ``jit_compile="auto"`` by
:func:`tfvae.devices.xla_mode`: the whole step under XLA on a GPU and for dense float32 networks
on a CPU; on a CPU, convolutional or bfloat16 networks run forward and backward on TensorFlow's
own (oneDNN) kernels with only the optimizer's update under XLA; no XLA under a tf.distribute
strategy. It runs
``steps_per_execution=DEFAULT_STEPS_PER_EXECUTION`` steps per call into the graph. XLA drops
assertion ops, so the input checks do not live in the compiled step: ``fit`` and ``evaluate``
check NumPy arrays once up front and map the check over a ``tf.data.Dataset`` (it then runs in
the input pipeline, outside the XLA cluster).
"""

import collections
import inspect
import warnings

import keras
import numpy as np
import tensorflow as tf
# Keras' own conversion of arrays into fit's batches (Keras 3 has no public one), so that arrays
# padded for replicas are batched and shuffled as fit batches them
from keras.src.trainers.data_adapters import array_data_adapter, array_slicing

from tfvae import devices, optimizers, validation  # optimizers: registers FusedAdam, which saved runs name
from tfvae.data import pipeline
from tfvae.models.options import DeclaredOptions, Option

#: batches per call into the compiled graph when ``compile()`` is not told otherwise. Per-epoch
#: callbacks, the progress bar's epoch figures and ``BackupAndRestore(save_freq="epoch")`` are
#: unaffected; per-batch callbacks run every this many batches (as Keras documents).
DEFAULT_STEPS_PER_EXECUTION = 16

#: the key of the mask of real examples that :func:`pad_batches` puts where a batch's targets go
#: (tfvae's models take no targets): 1 for the batch's own examples, 0 for padding
REAL_EXAMPLES = "tfvae_real_examples"


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

    #: True when an example's objective depends on the other examples of its batch (β-TCVAE's
    #: estimate of q(z)): :meth:`compute_objective` then also takes ``mask`` (see there)
    couples_batch = False

    #: the XLA mode ``compile(jit_compile="auto")`` gives this model's dense float32 step on a CPU
    #: (:func:`tfvae.devices.xla_mode`); a model class names another where it measured faster
    float32_cpu_xla_mode = "step"

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
        """Per-example loss and metrics for a batch: an :class:`ObjectiveValue`.

        A model with ``couples_batch = True`` also takes ``mask=None``: a ``[batch]`` tensor,
        nonzero for real examples and 0 for padding (:func:`pad_batches`), which must then not
        enter the batch-level estimates; under a tf.distribute strategy such a model estimates
        over the global batch (gathered across replicas), as one device would."""
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

    def compute_gradients(self, inputs, sample_weight=None, training=True, objective=None, real=None):
        """The gradients ``train_step`` applies, for one (per-replica) batch.

        Each group's loss is ``compute_average_loss(per-example loss, sample_weight,
        global_batch_size)`` (a weighted sum over the replica's examples divided by the number of
        real examples of the global batch, :func:`global_batch_size`) plus the scaled
        regularisation losses, passed through ``optimizer.scale_loss`` when an optimizer is set;
        with ``surrogates`` each group is differentiated with respect to its own variables only.
        Summed over replicas, the gradient is that of

            L = Σ_i w_i ℓ_i / B        (B real examples in the global batch, w_i = 1 without weights),

        the single-device loss of the unpadded batch.

        Args:
          inputs: a prepared batch (see :meth:`prepare_inputs`).
          sample_weight: optional ``[batch]`` weights (0 for padding).
          training: passed to the networks.
          objective: ``None`` for :meth:`compute_objective`, or a callable
            ``(model, inputs) -> ObjectiveValue`` (or per-example loss ``[batch]``).
          real: optional ``[batch]`` mask of real examples (1) and padding (0), from
            :func:`pad_batches`; ``None``: every example is real.

        Returns:
          ``(gradients, variables, result)``: parallel lists over ``trainable_variables`` (``None``
          where a variable gets no gradient), and the
          :class:`ObjectiveValue`.
        """
        groups = self.variable_groups()
        optimizer = getattr(self, "optimizer", None)
        with tf.GradientTape(persistent=True) as tape:
            if objective is None:
                result = self.compute_objective(inputs, training=training, **self._objective_mask(real))
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
            global_batch = global_batch_size(tf.shape(result.loss)[0], real)
            losses = {}
            for name in groups:
                # float32 whatever the compute dtype: the objective is computed in float32
                loss = tf.nn.compute_average_loss(tf.cast(per_example[name], tf.float32),
                                                  sample_weight=sample_weight,
                                                  global_batch_size=global_batch) + regularization
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
        inputs, real, sample_weight = unpack_batch(data)
        inputs = self.prepare_inputs(inputs)
        gradients, variables, result = self.compute_gradients(inputs, sample_weight, training=True, real=real)
        self.apply_gradients(gradients, variables)
        return self.update_metrics(result, sample_weight)

    def test_step(self, data):
        inputs, real, sample_weight = unpack_batch(data)
        result = self.compute_objective(self.prepare_inputs(inputs), training=False, **self._objective_mask(real))
        return self.update_metrics(result, sample_weight)

    def predict_step(self, data):
        inputs, _, _ = unpack_batch(data)
        return self(self.prepare_inputs(inputs), training=False)

    def _objective_mask(self, real):
        return {"mask": real} if self.couples_batch else {}

    def update_metrics(self, result, sample_weight=None):
        values = dict(result.metrics, loss=result.loss)
        for tracker in self._trackers:
            if tracker.name in values:
                tracker.update_state(tf.cast(values[tracker.name], tf.float32), sample_weight=sample_weight)
        return {tracker.name: tracker.result() for tracker in self._trackers}

    # ------------------------------------------------------- compile: XLA where it is faster

    def compile(self, optimizer="rmsprop", *, jit_compile="auto", steps_per_execution=None, **kwargs):
        """``keras.Model.compile`` with tfvae's defaults.

        ``jit_compile``: ``"auto"`` resolves by :func:`tfvae.devices.xla_mode` (no XLA under a
        tf.distribute strategy or with ``run_eagerly``); ``True`` or ``"step"`` compiles the
        whole training step with XLA; ``"update"`` only the optimizer's update (forward and
        backward by TensorFlow's own kernels: oneDNN's convolutions and bfloat16 matrix units
        on a CPU); ``False`` or ``"none"`` no XLA. ``steps_per_execution=None`` means
        :data:`DEFAULT_STEPS_PER_EXECUTION` (1 under a tf.distribute strategy). Any explicit
        value is used as given, and a reloaded model compiles as it was asked to (``"auto"``
        resolves again on the machine that loads it)."""
        distributed = tf.distribute.has_strategy() or self.distribute_strategy.num_replicas_in_sync > 1
        requested = jit_compile
        if jit_compile == "auto":
            mode = "none" if kwargs.get("run_eagerly") or distributed else devices.xla_mode(self, optimizer)
        else:
            mode = {True: "step", False: "none"}.get(jit_compile, jit_compile)
            if mode not in devices.XLA_MODES:
                raise ValueError(f"jit_compile must be 'auto', True, False or one of {devices.XLA_MODES}, "
                                 f"got {jit_compile!r}")
            if mode == "update" and distributed:
                raise ValueError("jit_compile='update' cannot run under a tf.distribute strategy (the update "
                                 "all-reduces across replicas); use False")
        self.xla_mode = mode
        self._compiled_update = None
        self._chooses_steps_per_execution = steps_per_execution is None and not distributed
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
        super().compile(optimizer=optimizer, jit_compile=mode == "step",
                        steps_per_execution=steps_per_execution, **kwargs)
        # what a reloaded model asks for
        self._compile_config.config.update(jit_compile=requested, steps_per_execution=None
                                           if self._chooses_steps_per_execution else steps_per_execution)

    def apply_gradients(self, gradients, variables):
        """``optimizer.apply``, compiled by XLA on its own when ``xla_mode == "update"`` (one fused
        pass over the weights instead of Keras' separate element-wise ops)."""
        if getattr(self, "xla_mode", None) != "update":
            return self.optimizer.apply(gradients, variables)
        if self._compiled_update is None:
            # the variables are captured, not passed: a tf.function cannot take Keras variables
            # as arguments; they are the model's trainable variables on every step
            self._compiled_update = tf.function(lambda g: self.optimizer.apply(g, variables), jit_compile=True)
        return self._compiled_update(gradients)

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
        arguments = _arguments(super().fit, x, y, *args, **kwargs)
        if isinstance(x, tf.data.Dataset):
            # Keras ignores ``shuffle`` for a dataset (it is shuffled by its pipeline) but warns
            # on every fit because the default is True; say what actually happens instead.
            arguments.setdefault("shuffle", False)
        if self.validate_inputs:
            arguments["x"] = self.checked_data(x, "x")
            if arguments.get("validation_data") is not None:
                arguments["validation_data"] = self.checked_data(arguments["validation_data"], "validation_data")
        arguments["y"] = _targets_for(arguments["x"], y, arguments)
        if self.distribute_strategy.num_replicas_in_sync > 1:
            self._pad_for_replicas(arguments, fit=True)
        else:
            _batches_of_arrays(arguments)
        self._execute_exactly(arguments.get("steps_per_epoch"), "steps_per_epoch")
        return super().fit(**arguments)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        arguments = _arguments(super().evaluate, x, y, *args, **kwargs)
        # fit's validation: fit has checked (and padded) these data already
        cached = arguments.get("_use_cached_eval_dataset", False)
        if self.validate_inputs and not cached:
            arguments["x"] = self.checked_data(x, "x")
        arguments["y"] = _targets_for(arguments["x"], y, arguments)
        if self.distribute_strategy.num_replicas_in_sync > 1 and not cached:
            self._pad_for_replicas(arguments, fit=False)
        if not cached:
            self._execute_exactly(arguments.get("steps"), "steps")
        return super().evaluate(**arguments)

    def _execute_exactly(self, steps, name):
        """Keras runs ``steps_per_execution`` steps in every call into the graph while data last,
        so ``steps_per_epoch`` (or ``evaluate``'s ``steps``) on endless data that is not a multiple
        of it runs more steps than asked (7 steps an epoch ran as 16). Where ``compile()`` chose
        the steps per execution, they become the largest divisor of ``steps`` up to
        :data:`DEFAULT_STEPS_PER_EXECUTION` (the compiled functions are rebuilt when it changes);
        a number given to ``compile()`` that does not divide ``steps`` is an error."""
        every = self.steps_per_execution
        if steps is not None:
            _check_steps(steps, name, "or None (one pass over the data)")
        if getattr(self, "_chooses_steps_per_execution", False):
            wanted = DEFAULT_STEPS_PER_EXECUTION if steps is None else steps_per_execution_for(steps)
            if wanted != every:
                self.steps_per_execution = wanted
                self.train_function = self.test_function = self.predict_function = None
        elif steps is not None and steps % every:
            raise ValueError(f"{name}={steps} is not a multiple of steps_per_execution={every} (given to "
                             f"compile()): Keras would run {-(-steps // every) * every} steps. Give a multiple of "
                             f"{every}, or compile() without steps_per_execution (tfvae then picks a divisor)")

    def _pad_for_replicas(self, arguments, fit):
        """Replaces the data among ``fit``'s or ``evaluate``'s ``arguments`` (arrays or a
        tf.data.Dataset; Keras' other inputs are left to it) by their batches padded to a
        multiple of the replicas (:func:`pad_batches`), arrays batched and shuffled as Keras
        batches them."""
        replicas = self.distribute_strategy.num_replicas_in_sync
        if fit and arguments.get("validation_split") and arguments.get("validation_data") is None \
                and _is_array(arguments["x"]):
            # the split Keras makes of arrays (their last part), before they become a dataset
            (arguments["x"], arguments["y"], arguments["sample_weight"]), arguments["validation_data"] = \
                array_slicing.train_validation_split((arguments["x"], arguments["y"], arguments.get("sample_weight")),
                                                     validation_split=arguments.pop("validation_split"))
        batch_size = arguments.get("batch_size")
        padded = _padded(arguments["x"], arguments["y"], arguments.get("sample_weight"), batch_size,
                         arguments.get("shuffle", True) if fit else False, replicas)
        if padded is not None:
            arguments.update(x=padded, y=None, sample_weight=None, batch_size=None)
            if fit:
                arguments["shuffle"] = False  # done in the padded pipeline
        if fit and arguments.get("validation_data") is not None:
            x, y, weight = keras.utils.unpack_x_y_sample_weight(arguments["validation_data"])
            padded = _padded(x, y, weight, arguments.get("validation_batch_size") or batch_size, False, replicas)
            if padded is not None:
                arguments["validation_data"] = padded
                arguments.pop("validation_batch_size", None)

    def checked_data(self, data, what="data"):
        """``data`` with the checks of :meth:`data_problem` attached: NumPy arrays and
        tensors are checked now (``ValueError``); a ``tf.data.Dataset`` gets a ``map`` that
        checks each batch as it streams (``tf.errors.InvalidArgumentError`` naming the problem),
        unless it is one of tfvae's pipelines from stored images whose every possible value
        (``pipeline.VALUES_ATTRIBUTE``) passes :meth:`data_problem`, checked now.
        Also issues :meth:`data_warnings` for the first batch."""
        if isinstance(data, tf.data.Dataset):
            first = next(iter(data.take(1)), None)
            if first is not None:
                self._warn(_first_of(first))
            values = getattr(data, pipeline.VALUES_ATTRIBUTE, None)
            if values is not None and self.data_problem(values) is None:
                # tfvae's pipeline from stored images: every value a batch can hold passes the
                # check, so no batch needs it (the map cost 9 % of an MNIST epoch at batch 1000)
                return data
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


def pad_batches(dataset, multiple):
    """``dataset`` with every batch padded to a multiple of ``multiple`` examples, so that a
    tf.distribute strategy with ``multiple`` replicas splits each batch into equal parts.

    The padding repeats the batch's first example (real values, so the objective stays finite)
    at the end of the batch. Each element becomes ``(inputs, {REAL_EXAMPLES: real})``, or
    ``(inputs, {REAL_EXAMPLES: real}, sample_weight)`` when it had weights: ``real`` is 1 for the
    batch's own examples and 0 for padding, whose weights are 0 too (any targets are dropped:
    tfvae's models take none). The shared ``train_step`` / ``test_step`` read the mask
    (:func:`unpack_batch`): padding weighs nothing in the loss and the metrics, and the loss is
    divided by the number of real examples of the global batch (:func:`global_batch_size`).

    Example:
      >>> batches = pad_batches(tf.data.Dataset.from_tensor_slices(images).batch(7), 2)
      >>> next(iter(batches))[1][REAL_EXAMPLES].numpy()        # 7 real examples, 1 copy
      array([1., 1., 1., 1., 1., 1., 1., 0.], dtype=float32)
    """
    multiple = validation.positive_int("multiple", multiple)

    def pad(*element):
        # tf.data passes (x, y[, w]) as separate arguments, x alone as one
        inputs, _, sample_weight = keras.utils.unpack_x_y_sample_weight(element if len(element) > 1 else element[0])
        size = tf.shape(tf.nest.flatten(inputs)[0])[0]
        copies = tf.zeros([(multiple - size % multiple) % multiple], tf.int32)  # indices of the first example
        inputs = tf.nest.map_structure(lambda t: tf.concat([t, tf.gather(t, copies)], 0), inputs)
        targets = {REAL_EXAMPLES: tf.concat([tf.ones([size]), tf.zeros(tf.shape(copies))], 0)}
        if sample_weight is None:
            return inputs, targets
        sample_weight = tf.concat([sample_weight, tf.zeros_like(tf.gather(sample_weight, copies))], 0)
        return inputs, targets, sample_weight

    # tf.distribute cannot see a batch size through a map (compute_batch_size gives -1), so it splits
    # every padded batch by itself into equal, contiguous parts (its "legacy" rebatching) instead of
    # cutting the stream of examples into parts of the unpadded batch size
    return dataset.map(pad, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def unpack_batch(data):
    """``(inputs, real, sample_weight)`` of a batch of ``fit``, ``evaluate`` or the multi-worker
    loop: ``real`` is the mask of :func:`pad_batches` (``None`` for a batch it did not pad), and
    ``sample_weight`` weighs the loss and the metrics (the mask itself for a padded batch without
    weights, so that padding weighs 0)."""
    inputs, targets, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    real = targets.get(REAL_EXAMPLES) if isinstance(targets, dict) else None
    if real is not None and sample_weight is None:
        sample_weight = real
    return inputs, real, sample_weight


def global_batch_size(local_batch, real=None):
    """The number of real examples in the global batch, as ``tf.nn.compute_average_loss`` takes
    it: under a tf.distribute strategy the cross-replica sum of every replica's count (its
    ``local_batch`` examples, or the nonzero entries of its mask ``real``), exact whatever the
    replicas' shares; on one replica the count of ``real``, or ``None`` without a mask
    (compute_average_loss then counts the batch itself; nothing is all-reduced).

    Call it on every replica (in replica context, inside ``strategy.run``), like the all-reduce
    it makes. Dividing by the *local* count (a per-replica mean), or leaving ``global_batch_size``
    to compute_average_loss (local count × replicas), is wrong whenever the shares differ.
    """
    context = tf.distribute.get_replica_context()
    replicas = 1 if context is None else context.num_replicas_in_sync
    if real is None and replicas == 1:
        return None
    count = local_batch if real is None else tf.math.count_nonzero(real, dtype=tf.int32)
    if replicas == 1:
        return count
    # summed as float32 (exact below 2**24 examples), the dtype every all-reduce takes: TensorFlow keeps
    # int32 tensors in host memory on GPUs (not checked on GPUs here)
    return tf.cast(context.all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(count, tf.float32)), tf.int32)


def _padded(x, y, sample_weight, batch_size, shuffle, replicas):
    """The batches :func:`pad_batches` makes of arrays (as Keras' fit batches and shuffles them)
    or of a tf.data.Dataset; ``None`` for other data."""
    if isinstance(x, tf.data.Dataset):
        return pad_batches(x, replicas)
    if not _is_array(x):
        return None
    if y is None and sample_weight is not None:
        y = np.zeros(len(x), np.float32)  # see _targets_for
    batches = array_data_adapter.ArrayDataAdapter(x, y, sample_weight=sample_weight, batch_size=batch_size,
                                                  shuffle=shuffle).get_tf_dataset()
    return pad_batches(batches, replicas)


def steps_per_execution_for(steps, most=DEFAULT_STEPS_PER_EXECUTION):
    """The largest number of steps per execution up to ``most`` that divides ``steps``: Keras runs
    whole executions, so any other number runs more steps than ``steps`` on endless data."""
    _check_steps(steps, "steps")
    return max(d for d in range(1, min(most, steps) + 1) if steps % d == 0)


def _check_steps(steps, name, alternative=""):
    """:func:`validation.positive_int`, with what else ``name`` may be (``alternative``) in its message."""
    try:
        validation.positive_int(name, steps)
    except ValueError as error:
        raise ValueError(f"{error}{' ' + alternative if alternative else ''}") from None


def _batches_of_arrays(arguments):
    """Gives ``fit`` in-memory arrays as :func:`tfvae.data.pipeline.index_batches` instead of
    Keras' array adapter, where that changes nothing else (no targets, weights or
    ``validation_split``; ``shuffle`` True or False): the same batches (``batch_size`` default
    32, the last one partial; ``shuffle=True`` a new permutation every epoch), without tf.data's
    autotuning: Keras destroys its iterator at every epoch's end, and destroying an autotuned one
    waits for the tuning thread, often 2-3 s on 2 CPU cores (:data:`pipeline.WITHOUT_AUTOTUNE`)."""
    x = arguments["x"]
    plain = arguments.get("y") is None and arguments.get("sample_weight") is None \
        and not arguments.get("validation_split") and arguments.get("shuffle", True) in (True, False)
    if not (plain and _is_array(x)) or isinstance(x, (tuple, list)) or len(x) == 0:
        return
    x = np.asarray(x)
    if x.dtype == np.float64:
        x = x.astype(keras.backend.floatx())  # as Keras' array adapter converts it
    batches = pipeline.index_batches(x, arguments.get("batch_size") or 32, shuffle=arguments.get("shuffle", True))
    arguments.update(x=batches.prefetch(tf.data.AUTOTUNE), batch_size=None, shuffle=False)


def _arguments(method, *args, **kwargs):
    """The arguments of a call of Keras' ``fit`` / ``evaluate`` by name (``**kwargs`` spread)."""
    arguments = inspect.signature(method).bind(*args, **kwargs).arguments
    arguments.update(arguments.pop("kwargs", {}))
    return arguments


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


__all__ = ["DEFAULT_STEPS_PER_EXECUTION", "REAL_EXAMPLES", "ObjectiveValue", "TrainingLoop", "global_batch_size",
           "pad_batches", "steps_per_execution_for", "unpack_batch"]
