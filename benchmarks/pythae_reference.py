"""pythae 0.1.2 reference for ``throughput.py``: the MNIST VAE of the "vae batch 1000" case,
trained by pythae's own trainer.

A benchmark-only dependency (``pip install -e ".[benchmarks]"``: pythae 0.1.2 on torch 2.13.0,
the CPU build), run in its own process so that torch's OpenMP threads never share a process with
TensorFlow's. The networks are the case's, the IWAE paper's: encoder 784-200-200-(2x50), decoder
50-200-200-784, tanh; pythae's ``VAE`` with a Bernoulli likelihood (``reconstruction_loss="bce"``
on the decoder's sigmoid), Adam 1e-3, batch 1000, ``BaseTrainer`` on the 60,000 training
images (one seeded binarisation, held in memory). Each epoch is timed by a pythae training
callback; the first epoch is left out.

    python benchmarks/pythae_reference.py --epochs 4      # prints one JSON line
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn
from pythae.data.datasets import BaseDataset
from pythae.models import VAE, VAEConfig
from pythae.models.base.base_utils import ModelOutput
from pythae.models.nn import BaseDecoder, BaseEncoder
from pythae.trainers import BaseTrainer, BaseTrainerConfig
from pythae.trainers.training_callbacks import TrainingCallback

LATENT, HIDDEN = 50, 200


class Encoder(BaseEncoder):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Flatten(), nn.Linear(784, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN),
                                    nn.Tanh(), nn.Linear(HIDDEN, 2 * LATENT))

    def forward(self, x):
        mean, log_variance = self.layers(x).chunk(2, dim=-1)
        return ModelOutput(embedding=mean, log_covariance=log_variance)


class Decoder(BaseDecoder):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(LATENT, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN), nn.Tanh(),
                                    nn.Linear(HIDDEN, 784), nn.Sigmoid())

    def forward(self, z):
        return ModelOutput(reconstruction=self.layers(z).reshape(-1, 1, 28, 28))


class EpochTimer(TrainingCallback):
    def __init__(self):
        self.seconds = []

    def on_epoch_begin(self, training_config, **kwargs):
        self.start = time.perf_counter()

    def on_epoch_end(self, training_config, **kwargs):
        self.seconds.append(time.perf_counter() - self.start)


def mnist_train_images(data_dir):
    """MNIST's 60,000 training images binarised once (seed 0), ``[N, 1, 28, 28]`` float32."""
    import gzip

    with gzip.open(os.path.join(data_dir, "mnist", "train-images-idx3-ubyte.gz")) as f:
        pixels = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    grey = pixels.astype(np.float32) / 255.0
    return (np.random.default_rng(0).random(grey.shape, dtype=np.float32) < grey).astype(np.float32)


def images_per_second(images, epochs, batch=1000):
    torch.manual_seed(0)
    model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce"),
                encoder=Encoder(), decoder=Decoder())
    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as out:
        config = BaseTrainerConfig(output_dir=out, num_epochs=epochs, learning_rate=1e-3,
                                   per_device_train_batch_size=batch, per_device_eval_batch_size=batch,
                                   optimizer_cls="Adam", no_cuda=True, steps_saving=None)
        dataset = BaseDataset(torch.from_numpy(images), labels=torch.zeros(len(images)))
        BaseTrainer(model=model, train_dataset=dataset, training_config=config, callbacks=[timer]).train()
    rates = [len(images) / s for s in timer.seconds[1:]]
    return dict(examples_per_second=statistics.median(rates), windows=[round(r, 1) for r in rates],
                threads=torch.get_num_threads(), torch=torch.__version__)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=4, help="epochs (the first is left out)")
    parser.add_argument("--data-dir", default=os.environ.get("TFVAE_DATA_DIR"), help="default $TFVAE_DATA_DIR")
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("no data: give --data-dir or set TFVAE_DATA_DIR")
    print(json.dumps(images_per_second(mnist_train_images(args.data_dir), args.epochs)))


if __name__ == "__main__":
    sys.exit(main())
