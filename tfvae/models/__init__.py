"""Keras models: ``VAE``, ``BetaVAE`` (more families are siblings of these).

Every model subclasses :class:`tfvae.models.base.VariationalModel` (or, for the decoder-only
autoencoders, a keras.Model with the same user API) and trains with ``model.fit``.
"""

from tfvae.models import likelihoods
from tfvae.models.base import ObjectiveValue, VariationalModel
from tfvae.models.vae import VAE, BetaVAE
from tfvae.models.iwae import CIWAE, IWAE, MIWAE, PIWAE
from tfvae.models.vsc import VSC
from tfvae.models.llgae import LGAE, LLGAE
from tfvae.models.tcvae import BetaTCVAE

#: model names as the command line spells them -> classes
REGISTRY = {"vae": VAE, "beta-vae": BetaVAE}
REGISTRY.update({"iwae": IWAE, "miwae": MIWAE, "ciwae": CIWAE, "piwae": PIWAE})
REGISTRY["vsc"] = VSC
REGISTRY.update({"llgae": LLGAE, "lgae": LGAE})
REGISTRY["beta-tcvae"] = BetaTCVAE


def get(name):
    """The model class for a command-line name such as ``"beta-vae"``."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; expected one of {sorted(REGISTRY)}")
    return REGISTRY[name]


__all__ = ["REGISTRY", "BetaVAE", "ObjectiveValue", "VAE", "VariationalModel", "get", "likelihoods"]
__all__ += ["CIWAE", "IWAE", "MIWAE", "PIWAE"]
__all__ += ["VSC"]
__all__ += ["LGAE", "LLGAE"]
__all__ += ["BetaTCVAE"]
