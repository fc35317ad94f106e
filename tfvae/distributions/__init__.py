"""TFP distributions of tfvae's own (those of Variational Sparse Coding).

* :class:`SpikeAndSlab`: ``gamma * Normal(loc, scale) + (1 - gamma) * delta_0`` per dimension, the
  prior and posterior of Variational Sparse Coding, with a closed-form SpikeAndSlab ‖ SpikeAndSlab
  KL registered in ``tfp.distributions.kl_divergence`` and an optional relaxed, reparameterized
  sampler.
* :class:`RelaxedBernoulli`: VSC's uniform-noise relaxation ``sigmoid((eta - 1 + p) / temperature)``
  of a Bernoulli (not the Concrete relaxation of ``tfd.RelaxedBernoulli``); its samples stay
  strictly inside (0, 1) in floating point, so ``log_prob`` is finite on them.

Example::

    import tensorflow_probability as tfp
    from tfvae.distributions import SpikeAndSlab
    kl = tfp.distributions.kl_divergence(SpikeAndSlab(1.0, 0.5, probs=0.3),
                                         SpikeAndSlab(0.0, 1.0, probs=0.01))
"""

from tfvae.distributions.relaxed_bernoulli import RelaxedBernoulli
from tfvae.distributions.spike_and_slab import SpikeAndSlab

__all__ = ["RelaxedBernoulli", "SpikeAndSlab"]
