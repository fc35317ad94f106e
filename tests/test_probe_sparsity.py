"""Linear probe and code sparsity (tfvae.evaluation.probe / .sparsity)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfvae.data
from tfvae import evaluation
from tfvae.evaluation import code_sparsity, linear_probe_accuracy, sparsity
from tfvae.models import VAE, VSC


def _synthetic(num, separable, seed):
    """Images [N, 2, 2, 1] whose four pixels are a code: class means far apart (separable) or
    labels that are independent of the pixels (noise)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, size=num)
    centres = np.eye(4) * 6.0
    pixels = rng.normal(size=(num, 4)) + (centres[labels] if separable else 0.0)
    return pixels.reshape(num, 2, 2, 1).astype(np.float32), labels


def _identity_code(images):
    return np.asarray(images).reshape(len(images), -1)


def test_probe_scores_about_one_on_separable_codes():
    train_x, train_y = _synthetic(600, True, 0)
    test_x, test_y = _synthetic(400, True, 1)
    accuracy = linear_probe_accuracy(_identity_code, train_x, train_y, test_x, test_y, num_train=500)
    assert accuracy > 0.99


def test_probe_scores_chance_on_noise():
    train_x, train_y = _synthetic(600, False, 2)
    test_x, test_y = _synthetic(4000, False, 3)
    accuracy = linear_probe_accuracy(_identity_code, train_x, train_y, test_x, test_y, num_train=500)
    # Four balanced classes: chance is 0.25; the binomial sd over 4000 test points is ~0.007.
    assert abs(accuracy - 0.25) < 0.04


def test_probe_uses_the_seeded_subset_only():
    train_x, train_y = _synthetic(600, True, 4)
    test_x, test_y = _synthetic(200, True, 5)
    seen = []

    def spy(images):
        seen.append(len(images))
        return _identity_code(images)

    a = linear_probe_accuracy(spy, train_x, train_y, test_x, test_y, num_train=50, seed=3)
    assert seen[0] == 50 and sum(seen) == 50 + 200
    b = linear_probe_accuracy(spy, train_x, train_y, test_x, test_y, num_train=50, seed=3)
    assert a == b
    # Poisoning the labels of the examples outside the seeded subset does not change the result.
    subset = np.sort(np.random.default_rng(3).choice(600, 50, replace=False))
    poisoned = (train_y + 1) % 4
    poisoned[subset] = train_y[subset]
    assert linear_probe_accuracy(_identity_code, train_x, poisoned, test_x, test_y,
                                 num_train=50, seed=3) == a


def test_probe_accepts_a_model(digits):
    images, labels = digits
    keras.utils.set_random_seed(0)
    model = VAE(image_shape=(8, 8, 1), latent_dim=4, network_options={"hidden_units": (16,)})
    accuracy = linear_probe_accuracy(model, images[:1500], labels[:1500], images[1500:],
                                     labels[1500:], num_train=1000)
    # An untrained encoder is a random projection: far above chance (0.1) on digits, not perfect.
    assert 0.2 < accuracy < 1.0


@pytest.mark.parametrize("kwargs,message", [
    (dict(num_train=0), "num_train"),
    (dict(num_train=10_000), "exceeds"),
    (dict(train_labels=np.zeros(600)), "integer class labels"),
    (dict(test_labels=np.zeros(5, int)), "differ in length"),
    (dict(seed=1.5), "seed"),
])
def test_probe_rejects_bad_input(kwargs, message):
    train_x, train_y = _synthetic(600, True, 6)
    test_x, test_y = _synthetic(100, True, 7)
    args = dict(model_or_encode_fn=_identity_code, train_images=train_x, train_labels=train_y,
                test_images=test_x, test_labels=test_y, num_train=100)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        linear_probe_accuracy(**args)


def test_sparsity_on_hand_made_codes():
    codes = np.array([[0.0, 1.5, 0.0, 0.0],
                      [0.0, 0.0, -2.0, 0.0],
                      [0.0, 3.0, 1.0, 0.0]])
    stats = sparsity(codes)
    expected = dict(zero_fraction=8 / 12, nonzero_fraction=4 / 12, mean_active_dims=4 / 3,
                    dims_used=2, latent_dim=4)
    assert stats == pytest.approx(expected)
    assert sparsity(np.ones((2, 3)))["zero_fraction"] == 0.0
    assert sparsity(np.zeros((2, 3)))["dims_used"] == 0


def test_sparsity_rejects_bad_codes():
    with pytest.raises(ValueError, match=r"\[N, latent\]"):
        sparsity(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        sparsity(np.array([[0.0, np.nan]]))


def test_code_sparsity_of_a_vsc_and_its_evaluator(digits):
    images, labels = digits
    keras.utils.set_random_seed(1)
    model = VSC(image_shape=(8, 8, 1), latent_dim=6, alpha=0.2, threshold=0.9,
                network_options={"hidden_units": (16,)})
    codes = model.encode(images[:300]).numpy()
    stats = code_sparsity(model, images[:300], batch_size=64)
    assert stats["zero_fraction"] == pytest.approx((codes == 0).mean())
    assert stats["mean_active_dims"] == pytest.approx((codes != 0).sum(1).mean())
    data = tf.data.Dataset.from_tensor_slices((images[1500:], labels[1500:])).batch(100)
    from tfvae.evaluation.sparsity import sparsity_metrics

    metrics = sparsity_metrics(model, dict(test_data=data))
    expected = sparsity(model.encode(images[1500:]).numpy())
    assert metrics["code_zero_fraction"] == pytest.approx(expected["zero_fraction"])
    assert metrics["code_dims_used"] == expected["dims_used"]
    # Dense-code models get no sparsity entries.
    assert sparsity_metrics(VAE(image_shape=(8, 8, 1), latent_dim=2), dict(test_data=data)) == {}


def test_evaluate_model_reports_probe_and_sparsity_for_vsc(digits):
    images, labels = digits
    keras.utils.set_random_seed(2)
    model = VSC(image_shape=(8, 8, 1), latent_dim=6, alpha=0.2,
                network_options={"hidden_units": (16,)})
    model.compile(optimizer="adam")
    source = tfvae.data.open_source("digits", binarize="none")   # the grey images, labelled
    metrics = evaluation.evaluate_model(model, source, log_likelihood_samples=0)
    assert metrics["probe_train"] == 1500 and metrics["probe_test"] == 297
    train_images, train_labels = images[:1500], labels[:1500]
    assert metrics["probe_accuracy"] == pytest.approx(linear_probe_accuracy(
        model, train_images, train_labels, images[1500:], labels[1500:], num_train=1500))
    assert "code_zero_fraction" in metrics and "code_mean_active_dims" in metrics
