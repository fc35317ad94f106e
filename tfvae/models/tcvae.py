"""β-TCVAE (Chen, Li, Grosse and Duvenaud 2018, "Isolating sources of disentanglement in VAEs")."""

import keras
import tensorflow as tf

from tfvae import objectives, validation
from tfvae.models.base import ObjectiveValue, VariationalModel, _per_dimension
from tfvae.models.options import Option, choice, number


def _check_dataset_size(name, value):
    # no default: N enters log q(z) as log N, so another data set's N (e.g. dSprites' 737,280 on
    # 60,000 examples) shifts the TC estimate by nats without any sign
    if value is None:
        raise ValueError(f"BetaTCVAE needs {name}, the number of training examples N of the "
                         f"aggregate posterior q(z) = (1/N) sum_n q(z|x_n): pass {name}=<number of "
                         f"training examples>, e.g. {name}=len(train_images) or "
                         f"{name}=tfvae.data.info('mnist').num_examples['train']")
    return validation.integer(name, value, minimum=2)


@keras.saving.register_keras_serializable("tfvae")
class BetaTCVAE(VariationalModel):
    """β-TCVAE: the average KL(q(z|x) ‖ p(z)) split into index-code mutual information, total
    correlation and dimension-wise KL, with β on the total correlation only:

        L = E_q[log p(x|z)] − I(x; z) − β · KL(q(z) ‖ Π_j q(z_j)) − Σ_j KL(q(z_j) ‖ p(z_j)),

    where q(z) = (1/N) Σ_n q(z|x_n) is the aggregate posterior over the N training examples. The
    three terms are estimated on each minibatch from one reparameterised code per example
    (:func:`tfvae.objectives.total_correlation_terms`); they sum to log q(z|x) − log p(z), so
    β = 1 is the ordinary (Monte Carlo) ELBO.

    Options (beside :class:`tfvae.models.base.VariationalModel`'s):
      beta: weight β >= 0 of the total correlation (6 by default; β > 1 favours factorised codes).
      dataset_size: N, the number of training examples (an integer >= 2, at least the batch
        size minus one), required: e.g. ``len(train_images)`` or
        ``tfvae.data.info(name).num_examples["train"]``; ``tfvae train`` passes the training
        set's size. With "mss" it sets the weight 1/N of each code's own posterior in q(z).
      estimator: ``"mss"`` (minibatch stratified sampling, default) or ``"mws"`` (minibatch
        weighted sampling). Both as in Chen et al.; "mws" reports I, TC and the dimension-wise KL
        shifted by constants of about log N (its weights sum to 1/N, see
        :func:`tfvae.objectives.log_importance_weight_matrix`), which leave its gradients alone.

    Metrics: ``loss`` (the negative objective), ``elbo`` (the true ELBO with the analytic KL, for
    comparison across models), ``reconstruction``, ``kl`` (analytic), and the minibatch estimates
    ``mutual_information``, ``total_correlation``, ``dimension_kl`` (nats per example).

    Example:
      >>> train = tfvae.data.load("shapes2d", "train", batch_size=64, shuffle=True, seed=0)
      >>> model = BetaTCVAE(image_shape=(64, 64, 1), latent_dim=10, architecture="conv",
      ...                   beta=6.0, dataset_size=tfvae.data.info("shapes2d").num_examples["train"])
      >>> model.compile(optimizer=keras.optimizers.Adam(1e-4))
    """

    metric_names = VariationalModel.metric_names + ("mutual_information", "total_correlation",
                                                    "dimension_kl")

    #: q(z) is estimated from the whole batch: over the global batch under a tf.distribute
    #: strategy (gathered across replicas), never from padding (see compute_objective)
    couples_batch = True

    OPTIONS = {
        "beta": Option(6.0, number(minimum=0.0), "weight beta >= 0 of the total correlation"),
        # no flag: `tfvae train` sets it to the training set's size
        "dataset_size": Option(None, _check_dataset_size, "N, the number of training examples", flag=None),
        "estimator": Option("mss", choice(*objectives.TC_ESTIMATORS),
                            "estimate of log q(z): mss (stratified) or mws (weighted)"),
    }

    def kl_decomposition(self, posterior, codes, mask=None, rows=None):
        """Minibatch estimates of the index-code MI, the TC and the dimension-wise KL for
        ``codes`` ``[R, latent]`` drawn from ``posterior`` (q(z|x) of a batch of B examples), with
        this model's N and estimator: a :class:`tfvae.objectives.KLDecomposition` of ``[R]``
        tensors. ``mask`` (``[B]``, 0 for padding) leaves padding out of q(z); ``rows`` are the
        batch positions of the codes when they are a part of the batch (default: one code per
        example, in order); see :func:`tfvae.objectives.total_correlation_terms`."""
        codes = tf.convert_to_tensor(codes, tf.float32)
        # [i, j, d] = log q(z_{i,d} | x_j): every code under every example's posterior
        log_q_pairs = _per_dimension(posterior).log_prob(codes[:, None, :])
        return objectives.total_correlation_terms(
            log_q_pairs, _per_dimension(self.prior).log_prob(codes), self.dataset_size, self.estimator,
            mask=mask, rows=rows)

    def compute_objective(self, images, training=False, mask=None):
        params = self.encode_params(images, training=training)
        q = self.posterior_from_params(params)  # float32 even under mixed precision
        z = q.sample()
        reconstruction = self.likelihood(z, training=training).log_prob(images)
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            # q(z) is the average posterior of the GLOBAL batch, as on one device: every replica
            # gathers all replicas' posteriors (and padding masks) in replica order and scores its
            # own codes at their places in that batch. all_gather's gradient all-reduces, so each
            # replica's encoder also gets the gradient of the other replicas' losses.
            sizes = context.all_gather(tf.shape(params)[:1], axis=0)
            rows = tf.reduce_sum(sizes[:context.replica_id_in_sync_group]) + tf.range(tf.shape(params)[0])
            everyone = self.posterior_from_params(context.all_gather(params, axis=0))
            mask = None if mask is None else context.all_gather(tf.cast(mask, tf.float32), axis=0)
            terms = self.kl_decomposition(everyone, z, mask=mask, rows=rows)
        else:
            terms = self.kl_decomposition(q, z, mask=mask)
        objective = objectives.beta_tc_elbo(reconstruction, terms, self.beta)
        kl = tf.reduce_sum(self.kl_per_dimension(q), axis=-1)
        metrics = dict(elbo=objectives.elbo_from_terms(reconstruction, kl),
                       reconstruction=reconstruction, kl=kl,
                       mutual_information=terms.mutual_information,
                       total_correlation=terms.total_correlation,
                       dimension_kl=terms.dimension_kl)
        return ObjectiveValue(loss=-objective, metrics=metrics)


__all__ = ["BetaTCVAE"]
