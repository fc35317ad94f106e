"""Observation models p(x|z): turn the decoder's raw output into a tfd distribution over features.

Each likelihood is a small Keras layer (so a learned parameter is a tracked, saved weight) with a
``distribution(params)`` method returning a tfd distribution whose ``log_prob(x)`` is one number
per example and whose ``mean()`` is what ``decode`` shows.

Feature shapes of any rank. An example is a feature tensor of shape ``F`` (``[D]`` vectors,
``[H, W, C]`` images, ...). The layer is built with ``event_ndims = len(F)`` (default 3, images)
and returns ``tfd.Independent(elementwise, reinterpreted_batch_ndims=event_ndims)``: log_prob
sums over exactly the trailing ``event_ndims`` axes, and every axis before them (Monte Carlo
samples, batch) is a batch axis. (For an event of several axes the element-wise distribution is
built on the event flattened to one axis and reshaped back by ``tfb.Reshape``: the same
distribution, computed faster by XLA on a CPU.) ``event_ndims`` is a constructor argument kept in
``get_config`` rather than an argument of ``distribution``: the rank of the data is a fixed
property of a model, so it is given once, saved with the layer, and no caller (training step,
evaluation, export) can pass a different one by mistake.

Parameter layout. The decoder outputs ``params`` of shape ``[..., *F[:-1], F[-1] * P]`` with
``P = params_per_pixel`` (per feature; the name predates vectors). When ``P > 1`` the last axis
holds P consecutive blocks of ``F[-1]`` entries, one block per parameter (``tf.split`` order),
e.g. ``[raw total_count | logits]`` for the negative binomial. ``params`` is cast to float32
first, so a float16/bfloat16 (mixed-precision) decoder still gets float32 densities.

=======================  ===  ==============  =================================================
name                      P   support         p(x_i | z), the decoder giving ...
=======================  ===  ==============  =================================================
``bernoulli``             1   binary          Bernoulli(sigmoid(logit)); ... logits
``continuous-bernoulli``  1   unit-interval   ContinuousBernoulli(λ = sigmoid(logit)); logits
``gaussian``              1   real            N(μ, σ²), σ = ``observation_scale`` fixed; μ
``gaussian-learned``      1   real            N(μ, σ²), one learned σ, initially
                                              ``observation_scale``; μ
``poisson``               1   counts          Poisson(exp(log_rate)); log rates
``negative-binomial``     2   counts          NegativeBinomial(r = softplus(a) + floor,
                                              logits); a and logits
=======================  ===  ==============  =================================================

Facts and data checks. This module is the one place that knows what each likelihood is a
density for; the data loader, the models, evaluation and export read it from here.
:func:`facts` gives a :class:`Facts` for a name or a layer without building one: its ``support``
(one of :data:`SUPPORTS`), its support in words, whether it is ``discrete`` (binary data and
counts: log p(x) is a log-probability and −log₂ p(x) / D bits per dimension a code length),
whether ``standardization`` (x − m) / s applies (real support only: an affine map of {0, 1},
[0, 1] or the counts leaves them) and what the encoder sees (log(1 + x) for counts).
:func:`check_data` returns a message for data outside the support (or None),
:func:`outside_support` marks those values, :func:`standardization_problem` says why a likelihood
cannot model standardised data. A layer's ``check_data(x)`` is :func:`check_data` for itself,
``data_warning(x)`` a message for data it accepts but models poorly (grey levels under
``bernoulli``), ``data_assertions(x)`` the same check as in-graph assertions.
``requires_unit_interval`` is derived from ``support``.

Example::

    >>> layer = get("poisson", event_ndims=1)            # counts vectors [D]
    >>> p = layer.distribution(decoder(z))               # decoder(z): [batch, D] log rates
    >>> p.log_prob(counts)                                # [batch]
    >>> layer.check_data(np.array([[1, 2.5]]))
    'the poisson likelihood models counts (non-negative integers); the data have non-integer values (e.g. 2.5)'
    >>> facts("poisson").support, facts("poisson").discrete, facts("poisson").encoder_input
    ('counts', True, 'log1p')
"""

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions
tfb = tfp.bijectors

#: what data each likelihood's density is for
SUPPORTS = ("binary", "unit-interval", "real", "counts")

#: support -> (the values in words, discrete, standardization applies, encoder input)
_SUPPORT_FACTS = {
    # binary: grey levels in [0, 1] are accepted with a warning (data_warning), so the check is [0, 1]
    "binary": ("values in [0, 1]", True, False, "x"),
    "unit-interval": ("values in [0, 1]", False, False, "x"),
    "real": ("finite real values", False, True, "x"),
    # counts span orders of magnitude: the encoder sees log(1 + x), as in scVI, so that a count
    # of 400 cannot saturate its first layer (p(x|z) stays a density of x itself)
    "counts": ("counts (non-negative integers)", True, False, "log1p"),
}

_REGISTRY = {}


def _register(*names):
    """Register a class under ``names`` (each with a builder ``(observation_scale, event_ndims)
    -> layer``, given by ``cls._from_name``) and as a Keras serializable."""
    def wrap(cls):
        cls = keras.saving.register_keras_serializable("tfvae")(cls)
        for name in names:
            _REGISTRY[name] = (cls, name)
        return cls
    return wrap


def _check_event_ndims(event_ndims):
    if isinstance(event_ndims, bool) or not isinstance(event_ndims, (int, np.integer)) \
            or event_ndims < 1:
        raise ValueError(f"event_ndims must be a positive integer (the number of trailing feature "
                         f"axes: 1 for vectors [D], 3 for images [H, W, C]), got {event_ndims!r}")
    return int(event_ndims)


def _check_number(what, value, low, strict=True):
    try:
        ok = math.isfinite(value) and (value > low if strict else value >= low)
    except TypeError:
        ok = False
    if isinstance(value, bool) or not ok:
        raise ValueError(f"{what} must be a finite number {'>' if strict else '>='} {low}, "
                         f"got {value!r}")
    return float(value)


class Likelihood(keras.layers.Layer):
    """Base class: ``distribution(params)`` = ``tfd.Independent`` over the ``event_ndims``
    trailing feature axes of ``_distribution(*parts)``, the element-wise distribution a subclass
    builds from the float32 parameter blocks ``parts`` (flattened to one axis when there are
    several; see the module docstring).

    Subclasses set ``params_per_pixel``, ``support`` (one of :data:`SUPPORTS`), ``kind`` (the
    name :func:`get` knows them by) and ``_distribution``.
    """

    params_per_pixel = 1
    support = "real"
    kind = None

    def __init__(self, event_ndims=3, **kwargs):
        super().__init__(**kwargs)
        self.event_ndims = _check_event_ndims(event_ndims)
        self.built = True

    @property
    def requires_unit_interval(self):
        """True when the data must lie in [0, 1] (``support`` binary or unit-interval)."""
        return self.support in ("binary", "unit-interval")

    def distribution(self, params):
        """p(x|z) for raw decoder outputs ``params`` ``[..., *F[:-1], F[-1] * params_per_pixel]``:
        batch shape ``[...]``, event shape ``F`` (``event_ndims`` axes), float32."""
        # mixed precision: the decoder may compute in float16/bfloat16; densities are float32
        params = tf.cast(params, tf.float32)
        rank, last = params.shape.rank, (params.shape[-1] if params.shape.rank else None)
        if rank is not None and rank < self.event_ndims:
            raise ValueError(f"{type(self).__name__} with event_ndims={self.event_ndims} needs "
                             f"params of rank >= {self.event_ndims}, got shape {params.shape}")
        if last is not None and last % self.params_per_pixel:
            raise ValueError(f"{type(self).__name__} takes {self.params_per_pixel} parameters per "
                             f"feature on the last axis, got {last} entries (shape {params.shape})")
        parts = (params,) if self.params_per_pixel == 1 else \
            tf.split(params, self.params_per_pixel, axis=-1)
        event = parts[0].shape[rank - self.event_ndims:] if rank is not None else None
        if self.event_ndims <= 1 or event is None or not event.is_fully_defined():
            return tfd.Independent(self._distribution(*parts), reinterpreted_batch_ndims=self.event_ndims)
        # The element-wise distribution over the event's values flattened into one axis, reshaped
        # back to the event shape (a bijection with zero log-Jacobian): the same density, but
        # XLA's CPU backend runs element-wise ops and their sum faster on one contiguous axis than
        # on [28, 28, 1]. An IWAE step (K = 50, batch 100) took 65-68 ms against a hand-written
        # step's 55-57 ms, and now as long as it (benchmarks/RESULTS.md, seventh session).
        size = event.num_elements()
        flat = [tf.reshape(part, tf.concat([tf.shape(part)[:-self.event_ndims], [size]], axis=0)) for part in parts]
        return tfd.TransformedDistribution(tfd.Independent(self._distribution(*flat), reinterpreted_batch_ndims=1),
                                           tfb.Reshape(event_shape_out=event, event_shape_in=[size]))

    def _distribution(self, *parts):
        raise NotImplementedError

    # ------------------------------------------------------------------------ data checks

    def check_data(self, x):
        """None when every value of ``x`` (array-like) lies in this likelihood's ``support``,
        else a message saying which values do not (:func:`check_data`)."""
        return check_data(self, x)

    def data_warning(self, x):
        """A message when ``x`` lies in the support but this likelihood models it poorly (None
        here; ``bernoulli`` warns about grey levels)."""
        return None

    def data_assertions(self, x):
        """:meth:`check_data` as a list of in-graph ``tf.debugging`` assertions on a float
        tensor ``x`` (for a training step; note XLA drops them)."""
        known = facts(self)
        says = f"tfvae: the {known.name} likelihood models {known.values}; the data have"
        checks = [tf.debugging.assert_all_finite(x, "tfvae: the data contain NaN or Inf")]
        if known.support in ("binary", "unit-interval"):
            checks += [
                tf.debugging.assert_greater_equal(tf.reduce_min(x), tf.cast(0, x.dtype),
                                                  message=f"{says} values below 0"),
                tf.debugging.assert_less_equal(tf.reduce_max(x), tf.cast(1, x.dtype),
                                               message=f"{says} values above 1")]
        elif known.support == "counts":
            checks += [
                tf.debugging.assert_greater_equal(tf.reduce_min(x), tf.cast(0, x.dtype),
                                                  message=f"{says} negative values"),
                tf.debugging.assert_equal(tf.reduce_all(tf.equal(x, tf.floor(x))), True,
                                          message=f"{says} non-integer values")]
        return checks

    # ------------------------------------------------------------------------ saving

    def get_config(self):
        return dict(super().get_config(), event_ndims=self.event_ndims)

    @classmethod
    def _from_name(cls, name, observation_scale, event_ndims):
        return cls(event_ndims=event_ndims, name="likelihood")


class _LogitBernoulli(tfd.Bernoulli):
    """tfd.Bernoulli with a log_prob of one softplus instead of tfd's two:
    ``x·l − softplus(l) = x log σ(l) + (1 − x) log(1 − σ(l))`` for every x (grey levels too),
    since log σ(l) = l − softplus(l). It halves the cost of the importance-sampled
    log-likelihood (:mod:`tfvae.estimators`, decoding thousands of codes per image), where this
    term dominates. Equal to tfd's for finite logits, which a decoder gives."""

    def _log_prob(self, event):
        logits = self._logits_parameter_no_checks()
        return tf.cast(event, logits.dtype) * logits - tf.math.softplus(logits)


@_register("bernoulli")
class BernoulliLikelihood(Likelihood):
    """p(x|z) = Π Bernoulli(x_i; sigmoid(logit_i)), a density over binary data.

    For grey levels in [0, 1] log_prob is the negative binary cross-entropy
    Σ x_i log p_i + (1 − x_i) log(1 − p_i): a usual training loss for MNIST-like data, but not a
    normalised density over [0, 1] (hence :meth:`data_warning`). Mean: sigmoid(logit).

        >>> BernoulliLikelihood(event_ndims=1).distribution([[0.0, 2.0]]).log_prob([[0.0, 1.0]])
    """

    support = "binary"
    kind = "bernoulli"

    def _distribution(self, logits):
        return _LogitBernoulli(logits=logits, dtype=tf.float32)

    def data_warning(self, x):
        """A message when ``x`` holds grey levels (values strictly between 0 and 1)."""
        x = np.asarray(x)
        if x.dtype.kind != "f" or x.size == 0:
            return None
        grey = np.count_nonzero((x > 0) & (x < 1))
        if not grey:
            return None
        return (f"the bernoulli likelihood is a density over binary values, but "
                f"{100.0 * grey / x.size:.1f}% of the values are grey levels strictly between 0 "
                "and 1: its log_prob there is the negative binary cross-entropy, not a normalised "
                "log-likelihood, and cannot be compared with published NLLs. Use the "
                "'continuous-bernoulli' likelihood (normalised on [0, 1]) or binarize the data "
                "(e.g. x > 0.5, or a Bernoulli draw per value).")


@_register("continuous-bernoulli")
class ContinuousBernoulliLikelihood(Likelihood):
    """p(x|z) = Π CB(x_i; λ_i), λ_i = sigmoid(logit_i), the continuous Bernoulli (Loaiza-Ganem and
    Cunningham, 2019), normalised on [0, 1]::

        CB(x; λ) = C(λ) λ^x (1 − λ)^(1 − x),   C(λ) = 2 artanh(1 − 2λ) / (1 − 2λ)   (C(½) = 2)

    Mean (what ``decode`` shows): λ / (2λ − 1) + 1 / (2 artanh(1 − 2λ)), ½ at λ = ½; note it is
    not λ. ``tfd.ContinuousBernoulli`` evaluates both in logit space with series near logit 0,
    where the closed forms are 0/0.

        >>> ContinuousBernoulliLikelihood(event_ndims=1).distribution([[0.0]]).mean()   # [[0.5]]
    """

    support = "unit-interval"
    kind = "continuous-bernoulli"

    def _distribution(self, logits):
        return tfd.ContinuousBernoulli(logits=logits)


@_register("gaussian", "gaussian-learned")
class GaussianLikelihood(Likelihood):
    """p(x|z) = Π N(x_i; μ_i, σ²), the decoder giving μ (also the mean).

    ``learn_scale=False``: σ = ``scale`` fixed. ``learn_scale=True``: one σ shared by all features,
    σ = min_scale + exp(log_scale) with ``log_scale`` a trainable weight initialised at
    log(scale − min_scale), so that σ starts at exactly ``scale``; the floor ``min_scale``
    (used only when learning) keeps constant features (e.g. a background) from driving σ to 0 and
    the likelihood to infinity, hence ``scale > min_scale`` is required.

        >>> layer = GaussianLikelihood(scale=0.1, learn_scale=True)
        >>> float(layer.current_scale())                       # 0.1
    """

    support = "real"

    def __init__(self, scale=0.1, learn_scale=False, min_scale=1e-3, event_ndims=3, **kwargs):
        super().__init__(event_ndims=event_ndims, **kwargs)
        self.scale = _check_number("the observation scale", scale, 0.0)
        self.min_scale = _check_number("min_scale", min_scale, 0.0, strict=False)
        self.learn_scale = bool(learn_scale)
        if self.learn_scale:
            if not self.scale > self.min_scale:
                raise ValueError(f"a learned observation scale starts at observation_scale and is "
                                 f"floored at min_scale, so observation_scale must exceed "
                                 f"min_scale={self.min_scale}; got {self.scale}")
            # autocast=False: read inside a mixed-precision layer's call, σ must stay float32
            self.log_scale = self.add_weight(
                name="log_scale", shape=(), dtype="float32", autocast=False,
                initializer=keras.initializers.Constant(math.log(self.scale - self.min_scale)))

    @property
    def kind(self):
        return "gaussian-learned" if self.learn_scale else "gaussian"

    def current_scale(self):
        """σ as a float32 scalar tensor."""
        if self.learn_scale:
            return self.min_scale + tf.exp(tf.cast(self.log_scale, tf.float32))
        return tf.constant(self.scale, tf.float32)

    def _distribution(self, loc):
        return tfd.Normal(loc=loc, scale=self.current_scale())

    def get_config(self):
        return dict(super().get_config(), scale=self.scale, learn_scale=self.learn_scale,
                    min_scale=self.min_scale)

    @classmethod
    def _from_name(cls, name, observation_scale, event_ndims):
        return cls(observation_scale, learn_scale=name == "gaussian-learned",
                   event_ndims=event_ndims, name="likelihood")


@_register("poisson")
class PoissonLikelihood(Likelihood):
    """p(x|z) = Π Poisson(x_i; exp(log_rate_i)) for counts, the decoder giving log rates;
    log p = x log r − r − log x!. Mean: the rate.

        >>> PoissonLikelihood(event_ndims=1).distribution([[0.0, 1.0]]).log_prob([[1.0, 3.0]])
    """

    support = "counts"
    kind = "poisson"

    def _distribution(self, log_rate):
        return tfd.Poisson(log_rate=log_rate)


@_register("negative-binomial")
class NegativeBinomialLikelihood(Likelihood):
    """p(x|z) = Π NB(x_i; r_i, logit_i) for over-dispersed counts, tfd's parameterisation: the
    number of successes before r failures, success probability p = sigmoid(logit)::

        NB(k; r, p) = Γ(k + r) / (Γ(r) k!) (1 − p)^r p^k,   mean r e^logit,
        variance mean (1 + mean / r)

    (scipy's ``nbinom(n=r, p=1 − p)``). The decoder gives 2 parameters per feature, blocks
    ``[a | logits]`` on the last axis, with r = softplus(a) + ``min_total_count``. The floor is
    needed because softplus underflows to exactly 0 in float32 for a ≲ −104, and at r = 0 the
    distribution degenerates to a point mass at 0: log Γ(r) and its gradient ψ(r) ≈ −1/r blow up
    (inf/NaN losses). With the floor they stay below log(1/floor) and 1/floor.

        >>> layer = NegativeBinomialLikelihood(event_ndims=1)
        >>> layer.distribution([[0.0, 0.0]]).mean()            # D = 1: r = log 2 + 1e-4, logit 0
    """

    params_per_pixel = 2
    support = "counts"
    kind = "negative-binomial"

    def __init__(self, min_total_count=1e-4, event_ndims=3, **kwargs):
        super().__init__(event_ndims=event_ndims, **kwargs)
        self.min_total_count = _check_number("min_total_count", min_total_count, 0.0)

    def total_count(self, raw):
        """r = softplus(raw) + min_total_count."""
        return tf.math.softplus(raw) + self.min_total_count

    def _distribution(self, raw_total_count, logits):
        return tfd.NegativeBinomial(total_count=self.total_count(raw_total_count), logits=logits)

    def get_config(self):
        return dict(super().get_config(), min_total_count=self.min_total_count)


def names():
    """The likelihood names :func:`get` accepts."""
    return tuple(_REGISTRY)


def _unknown(likelihood):
    return ValueError(f"unknown likelihood {likelihood!r}; expected one of {names()} or a likelihood "
                      "layer")


# ---------------------------------------------------------------------------- facts and checks

@dataclasses.dataclass(frozen=True)
class Facts:
    """What a likelihood is a density for (see the module docstring).

    Attributes:
      name: the likelihood's name (a layer's ``kind``).
      support: one of :data:`SUPPORTS`.
      values: the support in words, as messages say it (``"values in [0, 1]"``).
      discrete: binary data or counts: log p(x) is a log-probability (≤ 0) and −log₂ p(x) / D a
        code length in bits per dimension; otherwise log p(x) is a density, in units of x.
      standardization: whether a model may standardise the data, x ↦ (x − m) / s (real
        support only).
      encoder_input: what the encoder sees: ``"x"``, or ``"log1p"`` for log(1 + x) (counts).
    """

    name: str
    support: str
    values: str
    discrete: bool
    standardization: bool
    encoder_input: str


def facts(likelihood):
    """The :class:`Facts` of a likelihood name (without building its layer) or layer.

        >>> facts("gaussian-learned").standardization, facts("bernoulli").discrete
        (True, True)
    """
    if isinstance(likelihood, keras.layers.Layer):
        name, support = getattr(likelihood, "kind", None) or type(likelihood).__name__, \
            getattr(likelihood, "support", None)
    elif isinstance(likelihood, str) and likelihood in _REGISTRY:
        name, support = likelihood, _REGISTRY[likelihood][0].support
    else:
        raise _unknown(likelihood)
    if support not in _SUPPORT_FACTS:
        raise ValueError(f"the likelihood {name!r} declares support {support!r}; expected one of "
                         f"{SUPPORTS}")
    return Facts(name, support, *_SUPPORT_FACTS[support])


def _violations(support, x):
    """``[(description, mask, pick)]``, one per way finite values ``x`` can leave ``support``:
    ``mask`` marks them, ``description.format(pick(those values))`` says so."""
    if support in ("binary", "unit-interval"):
        return [("values below 0 (min {})", x < 0, np.min), ("values above 1 (max {})", x > 1, np.max)]
    if support == "counts":
        return [("negative values (min {})", x < 0, np.min),
                ("non-integer values (e.g. {})", x != np.floor(x), lambda values: values.flat[0])]
    return []


def outside_support(likelihood, x):
    """A boolean array shaped like ``x`` (numbers): True where a value is not in the support of
    ``likelihood`` (a name or a layer); NaN and ±Inf never are.

        >>> outside_support("poisson", [[0.0, 2.5, -1.0]])
        array([[False,  True,  True]])
    """
    support = facts(likelihood).support
    x = np.asarray(x)
    finite = np.isfinite(x)
    inside = np.where(finite, x, 0)  # 0 lies in every support
    outside = ~finite
    for _, mask, _ in _violations(support, inside):
        outside |= mask
    return outside


def check_data(likelihood, x):
    """None when every value of ``x`` (array-like) lies in the support of ``likelihood`` (a name
    or a layer), else one message naming the likelihood, its support and the values outside it.
    The models' data check (``fit``, ``evaluate``) and :func:`tfvae.evaluation.log_likelihood`
    give this message.

        >>> check_data("bernoulli", [0.0, 1.5])
        'the bernoulli likelihood models values in [0, 1]; the data have values above 1 (max 1.5)'
    """
    known = facts(likelihood)
    x = np.asarray(x)
    if x.dtype.kind == "b":
        x = x.astype(np.uint8)
    if x.dtype.kind not in "uif":
        return f"the {known.name} likelihood needs numeric data, got dtype {x.dtype}"
    problems = []
    finite = np.isfinite(x)
    if not finite.all():
        problems.append(f"{int((~finite).sum())} NaN or Inf values")
        x = x[finite]
    for description, mask, pick in _violations(known.support, x):
        if mask.any():
            problems.append(description.format(pick(x[mask]).item()))
    if not problems:
        return None
    return f"the {known.name} likelihood models {known.values}; the data have {', '.join(problems)}"


def standardization_problem(likelihood):
    """None when standardised data (x − m) / s fit ``likelihood`` (real support), else the one
    message every place that standardises (model constructor, :func:`tfvae.data.load_file`)
    raises: it names the likelihood and the fix."""
    known = facts(likelihood)
    if known.standardization:
        return None
    gaussian = ", ".join(repr(name) for name in names() if facts(name).standardization)
    return (f"standardization does not fit the {known.name!r} likelihood: it models "
            f"{known.values}, and standardized values (x - mean) / std leave that support, so "
            f"log p(x) would score other data than x. Use a likelihood of real values ({gaussian}) "
            "or do not standardize (standardization=None for a model, standardize=False for "
            "tfvae.data.load_file)")


def get(likelihood, observation_scale=0.1, event_ndims=None):
    """A likelihood layer from a name (see :func:`names` and the module docstring's table), or
    ``likelihood`` itself when it is already a :class:`keras.layers.Layer`.

    Args:
      likelihood: a name such as ``"bernoulli"`` or ``"negative-binomial"``, or a layer.
      observation_scale: σ of ``gaussian`` (its initial value for ``gaussian-learned``); other
        likelihoods have no scale and do not read it.
      event_ndims: number of trailing feature axes (1 for vectors [D], 3 for images [H, W, C]).
        None: 3 for a name; for a layer, the layer's own, and a different value is an error.

        >>> get("gaussian-learned", 0.2, event_ndims=1).current_scale()   # 0.2
    """
    if isinstance(likelihood, keras.layers.Layer):
        have = getattr(likelihood, "event_ndims", None)
        if event_ndims is not None and have is not None \
                and _check_event_ndims(event_ndims) != have:
            raise ValueError(f"the likelihood layer {likelihood.name!r} has event_ndims={have}, "
                             f"but event_ndims={event_ndims} was asked for")
        return likelihood
    if not isinstance(likelihood, str) or likelihood not in _REGISTRY:
        raise _unknown(likelihood)
    cls, name = _REGISTRY[likelihood]
    return cls._from_name(name, observation_scale, 3 if event_ndims is None else event_ndims)


__all__ = ["SUPPORTS", "Facts", "check_data", "facts", "outside_support", "standardization_problem",
           "Likelihood", "BernoulliLikelihood", "ContinuousBernoulliLikelihood",
           "GaussianLikelihood", "PoissonLikelihood", "NegativeBinomialLikelihood", "names", "get"]
