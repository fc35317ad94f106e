"""Streamed shards (tfvae.data.shards, tfvae.data.streaming): what they give equals what the same
data give in memory; held-out whole files; sharding by file across workers; writing shards; bad
input as one error naming the file; a run end to end."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.python.data.experimental.ops import distribute as tf_distribute

from tfvae import cli, data, run
from tfvae.data import shards, streaming

from test_multiworker import REPO, TESTS, _finish, _free_ports


def _rows(x):
    """The examples of ``x`` as a sorted list of tuples (a multiset to compare)."""
    return sorted(map(tuple, np.asarray(x).reshape(len(x), -1).tolist()))


def _write(kind, folder, parts, labels=None):
    """Writes each array of ``parts`` as one shard of ``kind``; returns the glob pattern."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, x in enumerate(parts):
        path = folder / f"part-{i:02d}{kind}"
        y = None if labels is None else labels[i]
        if kind == ".tfrecord":
            shards.write_shard(path, x, y)
        elif kind == ".npy":
            np.save(path, x)
        else:
            header = ",".join(f"f{j}" for j in range(x.shape[1])) + ("" if y is None else ",kind")
            table = x if y is None else np.column_stack([x, y])
            np.savetxt(path, table, delimiter=",", header=header, comments="", fmt="%.17g")
    return str(folder / f"*{kind}")


@pytest.mark.parametrize("kind", [".tfrecord", ".npy", ".csv"])
def test_streaming_equals_in_memory(tmp_path, kind):
    rng = np.random.default_rng(0)
    # a large mean beside the spread: E[x²] − E[x]² in float64 would lose the digits checked here
    parts = [(rng.normal(1000.0, 0.01, size=(n, 3)) * [1, 2, 3]).astype(np.float32) for n in (40, 25, 33, 17, 30)]
    parts[2][:, 1] = 7.0  # a constant-in-a-part feature; and one constant overall:
    for i, part in enumerate(parts):
        part[:, 2] = 5.0
        part[:, 0] = 1000 + (100 * i + np.arange(len(part))) / 64  # every example its own (exact in float32)
    labels = [rng.integers(0, 4, len(p)) for p in parts] if kind != ".npy" else None
    source = data.open_source(_write(kind, tmp_path / "s", parts, labels), seed=3, validation_fraction=0.4,
                              label_column="kind" if kind == ".csv" else None)
    held = [int(p.name[5:7]) for p in source.held_out_files]
    assert len(held) == 2 and len(source.train_files) == 3
    train = np.concatenate([parts[i] for i in range(5) if i not in held])
    held_out = np.concatenate([parts[i] for i in held])
    assert (source.train_size, source.held_out_size) == (len(train), len(held_out))
    # the same examples: arrays, and one epoch of the shuffled training pipeline (each exactly once)
    x, y = source.arrays("train")
    assert _rows(x) == _rows(train)
    assert _rows(source.arrays("held_out")[0]) == _rows(held_out)
    epoch = list(source.train(batch_size=16, seed=1).as_numpy_iterator())
    assert _rows(np.concatenate([b[0] for b in epoch])) == _rows(train)
    if labels is not None:
        by_example = {tuple(r): int(c) for i in range(5) for r, c in zip(parts[i].tolist(), labels[i])}
        assert [by_example[tuple(r)] for r in x.tolist()] == y.tolist()
        assert source.num_classes == 4
    else:
        assert source.num_classes is None and y is None
    # the standardisation of the training part and the likelihood, as load_file computes them
    expected = data.Standardization.from_data(train.astype(np.float64))
    np.testing.assert_allclose(source.standardization["mean"], expected.mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(source.standardization["scale"], expected.std.numpy(), rtol=1e-6)
    assert source.standardization["scale"][2] == 1.0  # constant: std 1
    whole = tmp_path / "whole.npy"
    np.save(whole, np.concatenate(parts))
    assert source.likelihood == data.open_source(str(whole)).likelihood == "gaussian-learned"


@pytest.mark.parametrize("values, expected", [
    (lambda rng, n: rng.integers(0, 2, (n, 4)), "bernoulli"),
    (lambda rng, n: rng.random((n, 4)), "continuous-bernoulli"),
    (lambda rng, n: rng.poisson(3.0, (n, 4)), "poisson"),
    (lambda rng, n: rng.normal(size=(n, 4)), "gaussian-learned"),
])
def test_the_default_likelihood_follows_the_file_rule(tmp_path, values, expected):
    rng = np.random.default_rng(1)
    parts = [values(rng, n).astype(np.float32) for n in (20, 20, 20)]
    source = data.open_source(_write(".npy", tmp_path / "s", parts))
    whole = tmp_path / "whole.npy"
    np.save(whole, np.concatenate(parts))
    assert source.likelihood == data.open_source(str(whole)).likelihood == expected
    assert (source.standardization is not None) == (expected == "gaussian-learned")
    # a value outside the asked likelihood's support is one error naming the file, record and feature
    if expected in ("poisson", "gaussian-learned"):
        with pytest.raises(data.CorruptDataError, match=r"bernoulli likelihood needs values in \[0, 1\], but "
                                                        r".*part-0\d\.npy, record \d+, feature \d is"):
            data.open_source(_write(".npy", tmp_path / "s", parts), likelihood="bernoulli")


def test_the_held_out_files_are_a_seeded_draw_and_limit_takes_the_first_examples(tmp_path):
    parts = [np.full((10, 2), i, np.float32) + np.arange(10, dtype=np.float32)[:, None] / 10 for i in range(10)]
    pattern = _write(".tfrecord", tmp_path / "s", parts)
    draws = {tuple(p.name for p in data.open_source(pattern, seed=seed).held_out_files) for seed in range(6)}
    assert len(draws) > 1 and all(len(d) == 1 for d in draws)
    again = data.open_source(pattern, seed=4)
    assert again.held_out_files == data.open_source(pattern, seed=4).held_out_files
    three = data.open_source(pattern, seed=0, validation_fraction=0.25)
    assert len(three.held_out_files) == 2 and three.describe()["held_out_files"] == 2  # round(2.5) = 2
    limited = data.open_source(pattern, seed=0, limit=15)
    assert limited.train_size == 15
    epochs = [_rows(np.concatenate([b[0] for b in limited.train(4, seed=s).as_numpy_iterator()])) for s in (0, 1)]
    assert epochs[0] == epochs[1] == _rows(limited.arrays("train")[0]) and len(epochs[0]) == 15


def test_each_worker_reads_its_own_files_once(tmp_path):
    """tf.data's FILE policy, applied as tf.distribute applies it, splits the training files as
    ShardSource.worker_files says; together the workers read every example once per epoch."""
    parts = [np.full((n, 2), i, np.float32) + np.arange(n, dtype=np.float32)[:, None] / 100
             for i, n in enumerate((9, 4, 7, 5, 6, 8))]
    source = data.open_source(_write(".tfrecord", tmp_path / "s", parts), seed=0)
    assert len(source.train_files) == 5
    train = source.train(batch_size=4, seed=2)
    assert train.options().experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.FILE
    seen = []
    for worker in range(2):
        shard = tf_distribute._AutoShardDataset(train, 2, worker, 2)
        mine = np.concatenate([b[0] for b in shard.as_numpy_iterator()])
        files = source.worker_files(worker, 2)
        assert files == source.train_files[worker::2]
        assert _rows(mine) == _rows(np.concatenate([parts[int(p.name[5:7])] for p in files]))
        seen += _rows(mine)
    assert sorted(seen) == _rows(source.arrays("train")[0])


def test_more_workers_than_training_files_or_a_limit_is_an_error(tmp_path, monkeypatch):
    pattern = _write(".npy", tmp_path / "s", [np.ones((3, 2), np.float32)] * 3)
    cluster = {"worker": [f"localhost:{p}" for p in (1, 2, 3)]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    with pytest.raises(ValueError, match=r"2 training files for 3 workers; sharding by file needs at least one"):
        data.open_source(pattern)
    cluster = {"worker": [f"localhost:{p}" for p in (1, 2)]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert data.open_source(pattern).worker_files(1, 2) == data.open_source(pattern).train_files[1:]
    with pytest.raises(ValueError, match=r"limit=2 with 2 workers: each worker reads its own files"):
        data.open_source(pattern, limit=2)


WORKER = textwrap.dedent("""
    import json, sys, types
    import numpy as np, tensorflow as tf
    tf.config.threading.set_inter_op_parallelism_threads(1); tf.config.threading.set_intra_op_parallelism_threads(1)
    from tfvae import data, distributed
    strategy = distributed.multi_worker_strategy(timeout=300)
    source = data.open_source(sys.argv[1], seed=0)
    batches = distributed._distribute(strategy, types.SimpleNamespace(), source.train(6, seed=1), "dataset")
    from tfvae.models.training import REAL_EXAMPLES
    ids = []
    for x, targets in batches:  # the real examples of each replica's share (not the weight-0 padding)
        shares = zip(strategy.experimental_local_results(x), strategy.experimental_local_results(targets[REAL_EXAMPLES]))
        ids.append([v.numpy()[r.numpy() > 0, 0].tolist() for v, r in shares])
    json.dump({"steps": ids, "files": [p.name for p in source.worker_files(strategy.cluster_resolver.task_id, 2)]},
              open(sys.argv[2], "w"))
""")


def test_two_workers_train_on_their_own_files(tmp_path):
    """Two localhost workers: each reads only its files, the epoch ends together (the worker with
    fewer examples gets empty batches at the end), every example once; a global batch of 6 is
    each worker's share of 3."""
    sizes = (10, 4, 7, 5, 1)
    start = np.cumsum((0,) + sizes)
    parts = [np.stack([np.arange(a, b), np.zeros(b - a)], axis=1).astype(np.float32) for a, b in zip(start, start[1:])]
    pattern = _write(".tfrecord", tmp_path / "s", parts)
    source = data.open_source(pattern, seed=0)
    ports = _free_ports(2)
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                     "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), TF_CPP_MIN_LOG_LEVEL="2",
                   PYTHONPATH=os.pathsep.join([str(REPO), str(TESTS)]))
        with open(tmp_path / f"w{index}.log", "w") as log:
            processes.append(subprocess.Popen([sys.executable, "-c", WORKER, pattern, str(tmp_path / f"w{index}.json")],
                                              env=env, stdout=subprocess.DEVNULL, stderr=log))
    assert [_finish(p, 300) for p in processes] == [0, 0], (tmp_path / "w0.log").read_text()[-3000:]
    results = [json.loads((tmp_path / f"w{i}.json").read_text()) for i in range(2)]
    assert len(results[0]["steps"]) == len(results[1]["steps"])
    seen = []
    for worker, result in enumerate(results):
        mine = [v for step in result["steps"] for replica in step for v in replica]
        assert all(len(replica) <= 3 for step in result["steps"] for replica in step)
        files = [p.name for p in source.worker_files(worker, 2)]
        assert result["files"] == files
        assert sorted(mine) == sorted(v for p in files for v in parts[int(p[5:7])][:, 0].tolist())
        seen += mine
    assert sorted(seen) == sorted(source.arrays("train")[0][:, 0].tolist())


def test_write_shards_from_a_file_and_the_command_line(tmp_path, capsys):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(53, 3))
    table = tmp_path / "cells.csv"
    names = np.array(["b", "a", "c"])[rng.integers(0, 3, 53)]
    table.write_text("u,v,kind,w\n" + "".join(f"{r[0]:.9g},{r[1]:.9g},{n},{r[2]:.9g}\n" for r, n in zip(x, names)))
    assert cli.main(["shards", str(table), str(tmp_path / "out"), "--examples-per-shard", "10",
                     "--label-column", "kind"]) == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [f"shard-{i:05d}-of-00006.tfrecord" for i in range(6)]
    assert "wrote 6 shard(s)" in capsys.readouterr().out
    source = data.open_source(str(tmp_path / "out" / "*.tfrecord"), validation_fraction=0.2)
    loaded = data.load_file(table, label_column="kind", validation_fraction=0)
    every = np.concatenate([source.arrays("train")[0], source.arrays("held_out")[0]])
    assert _rows(every) == _rows(loaded.arrays("all")[0]) and source.num_classes == 3
    # shuffled: the same examples, in another order
    shuffled = shards.write_shards(loaded.arrays("all")[0], loaded.labels, out_dir=tmp_path / "shuffled",
                                   examples_per_shard=60, shuffle_seed=0)
    assert len(shuffled) == 1
    again = list(tf.data.TFRecordDataset(str(shuffled[0])).map(
        lambda r: tf.io.parse_single_example(r, {"x": tf.io.FixedLenFeature([3], tf.float32),
                                                 "label": tf.io.FixedLenFeature([], tf.int64)})).as_numpy_iterator())
    xs = np.stack([e["x"] for e in again])
    assert _rows(xs) == _rows(loaded.arrays("all")[0]) and not np.array_equal(xs, loaded.arrays("all")[0])
    assert loaded.class_names == ("a", "b", "c")
    by_row = {tuple(r): n for r, n in zip(loaded.arrays("all")[0].tolist(), names)}
    assert all(loaded.class_names[e["label"]] == by_row[tuple(e["x"].tolist())] for e in again)


def test_bad_arguments_to_write_shards_write_nothing(tmp_path):
    x = np.ones((5, 2), np.float32)
    with pytest.raises(ValueError, match=r"x\[3\] holds nan \(feature 1\), not a finite float32 number"):
        shards.write_shards(np.where(np.arange(10).reshape(5, 2) == 7, np.nan, x), out_dir=tmp_path / "a")
    with pytest.raises(ValueError, match=r"labels must be integers >= 0, one per example \(shape \(5,\)\)"):
        shards.write_shards(x, [0, 1, 2], out_dir=tmp_path / "a")
    with pytest.raises(ValueError, match="examples_per_shard must be a positive integer"):
        shards.write_shards(x, out_dir=tmp_path / "a", examples_per_shard=0)
    assert not (tmp_path / "a").exists()
    shards.write_shards(x, out_dir=tmp_path / "b", examples_per_shard=2)
    with pytest.raises(ValueError, match=r"already holds 3 .tfrecord file\(s\)"):
        shards.write_shards(x, out_dir=tmp_path / "b")
    assert len(shards.write_shards(x, out_dir=tmp_path / "b", overwrite=True)) == 1
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["shard-00000-of-00001.tfrecord"]


def _corrupt(path, at):
    raw = bytearray(path.read_bytes())
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_bad_shards_are_one_error_naming_the_file(tmp_path):
    ones = np.ones((4, 3), np.float32)
    with pytest.raises(data.DataNotFoundError, match=r"nothing/\*\.npy: no files match the pattern"):
        data.open_source(str(tmp_path / "nothing" / "*.npy"))
    mixed = tmp_path / "mixed"
    _write(".npy", mixed, [ones, ones])
    _write(".csv", mixed, [ones])
    with pytest.raises(ValueError, match=r"matches files of the kind\(s\) \.csv, \.npy"):
        data.open_source(str(mixed / "*"))
    with pytest.raises(data.CorruptDataError, match=r"shards differ: .*part-01\.tfrecord holds examples of shape "
                                                    r"\(4,\) \(float32\), but .*part-00\.tfrecord holds .*\(3,\)"):
        data.open_source(_write(".tfrecord", tmp_path / "shape", [ones, np.ones((4, 4))]))
    with pytest.raises(data.CorruptDataError, match=r"part-01\.npy holds examples of shape \(3,\) \(<f8\), but "
                                                    r".*part-00\.npy holds examples of shape \(3,\) \(<f4\)"):
        data.open_source(_write(".npy", tmp_path / "dtype", [ones, ones.astype(np.float64)]))
    with pytest.raises(data.CorruptDataError, match=r"part-01\.tfrecord holds examples of shape \(3,\) \(float32\) "
                                                    r"with labels, but"):
        pattern = _write(".tfrecord", tmp_path / "labels", [ones])
        shards.write_shard(tmp_path / "labels" / "part-01.tfrecord", ones, [0, 1, 0, 1])
        data.open_source(pattern)
    with pytest.raises(data.CorruptDataError, match=r"part-01\.csv holds examples of shape \(4,\)"):
        data.open_source(_write(".csv", tmp_path / "width", [ones, np.ones((2, 4))]))
    # damage: a flipped byte in a record's data (its CRC fails), a truncated file
    pattern = _write(".tfrecord", tmp_path / "crc", [ones, ones, ones])
    _corrupt(tmp_path / "crc" / "part-01.tfrecord", 100)
    with pytest.raises(data.CorruptDataError, match=r"part-01\.tfrecord: damaged TFRecord file after record \d"):
        data.open_source(pattern)
    pattern = _write(".npy", tmp_path / "short", [ones, ones])
    path = tmp_path / "short" / "part-00.npy"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(data.CorruptDataError, match=r"part-00\.npy: \d+ bytes, but its header .* needs \d+: the "
                                                    "file is truncated"):
        data.open_source(pattern)
    bad = ones.copy()
    bad[2, 1] = np.inf
    with pytest.raises(data.CorruptDataError, match=r"part-01\.tfrecord, record 2, feature 1 is inf, not a finite"):
        data.open_source(_write(".tfrecord", tmp_path / "inf", [ones, bad]))
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.csv").write_text("1,2\n3,x\n")
    (tmp_path / "text" / "b.csv").write_text("1,2\n")
    with pytest.raises(data.CorruptDataError, match=r"a\.csv: data row 2 \(header not counted\) is not 2 numbers"):
        data.open_source(str(tmp_path / "text" / "*.csv"))
    with pytest.raises(ValueError, match=r"1 file\(s\) are too few to hold out whole files"):
        data.open_source(_write(".tfrecord", tmp_path / "one", [ones]))
    with pytest.raises(ValueError, match="label_column applies to .csv / .tsv shards"):
        data.open_source(_write(".tfrecord", tmp_path / "two", [ones, ones]), label_column="y")
    with pytest.raises(ValueError, match=r"binarize='dynamic' does not apply"):
        data.open_source(_write(".tfrecord", tmp_path / "two", [ones, ones]), binarize="dynamic")


def test_a_run_trains_on_shards_end_to_end(tmp_path):
    rng = np.random.default_rng(3)
    parts = [rng.random((30, 6)).astype(np.float32) for _ in range(4)]
    pattern = _write(".tfrecord", tmp_path / "s", parts, [rng.integers(0, 2, 30) for _ in parts])
    result = run.train(dataset=pattern, epochs=1, latent_dim=2, verbose=0, log_likelihood_samples=10,
                       out=tmp_path / "r")
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["evaluation"]["train_files"] == 3 and metrics["evaluation"]["held_out_examples"] == 30
    assert metrics["test_examples"] == 30 and np.isfinite(metrics["test_log_likelihood"])
    assert result.config["likelihood"] == "continuous-bernoulli"
    assert json.loads((tmp_path / "r" / "config.json").read_text())["settings"]["dataset"] == pattern
    # bad shards: nothing written
    _corrupt(tmp_path / "s" / "part-02.tfrecord", 60)
    with pytest.raises(data.CorruptDataError, match="part-02.tfrecord"):
        run.train(dataset=pattern, epochs=1, latent_dim=2, verbose=0, out=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_the_shuffle_buffer_is_bounded():
    assert streaming.shuffle_buffer(4 * 784) == 10_000
    assert streaming.shuffle_buffer(4 * 64 * 64 * 3, batch_size=32) == (64 << 20) // (4 * 64 * 64 * 3)
    assert streaming.shuffle_buffer(1 << 30, batch_size=32) == 32
