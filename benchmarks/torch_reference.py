"""PyTorch eager reference for ``throughput.py``: the same two 64×64 networks, Bernoulli VAE, Adam.

A benchmark-only dependency (``pip install -e ".[benchmarks]"``: torch 2.13.0, the CPU build),
run in its own process so that its OpenMP threads never share a process with TensorFlow's.
Networks, as tfvae builds them:

* ``conv``: disentanglement_lib's: 4×4 stride-2 convolutions 32-32-64-64 (padding 1 = Keras'
  "same" at stride 2), dense 256, 2×10 posterior parameters; the decoder mirrors it with
  transposed convolutions; ReLU;
* ``higgins``: Higgins et al.'s 2D-shapes MLP, encoder 4096-1200-1200-20 ReLU, decoder
  10-1200-1200-1200-4096 tanh.

One step: q(z|x) = N(μ, σ²), one reparameterised sample, the Bernoulli log-likelihood (binary
cross-entropy with logits) plus the Gaussian KL, the batch mean, backward, ``Adam.step``; random
binary images held in memory, as in tfvae's in-memory cases.

    python benchmarks/torch_reference.py conv 64 --seconds 15      # prints one JSON line
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F


def networks(name, latent=10):
    if name == "conv":
        encoder = nn.Sequential(
            nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(), nn.Conv2d(64, 64, 4, 2, 1), nn.ReLU(),
            nn.Flatten(), nn.Linear(1024, 256), nn.ReLU(), nn.Linear(256, 2 * latent))
        decoder = nn.Sequential(
            nn.Linear(latent, 256), nn.ReLU(), nn.Linear(256, 1024), nn.ReLU(), nn.Unflatten(1, (64, 4, 4)),
            nn.ConvTranspose2d(64, 64, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, 32, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(32, 1, 4, 2, 1))
    elif name == "higgins":
        encoder = nn.Sequential(nn.Flatten(), nn.Linear(4096, 1200), nn.ReLU(), nn.Linear(1200, 1200), nn.ReLU(),
                                nn.Linear(1200, 2 * latent))
        decoder = nn.Sequential(nn.Linear(latent, 1200), nn.Tanh(), nn.Linear(1200, 1200), nn.Tanh(),
                                nn.Linear(1200, 1200), nn.Tanh(), nn.Linear(1200, 4096), nn.Unflatten(1, (1, 64, 64)))
    else:
        raise ValueError(f"unknown network {name!r}; expected conv or higgins")
    return encoder, decoder


def images_per_second(name, batch, seconds=15.0, windows=3, seed=0):
    """Median images/s over ``windows`` timed windows of about ``seconds / windows`` each."""
    torch.manual_seed(seed)
    encoder, decoder = networks(name)
    optimizer = torch.optim.Adam(list(encoder.parameters()) + list(decoder.parameters()), 1e-3)
    images = (torch.rand(batch * 16, 1, 64, 64) < 0.5).float()

    def step(x):
        mean, log_var = encoder(x).chunk(2, dim=-1)
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        log_px = -F.binary_cross_entropy_with_logits(decoder(z), x, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (mean ** 2 + log_var.exp() - 1.0 - log_var).sum(1)
        loss = (kl - log_px).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for i in range(5):  # warm-up
        step(images[(i % 16) * batch:(i % 16 + 1) * batch])
    rates = []
    for _ in range(windows):
        start, steps = time.perf_counter(), 0
        while time.perf_counter() - start < seconds / windows:
            step(images[(steps % 16) * batch:(steps % 16 + 1) * batch])
            steps += 1
        rates.append(steps * batch / (time.perf_counter() - start))
    return dict(examples_per_second=statistics.median(rates), windows=rates, threads=torch.get_num_threads(),
                torch=torch.__version__)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("network", choices=["conv", "higgins"])
    parser.add_argument("batch", type=int)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args(argv)
    print(json.dumps(images_per_second(args.network, args.batch, args.seconds)))


if __name__ == "__main__":
    main()
