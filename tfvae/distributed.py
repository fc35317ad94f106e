"""Multi-worker training on ``tf.distribute``, with checkpoints that survive a killed worker.

Keras 3's ``model.fit`` cannot drive ``tf.distribute.MultiWorkerMirroredStrategy``
(keras-team/keras#20585: "Attempt to convert a value (PerReplica ...)"), so :func:`train` is a
loop of our own in the manner of TensorFlow's "custom training loop with
MultiWorkerMirroredStrategy" guide. It runs the models' own ``train_step`` (the one
:class:`tfvae.models.training.TrainingLoop` defines for ``fit``) inside ``strategy.run``:

* the dataset yields **global** batches; each is padded to a multiple of ``num_replicas_in_sync``
  with weight-0 copies of a real example (:func:`tfvae.models.training.pad_batches`: the last,
  short batch of a data set, or every batch when the batch size is not a multiple of the
  replicas), ``experimental_distribute_dataset`` splits it into equal parts (every worker reads
  the same, identically seeded pipeline and keeps its own parts), and ``train_step`` divides each
  replica's weighted sum of losses by the number of real examples of the global batch (an
  all-reduced count, :func:`tfvae.models.training.global_batch_size`), so the all-reduced
  gradient is the gradient of the global-batch mean, as in single-process training, for every
  batch;
* the metric trackers are ``keras.metrics.Mean`` objects whose variables are sync-on-read sums:
  reading them between steps adds totals and counts over every replica of every worker, so the
  reported per-epoch ``loss`` is the mean over all examples of the epoch, as ``fit`` reports it;
* no XLA (``tf.function(jit_compile=False)``), whatever ``compile()`` chose;
* after every epoch all workers write a checkpoint (``tf.train.CheckpointManager``: model and
  optimizer variables, the epoch counter, and the history and training seconds so far); only the
  chief writes into ``checkpoint_dir``, the others into temporary folders they delete at once
  (as TensorFlow's multi-worker guide prescribes: a save may read sync-on-read variables, which
  all-reduces);
* on start, the chief restores the latest checkpoint and **broadcasts** it (epoch, record and every
  variable) to the other workers, so only the chief needs to see ``checkpoint_dir``; the data
  pipeline is then advanced past the finished epochs (each new iterator of a reshuffling dataset
  draws the next epoch's order), so a resumed run sees the data in the order an uninterrupted run
  would. A killed worker therefore costs at most the epoch it was in: start every worker again
  with the same command.

Example (the same script on every worker, each with its own ``TF_CONFIG``)::

    strategy = tfvae.distributed.multi_worker_strategy(timeout=600)   # before any other TF op
    with strategy.scope():
        model = tfvae.models.VAE(image_shape=(28, 28, 1), latent_dim=10)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
    train = tfvae.data.load("mnist", "train", batch_size=256, shuffle=True, seed=0)  # global batch
    result = tfvae.distributed.train(model, train, epochs=10, strategy=strategy,
                                     checkpoint_dir="runs/vae/backup")
    result.history["loss"]          # one value per epoch, all epochs, also after a restart

Single-host training (``model.fit``, also under MirroredStrategy) resumes with
``keras.callbacks.BackupAndRestore``; :class:`ResumableHistory` keeps its history and training
time whole across the restart.
"""

import collections
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

#: the environment variable ``tfvae train`` reads the worker timeout from (seconds; 0: no limit)
WORKER_TIMEOUT_VARIABLE = "TFVAE_WORKER_TIMEOUT"
DEFAULT_WORKER_TIMEOUT = 900.0


class Cluster(collections.namedtuple("Cluster", ["num_workers", "task_type", "task_id", "is_chief"])):
    """The cluster ``TF_CONFIG`` describes, as :func:`cluster_from_environment` reads it.

    Attributes:
      num_workers: tasks that train (``chief`` plus ``worker``); 1 without ``TF_CONFIG``.
      task_type, task_id: this process' task (``None`` without ``TF_CONFIG``).
      is_chief: whether this process writes the run (the ``chief`` task, else ``worker`` 0).
    """


class TrainResult(collections.namedtuple("TrainResult", ["history", "seconds", "initial_epoch"])):
    """What :func:`train` returns.

    Attributes:
      history: ``{metric name: [one value per epoch]}`` over **all** epochs, those of earlier,
        interrupted runs included (``val_``-prefixed with validation data), as
        ``model.fit(...).history``.
      seconds: training time up to the end of the last epoch, summed over the runs that trained
        (an epoch lost to a crash is not counted; the setup of each run is). The checkpoint
        holds the same figure, so a rerun of a finished run returns it unchanged.
      initial_epoch: the number of epochs restored from the checkpoint (0 on a fresh start).
    """


def cluster_from_environment(environ=None):
    """The :class:`Cluster` named by ``TF_CONFIG`` (pure Python: starts no TensorFlow runtime).

    Raises:
      ValueError: ``TF_CONFIG`` is not JSON, names no ``worker``/``chief`` tasks, has roles
        other than those (parameter servers and evaluators are not supported), or a task
        outside the cluster.
    """
    environ = os.environ if environ is None else environ
    text = environ.get("TF_CONFIG", "").strip()
    if not text:
        return Cluster(1, None, None, True)
    try:
        config = json.loads(text)
    except ValueError as error:
        raise ValueError(f"TF_CONFIG is not valid JSON ({error}): {text!r}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not cluster:
        return Cluster(1, None, None, True)
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise ValueError('TF_CONFIG must be {"cluster": {"worker": [...]}, "task": {"type": ..., "index": ...}}, '
                         f"got {text!r}")
    unsupported = sorted(set(cluster) - {"chief", "worker"})
    if unsupported:
        raise ValueError(f"TF_CONFIG names {unsupported} tasks; tfvae trains with MultiWorkerMirroredStrategy, "
                         "which takes only 'chief' and 'worker' tasks")
    sizes = {job: len(cluster.get(job) or []) for job in ("chief", "worker")}
    if sizes["chief"] > 1:
        raise ValueError(f"TF_CONFIG names {sizes['chief']} chief tasks; expected at most one")
    task_type, task_id = task.get("type"), task.get("index", 0)
    if task_type not in ("chief", "worker") or not isinstance(task_id, int) \
            or not 0 <= task_id < sizes.get(task_type, 0):
        raise ValueError(f"TF_CONFIG task {task!r} is not one of the cluster's tasks "
                         f"({sizes['chief']} chief, {sizes['worker']} worker)")
    is_chief = task_type == "chief" or (task_id == 0 and sizes["chief"] == 0)
    return Cluster(sizes["chief"] + sizes["worker"], task_type, task_id, is_chief)


def tf_config_from_slurm(port=12345):
    """The ``TF_CONFIG`` (a JSON string) of this Slurm task: every task of the job step is a
    worker at ``host:port`` (``port + i`` for the i-th task on a node), task ``SLURM_PROCID``.

    Uses ``tf.distribute.cluster_resolver.SlurmClusterResolver`` (``SLURM_PROCID``,
    ``SLURM_STEP_NUM_TASKS``, ``SLURM_STEP_NODELIST``, ``SLURM_STEP_TASKS_PER_NODE``) with its GPU
    assignment off: it can only set ``CUDA_VISIBLE_DEVICES`` in its own process, and its GPU count
    (nvidia-smi) fails on CPU nodes. Run one task per node; each worker uses all GPUs it sees.

    Example (in a Slurm batch script)::

        srun bash -c 'TF_CONFIG=$(python -m tfvae.distributed slurm-tf-config) tfvae train ...'
    """
    # gpus_per_node/gpus_per_task only feed the GPU assignment, which is off; these values
    # pass its checks for any number of tasks per node
    resolver = tf.distribute.cluster_resolver.SlurmClusterResolver(
        port_base=int(port), gpus_per_node=1 << 16, gpus_per_task=1, auto_set_gpu=False)
    cluster = resolver.cluster_spec().as_dict()
    return json.dumps({"cluster": cluster, "task": {"type": resolver.task_type, "index": resolver.task_id}})


def worker_timeout_from_environment(environ=None):
    """Seconds to wait for the other workers: ``$TFVAE_WORKER_TIMEOUT`` (0 or ``none``: no limit),
    else :data:`DEFAULT_WORKER_TIMEOUT`. ``None`` means no limit.

    Raises:
      ValueError: the variable is not a number >= 0.
    """
    environ = os.environ if environ is None else environ
    text = environ.get(WORKER_TIMEOUT_VARIABLE, "").strip()
    if not text:
        return DEFAULT_WORKER_TIMEOUT
    if text.lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{WORKER_TIMEOUT_VARIABLE} must be a number of seconds >= 0 (0: no limit), got {text!r}")
    return value or None


def multi_worker_strategy(timeout=DEFAULT_WORKER_TIMEOUT, cluster_resolver=None, communication_options=None):
    """``tf.distribute.MultiWorkerMirroredStrategy`` that gives up when the cluster does not form.

    Creating the strategy blocks, inside TensorFlow's C++ runtime and holding Python's global
    lock, until every worker named in the cluster has started and connected; a worker whose peers
    never come up would wait forever (neither the coordination service's register timeout nor
    ``CommunicationOptions(timeout_seconds=...)``, which bounds collective operations, ends that
    wait, and TensorFlow's preemption handler swallows SIGTERM; measured with TF 2.21). So a
    watchdog *process* waits beside it: after ``timeout`` seconds it writes a message naming the
    cluster to stderr and ends the worker with SIGKILL (exit status 137 in a shell). Once the
    cluster has formed, the watchdog is stopped; a worker that dies later is detected by the
    coordination service's heartbeats, and the others stop with an error instead of hanging.

    Call this at program start, before any other TensorFlow operation runs (TensorFlow's rule for
    collective operations).

    Args:
      timeout: seconds to wait for the other workers; ``None`` waits forever.
      cluster_resolver: default ``TFConfigClusterResolver()`` (reads ``TF_CONFIG``); e.g.
        ``tf.distribute.cluster_resolver.SlurmClusterResolver()`` on Slurm.
      communication_options: ``tf.distribute.experimental.CommunicationOptions`` for the
        all-reduces (e.g. ``timeout_seconds`` per collective operation).

    Example:
      >>> strategy = tfvae.distributed.multi_worker_strategy(timeout=300)
    """
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or not 0 < timeout < float("inf")):
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    resolver = cluster_resolver or tf.distribute.cluster_resolver.TFConfigClusterResolver()
    watchdog = None
    if timeout is not None:
        try:
            cluster = resolver.cluster_spec().as_dict()
        except Exception:  # noqa: BLE001 — only for the message below
            cluster = {}
        where = f"{resolver.task_type} {resolver.task_id}" if resolver.task_type is not None else "this worker"
        message = (f"tfvae: error: {where} gave up after {timeout:g} s waiting for the other workers of the "
                   f"cluster {json.dumps(cluster)}; start the same command on every worker named there "
                   f"(each with its own TF_CONFIG task), or raise the timeout "
                   f"(${WORKER_TIMEOUT_VARIABLE}, 0 = no limit)\n")
        watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), repr(float(timeout)), message],
                                    stdin=subprocess.DEVNULL)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(
            cluster_resolver=resolver,
            communication_options=communication_options or tf.distribute.experimental.CommunicationOptions())
    finally:
        if watchdog is not None:
            watchdog.kill()
            watchdog.wait()


#: the watchdog of multi_worker_strategy: argv = worker pid, seconds, message
_WATCHDOG = """
import os, signal, sys, time
worker, deadline, message = int(sys.argv[1]), time.monotonic() + float(sys.argv[2]), sys.argv[3]
while time.monotonic() < deadline:
    time.sleep(0.2)
    if os.getppid() != worker:  # the worker is gone: nothing to watch
        sys.exit(0)
os.write(2, message.encode())
os.kill(worker, signal.SIGKILL)
"""


def barrier(strategy):
    """Waits until every worker of ``strategy`` has called this (an all-reduce; no time limit).

    ``tfvae train`` ends with one, so that the other workers exit with the chief, after its
    evaluation: a worker that leaves first is reported by the coordination service as crashed
    ("tasks are unhealthy") on the chief.
    """
    _stop_vote(strategy)(False)


def is_chief(strategy=None):
    """Whether this process writes the run's files: always on one worker, the chief under
    MultiWorkerMirroredStrategy (``strategy.extended.should_checkpoint``)."""
    strategy = strategy or tf.distribute.get_strategy()
    return bool(strategy.extended.should_checkpoint)


def worker_rank(strategy):
    """This worker's place ``0 .. num_workers - 1`` in the cluster of ``strategy`` (the chief
    first, then the ``worker`` tasks by index)."""
    resolver = strategy.cluster_resolver
    if resolver is None or resolver.task_type is None:
        return 0
    chiefs = len(resolver.cluster_spec().as_dict().get("chief", []))
    return 0 if resolver.task_type == "chief" else chiefs + int(resolver.task_id)


def broadcast(strategy, tensors):
    """The chief's values of ``tensors`` (a list) on every worker (every worker must call it):
    an all-reduced sum to which only replica 0 (the chief's first) contributes."""
    dtypes = [t.dtype for t in tensors]
    # collectives take numbers: booleans travel as int32
    tensors = [tf.cast(t, tf.int32) if t.dtype == tf.bool else t for t in tensors]

    def share(values):
        context = tf.distribute.get_replica_context()
        first = tf.equal(context.replica_id_in_sync_group, 0)
        masked = [tf.where(first, v, tf.zeros_like(v)) for v in values]
        # one all-reduce per dtype (an all-reduce packs its tensors into one buffer)
        shared = list(masked)
        for dtype in sorted({v.dtype for v in masked}, key=str):
            where = [i for i, v in enumerate(masked) if v.dtype == dtype]
            for i, value in zip(where, context.all_reduce(tf.distribute.ReduceOp.SUM, [masked[i] for i in where])):
                shared[i] = value
        return shared

    shared = strategy.run(tf.function(share), args=(tensors,))
    return [tf.cast(strategy.experimental_local_results(v)[0], dtype) for v, dtype in zip(shared, dtypes)]


def sum_over_workers(strategy, array):
    """The element-wise sum of ``array`` over every worker of ``strategy``, in float64 (an
    all-reduce: every worker must call it, with arrays of one shape). Adding zeros is exact, so a
    worker's values placed at its own rows of a zero array come back unchanged on every worker."""
    @tf.function
    def reduce(value):
        # made on each replica's device: the reduction needs per-replica values
        per_replica = strategy.run(lambda: value * tf.ones([], tf.float64))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return reduce(tf.constant(np.asarray(array, np.float64))).numpy()


# --------------------------------------------------------------------------------------- train

def train(model, dataset, epochs, *, checkpoint_dir, strategy=None, validation_data=None, callbacks=None,
          verbose=1):
    """Trains ``model`` on ``dataset`` for ``epochs`` epochs under ``strategy`` (see the module).

    Create and compile the model inside ``strategy.scope()``. Run the same call on every worker.

    Args:
      model: a compiled tfvae model (a :class:`tfvae.models.training.TrainingLoop`).
      dataset: a ``tf.data.Dataset`` of **global** batches (the batch size is the sum over all
        replicas of all workers); seeded shuffling keeps every worker's copy identical.
      epochs: total number of epochs, counting those of a restored checkpoint.
      checkpoint_dir: where the chief keeps its checkpoints (the others write to temporary
        folders). A checkpoint found there is resumed; a finished one makes this a no-op that
        returns the whole history. Delete the folder once the model is saved.
      strategy: default ``model.distribute_strategy`` (the strategy the model was created under).
      validation_data: optional dataset evaluated after each epoch (``val_*`` in the history).
      callbacks: ``keras.callbacks.Callback`` objects; they run on every worker with the same,
        globally reduced epoch logs (``on_train_begin/end``, ``on_epoch_begin/end``; no batch
        hooks), so give callbacks that write files (TensorBoard) only to the chief
        (:func:`is_chief`). ``model.stop_training`` set on any worker stops all of them.
      verbose: 0 silent, 1 one line per epoch on stdout.

    Returns:
      a :class:`TrainResult`.

    Raises:
      ValueError: bad arguments, an uncompiled model or one created under another strategy, a
        checkpoint beyond ``epochs`` or that does not fit the model.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if verbose not in (0, 1):
        raise ValueError(f"verbose must be 0 or 1, got {verbose!r}")
    if getattr(model, "optimizer", None) is None:
        raise ValueError("compile the model (inside strategy.scope()) before training it")
    if not isinstance(dataset, tf.data.Dataset):
        raise ValueError(f"dataset must be a tf.data.Dataset of global batches, got {type(dataset).__name__}")
    if int(dataset.cardinality()) == int(tf.data.INFINITE_CARDINALITY):
        raise ValueError("dataset is infinite (repeat()?); an epoch is one pass over a finite dataset")
    if validation_data is not None and not isinstance(validation_data, tf.data.Dataset):
        raise ValueError(f"validation_data must be a tf.data.Dataset or None, got {type(validation_data).__name__}")
    strategy = strategy or model.distribute_strategy
    if model.distribute_strategy is not strategy:
        raise ValueError(f"the model was created under {type(model.distribute_strategy).__name__}, not the given "
                         f"{type(strategy).__name__}; create and compile it inside strategy.scope()")
    chief = is_chief(strategy)
    epochs = int(epochs)

    with strategy.scope():
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    record = tf.Variable("", dtype=tf.string, trainable=False, name="record")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch, record=record)

    _restore(checkpoint, checkpoint_dir if chief else None, model, strategy, epoch, record)
    initial_epoch = int(epoch.numpy())
    state = json.loads(record.numpy().decode()) if initial_epoch else {"history": {}, "seconds": 0.0}
    if initial_epoch > epochs:
        raise ValueError(f"the checkpoint in {checkpoint_dir} is at epoch {initial_epoch}, beyond epochs={epochs}")
    history = {name: list(values)[:initial_epoch] for name, values in state["history"].items()}
    seconds = float(state["seconds"])
    if verbose and initial_epoch:
        print(f"resuming after epoch {initial_epoch} of {epochs}"
              + (f" from {checkpoint_dir}" if chief else " (state from the chief)"), flush=True)

    train_batches = _distribute(strategy, model, dataset, "dataset")
    validation_batches = None if validation_data is None else \
        _distribute(strategy, model, validation_data, "validation_data")
    known_size = int(dataset.cardinality()) >= 0
    made = 0  # iterators made of the training data (see _fit_iterators_before)

    @tf.function(jit_compile=False, reduce_retracing=True)
    def train_step(batch):
        strategy.run(model.train_step, args=(batch,))

    @tf.function(jit_compile=False, reduce_retracing=True)
    def test_step(batch):
        strategy.run(model.test_step, args=(batch,))

    any_worker = _stop_vote(strategy)
    callback_list = keras.callbacks.CallbackList(callbacks, model=model, epochs=epochs, verbose=verbose)
    model.stop_training = False
    callback_list.on_train_begin()
    began = time.time()
    logs, trained_seconds = {}, seconds
    for index in range(initial_epoch, epochs):
        epoch_began = time.time()
        callback_list.on_epoch_begin(index)
        while made < _fit_iterators_before(index, known_size):
            iter(train_batches)
            made += 1
        made += 1
        logs = _run_epoch(model, train_batches, train_step)
        if validation_batches is not None:
            logs.update({f"val_{name}": value for name, value in
                         _run_epoch(model, validation_batches, test_step).items()})
        callback_list.on_epoch_end(index, logs)
        for name, value in logs.items():
            history.setdefault(name, []).append(value)
        epoch.assign(index + 1)
        trained_seconds = seconds + time.time() - began
        record.assign(json.dumps({"history": history, "seconds": trained_seconds}))
        _save(checkpoint, checkpoint_dir, chief, index + 1)
        if verbose:
            print(f"epoch {index + 1}/{epochs} - {time.time() - epoch_began:.1f} s - "
                  + " - ".join(f"{name}: {value:.4f}" for name, value in logs.items()), flush=True)
        if any_worker(bool(model.stop_training)):
            break
    callback_list.on_train_end(logs)
    return TrainResult(history, trained_seconds, initial_epoch)


def _fit_iterators_before(epoch, known_size):
    """How many iterators of the training data ``model.fit`` makes before the one of ``epoch``.

    A reshuffling dataset draws a new order for every iterator made of it, in sequence. Keras 3's
    fit makes one at the start of each epoch and, when the number of batches is known, a spare one
    at its end, which the next epoch replaces (keras/src/trainers/epoch_iterator.py); the first
    epoch of a dataset of unknown size has no spare. Making (and dropping) as many before each
    epoch gives every epoch the order ``fit`` would give it, on one worker or many, and a resumed
    run the order of an uninterrupted one.
    """
    if known_size:
        return 2 * epoch
    return max(2 * epoch - 1, 0)


def _distribute(strategy, model, dataset, what):
    # imported here: this module is imported before multi_worker_strategy, the models after it
    from tfvae.models.training import pad_batches

    if getattr(model, "validate_inputs", False):
        dataset = model.checked_data(dataset, what)
    if strategy.num_replicas_in_sync > 1:
        # every global batch split into equal parts: a short batch gets weight-0 padding, which
        # the train/test steps leave out of the loss, its divisor and the metrics
        dataset = pad_batches(dataset, strategy.num_replicas_in_sync)
    # every worker reads the whole (identically seeded) pipeline; the rebatching splits each global
    # batch into one part per replica and each worker keeps its own parts. (AUTO would try to shard
    # by file first, and warn, for in-memory data.) A pipeline that chose a policy keeps it: the
    # streamed shards of tfvae.data.shards are sharded by FILE, each worker reading its own files.
    if dataset.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.AUTO:
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(options)
    return strategy.experimental_distribute_dataset(dataset)


def _run_epoch(model, batches, step):
    for tracker in model.metrics:
        tracker.reset_state()
    for batch in batches:
        step(batch)
    # a sync-on-read read: the sum over every replica of every worker (all workers read, in order)
    return {tracker.name: float(tracker.result()) for tracker in model.metrics}


def _save(checkpoint, checkpoint_dir, chief, number):
    """Every worker saves, as TensorFlow's multi-worker guide prescribes (a save may read
    sync-on-read variables, which all-reduces); only the chief's checkpoint is kept."""
    if chief:
        tf.train.CheckpointManager(checkpoint, str(checkpoint_dir), max_to_keep=1).save(checkpoint_number=number)
        return
    scratch = tempfile.mkdtemp(prefix="tfvae-worker-checkpoint-")
    try:
        tf.train.CheckpointManager(checkpoint, scratch, max_to_keep=1).save(checkpoint_number=number)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _restore(checkpoint, checkpoint_dir, model, strategy, epoch, record):
    """The chief restores its latest checkpoint; then every worker takes the chief's values."""
    if checkpoint_dir is not None:
        latest = tf.train.latest_checkpoint(str(checkpoint_dir))
        if latest is not None:
            try:
                checkpoint.restore(latest).assert_existing_objects_matched()
            except (AssertionError, ValueError, tf.errors.OpError) as error:
                raise ValueError(f"the checkpoint {latest} does not fit this model ({error}); "
                                 f"use another checkpoint directory or delete it") from None
    # Always, also on a fresh start: MWMS broadcasts initial values only when variables are
    # created, and a data-dependent start (LLGAE.initialize_from_data) may differ by rounding.
    text = record.numpy()
    length = int(broadcast(strategy, [tf.constant(len(text), tf.int64)])[0])
    shared = _variables(model)
    values = [epoch.read_value()] + [v.value for v in shared]
    if length:
        values.append(tf.constant(np.frombuffer(text.ljust(length)[:length], np.uint8).astype(np.int32)))
    values = broadcast(strategy, values)
    epoch.assign(values[0])
    for variable, value in zip(shared, values[1:]):
        variable.assign(value)
    if length:
        record.assign(bytes(values[-1].numpy().astype(np.uint8)))


def _variables(model):
    """Model and optimizer variables, once each, in a fixed order (the metrics' are reset anyway)."""
    seen, variables = set(), []
    for variable in list(model.variables) + list(model.optimizer.variables):
        key = id(variable)
        if key not in seen:
            seen.add(key)
            variables.append(variable)
    return variables


def _stop_vote(strategy):
    """A function ``flag -> whether flag is set on any worker`` (every worker must call it)."""
    @tf.function
    def vote(flag):
        # made on each replica's device: the reduction needs per-replica values
        votes = strategy.run(lambda: tf.ones([]) * flag)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, votes, axis=None)

    return lambda flag: bool(vote(tf.constant(float(flag))) > 0)


# ------------------------------------------------------------------------- single-host record

class ResumableHistory(keras.callbacks.Callback):
    """Keeps ``fit``'s history and training time whole across a ``BackupAndRestore`` restart.

    ``keras.callbacks.BackupAndRestore`` resumes training at the epoch after the last backup,
    but the ``History`` a resumed ``fit`` returns holds only the epochs of that run. This
    callback writes ``{"epoch", "history", "seconds"}`` to ``path`` (atomically) after every
    epoch and, when ``fit`` resumes at epoch k, starts from the first k epochs of that record, so
    :attr:`history` and :attr:`seconds` cover every epoch of every run. Put it **before**
    ``BackupAndRestore`` in the callback list (the record is then never behind the backup) and
    keep ``path`` inside the backup folder (``BackupAndRestore`` deletes that folder when training
    ends, and the record with it).

    With ``dataset`` (the reshuffling ``tf.data.Dataset`` given to ``fit``), a resumed run also
    advances it past the finished epochs, so that epoch k sees the order it would have seen.

    Example:
      >>> record = ResumableHistory("run/backup/history.json", dataset=train)
      >>> model.fit(train, epochs=10, callbacks=[record, keras.callbacks.BackupAndRestore("run/backup")])
      >>> record.history["loss"], record.seconds       # all 10 epochs, both runs' time
    """

    def __init__(self, path, dataset=None):
        super().__init__()
        self.path = pathlib.Path(path)
        self.dataset = dataset
        self.history = {}
        self.seconds = 0.0
        self._saved = None
        self._began = None
        self._before = 0.0
        self._resumed = False

    def on_train_begin(self, logs=None):
        self._began = time.time()
        self._resumed = False
        self._saved = None
        if self.path.is_file():
            try:
                self._saved = json.loads(self.path.read_text())
            except ValueError:
                self._saved = None  # an unreadable record: the history restarts, training does not stop
        self.history, self.seconds, self._before = {}, 0.0, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        if self._resumed:
            return
        self._resumed = True
        if epoch and self._saved is not None:
            self.history = {name: list(values)[:epoch] for name, values in self._saved["history"].items()}
            self.seconds = self._before = float(self._saved["seconds"])
            if self.dataset is not None:  # see the class docstring and _fit_iterators_before
                for _ in range(_fit_iterators_before(epoch, int(self.dataset.cardinality()) >= 0)):
                    iter(self.dataset)

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            self.history.setdefault(name, []).append(float(value))
        record = {"epoch": epoch + 1, "history": self.history,
                  "seconds": self._before + time.time() - self._began}
        self.seconds = record["seconds"]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(fd, "w") as f:
            json.dump(record, f)
        os.replace(tmp, self.path)

    def on_train_end(self, logs=None):
        if not self._resumed and self._saved is not None:
            # resumed after the last epoch (a crash before fit returned): nothing trained now
            self.history = self._saved["history"]
            self.seconds = float(self._saved["seconds"])


def _main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tfvae.distributed")
    commands = parser.add_subparsers(dest="command", required=True)
    slurm = commands.add_parser("slurm-tf-config", help="print this Slurm task's TF_CONFIG (tf_config_from_slurm)")
    slurm.add_argument("--port", type=int, default=12345, help="first port on each node (default 12345)")
    args = parser.parse_args(argv)
    try:
        print(tf_config_from_slurm(args.port))
    except RuntimeError as error:  # the resolver's message names the missing SLURM_* variable
        print(f"tfvae: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main())


__all__ = ["Cluster", "DEFAULT_WORKER_TIMEOUT", "ResumableHistory", "TrainResult", "WORKER_TIMEOUT_VARIABLE",
           "barrier", "broadcast", "cluster_from_environment", "is_chief", "multi_worker_strategy", "sum_over_workers",
           "tf_config_from_slurm", "train", "worker_rank", "worker_timeout_from_environment"]
