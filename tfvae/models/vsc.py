"""Variational Sparse Coding, VSC (Tonolini, Jensen and Murray-Smith)."""

import functools
import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfvae import objectives, schedules, validation
from tfvae.distributions import SpikeAndSlab
from tfvae.models.base import ObjectiveValue, VariationalModel
from tfvae.models.options import Option, number

tfd = tfp.distributions


@keras.saving.register_keras_serializable("tfvae")
class VSC(VariationalModel):
    """Variational Sparse Coding: a VAE with a spike-and-slab prior and posterior.

    Per latent dimension j (:class:`tfvae.distributions.SpikeAndSlab`):

        p(z_j)   = α N(z_j; 0, 1) + (1 − α) δ(z_j)
        q(z_j|x) = γ_j N(z_j; μ_j, σ_j²) + (1 − γ_j) δ(z_j),   log γ_j = −ReLU(−v_j)

    with μ, log σ² and the spike logit v from the encoder (so γ ≤ 1, and γ = 1 exactly when
    v ≥ 0). The objective is the ELBO with the closed-form KL summed over latents,

        ELBO = E_q[log p(x|z)] − Σ_j [γ_j KL(N(μ_j, σ_j²) ‖ N(0, 1))
                                      + γ_j log(γ_j/α) + (1 − γ_j) log((1 − γ_j)/(1 − α))],

    whose reconstruction term is estimated in training with VSC's relaxed sample
    z = sigmoid(c (η − 1 + γ)) ⊙ (μ + σ ⊙ ε), η ~ U(0, 1), ε ~ N(0, I). The sharpness c rises
    linearly from ``sharpness_start`` to ``sharpness_end`` over ``sharpness_steps`` optimizer steps
    (50 → 200 in the paper's supplement). Evaluation (``training=False``: ``test_step``,
    ``model.evaluate``, the importance-sampled log-likelihood) samples q *exactly*, so the
    reported ELBO there is an unbiased estimate of a true lower bound.

    With a spike warm-up (``warmup_end > 0``, the authors' code) the slab is pinned to the prior,
    N(λμ, σ^{2λ}) with λ = 0 before ``warmup_start``, rising linearly to 1 at ``warmup_end``: the
    model first learns which dimensions to switch on, then what to put in them.

    Schedules follow ``optimizer.iterations``, so they resume after loading a saved model; a model
    without an optimizer (not compiled) uses their final values.

    **Learned slab probabilities** (``learn_alpha=True``, an extension, off by default). Each
    latent dimension gets its own prior slab probability α_j, a trainable parameter (stored as
    its logit, started at ``alpha``), with a Beta(a, b) hyperprior. Training maximises, over the
    networks and α,

        Σ_i ELBO_i(α) + Σ_j log Beta(α_j; a, b),

    i.e. per example ELBO_i(α) + (1/N) Σ_j log Beta(α_j; a, b) with N = ``dataset_size``: the
    hyperprior is one term for the whole data set, not one per example. α is a point estimate
    (MAP, or type-II maximum likelihood / empirical Bayes for the flat a = b = 1), so:

    * ELBO_i(α) ≤ log p(x_i | α) still holds for every α, and the reported ``elbo`` (which leaves
      the hyperprior out) is a lower bound on log p(x | α̂) of the model with the learned prior
      α̂; the training objective is a lower bound on log p(X | α) + log p(α) = log p(X, α);
    * it is **not** a lower bound on the marginal log p(X) = log ∫ p(X | α) p(α) dα (that
      would need q(α) and its entropy; a point mass has none).

    Given the encoder, the optimal α_j is (Σ_i γ_ij + a − 1) / (N + a + b − 2), the mean usage of
    dimension j shrunk by the hyperprior's pseudo-counts (with a = b = 1, α_j = E_x[γ_j]). Each
    active entry then costs log(γ/α_j) instead of log(γ/α): a dimension that many examples use
    is cheap to switch on, and the gate's total price over the data becomes the entropy of its
    usage rather than ~log(1/α) per active entry. b > 1 pulls α_j (and so usage) down.

    Options (beside :class:`tfvae.models.base.VariationalModel`'s):
      alpha: prior slab probability α in (0, 1) (0.01 for the paper's classification study,
        0.2 / 0.5 for its ELBO study); with ``learn_alpha`` the starting value of every α_j.
      learn_alpha: learn one α_j per latent dimension (above).
      alpha_prior_a, alpha_prior_b: the Beta(a, b) hyperprior of each learned α_j, a, b ≥ 1 (so
        that its log-density is bounded and the MAP exists); 1, 1 (flat) by default. Only with
        ``learn_alpha``.
      dataset_size: N, the number of training examples, which weighs the hyperprior (1/N per
        example); needed when the hyperprior is not flat. ``tfvae train`` passes the training
        set's size.
      sharpness_start, sharpness_end: the relaxation's sharpness c (1 / temperature), > 0.
      sharpness_steps: optimizer steps over which c goes from start to end.
      warmup_start, warmup_end: spike warm-up steps (0 ≤ start ≤ end; end = 0 turns it off).
      threshold: γ below which :meth:`encode` returns an exact zero, in (0, 1].

    Metrics: ``loss`` (−ELBO, minus the hyperprior term / N with ``learn_alpha``), ``elbo``,
    ``reconstruction``, ``kl``, ``nonzero`` (the fraction of entries of :meth:`encode`'s codes that
    are not zero) and ``sharpness`` (the current c).

    Example:
      >>> model = VSC(image_shape=(28, 28, 1), latent_dim=200, alpha=0.01,
      ...             network_options={"hidden_units": (400,)})
      >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
      >>> history = model.fit(tfvae.data.load("mnist", "train", batch_size=32, shuffle=True,
      ...                                     seed=0), epochs=11)
      >>> codes = model.encode(images)     # mostly exact zeros
      >>> sparse = VSC(image_shape=(28, 28, 1), latent_dim=200, alpha=0.5, learn_alpha=True,
      ...              alpha_prior_a=1.0, alpha_prior_b=1000.0, dataset_size=60_000)
      >>> sparse.slab_prior_probabilities()   # α_j, [latent]
    """

    metric_names = VariationalModel.metric_names + ("nonzero", "sharpness")

    # measured on 2 CPU cores (benchmarks/RESULTS.md, sixth session): at batch 32 with 200
    # latents, float32 trains 6,810 images/s with only the update under XLA, 5,548 with the step
    float32_cpu_xla_mode = "update"

    OPTIONS = {
        "alpha": Option(0.5, number(minimum=0.0, maximum=1.0, exclusive_minimum=True, exclusive_maximum=True),
                        "prior slab probability alpha in (0, 1)"),
        "sharpness_start": Option(50.0, number(minimum=0.0, exclusive_minimum=True),
                                  "relaxation sharpness c (1/temperature) at step 0"),
        "sharpness_end": Option(200.0, number(minimum=0.0, exclusive_minimum=True),
                                "sharpness c after sharpness_steps"),
        "sharpness_steps": Option(20_000, validation.positive_int, "steps over which c moves"),
        "warmup_start": Option(0, functools.partial(validation.integer, minimum=0),
                               "spike warm-up: step where the slab starts to open"),
        "warmup_end": Option(0, functools.partial(validation.integer, minimum=0),
                             "spike warm-up: step where the slab is fully open (0: off)"),
        "threshold": Option(0.5, number(minimum=0.0, maximum=1.0, exclusive_minimum=True),
                            "gamma below which encode() gives an exact zero, in (0, 1]"),
        "learn_alpha": Option(False, validation.flag,
                              "learn a prior slab probability alpha_j per latent dimension (MAP under "
                              "a Beta(a, b) hyperprior); --alpha is its start"),
        "alpha_prior_a": Option(1.0, number(minimum=1.0),
                                "learned alpha_j: Beta hyperprior a >= 1 (pseudo-count of 'on')"),
        "alpha_prior_b": Option(1.0, number(minimum=1.0),
                                "learned alpha_j: Beta hyperprior b >= 1 (pseudo-count of 'off')"),
        # no flag: `tfvae train` sets it to the training set's size
        "dataset_size": Option(None, validation.optional(functools.partial(validation.integer, minimum=1)),
                               "N, the number of training examples (weighs the alpha hyperprior)",
                               flag=None),
    }

    def check_options(self):
        super().check_options()
        if self.warmup_end and self.warmup_start > self.warmup_end:
            raise ValueError(f"warmup_start must not exceed warmup_end, got {self.warmup_start!r} > "
                             f"{self.warmup_end!r}")
        flat = self.alpha_prior_a == 1.0 and self.alpha_prior_b == 1.0
        if not self.learn_alpha and not flat:
            raise ValueError(f"alpha_prior_a={self.alpha_prior_a!r}, alpha_prior_b={self.alpha_prior_b!r}: "
                             "the hyperprior applies to learned slab probabilities; set learn_alpha=True "
                             "or leave both at 1")
        if self.learn_alpha and not flat and self.dataset_size is None:
            raise ValueError("learn_alpha with a Beta hyperprior other than Beta(1, 1) needs dataset_size "
                             "(N, the number of training examples): the hyperprior enters each example's "
                             "objective divided by N")

    # --------------------------------------------------------------------- schedules

    def sharpness(self):
        """The current sharpness c of the relaxed sample (the temperature is 1 / c)."""
        step = schedules.optimizer_step(self)
        if step is None:
            return tf.constant(self.sharpness_end)
        return schedules.linear(step, self.sharpness_start, self.sharpness_end, self.sharpness_steps)

    def warmup(self):
        """The spike warm-up factor λ in [0, 1] (1 without warm-up)."""
        step = schedules.optimizer_step(self)
        if not self.warmup_end or step is None:
            return tf.constant(1.0)
        if self.warmup_end == self.warmup_start:
            return tf.cast(step >= self.warmup_end, tf.float32)
        return schedules.linear(tf.maximum(step - self.warmup_start, 0), 0.0, 1.0,
                               self.warmup_end - self.warmup_start)

    # ------------------------------------------------------------- the probabilistic model

    def posterior_params_per_latent(self):
        """μ, log σ² and the spike logit v."""
        return 3

    def _split(self, params):
        loc, log_var, spike_logit = tf.split(params, 3, axis=-1)
        warmup = self.warmup()
        slab_probs = tf.exp(-tf.nn.relu(-spike_logit))  # log γ = −ReLU(−v): γ ≤ 1
        return warmup * loc, tf.exp(0.5 * warmup * log_var), slab_probs

    def posterior_from_params(self, params, relaxed=False):
        """q(z|x), Independent SpikeAndSlab over the latents; ``relaxed`` attaches the current
        temperature 1 / c so that ``sample`` draws VSC's reparameterised relaxed sample."""
        loc, scale, slab_probs = self._split(params)
        temperature = 1.0 / self.sharpness() if relaxed else None
        return tfd.Independent(SpikeAndSlab(loc, scale, probs=slab_probs, temperature=temperature),
                               reinterpreted_batch_ndims=1)

    def posterior(self, images, training=False):
        """q(z|x); relaxed samples when ``training``, exact ones otherwise."""
        return self.posterior_from_params(self.encode_params(images, training=training), relaxed=training)

    def make_prior(self):
        """p(z): independent spike and slab, slab N(0, 1) with probability α (α_j with
        ``learn_alpha``: the prior then reads the trainable logits on every use)."""
        zeros = tf.zeros([self.latent_dim], tf.float32)
        if not self.learn_alpha:
            return tfd.Independent(SpikeAndSlab(zeros, 1.0, probs=self.alpha),
                                   reinterpreted_batch_ndims=1)
        # Called from VariationalModel.__init__, once keras.Model is initialised, so the weight
        # is tracked (saved, exported, trained). The logits keep α_j in (0, 1) without clipping.
        self.alpha_logits = self.add_weight(
            shape=(self.latent_dim,), name="alpha_logits",
            initializer=keras.initializers.Constant(math.log(self.alpha / (1.0 - self.alpha))))
        # the tf.Variable itself (not a snapshot): tfd keeps a reference and reads it each time
        return tfd.Independent(SpikeAndSlab(zeros, 1.0, logits=self.alpha_logits.value),
                               reinterpreted_batch_ndims=1)

    def slab_prior_probabilities(self):
        """α_j, the prior slab probability of each latent dimension, ``[latent]`` (all equal to
        ``alpha`` unless ``learn_alpha``)."""
        if self.learn_alpha:
            return tf.sigmoid(tf.convert_to_tensor(self.alpha_logits))
        return tf.fill([self.latent_dim], tf.constant(self.alpha, tf.float32))

    def alpha_log_hyperprior(self):
        """Σ_j log Beta(α_j; a, b), the hyperprior of the learned α (0 without ``learn_alpha``;
        0 for the flat Beta(1, 1))."""
        if not self.learn_alpha or (self.alpha_prior_a == 1.0 and self.alpha_prior_b == 1.0):
            return tf.constant(0.0)
        logits = tf.convert_to_tensor(self.alpha_logits)
        # log Beta(α; a, b) from the logits: log α = −softplus(−l), log(1 − α) = −softplus(l),
        # exact for α near 0 or 1, where the sigmoid would round to 0 or 1.
        log_density = (-(self.alpha_prior_a - 1.0) * tf.math.softplus(-logits)
                       - (self.alpha_prior_b - 1.0) * tf.math.softplus(logits)
                       - tf.math.lbeta(tf.constant([self.alpha_prior_a, self.alpha_prior_b])))
        return tf.reduce_sum(log_density)

    # ------------------------------------------------------------------------ objective

    def compute_objective(self, images, training=False):
        q = self.posterior(images, training=training)
        reconstruction = self.likelihood(q.sample(), training=training).log_prob(images)
        kl = tf.reduce_sum(self.kl_per_dimension(q), axis=-1)
        elbo = objectives.elbo_from_terms(reconstruction, kl)
        active = tf.cast(q.distribution.probs >= self.threshold, tf.float32)
        metrics = dict(elbo=elbo, reconstruction=reconstruction, kl=kl,
                       nonzero=tf.reduce_mean(active, axis=-1),
                       sharpness=tf.fill(tf.shape(kl), self.sharpness()))
        loss = -elbo
        if self.learn_alpha and not (self.alpha_prior_a == 1.0 and self.alpha_prior_b == 1.0):
            # the data set's one hyperprior term, shared out over its N examples
            loss = loss - self.alpha_log_hyperprior() / float(self.dataset_size)
        return ObjectiveValue(loss=loss, metrics=metrics)

    # ------------------------------------------------------------------------- user API

    def has_sparse_codes(self):
        return True

    def slab_probabilities(self, images, training=False):
        """γ, the posterior probability that each code entry is non-zero, ``[batch, latent]``."""
        params = self.encode_params(self._as_images(images), training=training)
        return self._split(params)[2]

    def encode(self, images, training=False):
        """Sparse codes ``[batch, latent]``: the posterior means γ ⊙ μ, with exact zeros wherever
        γ < ``threshold``."""
        params = self.encode_params(self._as_images(images), training=training)
        loc, _, slab_probs = self._split(params)
        return tf.where(slab_probs >= self.threshold, slab_probs * loc, tf.zeros_like(loc))

    def serving_encode(self, images):
        """The base signature's code mean and scale, plus ``sparse_code`` and ``slab_probability``."""
        return dict(super().serving_encode(images), sparse_code=self.encode(images),
                    slab_probability=self.slab_probabilities(images))


__all__ = ["VSC"]
