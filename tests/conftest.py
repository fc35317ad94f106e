"""Test-session setup.

* Three logical CPU devices, so that tf.distribute.MirroredStrategy has replicas to split a batch
  over (two for most tests, three where a batch of 32 must split unevenly). This must happen
  before TensorFlow initialises its devices, hence here, at import.
* ``TFVAE_DATA_DIR`` defaults to ../shared/datasets beside the checkout (where CI has it).
"""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
_SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared" / "datasets"
if "TFVAE_DATA_DIR" not in os.environ and _SHARED.is_dir():
    os.environ["TFVAE_DATA_DIR"] = str(_SHARED)

import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 3)


@pytest.fixture
def data_dir():
    """The directory of the real data files; tests that need them skip when it is absent."""
    path = os.environ.get("TFVAE_DATA_DIR")
    if not path or not os.path.isdir(path):
        pytest.skip("TFVAE_DATA_DIR with the real data files is not available")
    return pathlib.Path(path)


@pytest.fixture
def digits():
    """scikit-learn's 8x8 digits as float32 images in [0, 1], shape [1797, 8, 8, 1], and labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype("float32")[..., None], bunch.target


@pytest.fixture(scope="session")
def mirrored_strategy():
    """One MirroredStrategy over the two logical CPUs for the whole session: separate strategy
    objects in one process reuse collective instance keys, and their all-reduces then collide."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert strategy.num_replicas_in_sync == 2
    return strategy


@pytest.fixture(scope="session")
def three_replica_strategy():
    """One MirroredStrategy over three logical CPUs for the whole session. Its reductions go
    through one device, not collective ops: collectives keyed like mirrored_strategy's would join
    that strategy's group of two ("joining a group with size 3, but that group has size 2")."""
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1", "/cpu:2"],
                                              cross_device_ops=tf.distribute.ReductionToOneDevice())
    assert strategy.num_replicas_in_sync == 3
    return strategy


@pytest.fixture
def tiny_model():
    """Factory of small models for 8x8x1 images (the ``digits`` fixture's)::

        tiny_model(cls, latent_dim=3, hidden=16, seed=0, layer=None, kernel_regularizer=None,
                   fixed_noise=False, **options)

    * VariationalModel subclasses get their own networks: Flatten → Dense(hidden, tanh)
      [→ ``layer()``] → Dense(parameters of q) for the encoder, Dense(hidden, tanh) [→ ``layer()``]
      → Dense(64 × likelihood parameters) → Reshape for the decoder, built under the current
      dtype policy (so a mixed-precision policy reaches them). ``layer`` is a zero-argument
      callable giving an extra layer for each network (e.g. one that records ``training``);
      ``kernel_regularizer`` goes on both hidden Dense layers.
    * ``fixed_noise=True`` (Gaussian posteriors): q(z|x) draws z = μ + σ ε with
      ε = sin(3 μ + k) for draw k, a fixed function of the example instead of random noise. The
      draws stay reparameterised like the real ones, but are the same with XLA and without and
      on one device or split over replicas, so two training runs compare update by update.
    * Other models (LLGAE, LGAE) are ``cls(image_shape=(8, 8, 1), latent_dim=latent_dim, **options)``.
    * ``keras.utils.set_random_seed(seed)`` first: equal seeds give equal initial weights.
    """
    import keras
    import tensorflow_probability as tfp

    from tfvae.models import VariationalModel, likelihoods

    tfd = tfp.distributions

    class FixedNoiseNormal(tfd.Normal):
        def _sample_n(self, n, seed=None):
            loc = tf.convert_to_tensor(self.loc)
            draw = tf.reshape(tf.range(n, dtype=loc.dtype), tf.concat([[n], tf.ones_like(tf.shape(loc))], 0))
            noise = tf.sin(3.0 * tf.stop_gradient(loc)[None] + draw)
            return loc[None] + self.scale[None] * noise

    def fixed_noise_posterior(self, params):
        loc, log_var = tf.split(params, 2, axis=-1)
        return tfd.Independent(FixedNoiseNormal(loc, tf.exp(0.5 * log_var)), reinterpreted_batch_ndims=1)

    def build(cls, latent_dim=3, hidden=16, seed=0, layer=None, kernel_regularizer=None, fixed_noise=False,
              **options):
        keras.utils.set_random_seed(seed)
        if not issubclass(cls, VariationalModel):
            return cls(image_shape=(8, 8, 1), latent_dim=latent_dim, **options)
        # posterior_params_per_latent is a per-family constant (2 for Gaussians, 3 for VSC)
        outputs = cls.posterior_params_per_latent(None) * latent_dim
        channels = likelihoods.get(options.get("likelihood", "bernoulli")).params_per_pixel

        def network(inputs, head):
            h = keras.layers.Dense(hidden, activation="tanh", kernel_regularizer=kernel_regularizer)(inputs)
            return head(layer()(h) if layer is not None else h)

        images = keras.Input((8, 8, 1))
        encoder = keras.Model(images, network(keras.layers.Flatten()(images), keras.layers.Dense(outputs)))
        codes = keras.Input((latent_dim,))
        decoder = keras.Model(codes, keras.layers.Reshape((8, 8, channels))(
            network(codes, keras.layers.Dense(64 * channels))))
        if fixed_noise:
            cls = type(cls.__name__, (cls,), {"posterior_from_params": fixed_noise_posterior})
        return cls(image_shape=(8, 8, 1), latent_dim=latent_dim, encoder=encoder, decoder=decoder, **options)

    return build


# ------------------------------------------- exported tiny models (tests/test_export*.py)

EXPORT_IMAGE_SHAPE, EXPORT_LATENT = (8, 8, 1), 3


@pytest.fixture(scope="session")
def images():
    """Six digits as [6, 8, 8, 1] float32 images in [0, 1]."""
    from sklearn.datasets import load_digits

    return (load_digits().images[:6] / 16.0).astype("float32")[..., None]


def tiny_export_models():
    """VAE, conv β-VAE with a learned Gaussian scale, VSC and IWAE on 8x8 images, 3 latents."""
    import keras

    from tfvae.models import IWAE, VAE, VSC, BetaVAE

    keras.utils.set_random_seed(0)
    mlp = {"hidden_units": (16,)}
    shape, latent = EXPORT_IMAGE_SHAPE, EXPORT_LATENT
    return {
        "vae": VAE(shape, latent, network_options=mlp),
        "beta-vae": BetaVAE(shape, latent, beta=4.0, architecture="conv", likelihood="gaussian-learned",
                            network_options={"filters": (4,), "dense_units": 8}),
        "vsc": VSC(shape, latent, alpha=0.5, network_options=mlp),
        "iwae": IWAE(shape, latent, num_samples=3, network_options=mlp),
    }


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """The tiny models, exported once for the session: ``(models, paths)``."""
    from tfvae import export

    root = tmp_path_factory.mktemp("serving")
    models = tiny_export_models()
    paths = {name: export.export_saved_model(model, root, name=name) for name, model in models.items()}
    return models, paths


@pytest.fixture
def cancer_csv(tmp_path):
    """scikit-learn's breast-cancer table as a .csv file with a header and a ``target`` column."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    path = tmp_path / "cancer.csv"
    header = ",".join(name.replace(" ", "_") for name in bunch.feature_names) + ",target"
    np.savetxt(path, np.column_stack([bunch.data, bunch.target]), delimiter=",", header=header,
               comments="", fmt="%.6g")
    return path
