"""Plots write real PNG images of the right content size."""

import matplotlib.image
import numpy as np

from tfvae import plots
from tfvae.models import VAE


def _png(path):
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50
    assert image.std() > 0.01  # not a blank canvas
    return image


def test_every_plot_writes_a_png(tmp_path, digits):
    images, _ = digits
    model = VAE(image_shape=(8, 8, 1), latent_dim=3, network_options={"hidden_units": (16,)})
    kl = np.array([0.5, 2.0, 0.0])
    _png(plots.plot_reconstructions(model, images[:6], tmp_path / "r.png"))
    _png(plots.plot_samples(model, tmp_path / "s.png", num_samples=8, columns=4))
    _png(plots.plot_kl_per_dimension(kl, tmp_path / "k.png"))
    _png(plots.plot_history({"loss": [3.0, 2.0, 1.5], "val_loss": [3.1, 2.2, 1.9]}, tmp_path / "h.png"))
    wide = _png(plots.plot_traversals(model, images[0], tmp_path / "t.png", kl=kl, values=np.linspace(-2, 2, 7)))
    narrow = _png(plots.plot_traversals(model, images[0], tmp_path / "t2.png", dimensions=[1],
                                        values=np.linspace(-2, 2, 3)))
    assert wide.shape[0] > narrow.shape[0] and wide.shape[1] > narrow.shape[1]
