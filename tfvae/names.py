"""The names of tfvae's models and built-in data sets, for messages and help that must not wait
for TensorFlow to load (``tfvae --help``). The registries they name are
:data:`tfvae.models.REGISTRY` and :data:`tfvae.data.DATASETS`; a test keeps the three in step."""

#: model names as the command line spells them
MODELS = ("vae", "beta-vae", "beta-tcvae", "iwae", "miwae", "ciwae", "piwae", "vsc", "llgae", "lgae")

#: built-in data sets
DATASETS = ("digits", "mnist", "fashion_mnist", "binarized_mnist", "shapes2d", "dsprites")
