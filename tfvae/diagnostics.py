"""Diagnostics of training signals: the signal-to-noise ratio of stochastic gradients."""

import numbers

import numpy as np
import tensorflow as tf

_SUMMARIES = ("mean", "median", None)


def gradient_snr(model, data, num_repeats=100, objective=None, summary="mean", seed=None):
    """Signal-to-noise ratio of the encoder's and the decoder's stochastic gradients,

        SNR_i = |E[g_i]| / std(g_i),

    for every parameter i, over ``num_repeats`` independent gradient estimates on the same batch
    (Rainforth et al. 2018). Under IWAE_K the encoder's SNR falls like 1/√K while the decoder's
    rises like √K.

    The gradients are those the model's ``train_step`` applies, from the same code:
    :meth:`~tfvae.models.training.TrainingLoop.compute_gradients` (the mean loss over the batch
    plus the regularisation losses, or, when the objective returns ``surrogates``, each group's
    own surrogate with respect to that group's variables, so PIWAE's encoder SNR is that of its
    MIWAE gradient), split by :meth:`~tfvae.models.training.TrainingLoop.variable_groups`. A
    loss scale (float16) multiplies every estimate alike and leaves the SNR unchanged.

    Args:
      model: a :class:`tfvae.models.base.VariationalModel`.
      data: one batch of images ``[batch, H, W, C]`` (array or tensor); the SNR is a property of
        the gradient estimator on this batch.
      num_repeats: number of gradient estimates (≥ 2).
      objective: ``None`` for the model's own ``compute_objective``, or a callable
        ``(model, images) -> ObjectiveValue`` or ``-> per-example loss [batch]`` (e.g.
        ``lambda m, x: -tfvae.objectives.iwae(m.log_weights(x, 64))``).
      summary: ``"mean"`` or ``"median"`` over the parameters whose gradient varies, or ``None``
        for the per-parameter arrays.
      seed: if given, ``tf.random.set_seed(seed)`` first, for a reproducible figure.

    Returns:
      dict ``{"encoder": snr, "decoder": snr}``: floats, or flat numpy arrays when ``summary`` is
      None (NaN where the gradient never varies, e.g. a parameter that gets no gradient).

    Example:
      >>> snr = gradient_snr(model, test_images[:100], num_repeats=200)
      >>> snr["encoder"], snr["decoder"]
    """
    if isinstance(num_repeats, bool) or not isinstance(num_repeats, numbers.Integral) or num_repeats < 2:
        raise ValueError(f"num_repeats must be an integer >= 2, got {num_repeats!r}")
    if summary not in _SUMMARIES:
        raise ValueError(f"summary must be one of {_SUMMARIES}, got {summary!r}")
    if objective is not None and not callable(objective):
        raise ValueError(f"objective must be None or a callable (model, images) -> loss, got {objective!r}")
    images = _as_batch(model, data)
    if seed is not None:
        tf.random.set_seed(seed)

    groups = model.variable_groups()
    step = _gradient_fn(model, objective, groups)
    sums = {name: 0.0 for name in groups}
    squares = {name: 0.0 for name in groups}
    first = None
    for _ in range(int(num_repeats)):
        gradients = {name: value.numpy().astype(np.float64) for name, value in step(images).items()}
        # Shifted sums (by the first estimate) keep the variance accurate when |E[g]| >> std(g).
        if first is None:
            first = gradients
        for name, value in gradients.items():
            centred = value - first[name]
            sums[name] = sums[name] + centred
            squares[name] = squares[name] + centred ** 2
    result = {}
    for name in groups:
        mean_centred = sums[name] / num_repeats
        variance = (squares[name] - num_repeats * mean_centred ** 2) / (num_repeats - 1)
        std = np.sqrt(np.maximum(variance, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = np.where(std > 0, np.abs(mean_centred + first[name]) / std, np.nan)
        if summary is None:
            result[name] = snr
        elif np.all(np.isnan(snr)):
            result[name] = float("nan")
        else:
            result[name] = float(np.nanmean(snr) if summary == "mean" else np.nanmedian(snr))
    return result


def _gradient_fn(model, objective, groups):
    """A compiled ``images -> {group: flat gradient}``: the model's own gradient computation
    (:meth:`tfvae.models.training.TrainingLoop.compute_gradients`, what ``train_step`` applies,
    surrogates, regularisation losses and loss scaling included), split by group."""
    group_of = {id(v): name for name, variables in groups.items() for v in variables}

    @tf.function
    def step(images):
        gradients, variables, _ = model.compute_gradients(images, training=True, objective=objective)
        parts = {name: [] for name in groups}
        for gradient, variable in zip(gradients, variables):
            if id(variable) not in group_of:
                continue
            # a variable the objective does not reach gets a zero gradient (an SNR of NaN)
            gradient = tf.zeros_like(variable) if gradient is None else tf.convert_to_tensor(gradient)
            parts[group_of[id(variable)]].append(tf.reshape(tf.cast(gradient, tf.float32), [-1]))
        return {name: tf.concat(values, axis=0) if values else tf.zeros([0]) for name, values in parts.items()}

    return step


def _as_batch(model, data):
    if isinstance(data, tf.data.Dataset):
        raise ValueError("gradient_snr takes one batch of images [batch, H, W, C], not a tf.data.Dataset; "
                         "pass e.g. next(iter(dataset))[0]")
    images = tf.convert_to_tensor(data, tf.float32)
    image_shape = tuple(model.image_shape)
    if images.shape.rank != 4 or tuple(images.shape[1:]) != image_shape:
        raise ValueError(f"gradient_snr: images must be shaped [batch, {', '.join(map(str, image_shape))}], "
                         f"got {tuple(images.shape)}")
    if not bool(tf.reduce_all(tf.math.is_finite(images))):
        raise ValueError("gradient_snr: the images contain NaN or Inf")
    return images


__all__ = ["gradient_snr"]
