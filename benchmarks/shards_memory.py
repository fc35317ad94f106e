"""Peak memory of training from shards larger than memory (tfvae.data.shards).

Writes float32 vectors of dimension 784 (standard normal: real values, so the statistics pass
also fits a standardisation) as TFRecord shards of 10,000 examples in a temporary folder, about
``--gigabytes`` GB in all, then trains one epoch through ``tfvae.run.train`` on them in a child
process held to 2 cores (CPU affinity, and TensorFlow's thread pools of 2), with the
log-likelihood skipped (``log_likelihood_samples=0``) and no labels (no probe), and reads the
child's peak resident memory (``ru_maxrss`` from ``os.wait4``).

The claim it checks: the shards total at least 3x the process' peak memory, and the peak stays
under 1.5 GB. Run the full size on a quiet machine (it writes ~4.5 GB and trains on 1.4 million
examples)::

    python benchmarks/shards_memory.py                 # ~4.5 GB of shards
    python benchmarks/shards_memory.py --quick         # ~20 MB: checks that it runs

It prints one JSON object: the shards' size, the child's peak RSS, their ratio, the seconds of
writing and training, and whether the claim held (the quick mode reports the ratio but is too
small to check it).

Measured while writing it (2 busy cores, not the claim's figure): peak RSS 1.19-1.21 GB with 20 MB
of shards and 1.22 GB with 250 MB (68,635 training examples, 23 s of training): the baseline of
TensorFlow, the model, XLA and the evaluation dominates; the pipeline adds its shuffle buffer
(at most 10,000 records, ~32 MB here) and the statistics pass ~50 MB. The full size should take
about 3 minutes to write, 1 minute for the statistics pass, and some 8 minutes of training plus
as long for the sized evaluation on 2 cores.
"""

import argparse
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

DIMENSION = 784
EXAMPLES_PER_SHARD = 10_000
PEAK_LIMIT = 1.5e9  # bytes
RATIO = 3.0
CORES = 2

CHILD = """
import json, resource, sys, time
import tfvae.run
began = time.time()
run = tfvae.run.train(dataset=sys.argv[1], out=sys.argv[2], epochs=1, latent_dim=10, batch_size=int(sys.argv[3]),
                      log_likelihood_samples=0, verbose=2)
print(json.dumps({"train_seconds": run.metrics.get("train_seconds"), "seconds": time.time() - began,
                  "train_examples": run.metrics["evaluation"]["train_examples"],
                  "likelihood": run.config["likelihood"]}))
"""


def write(folder, gigabytes, seed=0):
    """Writes ~``gigabytes`` GB of shards into ``folder``; returns (files, bytes)."""
    from tfvae.data import shards

    rng = np.random.default_rng(seed)
    record_bytes = _record_bytes()
    count = max(2, int(np.ceil(gigabytes * 1e9 / record_bytes / EXAMPLES_PER_SHARD)))
    per_shard = min(EXAMPLES_PER_SHARD, max(1, int(gigabytes * 1e9 / record_bytes / count)))
    for i in range(count):
        x = rng.standard_normal((per_shard, DIMENSION), dtype=np.float32)
        shards.write_shard(folder / f"shard-{i:05d}-of-{count:05d}.tfrecord", x)
    files = sorted(folder.glob("*.tfrecord"))
    return files, sum(f.stat().st_size for f in files)


def _record_bytes():
    from tfvae.data import shards

    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "one.tfrecord"
        shards.write_shard(path, np.zeros((1, DIMENSION), np.float32))
        return path.stat().st_size


def train_in_child(pattern, out, batch_size):
    """Trains in a child held to CORES cores; returns (its JSON report, its peak RSS in bytes)."""
    cores = sorted(os.sched_getaffinity(0))[:CORES]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_NUM_INTRAOP_THREADS=str(CORES),
               TF_NUM_INTEROP_THREADS=str(CORES),
               PYTHONPATH=os.pathsep.join(filter(None, [str(pathlib.Path(__file__).resolve().parents[1]),
                                                        os.environ.get("PYTHONPATH")])))
    child = subprocess.Popen([sys.executable, "-c", CHILD, pattern, str(out), str(batch_size)], env=env,
                             stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.sched_setaffinity(0, cores))
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"the training child failed (exit status {child.returncode}):\n{output[-3000:]}")
    report = json.loads(output.strip().splitlines()[-1])
    return report, usage.ru_maxrss * 1024  # kilobytes on Linux


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="~20 MB of shards: check that it runs")
    parser.add_argument("--gigabytes", type=float, default=4.5, help="size of the shards (default 4.5)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--keep", metavar="DIR", help="write the shards and the run here and keep them")
    args = parser.parse_args(argv)
    gigabytes = 0.02 if args.quick else args.gigabytes
    folder = pathlib.Path(args.keep) if args.keep else pathlib.Path(tempfile.mkdtemp(prefix="tfvae-shards-"))
    (folder / "shards").mkdir(parents=True, exist_ok=True)
    try:
        began = time.time()
        files, size = write(folder / "shards", gigabytes)
        written = time.time() - began
        report, peak = train_in_child(str(folder / "shards" / "*.tfrecord"), folder / "run", args.batch_size)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    result = {"shards": len(files), "shard_bytes": size, "peak_rss_bytes": peak,
              "shards_over_peak": round(size / peak, 2), "write_seconds": round(written, 1),
              "cores": CORES, "quick": args.quick, **report,
              "parent_peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    result["claim_holds"] = None if args.quick else bool(peak < PEAK_LIMIT and size >= RATIO * peak)
    print(json.dumps(result, indent=2))
    return 0 if result["claim_holds"] is not False else 1


if __name__ == "__main__":
    sys.exit(main())
