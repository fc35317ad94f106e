"""The tf.data pipeline from in-memory arrays to training batches.

Batched (``batch_size`` given), the pipeline moves indices, not images:

1. ``Dataset.range(N)``, shuffled over the whole split (an exact uniform permutation),
   reshuffled every epoch from ``seed``, and batched: int64 scalars are all that pass through
   the shuffle buffer;
2. one ``tf.gather`` per batch from the stored uint8 pixels (4x less memory than float32),
   instead of slicing, caching, shuffling and re-assembling every example as a tensor of its own
   (on a small machine the input pipeline shares the cores with training: ``benchmarks/
   throughput.py``'s default path against its in-memory "tuned" path measures what it costs),
   without tf.data's autotuning, whose thread stalls the first step of many epochs
   (:data:`WITHOUT_AUTOTUNE`);
3. decode, vectorised over the batch: ``float32 / pixel_scale`` into [0, 1], then
   ``"threshold"`` (x > 0.5) or ``"dynamic"`` binarization (a fresh draw every time an example
   is used, from 16 random bits a pixel: :func:`draw_binary`), then ``flatten``;
4. ``prefetch``.

Unbatched, examples are sliced one by one (``from_tensor_slices``, ``cache()``, ``shuffle``).
"""

import numpy as np
import tensorflow as tf

BINARIZE_MODES = (None, "threshold", "dynamic", "fixed")

#: tf.data options of the index pipelines: no autotuning. An autotuned pipeline's iterator runs a
#: tuning thread, and destroying the iterator waits for that thread's current cycle: ``fit`` makes
#: a new iterator every epoch, so the first step of an epoch often stalled by 2-3 s on 2 CPU cores
#: (an MNIST epoch is 2.5 s). The pipeline's parallelism and prefetching then take tf.data's
#: defaults for ``AUTOTUNE`` (one thread per core; one batch ahead).
WITHOUT_AUTOTUNE = tf.data.Options()
WITHOUT_AUTOTUNE.autotune.enabled = False

#: the attribute of a dataset made by :func:`make_dataset` that holds every value its images can
#: take (float32, 1-D, as decoded): a model checks these once, in NumPy, instead of every batch
#: (``TrainingLoop.checked_data``). A transformed dataset is a new object, without it.
VALUES_ATTRIBUTE = "tfvae_values"


def make_dataset(images, labels, pixel_scale, *, flatten=False, binarize=None, batch_size=None,
                 shuffle=False, seed=None, cache=True, prefetch=True, drop_remainder=False):
    """A ``tf.data.Dataset`` of ``(image, label)`` from uint8 ``images [N, H, W, C]``.

    Args:
      images: uint8 array ``[N, H, W, C]``; ``pixel_scale`` maps onto 1.0.
      labels: int64 array ``[N]``.
      pixel_scale: the stored value of a white pixel (255, 16, 1).
      flatten: yield images as ``[H * W * C]`` vectors.
      binarize: ``None``; ``"threshold"``: x > 0.5; ``"dynamic"``: a fresh draw
        b ~ Bernoulli(x) every time an example is used (Burda et al. 2015), so E[b] = x;
        ``"fixed"``: one draw b ~ Bernoulli(x) per example from ``seed`` (0 when None), the same
        on every pass: a binarised test set for log-likelihoods comparable with the literature.
      batch_size, drop_remainder: ``Dataset.batch`` arguments; ``None`` yields single examples.
      shuffle, seed: reshuffle every epoch from ``seed``; the dynamic binarization's noise is also
        drawn from ``seed``, so a seeded pipeline replays exactly, epoch by epoch.
      cache: unbatched only: keep the sliced examples after the first epoch (``Dataset.cache``);
        batches gather from the arrays, which are in memory already.
      prefetch: overlap input with training (``tf.data.AUTOTUNE``).
    """
    num_examples = len(images)
    if binarize == "fixed":
        rng = np.random.default_rng(0 if seed is None else seed)
        # b ~ Bernoulli(x): P(u < x) = x for u ~ Uniform[0, 1); stays uint8 (0 or pixel_scale)
        images = np.where(rng.random(images.shape, dtype=np.float32) * pixel_scale < images,
                          pixel_scale, 0).astype(images.dtype)
        binarize = None
    decoded = _decoder(float(pixel_scale), binarize, flatten, example_rank=images.ndim - 1)
    if batch_size is None:
        dataset = tf.data.Dataset.from_tensor_slices((images, labels))
        if cache:
            dataset = dataset.cache()
        if shuffle:
            dataset = dataset.shuffle(max(num_examples, 1), seed=seed, reshuffle_each_iteration=True)
        decode = decoded if binarize == "dynamic" else lambda image, label: decoded((image, label))
    else:
        dataset = _index_batches(num_examples, batch_size, shuffle, seed, drop_remainder)
        stored_images, stored_labels = tf.constant(images), tf.constant(labels)

        def decode(index, *seed):
            # the gather and the decoding in one map: a map is a hand-off between threads, which
            # costs as much as the decoding itself on 2 busy cores
            return decoded((tf.gather(stored_images, index), tf.gather(stored_labels, index)), *seed)
    if binarize == "dynamic":
        # One [2]-shaped stateless seed per element (an example or a batch); with
        # rerandomize_each_iteration every epoch gets new seeds, still a fixed function of `seed`.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        dataset = tf.data.Dataset.zip((dataset, seeds))
    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if prefetch:
        dataset = dataset.prefetch(tf.data.AUTOTUNE)
    dataset = dataset.with_options(WITHOUT_AUTOTUNE)
    setattr(dataset, VALUES_ATTRIBUTE, decoded_values(images, pixel_scale, binarize))
    return dataset


def decoded_values(images, pixel_scale, binarize):
    """The values the decoded ``images`` can take, float32 as the decoder computes them: 0 and 1
    when binarised, else every level from the lowest to the highest stored, over ``pixel_scale``
    (a superset of the levels present, found in two passes over the array).

        >>> decoded_values(np.array([[0, 1], [2, 1]], np.uint8), 2, None)
        array([0. , 0.5, 1. ], dtype=float32)
    """
    if binarize is not None:
        return np.array([0.0, 1.0], np.float32)
    images = np.asarray(images)
    if images.size == 0:
        return np.zeros([0], np.float32)
    if images.dtype.kind in "ui":
        levels = np.arange(int(images.min()), int(images.max()) + 1)
    else:
        levels = np.unique(images)
    return levels.astype(np.float32) / np.float32(pixel_scale)


def index_batches(arrays, batch_size, *, shuffle=False, seed=None, drop_remainder=False):
    """Batches of in-memory ``arrays`` (a nest of arrays with a common first dimension N) that
    move indices, not examples: the indices 0..N-1, shuffled over all of N (a uniform permutation
    drawn in one op, a new one every pass from ``seed``), batched, then one ``tf.gather`` per
    batch and array. One pass (``ceil(N / batch_size)`` batches, or ``floor`` with ``drop_remainder``).

    Example:
      >>> batches = index_batches(np.arange(10.0), 4, shuffle=True, seed=0)
      >>> [len(b) for b in batches]
      [4, 4, 2]
    """
    stored = tf.nest.map_structure(tf.constant, arrays)
    dataset = _index_batches(len(tf.nest.flatten(arrays)[0]), batch_size, shuffle, seed, drop_remainder)
    dataset = dataset.map(lambda index: tf.nest.map_structure(lambda array: tf.gather(array, index), stored))
    return dataset.with_options(WITHOUT_AUTOTUNE)


#: the second word of the permutation's stateless seed, so that it never shares a Philox key with
#: the dynamic binarization's seeds drawn from the same ``Dataset.random(seed)`` stream
_PERMUTATION_STREAM = 0x5EED


def _index_batches(num_examples, batch_size, shuffle, seed, drop_remainder):
    """Batches of indices into N examples; with ``shuffle``, every pass (every new iterator) a new
    uniform permutation of all N, drawn in one op (``stateless_shuffle``) from a seed that
    ``Dataset.random(seed)`` draws anew each pass, so a seeded pipeline replays exactly.

    Not ``Dataset.shuffle(N)``: its buffer is filled one element at a time before the first batch
    of every pass, and ``fit`` makes a new iterator every epoch. On MNIST at batch 1000 on 2 CPU
    cores, drawing the order in one op made an epoch 18 % faster (``benchmarks/RESULTS.md``,
    eighth session)."""
    if not shuffle:
        return tf.data.Dataset.range(num_examples).batch(batch_size, drop_remainder=drop_remainder)
    full, rest = divmod(num_examples, batch_size)
    remainder = rest > 0 and not drop_remainder

    def batches_of(pass_seed):
        key = tf.stack([pass_seed, tf.constant(_PERMUTATION_STREAM, tf.int64)])
        order = tf.random.experimental.stateless_shuffle(tf.range(num_examples, dtype=tf.int64), seed=key)
        batches = tf.data.Dataset.from_tensor_slices(tf.reshape(order[:full * batch_size], [full, batch_size]))
        return batches.concatenate(tf.data.Dataset.from_tensors(order[full * batch_size:])) if remainder else batches

    passes = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    # flat_map hides the number of batches, which fit's steps and the replica padding read
    return passes.flat_map(batches_of).apply(tf.data.experimental.assert_cardinality(full + remainder))


def draw_binary(probabilities, seed):
    """b ~ Bernoulli(p) elementwise, as float32 0/1, from 16 random bits per element.

    With u uniform on {0, ..., 65535}, P(u < 65536 p - 1/2) = ceil(65536 p - 1/2) / 65536: p
    rounded to the nearest multiple of 2^-16 (within 2^-17 of p), so exactly 0 at p = 0, 1 at
    p = 1, and exact for pixels of 4-bit data (k / 16). Two draws share one 32-bit word of
    stateless Philox output, which is most of the cost of the draw: half the words of one float32
    uniform per element, about 1.5x faster on a batch of 1,000 MNIST images on 2 CPU cores
    (``benchmarks/RESULTS.md``). Not under XLA: its Philox on a CPU is 3x slower than TF's kernel.

    Args:
      probabilities: float32 tensor of p in [0, 1], any shape.
      seed: ``[2]`` int stateless seed; the same seed gives the same draw.

    Example:
      >>> b = draw_binary(tf.constant([0.0, 0.5, 1.0]), seed=[0, 1])
      >>> b.numpy()[[0, 2]]
      array([0., 1.], dtype=float32)
    """
    count = tf.size(probabilities)
    words = tf.random.stateless_uniform([(count + 1) // 2], seed=seed, minval=None, maxval=None, dtype=tf.uint32)
    halves = tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:count]
    uniform = tf.reshape(tf.cast(halves, tf.float32), tf.shape(probabilities))
    return tf.cast(uniform < probabilities * 65536.0 - 0.5, tf.float32)


def _decoder(pixel_scale, binarize, flatten, example_rank):
    """The map function: uint8 ([batch,] H, W, C) -> float32 in [0, 1], binarized, flattened."""

    def to_float(image):
        image = tf.cast(image, tf.float32) / pixel_scale
        if binarize == "threshold":
            image = tf.cast(image > 0.5, tf.float32)
        return image

    def reshape(image):
        if not flatten:
            return image
        size = image.shape[-example_rank:].num_elements()
        # static shapes, so Keras layers downstream see the feature size
        return tf.reshape(image, [-1, size] if image.shape.rank > example_rank else [size])

    def decode(element, seed=None):
        """``element``: ``(image, label)``; ``seed``: the stateless seed of a dynamic binarisation."""
        image, label = element
        image = to_float(image)
        if binarize == "dynamic":
            image = draw_binary(image, seed)
        return reshape(image), label

    return decode
