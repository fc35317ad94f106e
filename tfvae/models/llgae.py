"""Locally linear generative autoencoders: LLGAE and its one-component case LGAE (seed 002,
REFERENCES.md section 4).

A decoder-only autoencoder. There is no encoder network: the code of an image is found by
inference. The decoder has K components, each an offset μ_k ∈ R^D and a basis W_k ∈ R^{D×E};
component k with coefficients b reconstructs x as μ_k + W_k b.

**Encoding** (for every component in parallel) starts from b = 0 and takes T gradient steps on
the penalised squared residual ½‖x − μ_k − W_k b‖² + ½λ‖b‖²::

    b(k, 0) = 0
    b(k, t) = b(k, t−1) + β (W_kᵀ (x − μ_k − W_k b(k, t−1)) − λ b(k, t−1)),   t = 1..T

then picks the component with the smallest squared residual,
k* = argmin_k ‖x − μ_k − W_k b(k, T)‖²; the code is (k*, b(k*, T)). λ = 1 is the reference
code's −b term ("shrinkage"); λ = 0 is the plain gradient step of the reference note.

**Training** minimises that residual, ‖x − μ_k* − W_k* b(k*, T)‖², by gradient descent on all μ_k
and W_k, with the gradient flowing through the T unrolled inference steps (b(k, T) is a function
of μ and W). LGAE (K = 1) is a linear, PCA-like model; LLGAE is a mixture of local linear models.

**Cost.** With c_k = W_kᵀ(x − μ_k) and the Gram matrix G_k = W_kᵀW_k, each step is
b ← b + β(c_k − G_k b − λb), and ‖x − μ_k − W_k b‖² = ‖x − μ_k‖² − 2 bᵀc_k + bᵀG_k b. So one
batch costs one projection x ↦ (c_k)_k (B·K·D·E multiply-adds, a single matmul) plus
T·B·K·E² for the steps, and memory O(B·K·E + B·D + K·D·E): no [B, K, D] tensor is formed. All
components are handled by einsum at once, never by a Python loop over K.

**Step size and pixel scale.** The iteration is linear and homogeneous in (x − μ_k, b): for a
fixed basis, multiplying the pixels by s multiplies every b(k, t) by s and changes nothing else,
so β does not depend on the pixel units *through the iteration*. What β constrains is the basis:
the steps contract (and converge to the least-squares / ridge solution) when
β·(λ_max(W_kᵀW_k) + λ) < 2, and with few steps the model learns bases with
β·λ(W_kᵀW_k) of order 1/T. The pixel scale enters through the basis' scale: if W is read as
pixel-unit directions carrying unit-scale coefficients (W = principal directions × standard
deviations, as in probabilistic PCA), its Gram eigenvalues are the pixel variances, which grow
as s², and the same steps then need β/s². In training, the pixel scale also sets how far μ_k and
W_k must travel in optimizer steps of fixed size (RMSprop/Adam move each parameter by about the
learning rate per step). tfvae's images are in [0, 1]; the model works on ``images ×
pixel_scale`` (default 1, i.e. [0, 1] units; ``pixel_scale=255`` gives 0–255 units) and states
β for that scale.

**Initialisation.** From random values, the components that lose the first assignments never
win an image again and get no gradient (about half of K = 11 on Fashion-MNIST, which then stalls
near 850 on the metric below). :meth:`LLGAE.initialize_from_data` starts instead from k-means
centroids and each cluster's principal directions (a mixture-of-PCA guess; ``tfvae train`` does
this for llgae/lgae).

**Per-image mean.** With ``center_images=True`` (the reference's protocol) the model sees each
image minus its own mean x̄ (over H·W·C), and reconstructions add x̄ back: x̂ = x̄ + μ_k* +
W_k* b. Without it the model sees the images as they are.

The metric reported beside the loss is :func:`tfvae.evaluation.reconstruction_error`'s
``"centered_l2_255"`` (squared error per pixel in 0–255 units after each image and each
reconstruction lose their own mean), so LLGAE, PCA and the VAE family compare on one scale.

Example:
  >>> import keras, tfvae
  >>> train = tfvae.data.load("fashion_mnist", "train", batch_size=360, shuffle=True, seed=0)
  >>> model = tfvae.models.LLGAE(image_shape=(28, 28, 1), latent_dim=20, components=11,
  ...                            inference_steps=5, step_size=0.01)
  >>> train_images, _ = tfvae.data.load_arrays("fashion_mnist", "train")
  >>> model.initialize_from_data(train_images)    # k-means + local PCA: no dead components
  >>> model.compile(optimizer=keras.optimizers.RMSprop(1e-3), jit_compile=True)
  >>> history = model.fit(train, epochs=10)
  >>> components, coefficients, image_means = model.encode(test_images)
  >>> images = model.decode(components, coefficients, image_means)      # = model.reconstruct(x)
"""

import collections
import math

import keras
import numpy as np
import tensorflow as tf

from tfvae import progress, validation
from tfvae.models.base import as_images
from tfvae.models.options import Option, number
from tfvae.models.training import ObjectiveValue, TrainingLoop
from tfvae.networks._checks import check_shape

#: the metric's pixel units: 255 × the [0, 1] values (as tfvae.evaluation.reconstruction)
PIXEL_RANGE = 255.0


class LLGAECode(collections.namedtuple("LLGAECode", ["components", "coefficients", "image_means"])):
    """The code of a batch of images, as :meth:`LLGAE.encode` returns it.

    Attributes:
      components: int32 ``[batch]``, the chosen component k*.
      coefficients: float32 ``[batch, latent_dim]``, b(k*, T) (in the model's pixel units).
      image_means: float32 ``[batch]``, each image's own mean in [0, 1] units (zeros without
        ``center_images``); :meth:`LLGAE.decode` adds it back.
    """


class Objective(collections.namedtuple("Objective", ["loss", "reconstruction_error", "components", "coefficients"])):
    """What :meth:`LLGAE.assign` returns, per image ``[batch, ...]``.

    Attributes:
      loss: the squared residual of the chosen component, ‖x − μ_k* − W_k* b(k*, T)‖² summed
        over pixels in model units: what training minimises (through the unrolled steps).
      reconstruction_error: the ``"centered_l2_255"`` error of the reconstruction.
      components: int32, k* = argmin_k of the squared residual.
      coefficients: ``[batch, latent_dim]``, b(k*, T).
    """


class Inference(collections.namedtuple("Inference", ["coefficients", "squared_residuals"])):
    """Every component's inference result, as :meth:`LLGAE.infer` returns it.

    Attributes:
      coefficients: ``[batch, components, latent_dim]``, b(k, T) for every k.
      squared_residuals: ``[batch, components]``, ‖x − μ_k − W_k b(k, T)‖² in the model's units
        (images × ``pixel_scale``, minus their means with ``center_images``).
    """


@keras.saving.register_keras_serializable("tfvae")
class LLGAE(TrainingLoop):
    """Locally linear generative autoencoder (see the module docstring for the method).

    Args:
      image_shape: ``(H, W, C)`` of the images (pixels in [0, 1]); ``input_shape`` is another
        name for it.
      latent_dim: E, the number of coefficients per component.

    Options (declared in ``OPTIONS``, saved by ``get_config``):
      components: K, the number of local linear components.
      inference_steps: T, gradient steps of inference (the graph holds T unrolled steps).
      step_size: β of the inference steps, for pixels in ``pixel_scale`` units.
      shrinkage: λ ≥ 0, weight of the −λb term of each step (1: the reference code; 0: the
        plain gradient step of the reference note).
      center_images: let the model see each image minus its own mean, and add it back to the
        reconstructions.
      pixel_scale: the model works on ``images × pixel_scale`` (1: [0, 1] units; 255: 0–255).
      basis_initial_scale: standard deviation of the normal initial entries of every W_k, in
        model units.
      mean_initial_scale: standard deviation of the normal initial entries of every μ_k.
      seed: seed of the initial values (None: Keras' global seed, see
        ``keras.utils.set_random_seed``).
      validate_inputs: check that the images given to ``fit`` and ``evaluate`` are finite and in
        [0, 1] (outside the compiled step, see :mod:`tfvae.models.training`).

    Metrics: ``loss`` (the squared residual ‖x − μ_k* − W_k* b‖², summed over pixels, in model
    units) and ``reconstruction_error`` (``"centered_l2_255"``).
    """

    metric_names = ("loss", "reconstruction_error")

    OPTIONS = {
        "components": Option(11, validation.positive_int, "local linear components K"),
        "inference_steps": Option(5, validation.positive_int, "inference gradient steps T"),
        "step_size": Option(0.01, number(minimum=0.0, exclusive_minimum=True),
                            "inference step size beta for pixels in pixel_scale units"),
        "shrinkage": Option(1.0, number(minimum=0.0), "weight lambda of the -lambda*b term of each step"),
        "center_images": Option(True, validation.flag, "subtract each image's own mean", flag=None),
        "pixel_scale": Option(1.0, number(minimum=0.0, exclusive_minimum=True),
                              "the model works on images x pixel_scale", flag=None),
        "basis_initial_scale": Option(0.05, number(minimum=0.0, exclusive_minimum=True),
                                      "std of the initial W_k entries", flag=None),
        "mean_initial_scale": Option(0.01, number(minimum=0.0), "std of the initial mu_k entries", flag=None),
        "seed": Option(None, validation.optional(validation.integer), "seed of the initial values", flag=None),
    }

    def __init__(self, image_shape=None, latent_dim=None, *, input_shape=None, **options):
        if (input_shape is None) == (image_shape is None) or latent_dim is None:
            raise ValueError("give the image shape (image_shape or input_shape, once) and latent_dim")
        super().__init__(**options)
        self.image_shape = check_shape("image_shape", input_shape if image_shape is None else image_shape,
                                       ranks=(3,))
        self.latent_dim = validation.positive_int("latent_dim", latent_dim)
        self.pixels = int(np.prod(self.image_shape))
        # Two seeds from one, so that μ and W are not drawn from the same stream.
        seeds = (None, None) if self.seed is None else (2 * self.seed, 2 * self.seed + 1)
        self.means = self.add_weight(
            name="means", shape=(self.components, self.pixels),
            initializer=keras.initializers.RandomNormal(stddev=self.mean_initial_scale, seed=seeds[0]))
        self.bases = self.add_weight(
            name="bases", shape=(self.components, self.pixels, self.latent_dim),
            initializer=keras.initializers.RandomNormal(stddev=self.basis_initial_scale, seed=seeds[1]))
        self.built = True

    # ------------------------------------------------------------------------ inference

    def _model_inputs(self, images):
        """``(x, image_means)``: flat images in model units ``[B, D]`` and means ``[B]``."""
        flat = tf.reshape(images, [-1, self.pixels])
        image_means = tf.reduce_mean(flat, axis=1) if self.center_images else tf.zeros_like(flat[:, 0])
        return (flat - image_means[:, None]) * self.pixel_scale, image_means

    def _infer(self, x):
        """T unrolled steps for all components at once; returns (b [B,K,E], residual² [B,K])."""
        bases, means = self.bases, self.means
        # c_k = W_kᵀ(x − μ_k): one [B, D] × [D, K·E] matmul, the only O(B·K·D·E) term.
        projections = tf.einsum("bd,kde->bke", x, bases) - tf.einsum("kd,kde->ke", means, bases)
        gram = tf.einsum("kdi,kdj->kij", bases, bases)
        coefficients = tf.zeros_like(projections)
        for _ in range(self.inference_steps):
            # W_kᵀ(x − μ_k − W_k b) = c_k − G_k b: the gradient step without forming W_k b
            gradient = projections - tf.einsum("kij,bkj->bki", gram, coefficients)
            coefficients = coefficients + self.step_size * (gradient - self.shrinkage * coefficients)
        # ‖x − μ_k − W_k b‖² = ‖x − μ_k‖² − 2 bᵀc_k + bᵀG_k b
        offsets = (tf.reduce_sum(tf.square(x), axis=1)[:, None] - 2.0 * tf.matmul(x, means, transpose_b=True)
                   + tf.reduce_sum(tf.square(means), axis=1)[None, :])
        fitted = tf.einsum("bki,bki->bk", coefficients,
                           2.0 * projections - tf.einsum("kij,bkj->bki", gram, coefficients))
        # The expansion can dip below 0 by rounding when the fit is near exact.
        return coefficients, tf.maximum(offsets - fitted, 0.0)

    def infer(self, images):
        """Inference for every component: :class:`Inference` ``(coefficients [B, K, E],
        squared_residuals [B, K])``, the latter in model units."""
        x, _ = self._model_inputs(self._as_images(images))
        return Inference(*self._infer(x))

    def compute_objective(self, images, training=False):
        """The shared training loop's objective: the squared residual of the chosen component
        as ``loss`` and the ``reconstruction_error`` metric (inference has no training mode)."""
        objective = self.assign(images)
        return ObjectiveValue(loss=objective.loss,
                              metrics=dict(reconstruction_error=objective.reconstruction_error))

    def assign(self, images):
        """The training objective and the code, per image: an :class:`Objective`
        ``(loss, reconstruction_error, components, coefficients)`` (see its docstring)."""
        x, _ = self._model_inputs(images)
        coefficients, residuals = self._infer(x)
        chosen = tf.argmin(residuals, axis=1, output_type=tf.int32)
        loss = tf.gather(residuals, chosen, axis=1, batch_dims=1)
        chosen_coefficients = tf.gather(coefficients, chosen, axis=1, batch_dims=1)
        # The centred error needs only the residual's sum over pixels:
        # Σ_d (x − μ_k − W_k b)_d = Σ_d x_d − Σ_d μ_kd − (1ᵀW_k) b, and ‖r − r̄‖² = ‖r‖² − (Σ r)²/D.
        residual_sums = (tf.reduce_sum(x, axis=1) - tf.gather(tf.reduce_sum(self.means, axis=1), chosen)
                         - tf.einsum("be,be->b", tf.gather(tf.reduce_sum(self.bases, axis=1), chosen),
                                     chosen_coefficients))
        centred = tf.maximum(loss - tf.square(residual_sums) / self.pixels, 0.0)
        error = centred / self.pixels * (PIXEL_RANGE / self.pixel_scale) ** 2
        return Objective(loss, error, chosen, chosen_coefficients)

    def initializes_from_data(self):
        return True

    def plots(self):
        return ("reconstructions", "component_means")

    def initialize_from_data(self, images, seed=0, max_images=20000, verbose="auto"):
        """Starts training from a mixture-of-PCA guess instead of random values.

        With random offsets, the components that lose the first assignments never win an image
        again and get no gradient (on Fashion-MNIST about half of K = 11 stay unused). Here
        k-means (scikit-learn, k-means++ seeding) on the images as the model sees them places
        μ_k at the K centroids, and W_k holds the top E principal directions of cluster k, each
        scaled to norm 1/√β so that one inference step already solves that cluster's
        least-squares problem (β·W_kᵀW_k = I; with shrinkage λ the steps then contract by the
        factor βλ). Directions a small cluster cannot supply keep their random values.

        Args:
          images: ``[N, H, W, C]`` in [0, 1], e.g. the training images.
          seed: seed of the subset and of k-means.
          max_images: use at most this many images (a random subset), to bound the cost.
          verbose: a line when k-means starts and its duration, then progress over the K
            clusters' PCA with the time left (:mod:`tfvae.progress`; 0 silent, ``"auto"`` a bar
            on a terminal, else lines).

        Returns:
          the number of images k-means assigned to each component (numpy ``[K]``).
        """
        from threadpoolctl import threadpool_limits

        verbose = progress.check_verbose(verbose)
        # Multi-threaded OpenBLAS spins against TensorFlow's own thread pools on these small
        # matrices (seconds per 784-pixel SVD on 2 busy cores, against 0.2 s on one thread).
        with threadpool_limits(1, user_api="blas"):
            return self._initialize_from_data(images, seed, max_images, verbose)

    def _initialize_from_data(self, images, seed, max_images, verbose):
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA

        images = self._as_images(images).numpy()
        if len(images) < self.components:
            raise ValueError(f"initialize_from_data needs at least components={self.components} images, "
                             f"got {len(images)}")
        if not np.all(np.isfinite(images)) or images.min() < 0.0 or images.max() > 1.0:
            raise ValueError("initialize_from_data needs finite pixel values in [0, 1]")
        rng = np.random.default_rng(seed)
        if len(images) > max_images:
            images = images[rng.choice(len(images), max_images, replace=False)]
        x = self._model_inputs(tf.constant(images))[0].numpy()
        with progress.timed("initialize_from_data", f"k-means into {self.components} clusters of "
                            f"{len(x)} images", verbose):
            kmeans = KMeans(self.components, n_init=1, random_state=seed).fit(x)
        bases = self.bases.numpy()
        shown = progress.Progress("initialize_from_data", self.components, "cluster", verbose)
        for k in range(self.components):
            members = x[kmeans.labels_ == k]
            # ARPACK computes only the top directions; it needs fewer of them than samples
            # and than pixels.
            count = min(self.latent_dim, len(members) - 1, self.pixels - 1)
            if count >= 1:
                pca = PCA(count, svd_solver="arpack", random_state=seed).fit(members)
                directions = pca.components_                                           # [count, D]
                bases[k, :, :count] = directions.T / math.sqrt(self.step_size)
            shown.update(k + 1)
        shown.finish(summary=f"PCA of {self.components} clusters")
        self.means.assign(kmeans.cluster_centers_.astype(np.float32))
        self.bases.assign(bases)
        return np.bincount(kmeans.labels_, minlength=self.components)

    # ----------------------------------------------------------- the shared training loop

    def prepare_inputs(self, inputs):
        return as_images(inputs, self.image_shape)

    def data_problem(self, array):
        problem = super().data_problem(array)
        if problem is None and array.size and (array.min() < 0 or array.max() > 1):
            problem = f"LLGAE needs pixel values in [0, 1]; got values from {array.min():g} to {array.max():g}"
        return problem

    def data_assertions(self, values):
        message = "tfvae: LLGAE needs pixel values in [0, 1]"
        return super().data_assertions(values) + [
            tf.debugging.assert_greater_equal(tf.reduce_min(values), 0.0, message=message + "; got values below 0"),
            tf.debugging.assert_less_equal(tf.reduce_max(values), 1.0, message=message + "; got values above 1")]

    def call(self, images, training=False):
        """The reconstruction (what ``model(images)`` and ``model.predict`` return)."""
        return self.reconstruct(images)

    # -------------------------------------------------------------------------- user API

    def encode(self, images):
        """The code of each image: :class:`LLGAECode` ``(components [B] int32, coefficients
        [B, E], image_means [B])``."""
        images = self._as_images(images)
        _, _, chosen, coefficients = self.assign(images)
        _, image_means = self._model_inputs(images)
        return LLGAECode(chosen, coefficients, image_means)

    def decode(self, components, coefficients, image_means=None):
        """Images ``[..., H, W, C]`` from components ``[...]`` and coefficients ``[..., E]``:
        (μ_k + W_k b) / pixel_scale + image_means (``[...]``; None adds nothing, so a centred
        model then gives zero-mean images)."""
        components = tf.convert_to_tensor(components)
        coefficients = tf.convert_to_tensor(coefficients, tf.float32)
        if not components.dtype.is_integer:
            raise ValueError(f"components must be integer component indices, got dtype {components.dtype.name}")
        if coefficients.shape.rank is not None and components.shape.rank is not None and (
                coefficients.shape.rank != components.shape.rank + 1
                or coefficients.shape[-1] not in (None, self.latent_dim)):
            raise ValueError(f"coefficients must be shaped [..., {self.latent_dim}] with the leading shape of "
                             f"components; got {coefficients.shape} for components {components.shape}")
        if tf.executing_eagerly() and tf.size(components) > 0 and (
                int(tf.reduce_min(components)) < 0 or int(tf.reduce_max(components)) >= self.components):
            raise ValueError(f"components must be indices in [0, {self.components - 1}], got values from "
                             f"{int(tf.reduce_min(components))} to {int(tf.reduce_max(components))}")
        leading = tf.shape(components)
        flat_components = tf.reshape(tf.cast(components, tf.int32), [-1])
        flat_coefficients = tf.reshape(coefficients, [-1, self.latent_dim])
        # One-hot slots instead of gathering W_k per image: a [B, K·E] × [K·E, D] matmul whose
        # memory is O(B·(K·E + D)) rather than the O(B·D·E) of gathered bases.
        one_hot = tf.one_hot(flat_components, self.components)                         # [B, K]
        slots = tf.reshape(one_hot[:, :, None] * flat_coefficients[:, None, :], [-1, self.components * self.latent_dim])
        bases = tf.reshape(tf.transpose(self.bases, [0, 2, 1]), [self.components * self.latent_dim, self.pixels])
        flat = (tf.matmul(one_hot, self.means) + tf.matmul(slots, bases)) / self.pixel_scale
        if image_means is not None:
            flat += tf.reshape(tf.convert_to_tensor(image_means, tf.float32), [-1, 1])
        return tf.reshape(flat, tf.concat([leading, self.image_shape], axis=0))

    def reconstruct(self, images):
        """decode(encode(x)): x̄ + (μ_k* + W_k* b) / pixel_scale, ``[B, H, W, C]``."""
        return self.decode(*self.encode(images))

    def component_means(self):
        """μ_k as images ``[K, H, W, C]`` in [0, 1] units (zero-mean-ish when centring)."""
        return tf.reshape(self.means / self.pixel_scale, (self.components,) + self.image_shape)

    def serving_encode(self, images):
        """What an exported ``serving_default`` signature returns (:mod:`tfvae.export`): the code
        as ``component`` (the index, as float32 like every served output), ``coefficients``
        ``[batch, E]`` and ``image_mean`` ``[batch]``."""
        code = self.encode(images)
        return {"component": tf.cast(code.components, tf.float32), "coefficients": code.coefficients,
                "image_mean": code.image_means}

    def serving_decode_inputs(self):
        """The exported ``decode`` signature's inputs: what ``serving_default`` returns, so that a
        client can send one's outputs to the other unchanged."""
        return {"component": tf.TensorSpec([None], tf.float32),
                "coefficients": tf.TensorSpec([None, self.latent_dim], tf.float32),
                "image_mean": tf.TensorSpec([None], tf.float32)}

    def serving_decode(self, component, coefficients, image_mean):
        """The exported ``decode``: :meth:`decode` after an in-graph check that ``component``
        holds whole numbers in [0, K) (a served model cannot raise a Python ValueError)."""
        valid = tf.reduce_all((component >= 0) & (component < self.components)
                              & tf.equal(component, tf.round(component)))
        check = tf.debugging.Assert(valid, [f"tfvae signature decode: input component must hold whole numbers "
                                            f"in [0, {self.components - 1}]; got", component], summarize=8)
        with tf.control_dependencies([check]):
            components = tf.cast(tf.round(component), tf.int32)
        return self.decode(components, coefficients, image_mean)

    def _as_images(self, images):
        return as_images(images, self.image_shape)

    # -------------------------------------------------------------------------- saving

    def get_config(self):
        return dict(self.options_config(), image_shape=list(self.image_shape), latent_dim=self.latent_dim,
                    name=self.name)

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable("tfvae")
class LGAE(LLGAE):
    """Linear generative autoencoder: :class:`LLGAE` with one component (K = 1), a PCA-like
    model whose optimum is the PCA subspace of size E (up to the shrinkage of b).

    Example:
      >>> model = LGAE(image_shape=(28, 28, 1), latent_dim=20, inference_steps=5, step_size=0.01)
    """

    OPTIONS = {"components": None}   # exactly one
    OPTION_HINTS = {"components": "LGAE has exactly one component; use LLGAE for several"}
    components = 1


__all__ = ["Inference", "LGAE", "LLGAE", "LLGAECode", "Objective"]
