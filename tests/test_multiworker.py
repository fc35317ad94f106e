"""Multi-worker training (tfvae.distributed) and resumable runs, on one host.

The multi-worker tests start real workers: separate processes with their own ``TF_CONFIG``, on
free localhost ports, one thread each, that form a MultiWorkerMirroredStrategy cluster. What
they check:

* two workers train like one process (``model.fit``) with the same global batch: weights and
  every per-epoch metric, validation included, on uneven batches (of 31 examples, split [16, 15],
  a last one of 1, split [1, 0], and a last validation batch of 97); the encoder pins log σ² at
  −30 (as in test_distributed.py) so that both runs draw the same z up to float precision;
* ``tfvae train`` on two workers, one of them SIGKILLed after the first epoch's checkpoint: the
  survivor stops with an error instead of hanging, both restarted resume after the last finished
  epoch, and the run (history of all epochs, weights, metrics) equals a single-process
  ``tfvae train`` (LLGAE: no sampling noise); the second worker writes nothing anywhere
  (its run directory and temporary folder stay empty);
* a worker whose peer never comes up gives up with a clear message after the timeout.

In-process tests cover the loop against ``fit`` (default strategy and MirroredStrategy), resuming
the loop, resuming single-host ``tfvae train`` (history and train_seconds over both runs), and the
TF_CONFIG / timeout parsing.
"""

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfvae import cli, distributed
from tfvae.models import VAE

from test_distributed import LATENT, _near_deterministic_networks

# the digits' grey levels under a Bernoulli likelihood: beside the point here
pytestmark = pytest.mark.filterwarnings("ignore:.*grey levels strictly between:UserWarning")

REPO = pathlib.Path(__file__).resolve().parents[1]
TESTS = pathlib.Path(__file__).resolve().parent
#: workers: one thread each (the CI machine has two cores for both), quiet TensorFlow logs
PRELUDE = ("import sys, tensorflow as tf; tf.config.threading.set_inter_op_parallelism_threads(1); "
           "tf.config.threading.set_intra_op_parallelism_threads(1)\n")
CLI_WORKER = PRELUDE + "from tfvae.cli import main; sys.exit(main(sys.argv[1:]))\n"
WORKER_LIMIT = 600  # seconds; a worker still running then has hung (the tests fail, nothing waits longer)

LLGAE_RUN = ["train", "--model", "llgae", "--latent-dim", "3", "--limit", "512", "--epochs", "4",
             "--out", "run"]


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _worker(code, argv, index, ports, cwd, **env):
    cwd.mkdir(parents=True, exist_ok=True)
    tf_config = {"cluster": {"worker": [f"localhost:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
    environment = dict(os.environ, TF_CONFIG=json.dumps(tf_config), TF_CPP_MIN_LOG_LEVEL="2",
                       PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS)]), **env)
    with open(cwd.parent / f"{cwd.name}.log", "a") as log:
        return subprocess.Popen([sys.executable, "-c", code] + list(argv), cwd=cwd, env=environment,
                                stdout=log, stderr=subprocess.STDOUT)


def _finish(process, limit=WORKER_LIMIT):
    try:
        return process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"a worker ran past {limit} s (hung?)") from None


def _log(path):
    return pathlib.Path(path).read_text() if pathlib.Path(path).exists() else ""


# ------------------------------------------------------------- two workers = one process

VAE_WORKER = PRELUDE + """
import json, pathlib, numpy as np
from tfvae import distributed
strategy = distributed.multi_worker_strategy(timeout=300)
import keras, tfvae.data
from tfvae.models import VAE
from test_distributed import LATENT, _near_deterministic_networks
here = pathlib.Path(sys.argv[1])
keras.utils.set_random_seed(0)  # the shuffle's seed pair includes the global seed, as in the reference
with strategy.scope():
    encoder, decoder = _near_deterministic_networks()
    model = VAE(image_shape=(8, 8, 1), latent_dim=LATENT, encoder=encoder, decoder=decoder)
    model.set_weights(list(np.load(here / "initial.npz").values()))
    model.compile(optimizer=keras.optimizers.Adam(0.01))
train = tfvae.data.load("digits", "train", batch_size=31, shuffle=True, seed=0, limit=249)
held_out = tfvae.data.load("digits", "test", batch_size=100)
result = distributed.train(model, train, 2, strategy=strategy, checkpoint_dir=here / "checkpoints",
                           validation_data=held_out)
if distributed.is_chief(strategy):
    np.savez(here / "weights.npz", *model.get_weights())
    (here / "history.json").write_text(json.dumps(result.history))
"""


def _pinned_vae(weights=None):
    encoder, decoder = _near_deterministic_networks()
    model = VAE(image_shape=(8, 8, 1), latent_dim=LATENT, encoder=encoder, decoder=decoder)
    if weights is not None:
        model.set_weights(weights)
    model.compile(optimizer=keras.optimizers.Adam(0.01), jit_compile=False)
    return model


def _digits(limit=256, batch_size=32):
    import tfvae.data

    return (tfvae.data.load("digits", "train", batch_size=batch_size, shuffle=True, seed=0, limit=limit),
            tfvae.data.load("digits", "test", batch_size=100))


def test_two_workers_train_like_one_process(tmp_path):
    keras.utils.set_random_seed(0)
    reference = _pinned_vae()
    initial = reference.get_weights()
    np.savez(tmp_path / "initial.npz", *initial)
    ports = _free_ports(2)
    workers = [_worker(VAE_WORKER, [str(tmp_path)], i, ports, tmp_path / f"w{i}") for i in range(2)]

    keras.utils.set_random_seed(0)  # meanwhile, the single-process reference: Keras' own fit
    train, held_out = _digits(limit=249, batch_size=31)
    expected = reference.fit(train, validation_data=held_out, epochs=2, verbose=0).history

    codes = [_finish(w) for w in workers]
    assert codes == [0, 0], _log(tmp_path / "w0.log")[-3000:] + _log(tmp_path / "w1.log")[-3000:]
    history = json.loads((tmp_path / "history.json").read_text())
    assert sorted(history) == sorted(expected)
    for name in expected:  # loss, elbo, reconstruction, kl and their val_ twins, epoch by epoch
        np.testing.assert_allclose(history[name], expected[name], rtol=1e-4, err_msg=name)
    weights = list(np.load(tmp_path / "weights.npz").values())
    for a, b in zip(weights, reference.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert max(np.abs(a - b).max() for a, b in zip(initial, weights)) > 1e-3  # it trained
    assert "epoch 2/2" in _log(tmp_path / "w1.log")  # the second worker trained too


# ------------------------------------------- tfvae train: kill a worker, restart, resume

@pytest.fixture(scope="module")
def llgae_reference(tmp_path_factory):
    """The single-process ``tfvae train`` run the multi-worker and resumed runs must equal."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert cli.main(LLGAE_RUN[:-1] + [str(out), "--quiet"]) == 0
    return out


def _run_record(out):
    history = json.loads((out / "history.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    return history, metrics, keras.models.load_model(out / "model.keras").get_weights()


def _assert_same_run(out, reference):
    history, metrics, weights = _run_record(out)
    ref_history, ref_metrics, ref_weights = _run_record(reference)
    assert sorted(history) == sorted(ref_history)
    for name in ref_history:
        assert len(history[name]) == 4, (name, history[name])
        np.testing.assert_allclose(history[name], ref_history[name], rtol=1e-3, err_msg=name)
    for a, b in zip(weights, ref_weights):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    for name, value in ref_metrics.items():
        if isinstance(value, float) and name != "train_seconds":
            np.testing.assert_allclose(metrics[name], value, rtol=1e-3, err_msg=name)
    return history, metrics


def test_killed_worker_resumes_and_the_run_equals_one_process(tmp_path, llgae_reference):
    chief_dir, other_dir, scratch = tmp_path / "w0", tmp_path / "w1", tmp_path / "tmp"
    scratch.mkdir()
    ports = _free_ports(2)
    start = [lambda i=i: _worker(CLI_WORKER, LLGAE_RUN, i, ports, (chief_dir, other_dir)[i], TMPDIR=str(scratch))
             for i in range(2)]
    workers = [s() for s in start]
    checkpoint_index = chief_dir / "run" / "backup" / "checkpoint"
    began = time.time()
    while not checkpoint_index.exists():
        assert workers[0].poll() is None and workers[1].poll() is None, _log(tmp_path / "w0.log")[-3000:]
        assert time.time() - began < WORKER_LIMIT, "no checkpoint after the first epoch"
        time.sleep(0.05)
    workers[1].send_signal(signal.SIGKILL)
    workers[1].wait()
    # the survivor learns from the coordination service's heartbeats, and stops
    assert _finish(workers[0], limit=120) == 1
    assert "a worker of the cluster stopped" in _log(tmp_path / "w0.log")
    assert not (chief_dir / "run" / "model.keras").exists()

    workers = [s() for s in start]
    codes = [_finish(w) for w in workers]
    chief_log = _log(tmp_path / "w0.log").split("resuming after epoch ")
    assert codes == [0, 0], chief_log[-1][-3000:] + _log(tmp_path / "w1.log")[-3000:]
    resumed_after = int(chief_log[1].split()[0])
    assert 1 <= resumed_after < 4, resumed_after
    assert f"epoch {resumed_after + 1}/4" in chief_log[1] and "epoch 1/4" not in chief_log[1]

    run = chief_dir / "run"
    _, metrics = _assert_same_run(run, llgae_reference)
    for name in ("config.json", "history.png", "reconstructions.png", "component_means.png"):
        assert (run / name).is_file(), name
    assert any((run / "logs").rglob("events.out.tfevents*"))
    assert not (run / "backup").exists()  # the finished run keeps no checkpoints
    assert metrics["train_seconds"] > 0
    # the other worker wrote nothing where a user looks, and cleaned its temporary folders up
    # (autograph leaves its generated modules in TMPDIR too)
    assert list(other_dir.iterdir()) == []
    assert [p.name for p in scratch.iterdir() if not p.name.startswith("__autograph_generated")] == []


def test_a_worker_without_its_peer_gives_up_with_a_clear_error(tmp_path):
    ports = _free_ports(2)
    began = time.time()
    worker = _worker(CLI_WORKER, ["train", "--epochs", "1", "--out", "run"], 0, ports, tmp_path / "w0",
                     TFVAE_WORKER_TIMEOUT="5")
    # TensorFlow waits in C++, holding the GIL and swallowing SIGTERM: the watchdog SIGKILLs it
    assert _finish(worker, limit=300) == -signal.SIGKILL
    log = _log(tmp_path / "w0.log")
    assert "gave up after 5 s waiting for the other workers" in log and f"localhost:{ports[1]}" in log
    assert time.time() - began < 300


# -------------------------------------------------------------------------- in-process

def test_the_loop_trains_like_fit(mirrored_strategy, tmp_path):
    """The loop (default strategy, then two replicas) against Keras' fit over two epochs of
    reshuffled data: same data order per epoch, same gradients, same epoch means. 125 examples:
    the last batch of 29 is uneven on two replicas."""
    keras.utils.set_random_seed(0)
    reference = _pinned_vae()
    initial = reference.get_weights()
    train, held_out = _digits(limit=125)
    expected = reference.fit(train, validation_data=held_out, epochs=2, verbose=0).history
    for name, strategy in (("default", tf.distribute.get_strategy()), ("mirrored", mirrored_strategy)):
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = _pinned_vae(initial)
        train, held_out = _digits(limit=125)
        result = distributed.train(model, train, 2, checkpoint_dir=tmp_path / name, validation_data=held_out,
                                   verbose=0)
        assert result.initial_epoch == 0 and result.seconds > 0
        for key in expected:
            np.testing.assert_allclose(result.history[key], expected[key], rtol=1e-4, err_msg=f"{name}: {key}")
        for a, b in zip(model.get_weights(), reference.get_weights()):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, at_epoch):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt


def test_the_loop_resumes_where_it_stopped(tmp_path):
    keras.utils.set_random_seed(0)
    initial = _pinned_vae().get_weights()
    runs = {}
    for name, interrupt in (("whole", None), ("resumed", 2)):
        keras.utils.set_random_seed(0)
        model = _pinned_vae(initial)
        if interrupt is not None:
            with pytest.raises(KeyboardInterrupt):
                distributed.train(model, _digits(128)[0], 3, checkpoint_dir=tmp_path / name,
                                  callbacks=[_Interrupt(interrupt)], verbose=0)
            keras.utils.set_random_seed(0)
            model = _pinned_vae(initial)  # a new process would start from scratch
        result = distributed.train(model, _digits(128)[0], 3, checkpoint_dir=tmp_path / name, verbose=0)
        runs[name] = (result, model.get_weights())
    (whole, whole_weights), (resumed, resumed_weights) = runs["whole"], runs["resumed"]
    assert resumed.initial_epoch == 2 and whole.initial_epoch == 0
    for key in whole.history:
        assert len(resumed.history[key]) == 3
        np.testing.assert_allclose(resumed.history[key], whole.history[key], rtol=1e-5, err_msg=key)
    for a, b in zip(resumed_weights, whole_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # a finished checkpoint: nothing left to train, the whole record comes back
    again = distributed.train(_pinned_vae(initial), _digits(128)[0], 3, checkpoint_dir=tmp_path / "whole", verbose=0)
    assert again.initial_epoch == 3 and again.history == whole.history and again.seconds == whole.seconds


def test_interrupted_single_host_train_resumes_with_the_whole_record(tmp_path, monkeypatch, llgae_reference):
    """``tfvae train`` interrupted at the start of epoch 3 and rerun: history.json and the plot
    cover all epochs, train_seconds both runs, and the run equals an uninterrupted one."""
    out = tmp_path / "run"
    argv = LLGAE_RUN[:-1] + [str(out), "--quiet"]

    class InterruptingTensorBoard(keras.callbacks.TensorBoard):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(keras.callbacks, "TensorBoard", InterruptingTensorBoard)
        assert cli.main(argv) == 130
    record = json.loads((out / "backup" / "history.json").read_text())
    assert record["epoch"] == 2 and len(record["history"]["loss"]) == 2 and record["seconds"] > 0
    assert cli.main(argv) == 0
    history, metrics = _assert_same_run(out, llgae_reference)
    np.testing.assert_allclose(history["loss"][:2], record["history"]["loss"], rtol=1e-6)
    assert metrics["train_seconds"] >= record["seconds"]
    assert not (out / "backup").exists()


# ---------------------------------------------------------------------- settings and errors

def test_cluster_from_tf_config():
    assert distributed.cluster_from_environment({}) == (1, None, None, True)
    workers = {"cluster": {"worker": ["a:1", "b:2", "c:3"]}, "task": {"type": "worker", "index": 0}}
    assert distributed.cluster_from_environment({"TF_CONFIG": json.dumps(workers)}) == (3, "worker", 0, True)
    workers["task"]["index"] = 2
    assert not distributed.cluster_from_environment({"TF_CONFIG": json.dumps(workers)}).is_chief
    with_chief = {"cluster": {"chief": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker", "index": 0}}
    cluster = distributed.cluster_from_environment({"TF_CONFIG": json.dumps(with_chief)})
    assert cluster.num_workers == 2 and not cluster.is_chief
    for bad, message in (("{not json", "not valid JSON"),
                         ({"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}},
                          "'ps'"),
                         ({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}},
                          "not one of the cluster's tasks")):
        text = bad if isinstance(bad, str) else json.dumps(bad)
        with pytest.raises(ValueError, match=message):
            distributed.cluster_from_environment({"TF_CONFIG": text})


def test_tf_config_from_slurm(monkeypatch):
    """Three tasks on two nodes (two on gpu07): ports per node, task = SLURM_PROCID."""
    for name, value in dict(SLURM_PROCID="1", SLURM_STEP_NUM_TASKS="3", SLURM_STEP_NODELIST="gpu[07-08]",
                            SLURM_STEP_TASKS_PER_NODE="2,1").items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    config = json.loads(distributed.tf_config_from_slurm(port=2000))
    assert config == {"cluster": {"worker": ["gpu07:2000", "gpu07:2001", "gpu08:2000"]},
                      "task": {"type": "worker", "index": 1}}
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    cluster = distributed.cluster_from_environment({"TF_CONFIG": json.dumps(config)})
    assert cluster == (3, "worker", 1, False)


def test_worker_timeout_setting():
    variable = distributed.WORKER_TIMEOUT_VARIABLE
    assert distributed.worker_timeout_from_environment({}) == distributed.DEFAULT_WORKER_TIMEOUT
    assert distributed.worker_timeout_from_environment({variable: "30"}) == 30.0
    assert distributed.worker_timeout_from_environment({variable: "0"}) is None
    for bad in ("-1", "soon", "inf"):
        with pytest.raises(ValueError, match=variable):
            distributed.worker_timeout_from_environment({variable: bad})


def test_bad_tf_config_is_a_one_line_cli_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"], "evaluator": ["b:2"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert cli.main(["train", "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    assert "tfvae: error: TF_CONFIG names ['evaluator'] tasks" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_train_rejects_bad_arguments(tmp_path):
    model = _pinned_vae()
    train = _digits(64)[0]
    for kwargs, message in ((dict(epochs=0), "epochs must be a positive integer"),
                            (dict(epochs=1, verbose=2), "verbose must be 0 or 1"),
                            (dict(epochs=1, dataset=train.repeat()), "infinite"),
                            (dict(epochs=1, validation_data=np.zeros((4, 8, 8, 1))), "validation_data")):
        kwargs.setdefault("dataset", train)
        with pytest.raises(ValueError, match=message):
            distributed.train(model, checkpoint_dir=tmp_path, **kwargs)
    uncompiled = VAE(image_shape=(8, 8, 1), latent_dim=LATENT)
    with pytest.raises(ValueError, match="compile the model"):
        distributed.train(uncompiled, train, 1, checkpoint_dir=tmp_path)
    distributed.train(model, train, 2, checkpoint_dir=tmp_path / "c", verbose=0)
    with pytest.raises(ValueError, match="beyond epochs=1"):
        distributed.train(_pinned_vae(), train, 1, checkpoint_dir=tmp_path / "c", verbose=0)
