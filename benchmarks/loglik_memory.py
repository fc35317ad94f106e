"""Peak memory of ``tfvae.evaluation.log_likelihood`` with K = 5000 on MNIST test images.

The estimate streams over examples (``batch_size``) and samples (``chunk_size``), so its working
set is one chunk of ``batch_size · chunk_size`` decoded codes whatever the number of images; the
per-image results are a few bytes each. This script runs the estimate in a fresh subprocess per
setting and reads the process's peak resident set size (``ru_maxrss``), next to the same
process's size just before the estimate starts, for growing numbers of images: a flat peak shows
the memory does not grow with the data, so 10,000 images need what a few hundred do.

    python benchmarks/loglik_memory.py                    # N = 100, 300 with the defaults
    python benchmarks/loglik_memory.py --images 100 1000 --chunk-size 250 --batch-size 100
"""

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

_SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets"


def measure(images, num_samples, chunk_size, batch_size):
    """In this process: RSS before and peak RSS during one estimate, in MiB, and the seconds."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tfvae

    test = next(iter(tfvae.data.load("mnist", "test", batch_size=images, binarize="dynamic", seed=1)))[0]
    model = tfvae.models.IWAE(image_shape=(28, 28, 1), latent_dim=50, architecture="iwae-mlp", num_samples=5)
    tfvae.evaluation.log_likelihood(model, test[:2], num_samples=chunk_size, chunk_size=chunk_size)  # warm-up
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.time()
    mean, se = tfvae.evaluation.log_likelihood(model, test, num_samples=num_samples, chunk_size=chunk_size,
                                               batch_size=batch_size)
    seconds = time.time() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return dict(images=images, num_samples=num_samples, chunk_size=chunk_size, batch_size=batch_size,
                rss_before_mib=round(before, 1), peak_rss_mib=round(peak, 1), seconds=round(seconds, 1),
                seconds_per_image=round(seconds / images, 4), log_likelihood=mean)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, nargs="*", default=[100, 300])
    parser.add_argument("--num-samples", type=int, default=5000)
    parser.add_argument("--chunk-size", type=int, default=250)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.images[0], args.num_samples, args.chunk_size, args.batch_size)))
        return 0
    env = dict(os.environ)
    if "TFVAE_DATA_DIR" not in env and _SHARED.is_dir():
        env["TFVAE_DATA_DIR"] = str(_SHARED)
    for images in args.images:
        command = [sys.executable, __file__, "--child", "--images", str(images), "--num-samples",
                   str(args.num_samples), "--chunk-size", str(args.chunk_size), "--batch-size", str(args.batch_size)]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        row = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{row['images']:>6} images, K={row['num_samples']}, chunk {row['chunk_size']} x batch "
              f"{row['batch_size']}: RSS before {row['rss_before_mib']:.0f} MiB, peak {row['peak_rss_mib']:.0f} MiB, "
              f"{row['seconds']:.0f} s ({row['seconds_per_image']:.3f} s/image)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
