"""The importance-weighted family: IWAE (Burda et al. 2015) and MIWAE, CIWAE, PIWAE
(Rainforth et al. 2018), with optional doubly reparameterised encoder gradients (DReG, Tucker et
al. 2018).

Every model draws ``z_1 … z_S ~ q(z|x)`` by reparameterisation, forms the log-weights
``w_s = log p(x|z_s) + log p(z_s) − log q(z_s|x)`` (:meth:`VariationalModel.log_weights`,
``[S, batch]``) and hands them to a pure function of :mod:`tfvae.objectives`. Reported metrics:
``loss``; the model's own bound; ``elbo`` (the mean log-weight, an S-sample ELBO estimate on the
same draws); ``ess``, Kish's effective sample size of the weights of one K-sample estimate
(``1 / Σ_k w̃_k²`` in [1, K], averaged over the M estimates), which shows how well q covers the
posterior.
"""

import keras
import tensorflow as tf

from tfvae import objectives, validation
from tfvae.models.base import ObjectiveValue, VariationalModel
from tfvae.models.options import Option


_K_HELP = "importance samples K per estimate"
_NUM_ESTIMATES = Option(8, validation.positive_int, "independent estimates M")
_DREG = Option(False, validation.flag, "doubly reparameterised encoder gradient (Tucker et al. 2018)")


def _grouped_ess(log_weights, num_estimates):
    """Mean over the M estimates of the effective sample size of each one's K weights."""
    grouped = tf.reshape(log_weights, [num_estimates, -1, tf.shape(log_weights)[-1]])
    ess = tf.exp(2.0 * tf.reduce_logsumexp(grouped, axis=1)
                 - tf.reduce_logsumexp(2.0 * grouped, axis=1))
    return tf.reduce_mean(ess, axis=0)


class _ImportanceWeighted(VariationalModel):
    """Shared arguments and helpers; not registered, not for direct use."""

    metric_names = ("loss", "elbo", "ess")

    #: M and DReG for the models that do not declare them as options (IWAE has M = 1, CIWAE no DReG)
    num_estimates = 1
    dreg = False

    OPTIONS = {"num_samples": Option(5, validation.positive_int, "importance samples K per estimate")}

    @property
    def total_samples(self):
        """M · K, the draws from q(z|x) per example and step."""
        return self.num_estimates * self.num_samples

    def _log_weights(self, images, training):
        """``[M*K, batch]``; with DReG, log q is evaluated at stopped posterior parameters."""
        return self.log_weights(images, self.total_samples, stop_posterior_gradient=self.dreg,
                                training=training)

    def _common_metrics(self, log_weights):
        return dict(elbo=objectives.elbo(log_weights),
                    ess=_grouped_ess(log_weights, self.num_estimates))


@keras.saving.register_keras_serializable("tfvae")
class IWAE(_ImportanceWeighted):
    """Importance-weighted autoencoder: maximise

        IWAE_K = E[log (1/K) Σ_k p(x, z_k) / q(z_k|x)],   z_k ~ q(z|x),

    a lower bound on log p(x) that tightens as K grows (K = 1 is the VAE's ELBO, estimated here
    by Monte Carlo rather than with an analytic KL).

    Options (beside :class:`tfvae.models.base.VariationalModel`'s):
      num_samples: K ≥ 1.
      dreg: train the encoder with the doubly reparameterised gradient (Tucker et al. 2018),
        unbiased for the same objective but with a variance that does not blow up with K.

    Example:
      >>> model = IWAE(image_shape=(28, 28, 1), latent_dim=50, architecture="iwae-mlp",
      ...              num_samples=50)
      >>> model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-4))
    """

    metric_names = ("loss", "iwae", "elbo", "ess")

    OPTIONS = {"dreg": _DREG}
    OPTION_HINTS = {"num_estimates": "IWAE is M = 1; for M > 1 use MIWAE(num_estimates=M, num_samples=K)"}

    def compute_objective(self, images, training=False):
        log_weights = self._log_weights(images, training)
        bound = objectives.iwae(log_weights)
        surrogates = None
        if self.dreg:
            surrogates = {"encoder": -objectives.dreg_surrogate(log_weights), "decoder": -bound}
        return ObjectiveValue(loss=-bound, metrics=dict(self._common_metrics(log_weights), iwae=bound),
                              surrogates=surrogates)



@keras.saving.register_keras_serializable("tfvae")
class MIWAE(_ImportanceWeighted):
    """Multiply importance-weighted autoencoder (Rainforth et al. 2018): maximise the mean of M
    independent IWAE_K bounds,

        MIWAE(M, K) = (1/M) Σ_m log (1/K) Σ_k p(x, z_{m,k}) / q(z_{m,k}|x),

    M · K draws in all. MIWAE(1, K) is IWAE_K and MIWAE(M, 1) an M-sample ELBO; in between, the
    encoder's gradient keeps a better signal-to-noise ratio than IWAE_{M·K}.

    Options (beside :class:`tfvae.models.base.VariationalModel`'s):
      num_estimates: M ≥ 1.
      num_samples: K ≥ 1.
      dreg: doubly reparameterised encoder gradient for each of the M bounds.

    Example:
      >>> model = MIWAE(image_shape=(28, 28, 1), latent_dim=50, architecture="iwae-mlp",
      ...               num_estimates=8, num_samples=8)
    """

    metric_names = ("loss", "miwae", "elbo", "ess")

    OPTIONS = {"num_estimates": _NUM_ESTIMATES, "num_samples": Option(8, validation.positive_int, _K_HELP),
               "dreg": _DREG}

    def compute_objective(self, images, training=False):
        log_weights = self._log_weights(images, training)
        bound = objectives.miwae(log_weights, self.num_estimates)
        surrogates = None
        if self.dreg:
            surrogates = {"encoder": -objectives.dreg_surrogate(log_weights, self.num_estimates),
                          "decoder": -bound}
        return ObjectiveValue(loss=-bound, metrics=dict(self._common_metrics(log_weights), miwae=bound),
                              surrogates=surrogates)



@keras.saving.register_keras_serializable("tfvae")
class CIWAE(_ImportanceWeighted):
    """Combination importance-weighted autoencoder (Rainforth et al. 2018): maximise

        CIWAE(β) = β · ELBO + (1 − β) · IWAE_K

    on the same K draws; β = 1 is the (K-sample) ELBO, β = 0 is IWAE_K. The ELBO term keeps a
    strong gradient signal for the encoder.

    Options (beside :class:`tfvae.models.base.VariationalModel`'s):
      num_samples: K ≥ 1.
      beta: weight of the ELBO in [0, 1] (0.05 in Rainforth et al.'s MNIST experiments).

    Example:
      >>> model = CIWAE(image_shape=(28, 28, 1), latent_dim=50, architecture="iwae-mlp",
      ...               num_samples=64, beta=0.05)
    """

    metric_names = ("loss", "ciwae", "iwae", "elbo", "ess")

    OPTIONS = {"num_samples": Option(64, validation.positive_int, _K_HELP),
               "beta": Option(0.05, validation.unit_interval, "weight of the ELBO in [0, 1]", flag="ciwae-beta")}
    OPTION_HINTS = {"dreg": "CIWAE has no doubly reparameterised estimator here (its ELBO term would need "
                            "its own); use IWAE, MIWAE or PIWAE with dreg=True"}

    def compute_objective(self, images, training=False):
        log_weights = self._log_weights(images, training)
        bound = objectives.ciwae(log_weights, self.beta)
        metrics = dict(self._common_metrics(log_weights), ciwae=bound, iwae=objectives.iwae(log_weights))
        return ObjectiveValue(loss=-bound, metrics=metrics)



@keras.saving.register_keras_serializable("tfvae")
class PIWAE(_ImportanceWeighted):
    """Partially importance-weighted autoencoder (Rainforth et al. 2018): from the same M · K
    draws, the decoder θ follows the gradient of IWAE_{M·K} and the encoder φ that of
    MIWAE(M, K),

        θ ← θ + η ∇_θ IWAE_{M·K},    φ ← φ + η ∇_φ MIWAE(M, K),

    so the generative model gets the tighter bound and the inference network a gradient whose
    signal-to-noise ratio does not collapse. The two objectives are returned as separate
    ``surrogates``; the shared ``train_step`` differentiates each only with respect to its own
    group's variables, so neither leaks into the other's gradient. The reported ``loss`` is
    −IWAE_{M·K}.

    Options (beside :class:`tfvae.models.base.VariationalModel`'s):
      num_estimates: M ≥ 1.
      num_samples: K ≥ 1.
      dreg: doubly reparameterised gradient for the encoder's MIWAE objective.

    Example:
      >>> model = PIWAE(image_shape=(28, 28, 1), latent_dim=50, architecture="iwae-mlp",
      ...               num_estimates=8, num_samples=8)
    """

    metric_names = ("loss", "iwae", "miwae", "elbo", "ess")

    OPTIONS = {"num_estimates": _NUM_ESTIMATES, "num_samples": Option(8, validation.positive_int, _K_HELP),
               "dreg": _DREG}

    def compute_objective(self, images, training=False):
        log_weights = self._log_weights(images, training)
        bounds = objectives.piwae(log_weights, self.num_estimates)
        encoder_objective = (objectives.dreg_surrogate(log_weights, self.num_estimates)
                             if self.dreg else bounds["encoder"])
        return ObjectiveValue(
            loss=-bounds["decoder"],
            metrics=dict(self._common_metrics(log_weights), iwae=bounds["decoder"], miwae=bounds["encoder"]),
            surrogates={"encoder": -encoder_objective, "decoder": -bounds["decoder"]})



__all__ = ["CIWAE", "IWAE", "MIWAE", "PIWAE"]
