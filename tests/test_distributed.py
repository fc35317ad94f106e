"""Training under tf.distribute.MirroredStrategy equals single-device training.

conftest.py splits the CPU into logical devices, so the strategies have two (or three) replicas,
each of which sees its share of every batch; a batch that does not split evenly (the uneven tests
below) is padded with weight-0 copies, which must change nothing. Sampling z ~ q(z|x) would
differ between the runs (each replica draws its own noise), so the encoder here pins log σ² at
−30: z = μ + σε with σ ≈ 3e-7 equals μ to float precision, and the only remaining difference
between the runs is how each batch is split, how the losses are scaled and how gradients and
metrics are summed.

The importance-weighted models cannot use that trick (their weights depend on the noise through
log q(z|x), and DReG differentiates log q at z), so they train with ``tiny_model(...,
fixed_noise=True)`` from conftest.py: draws that are a fixed function of each example, the same on
one device and on either replica. So does β-TCVAE, whose q(z) couples the examples of a batch.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tfvae import objectives
from tfvae.models import IWAE, PIWAE, VAE, BetaTCVAE, BetaVAE

LATENT = 3


def _near_deterministic_networks():
    images = keras.Input((8, 8, 1))
    h = keras.layers.Flatten()(images)
    h = keras.layers.Dense(16, activation="tanh")(h)
    loc = keras.layers.Dense(LATENT)(h)
    log_var = keras.layers.Dense(LATENT, kernel_initializer="zeros",
                                 bias_initializer=keras.initializers.Constant(-30.0), trainable=False)(h)
    encoder = keras.Model(images, keras.layers.Concatenate()([loc, log_var]))
    decoder = keras.Sequential([keras.Input((LATENT,)), keras.layers.Dense(16, activation="tanh"),
                                keras.layers.Dense(64), keras.layers.Reshape((8, 8, 1))])
    return encoder, decoder


def _train(cls, strategy, weights, images, **kwargs):
    with strategy.scope():
        encoder, decoder = _near_deterministic_networks()
        model = cls(image_shape=(8, 8, 1), latent_dim=LATENT, encoder=encoder, decoder=decoder, **kwargs)
        if weights is not None:
            model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
    data = tf.data.Dataset.from_tensor_slices(images).batch(32)
    history = model.fit(data, epochs=2, verbose=0, shuffle=False).history
    return model, history


def test_mirrored_training_matches_single_device(digits, mirrored_strategy):
    images, _ = digits
    images = images[:256]
    keras.utils.set_random_seed(0)
    encoder, decoder = _near_deterministic_networks()
    initial = VAE(image_shape=(8, 8, 1), latent_dim=LATENT, encoder=encoder, decoder=decoder).get_weights()

    single, single_history = _train(VAE, tf.distribute.get_strategy(), initial, images)
    mirrored, mirrored_history = _train(VAE, mirrored_strategy, initial, images)

    for a, b in zip(single.get_weights(), mirrored.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for name in ("loss", "elbo", "reconstruction", "kl"):
        np.testing.assert_allclose(single_history[name], mirrored_history[name], rtol=1e-4)
    # the weights moved, so the comparison above is not between two untrained models
    assert max(np.abs(a - b).max() for a, b in zip(initial, single.get_weights())) > 1e-3


def test_mirrored_capacity_schedule_matches_single_device(digits, mirrored_strategy):
    images, _ = digits
    images = images[:128]
    keras.utils.set_random_seed(1)
    encoder, decoder = _near_deterministic_networks()
    kwargs = dict(capacity_max=5.0, capacity_steps=6, gamma=2.0)
    initial = BetaVAE(image_shape=(8, 8, 1), latent_dim=LATENT, encoder=encoder, decoder=decoder,
                      **kwargs).get_weights()
    single, single_history = _train(BetaVAE, tf.distribute.get_strategy(), initial, images, **kwargs)
    mirrored, mirrored_history = _train(BetaVAE, mirrored_strategy, initial, images, **kwargs)
    np.testing.assert_allclose(single_history["capacity"], mirrored_history["capacity"], rtol=1e-6)
    np.testing.assert_allclose(single_history["loss"], mirrored_history["loss"], rtol=1e-4)
    for a, b in zip(single.get_weights(), mirrored.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cls, options", [(PIWAE, dict(num_estimates=2, num_samples=3)),
                                          (IWAE, dict(num_samples=4, dreg=True))], ids=["PIWAE", "IWAE-dreg"])
def test_mirrored_surrogate_training_matches_single_device(digits, mirrored_strategy, tiny_model, cls, options):
    # Surrogate groups (each differentiated w.r.t. its own variables) must be averaged over the
    # global batch like the loss: a per-replica mean would double every gradient here.
    images = (digits[0][:128] > 0.5).astype("float32")
    initial = tiny_model(cls, fixed_noise=True, **options).get_weights()
    runs = {}
    for name, strategy in (("single", tf.distribute.get_strategy()), ("mirrored", mirrored_strategy)):
        with strategy.scope():
            model = tiny_model(cls, fixed_noise=True, **options)
            model.set_weights(initial)
            model.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=False)
        history = model.fit(tf.data.Dataset.from_tensor_slices(images).batch(32), epochs=2, verbose=0,
                            shuffle=False).history
        runs[name] = model.get_weights(), history
    (single, single_history), (mirrored, mirrored_history) = runs["single"], runs["mirrored"]
    for a, b in zip(single, mirrored):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    for name in ("loss", "iwae", "elbo", "ess"):
        np.testing.assert_allclose(single_history[name], mirrored_history[name], rtol=1e-4)
    assert max(np.abs(a - b).max() for a, b in zip(initial, single)) > 1e-3


# ------------------------------------------------------------ uneven batches: exact all the same
#
# Keras' MirroredStrategy splits a batch of 7 over 2 replicas as [4, 3], 3 as [2, 1], 1 as
# [1, 0], and 32 over 3 replicas as [11, 11, 10] (and fit crashes on such splits). tfvae pads each
# batch to a multiple of the replicas with weight-0 copies and divides by the all-reduced count of
# real examples, so training and metrics must equal one device's on the unpadded batches.

#: replicas -> the global batch sizes of one epoch
UNEVEN = {2: (7, 3, 1), 3: (32, 32, 6)}


@pytest.fixture
def strategies(mirrored_strategy, three_replica_strategy):
    return {2: mirrored_strategy, 3: three_replica_strategy}


def _batches(sizes, *arrays):
    """A tf.data.Dataset of batches of consecutive examples of ``arrays``, of the given sizes."""
    parts, start = [], 0
    for size in sizes:
        parts.append(tf.data.Dataset.from_tensors(tuple(a[start:start + size] for a in arrays)))
        start += size
    dataset = parts[0]
    for part in parts[1:]:
        dataset = dataset.concatenate(part)
    return dataset


def _fit_both(make, strategy, data, epochs=2, **fit):
    """A model from ``make()`` trained on one device and under ``strategy`` from the same initial
    weights on the same data: ``[(model, history), (model, history)]``."""
    initial = make().get_weights()
    runs = []
    for where in (tf.distribute.get_strategy(), strategy):
        with where.scope():
            model = make()
            model.set_weights(initial)
            model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
        runs.append((model, model.fit(data, epochs=epochs, verbose=0, **fit).history))
    assert max(np.abs(a - b).max() for a, b in zip(initial, runs[0][0].get_weights())) > 1e-3  # it trained
    return runs


def _assert_same(runs, names):
    (single, single_history), (mirrored, mirrored_history) = runs
    for a, b in zip(single.get_weights(), mirrored.get_weights()):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    for name in names:
        np.testing.assert_allclose(mirrored_history[name], single_history[name], rtol=1e-4, err_msg=name)


def _pinned_vae():
    encoder, decoder = _near_deterministic_networks()
    return VAE(image_shape=(8, 8, 1), latent_dim=LATENT, encoder=encoder, decoder=decoder)


@pytest.mark.parametrize("replicas", [2, 3])
def test_uneven_batches_with_sample_weights_train_exactly(digits, strategies, replicas):
    sizes = UNEVEN[replicas]
    images = digits[0][:sum(sizes)]
    weights = np.random.default_rng(0).uniform(0.25, 2.0, len(images)).astype("float32")
    weights[1] = 0.0  # a real example of weight 0 still counts in the divisor, as on one device
    train = _batches(sizes, images, np.zeros(len(images), "float32"), weights)
    held_out = _batches(sizes, digits[0][-sum(sizes):])
    keras.utils.set_random_seed(replicas)
    runs = _fit_both(_pinned_vae, strategies[replicas], train, validation_data=held_out)
    _assert_same(runs, ("loss", "elbo", "reconstruction", "kl", "val_loss", "val_elbo", "val_kl"))


@pytest.mark.parametrize("replicas, cls, options", [(2, PIWAE, dict(num_estimates=2, num_samples=3)),
                                                    (3, IWAE, dict(num_samples=4, dreg=True))],
                         ids=["PIWAE-2", "IWAE-dreg-3"])
def test_uneven_batches_train_surrogates_exactly(digits, strategies, tiny_model, replicas, cls, options):
    sizes = UNEVEN[replicas]
    images = (digits[0][:sum(sizes)] > 0.5).astype("float32")
    runs = _fit_both(lambda: tiny_model(cls, fixed_noise=True, **options), strategies[replicas],
                     _batches(sizes, images))
    _assert_same(runs, ("loss", "iwae", "elbo", "ess"))


def test_uneven_array_batches_train_exactly(digits, mirrored_strategy):
    """Arrays: batches of 3 (split [2, 1]) and a last one of 1 ([1, 0]), sample weights, and the
    validation split Keras takes from the arrays' end."""
    images = digits[0][:10]
    weights = np.linspace(0.5, 1.5, 10).astype("float32")
    keras.utils.set_random_seed(4)
    runs = _fit_both(_pinned_vae, mirrored_strategy, images, sample_weight=weights, batch_size=3, shuffle=False,
                     validation_split=0.3)
    _assert_same(runs, ("loss", "elbo", "val_loss", "val_elbo"))
    # evaluate on arrays: 5 + 5 examples split [3, 2] each
    single, mirrored = (model.evaluate(digits[0][-10:], sample_weight=weights, batch_size=5, verbose=0,
                                       return_dict=True) for model, _ in runs)
    for name in single:
        np.testing.assert_allclose(mirrored[name], single[name], rtol=1e-5, err_msg=name)


def test_beta_tcvae_estimates_q_z_over_the_global_batch(digits, mirrored_strategy, tiny_model):
    """Batches of 7 and 5 (split [4, 3] and [3, 2], each padded by one copy): every replica's
    TC, MI and dimension-wise KL come from q(z) over the whole batch without its padding."""
    images = digits[0][:12]
    runs = _fit_both(lambda: tiny_model(BetaTCVAE, fixed_noise=True, beta=6.0, dataset_size=100),
                     mirrored_strategy, _batches((7, 5), images), validation_data=_batches((7,), digits[0][-7:]))
    _assert_same(runs, ("loss", "total_correlation", "mutual_information", "dimension_kl",
                        "val_loss", "val_total_correlation"))


@pytest.mark.parametrize("estimator", ["mss", "mws"])
def test_tc_terms_without_padding_and_for_part_of_a_batch(estimator):
    """total_correlation_terms with a padding mask equals the terms of the batch without the
    padding, and with rows (one replica's codes) the rows of the whole batch's terms."""
    rng = np.random.default_rng(0)
    loc, scale = rng.normal(size=(5, 3)), rng.uniform(0.3, 1.0, size=(5, 3))
    codes = loc + scale * rng.normal(size=(5, 3))

    def terms(order, **kwargs):
        pairs = stats.norm.logpdf(codes[order][:, None, :], loc[None, kwargs.pop("columns", order)],
                                  scale[None, kwargs.pop("scales", order)])
        return objectives.total_correlation_terms(pairs.astype("float32"),
                                                  stats.norm.logpdf(codes[order]).astype("float32"),
                                                  100, estimator, **kwargs)

    whole = terms([0, 1, 2, 3, 4])
    # padding (copies of example 0) at the end, and inside the batch
    for order, mask in (([0, 1, 2, 3, 4, 0, 0], [1, 1, 1, 1, 1, 0, 0]), ([0, 1, 0, 2, 3, 4], [1, 1, 0, 1, 1, 1])):
        padded = terms(order, mask=np.array(mask, "float32"))
        real = np.flatnonzero(mask)
        for name, value in whole._asdict().items():
            np.testing.assert_allclose(getattr(padded, name).numpy()[real], value.numpy(), rtol=1e-5, err_msg=name)
    part = terms([2, 3, 4], columns=[0, 1, 2, 3, 4], scales=[0, 1, 2, 3, 4], rows=[2, 3, 4])
    for name, value in whole._asdict().items():
        np.testing.assert_allclose(getattr(part, name).numpy(), value.numpy()[2:], rtol=1e-5, err_msg=name)
