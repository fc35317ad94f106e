"""tfvae.evaluation.reconstruction: the centred squared error per pixel in 0-255 units against a
hand computation, its brightness invariance, the PCA baseline against an SVD, the evaluator for
every model, and bad input."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from tfvae.evaluation import pca_baseline, reconstruction_error
from tfvae.evaluation.reconstruction import reconstruction_metrics
from tfvae.models import VAE


def test_reconstruction_error_against_a_hand_computation():
    images = np.array([[[0.0, 0.5], [1.0, 0.5]],
                       [[0.2, 0.2], [0.2, 0.2]]])[..., None]                # [2, 2, 2, 1]
    reconstructions = np.array([[[0.1, 0.5], [0.9, 0.5]],
                                [[0.5, 0.5], [0.5, 0.5]]])[..., None]
    # image 1: differences (−0.1, 0, 0.1, 0), mean 0 → 255² · 0.02 / 4 = 325.125
    # image 2: differences all −0.3: the centred error is 0, the plain one 255² · 0.09 = 5852.25
    per_image = reconstruction_error(images, reconstructions, per_image=True)
    np.testing.assert_allclose(per_image, [325.125, 0.0], atol=1e-9)
    assert reconstruction_error(images, reconstructions) == pytest.approx(325.125 / 2)
    np.testing.assert_allclose(reconstruction_error(images, reconstructions, metric="l2_255", per_image=True),
                               [325.125, 5852.25])
    # any leading shape; image_rank says which trailing axes are one image
    stacked = reconstruction_error(np.stack([images, images]), np.stack([reconstructions, reconstructions]),
                                   per_image=True)
    np.testing.assert_allclose(stacked, [[325.125, 0.0]] * 2, atol=1e-9)
    flat = reconstruction_error(images.reshape(2, 4), reconstructions.reshape(2, 4), image_rank=1, per_image=True)
    np.testing.assert_allclose(flat, [325.125, 0.0], atol=1e-9)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2 ** 16), offset=st.floats(-0.5, 0.5))
def test_the_centred_error_ignores_brightness_and_splits_the_plain_one(seed, offset):
    """centered_l2_255 is blind to a constant added to a reconstruction, and
    l2_255 = centered_l2_255 + (255 · mean difference)² for every image."""
    rng = np.random.default_rng(seed)
    images, reconstructions = rng.uniform(size=(2, 3, 5, 5, 1))
    centred = reconstruction_error(images, reconstructions, per_image=True)
    shifted = reconstruction_error(images, reconstructions + offset, per_image=True)
    np.testing.assert_allclose(shifted, centred, rtol=1e-9, atol=1e-9)
    mean_difference = (images - reconstructions).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(reconstruction_error(images, reconstructions, metric="l2_255", per_image=True),
                               centred + (255.0 * mean_difference) ** 2, rtol=1e-9)


def test_pca_baseline_matches_an_svd_of_the_centred_images(digits):
    images, _ = digits
    train, test = images[:1500], images[1500:]
    result = pca_baseline(train, test, 6)
    flat_train = train.reshape(1500, 64).astype(np.float64)
    flat_train -= flat_train.mean(axis=1, keepdims=True)
    data_mean = flat_train.mean(axis=0)
    _, _, vt = np.linalg.svd(flat_train - data_mean, full_matrices=False)
    flat_test = test.reshape(len(test), 64).astype(np.float64)
    own_means = flat_test.mean(axis=1, keepdims=True)
    projected = (flat_test - own_means - data_mean) @ vt[:6].T @ vt[:6] + data_mean + own_means
    np.testing.assert_allclose(result.reconstructions.reshape(len(test), 64), projected, atol=1e-4)
    np.testing.assert_allclose(result.error, reconstruction_error(test, projected.reshape(test.shape)), rtol=1e-4)
    assert result.error < pca_baseline(train, test, 3).error


def test_the_evaluator_reports_the_metric_for_the_vae_family_too(digits):
    images, labels = digits
    model = VAE(image_shape=(8, 8, 1), latent_dim=3, network_options={"hidden_units": (16,)})
    data = tf.data.Dataset.from_tensor_slices((images[:100], labels[:100])).batch(40)
    metrics = reconstruction_metrics(model, {"test_data": data})
    expected = reconstruction_error(images[:100], model.reconstruct(images[:100]).numpy())
    assert metrics["test_reconstruction_error"] == pytest.approx(expected, rel=1e-5)
    assert metrics["reconstruction_metric"] == "centered_l2_255"



@pytest.mark.parametrize("args,message", [
    ((np.zeros((2, 4)), np.zeros((2, 4))), None),
    ((np.zeros((2, 4)), np.zeros((2, 5))), "same shape"),
    ((np.full((2, 4), 255.0), np.zeros((2, 4))), "images must hold pixel values in \\[0, 1\\]"),
    ((np.zeros((2, 4)), np.full((2, 4), 200.0)), "reconstructions must be in the images' \\[0, 1\\] units"),
    ((np.full((2, 4), np.nan), np.zeros((2, 4))), "images contain NaN"),
])
def test_bad_metric_input_is_named(args, message):
    if message is None:
        assert reconstruction_error(*args, image_rank=1) == 0.0
        with pytest.raises(ValueError, match="unknown reconstruction metric 'l1'"):
            reconstruction_error(*args, metric="l1", image_rank=1)
        with pytest.raises(ValueError, match="image_rank must be a positive integer"):
            reconstruction_error(*args, image_rank=0)
        with pytest.raises(ValueError, match="num_components must be an integer in \\[1, 2\\]"):
            pca_baseline(*args, num_components=3)
        return
    with pytest.raises(ValueError, match=message):
        reconstruction_error(*args, image_rank=1)
