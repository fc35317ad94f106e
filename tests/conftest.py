"""Test-session setup.

* Two logical CPU devices, so that tf.distribute.MirroredStrategy has replicas to split a batch
  over. This must happen before TensorFlow initialises its devices, hence here, at import.
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
    _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)


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
