"""The importance-sampled estimator behind ``tfvae.evaluation.log_likelihood`` and the served
``elbo`` / ``log_likelihood`` signatures (:mod:`tfvae.export`): one estimator, one seed scheme.

With K draws ``z_k ~ q(z|x)`` and log-weights ``w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x)``
(:meth:`tfvae.models.base.VariationalModel.log_weights`)::

    elbo           = (1/K) Σ_k w_k                 (unbiased estimate of the ELBO)
    log_likelihood = log (1/K) Σ_k exp(w_k)        (the IWAE bound; tends to log p(x) as K grows)

Memory stays bounded whatever K and the number of examples: examples are taken ``batch_size``
at a time and their K draws ``chunk_size`` at a time, each chunk folded into a running sum and
a running ``reduce_logsumexp``, so at most ``batch_size · chunk_size`` codes are decoded at once.

Seeds. Example n's draws depend on the user's seed s, on n (its index in the data: 0, 1, ...
from the first example) and on K only, never on the batch or chunk sizes or on the other
examples, so the served signature and the evaluation function give the same value per example
whatever batches each was given:

* s (any integer in [−2⁶³, 2⁶³): a Python int, or the signature's int32 scalar) becomes the
  stateless seed ``[s >> 32, s mod 2³²]`` (two int32 words);
* example n gets ``fold_in(fold_in(seed, n >> 32), n mod 2³²)`` (``tf.random.fold_in``), so the
  index never overflows an int32, whatever the size of the data;
* its draws come in blocks of G = :data:`SAMPLES_PER_SEED`: block b holds draws
  ``b·G … min((b+1)·G, K) − 1``, drawn by one call
  ``q(z|x_n).sample(min(G, K − b·G), seed=fold_in(example seed, b))``.

Chunks are whole blocks (``chunk_size`` is a multiple of G), so they only decide how many
blocks are decoded at once. The draws run as TensorFlow ops outside XLA even when the
log-weights are XLA-compiled (``jit_compile=True``): XLA's stateless random numbers differ from
TensorFlow's kernels, and the SavedModel served by TF Serving runs without XLA.

Example:
  >>> elbo, log_likelihood = log_weight_statistics(model, images, num_samples=5000, seed=0,
  ...                                              batch_size=100, jit_compile=True)
"""

import numbers

import tensorflow as tf

#: draws per stateless seed (see the module docstring); every chunk size is a multiple of it.
#: Large enough that the per-seed work (one map iteration, one random-number op) is small beside
#: the draws' decoding; small K costs nothing extra (a block draws at most K).
SAMPLES_PER_SEED = 250

#: draws decoded at once per example, unless told otherwise
DEFAULT_CHUNK_SIZE = 250

_INT64_RANGE = (-2 ** 63, 2 ** 63)


def is_supported(model):
    """Whether ``model`` has what the estimator needs: ``encode_params``,
    ``posterior_from_params`` (q(z|x)), ``log_weights`` (taking ``codes``), ``latent_dim``."""
    return all(callable(getattr(model, name, None)) for name in
               ("encode_params", "posterior_from_params", "log_weights")) and hasattr(model, "latent_dim")


def check_chunk_size(chunk_size):
    """``chunk_size`` as an int, or a ValueError unless it is a positive multiple of
    :data:`SAMPLES_PER_SEED`."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral) or chunk_size < 1 \
            or chunk_size % SAMPLES_PER_SEED:
        raise ValueError(f"chunk_size must be a positive multiple of {SAMPLES_PER_SEED} (the draws per "
                         f"stateless seed, tfvae.estimators.SAMPLES_PER_SEED), got {chunk_size!r}")
    return int(chunk_size)


def check_seed(seed):
    """A Python integer seed in [−2⁶³, 2⁶³), or a ValueError."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) \
            or not _INT64_RANGE[0] <= seed < _INT64_RANGE[1]:
        raise ValueError(f"seed must be an integer in [-2**63, 2**63), got {seed!r}")
    return int(seed)


def _int32_words(value):
    """``(value >> 32, value mod 2³²)`` of an int64 tensor, each as an int32 (the low word read
    as a signed 32-bit integer), with no overflow."""
    value = tf.cast(value, tf.int64)
    high = tf.bitwise.right_shift(value, 32)              # arithmetic: within int32 for any int64
    low = tf.bitwise.bitwise_and(value, 0xFFFFFFFF)
    low = tf.where(low >= 2 ** 31, low - 2 ** 32, low)
    return tf.cast(high, tf.int32), tf.cast(low, tf.int32)


def stateless_seed(seed):
    """The stateless seed ``[s >> 32, s mod 2³²]`` (int32 ``[2]``) of an integer ``s``: a Python
    int in [−2⁶³, 2⁶³) or an int32/int64 scalar tensor. For s in the int32 range it is
    ``[0, s]`` (``[-1, s]`` for negative s)."""
    if not tf.is_tensor(seed):
        seed = tf.constant(check_seed(seed), tf.int64)
    return tf.stack(_int32_words(tf.reshape(seed, [])))


def example_seeds(seed, indices):
    """One stateless seed per example, ``[N, 2]`` int32: ``fold_in(fold_in(seed, n >> 32),
    n mod 2³²)`` for each index n of ``indices`` (int64 ``[N]``)."""
    high, low = _int32_words(indices)
    fold_in = tf.random.experimental.stateless_fold_in
    return tf.map_fn(lambda words: fold_in(fold_in(seed, words[0]), words[1]), tf.stack([high, low], axis=1),
                     fn_output_signature=tf.TensorSpec([2], tf.int32))


def draw_codes(model, params, seeds, num_samples, first, chunk_size):
    """Draws ``first … min(first + chunk_size, K) − 1`` of each example, ``[count, N, latent]``.

    Block b of example n is ``q(z|x_n).sample(min(G, K − b·G), seed=fold_in(seeds[n], b))``
    (G = :data:`SAMPLES_PER_SEED`): one map over the chunk's (example, block) pairs, whatever
    the chunk's size.

    Args:
      model: has ``posterior_from_params`` and ``latent_dim``.
      params: the encoder's float32 outputs ``[N, P]`` (``model.encode_params``).
      seeds: ``[N, 2]`` per-example seeds (:func:`example_seeds`).
      num_samples: K, an int32 scalar.
      first: the chunk's first draw, a multiple of :data:`SAMPLES_PER_SEED` (int32 scalar).
      chunk_size: draws per chunk, a multiple of :data:`SAMPLES_PER_SEED` (int or int32 scalar).
    """
    fold_in = tf.random.experimental.stateless_fold_in
    count = tf.minimum(chunk_size, num_samples - first)
    blocks = (count + SAMPLES_PER_SEED - 1) // SAMPLES_PER_SEED
    size = tf.shape(params)[0]

    def one_block(args):
        example_params, seed, block = args
        q = model.posterior_from_params(example_params[None])        # batch shape [1]
        size = tf.minimum(SAMPLES_PER_SEED, num_samples - block * SAMPLES_PER_SEED)
        codes = q.sample(size, seed=fold_in(seed, block))[:, 0]
        # only K's last block is short, and it ends its example's row: padding it to G rows
        # keeps the map's outputs alike, and the padding is cut off below
        return tf.pad(codes, [[0, SAMPLES_PER_SEED - size], [0, 0]])

    pairs = (tf.repeat(params, blocks, axis=0), tf.repeat(seeds, blocks, axis=0),
             tf.tile(first // SAMPLES_PER_SEED + tf.range(blocks), [size]))
    codes = tf.map_fn(one_block, pairs,
                      fn_output_signature=tf.TensorSpec([SAMPLES_PER_SEED, model.latent_dim], tf.float32))
    codes = tf.reshape(codes, [size, blocks * SAMPLES_PER_SEED, model.latent_dim])[:, :count]
    return tf.transpose(codes, [1, 0, 2])


def log_weight_statistics(model, images, num_samples, seed, first_index=0, chunk_size=DEFAULT_CHUNK_SIZE,
                          batch_size=100, jit_compile=False):
    """``(elbo, log_likelihood)``, each float32 ``[N]``, from K = ``num_samples`` importance draws
    per example (see the module docstring for the formulas and the seed scheme).

    Runs eagerly or inside ``tf.function`` (the loops are ``tf.while_loop``).

    Args:
      model: a :class:`tfvae.models.base.VariationalModel` (see :func:`is_supported`).
      images: float32 ``[N, *input_shape]``.
      num_samples: K ≥ 1, a Python int or an int32 scalar tensor.
      seed: an integer (Python int in [−2⁶³, 2⁶³), or an int32/int64 scalar tensor), or an int32
        ``[2]`` tensor made by :func:`stateless_seed`.
      first_index: the index of ``images[0]`` in the data (example n's draws depend on n).
      chunk_size: draws decoded at once per example, a multiple of :data:`SAMPLES_PER_SEED` (a
        Python int, checked, or an int32 scalar tensor, not checked).
      batch_size: examples decoded at once, a Python int or an int32 scalar tensor.
      jit_compile: XLA-compile the log-weights of each chunk (the draws stay outside XLA, so the
        values equal the uncompiled ones up to float rounding).
    """
    if not is_supported(model):
        raise ValueError(f"{type(model).__name__} has no encode_params, posterior_from_params, log_weights "
                         "and latent_dim; importance sampling needs q(z|x), p(x|z) and p(z)")
    if not tf.is_tensor(chunk_size):
        chunk_size = check_chunk_size(chunk_size)
    images = tf.convert_to_tensor(images, tf.float32)
    num_samples = tf.reshape(tf.cast(num_samples, tf.int32), [])
    if tf.is_tensor(seed) and seed.shape.rank == 1:
        seed = tf.cast(seed, tf.int32)
    else:
        seed = stateless_seed(seed)
    first_index = tf.cast(first_index, tf.int64)
    count = tf.shape(images)[0]
    batch_size = tf.maximum(tf.cast(batch_size, tf.int32), 1)

    def weigh(batch, codes):
        # float32 whatever the networks compute in (mixed precision)
        return tf.cast(model.log_weights(batch, codes=codes), tf.float32)

    if jit_compile:
        weigh = tf.function(weigh, jit_compile=True)

    def one_batch(start):
        batch = images[start:start + batch_size]
        size = tf.shape(batch)[0]
        seeds = example_seeds(seed, first_index + tf.cast(tf.range(start, start + size), tf.int64))
        params = model.encode_params(batch)

        def chunk(first, total, log_total):
            log_weights = weigh(batch, draw_codes(model, params, seeds, num_samples, first, chunk_size))
            log_total = tf.reduce_logsumexp(tf.stack([log_total, tf.reduce_logsumexp(log_weights, axis=0)]), axis=0)
            return first + chunk_size, total + tf.reduce_sum(log_weights, axis=0), log_total

        _, total, log_total = tf.while_loop(
            lambda first, *_: first < num_samples, chunk,
            (tf.constant(0), tf.zeros([size]), tf.fill([size], float("-inf"))))
        return total, log_total

    def next_batch(start, totals, log_totals):
        total, log_total = one_batch(start)
        index = start // batch_size
        return start + batch_size, totals.write(index, total), log_totals.write(index, log_total)

    arrays = [tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False) for _ in range(2)]
    _, totals, log_totals = tf.while_loop(lambda start, *_: start < count, next_batch,
                                          (tf.constant(0), *arrays))
    k = tf.cast(num_samples, tf.float32)
    empty = tf.zeros([0])
    # reshaped to [N]: the static shape a SavedModel signature declares (cond of concat has none)
    total = tf.reshape(tf.cond(count > 0, totals.concat, lambda: empty), [-1])
    log_total = tf.reshape(tf.cond(count > 0, log_totals.concat, lambda: empty), [-1])
    return total / k, log_total - tf.math.log(k)


__all__ = ["DEFAULT_CHUNK_SIZE", "SAMPLES_PER_SEED", "check_chunk_size", "check_seed", "draw_codes",
           "example_seeds", "is_supported", "log_weight_statistics", "stateless_seed"]
