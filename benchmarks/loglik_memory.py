"""Time and peak memory of ``tfvae.evaluation.log_likelihood`` with K = 5000 on the MNIST test set.

The model is an untrained IWAE-paper MLP VAE (``VAE(image_shape=(28, 28, 1), latent_dim=50,
architecture="iwae-mlp")``: the cost does not depend on the weights); the images come from
``tfvae.data.load_arrays("mnist", "test")``, binarised by one seeded Bernoulli draw per pixel
(the IWAE paper's protocol; the cost does not depend on it either). Each setting runs in a fresh
subprocess, which reports its resident set size just before the estimate and its peak during it
(``ru_maxrss``), the seconds the estimate took and the load average of the machine before and
after (on a shared machine, read the seconds beside the load: a load above the core count means
the estimate got only part of the CPUs).

The estimate streams over examples (``batch_size``) and draws (``chunk_size``), so its time is
linear in the number of images and its memory flat: timing a subset (``--images 1000``) and
extrapolating to 10,000 is fair, and the script prints the extrapolation.

    TFVAE_DATA_DIR=/work/shared/datasets python benchmarks/loglik_memory.py            # all 10,000
    python benchmarks/loglik_memory.py --images 1000 --chunk-size 250 --batch-size 40
    python benchmarks/loglik_memory.py --images 1000 --jit-compile                     # XLA log-weights
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402  (TFVAE_DATA_DIR for this process and the measuring ones)

_TEST_SET_SIZE = 10_000


def measure(images, num_samples, chunk_size, batch_size, jit_compile):
    """In this process: RSS before and peak RSS during one estimate (MiB), seconds, load."""
    import keras
    import numpy as np

    import tfvae

    x, _ = tfvae.data.load_arrays("mnist", "test", limit=images)
    x = (np.random.default_rng(0).random(x.shape) < x).astype(np.float32)
    keras.utils.set_random_seed(0)      # the same untrained weights in every setting
    model = tfvae.models.VAE(image_shape=(28, 28, 1), latent_dim=50, architecture="iwae-mlp")
    options = dict(chunk_size=chunk_size, batch_size=batch_size, jit_compile=jit_compile, verbose=0)
    tfvae.evaluation.log_likelihood(model, x[:batch_size], num_samples=chunk_size, **options)  # warm-up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load_before = os.getloadavg()
    start, cpu_start = time.time(), time.process_time()
    mean, se = tfvae.evaluation.log_likelihood(model, x, num_samples=num_samples, **options)
    seconds, cpu_seconds = time.time() - start, time.process_time() - cpu_start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(images=len(x), num_samples=num_samples, chunk_size=chunk_size, batch_size=batch_size,
                jit_compile=jit_compile, rss_before_mib=round(before, 1), peak_rss_mib=round(peak, 1),
                seconds=round(seconds, 1), cpu_seconds=round(cpu_seconds, 1),
                seconds_per_image=round(seconds / len(x), 5), log_likelihood=round(mean, 3), se=round(se, 3),
                load_before=[round(v, 2) for v in load_before],
                load_after=[round(v, 2) for v in os.getloadavg()], cpus=os.cpu_count())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    harness.add_arguments(parser, __file__, out=False)
    parser.add_argument("--images", type=int, nargs="*", default=[_TEST_SET_SIZE])
    parser.add_argument("--num-samples", type=int, default=5000)
    parser.add_argument("--chunk-size", type=int, default=None, help="default: log_likelihood's")
    parser.add_argument("--batch-size", type=int, default=None, help="default: log_likelihood's")
    parser.add_argument("--jit-compile", action="store_true", help="XLA-compile the log-weights")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = harness.parse(parser, argv)
    if args.child:
        print(json.dumps(measure(args.images[0], args.num_samples, args.chunk_size, args.batch_size,
                                 args.jit_compile)))
        return 0
    if args.chunk_size is None or args.batch_size is None:
        from tfvae.evaluation import likelihood

        args.chunk_size = args.chunk_size or likelihood.DEFAULT_CHUNK_SIZE
        args.batch_size = args.batch_size or likelihood.DEFAULT_BATCH_SIZE
    print(harness.describe(harness.machine_header(args.command)), flush=True)
    for images in args.images:
        command = [sys.executable, __file__, "--child", "--images", str(images), "--num-samples",
                   str(args.num_samples), "--chunk-size", str(args.chunk_size), "--batch-size", str(args.batch_size)]
        command += ["--jit-compile"] if args.jit_compile else []
        result = subprocess.run(command, capture_output=True, text=True, check=True)
        row = json.loads(result.stdout.strip().splitlines()[-1])
        full = row["seconds_per_image"] * _TEST_SET_SIZE
        print(f"{row['images']:>6} images, K={row['num_samples']}, chunk {row['chunk_size']} x batch "
              f"{row['batch_size']}{', XLA' if row['jit_compile'] else ''}: {row['seconds']:.0f} s "
              f"({1000 * row['seconds_per_image']:.1f} ms/image, CPU {row['cpu_seconds']:.0f} s; "
              f"10,000 images: {full:.0f} s = {full / 60:.1f} min), RSS before {row['rss_before_mib']:.0f} MiB, "
              f"peak {row['peak_rss_mib']:.0f} MiB; load average {row['load_before'][0]:.2f} before, "
              f"{row['load_after'][0]:.2f} after ({row['cpus']} CPUs); log p = {row['log_likelihood']:.2f} "
              f"± {row['se']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
