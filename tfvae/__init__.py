"""tfvae: variational autoencoders as Keras 3 models on TensorFlow Probability distributions.

Submodules are imported on first use, so ``import tfvae`` is cheap and the command line can
reject bad arguments before TensorFlow starts::

    import tfvae
    train = tfvae.data.load("digits", "train", batch_size=64, shuffle=True, seed=0)
    model = tfvae.models.VAE(image_shape=(8, 8, 1), latent_dim=8)
    model.compile(optimizer="adam")
    model.fit(train, epochs=5)

or the whole run (data, model, training, evaluation, run directory) in one call::

    run = tfvae.run.train(model="beta-vae", beta=4.0, dataset="digits", epochs=5)
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "data",
    "distributions",
    "networks",
    "objectives",
    "optimizers",
    "models",
    "evaluation",
    "diagnostics",
    "plots",
    "export",
    "files",
    "run",
    "cli",
)

__all__ = list(_SUBMODULES) + ["__version__"]


def __getattr__(name):
    if name in _SUBMODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'tfvae' has no attribute {name!r}")
