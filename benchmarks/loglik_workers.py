"""The MNIST K = 5000 importance-sampled log-likelihood on one process and split over local workers.

Each worker (a process with its own TF_CONFIG task, as ``tfvae train`` runs them) builds the same
model (the IWAE paper's MLP, weights from one seed: the timing does not depend on training),
estimates log p(x) on its contiguous part of the test images with the draws of their indices in
the whole set (``first_index``), and the per-example values are gathered with
``tfvae.distributed.sum_over_workers``, as ``tfvae.run`` does. The script checks that the gathered
values equal the single process's, and reports the wall-clock time of each (the slowest worker's
for the split one: what a user waits for).

On 2 cores two workers share the machine that one process uses with two threads, so no speed-up is
expected here; on a cluster each worker brings its own cores. The figures go to RESULTS.md.

    python benchmarks/loglik_workers.py                  # 1,000 test images, 1 and 2 workers
    python benchmarks/loglik_workers.py --images 10000   # the whole test set (about 5 min each)
    python benchmarks/loglik_workers.py --quick          # 40 images, K = 250: a smoke run
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

SAMPLES = 5000


def _build(seed=0):
    import keras

    from tfvae.models import VAE

    keras.utils.set_random_seed(seed)
    return VAE(image_shape=(28, 28, 1), latent_dim=50, architecture="iwae-mlp")


def _images(count, data_dir=None):
    from tfvae import data

    return data.open_source("mnist", data_dir=data_dir).arrays("held_out", limit=count)[0]


def worker(args):
    """One worker: its part of the estimate, gathered over the cluster; the chief writes the result."""
    from tfvae import distributed
    from tfvae.evaluation import examples
    from tfvae.evaluation.likelihood import log_likelihood

    strategy = distributed.multi_worker_strategy(timeout=300)
    model = _build()
    images = _images(args.images, args.data_dir)
    rank = distributed.worker_rank(strategy)
    part = examples.Part.of(rank, args.workers, len(images), None, rank == 0)
    log_likelihood(model, images[:40], num_samples=250, verbose=0)  # traces, as in the single process
    distributed.barrier(strategy)  # every worker ready: time the estimate alone
    start = time.perf_counter()
    local = log_likelihood(model, images[part.start:part.stop], num_samples=args.samples, first_index=part.start,
                           return_per_example=True, verbose=0)[2]
    full = examples.gathered({"part": part._replace(gather=lambda a: distributed.sum_over_workers(strategy, a))},
                             local, part.start)
    seconds = time.perf_counter() - start
    distributed.barrier(strategy)
    if rank == 0:
        with open(args.result, "w") as f:
            json.dump({"seconds": seconds, "values": full.tolist()}, f)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1000, help="MNIST test images (default 1000)")
    parser.add_argument("--samples", type=int, default=SAMPLES, help="K (default 5000)")
    parser.add_argument("--workers", type=int, default=2, help="local workers of the split run (default 2)")
    parser.add_argument("--data-dir", help="folder with the MNIST files (default $TFVAE_DATA_DIR)")
    parser.add_argument("--quick", action="store_true", help="40 images, K = 250")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.samples = 40, 250
    if args.worker:
        return worker(args)

    load_before = os.getloadavg()
    from tfvae.evaluation.likelihood import log_likelihood

    model, images = _build(), _images(args.images, args.data_dir)
    log_likelihood(model, images[:40], num_samples=250, verbose=0)  # traces, as the workers' first batch does
    start = time.perf_counter()
    single = log_likelihood(model, images, num_samples=args.samples, return_per_example=True, verbose=0)[2]
    single_seconds = time.perf_counter() - start

    ports = _free_ports(args.workers)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    with tempfile.TemporaryDirectory() as scratch:
        result = os.path.join(scratch, "result.json")
        command = [sys.executable, __file__, "--worker", "--images", str(args.images), "--samples", str(args.samples),
                   "--workers", str(args.workers), "--result", result] + (["--data-dir", args.data_dir] if args.data_dir else [])
        workers = [subprocess.Popen(command, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": i}}))) for i in range(args.workers)]
        codes = [w.wait() for w in workers]
        if codes != [0] * args.workers:
            raise SystemExit(f"a worker failed: exit codes {codes}")
        with open(result) as f:
            split = json.load(f)
    difference = max(abs(a - b) for a, b in zip(split["values"], single))
    print(json.dumps({
        "images": args.images, "samples": args.samples, "workers": args.workers,
        "one_process_seconds": round(single_seconds, 1), "split_seconds": round(split["seconds"], 1),
        "mean_log_likelihood": round(float(sum(single) / len(single)), 3),
        "largest_difference_per_example": difference, "cores": os.cpu_count(),
        "load_average_before": [round(v, 2) for v in load_before],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
