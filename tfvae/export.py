"""SavedModel export for TensorFlow Serving: named signatures that run with TensorFlow alone.

:func:`export_saved_model` writes a trained model as a SavedModel in TF Serving's versioned
layout. The SavedModel holds only TensorFlow graphs and variables: loading it needs neither
tfvae, nor Keras, nor TensorFlow Probability (``tf.saved_model.load`` or
``tensorflow_model_server``).

Layout (TF Serving serves the highest numbered version under a model's base path)::

    export_saved_model(model, "serving", name="vae", version=3)  ->  serving/vae/3/
    export_saved_model(model, "serving/vae", version=3)          ->  serving/vae/3/

so ``path`` is either a model *root* holding several models (give ``name``: the layout of
``export/models.config``) or one model's *base path* (no ``name``: what
``tensorflow_model_server --model_base_path`` takes). A version is written into a hidden
temporary folder beside it and renamed into place, so a server polling the base path never
sees a half-written version; an existing version is kept unless ``overwrite=True``.

Signatures (batch axis free, dtypes fixed; ``B`` = batch, ``L`` = latent size, ``[H, W, C]`` =
the model's image shape):

=================== ================================================ ===========================
signature           inputs                                           outputs
=================== ================================================ ===========================
``serving_default`` ``images`` float32 [B, H, W, C]                  ``model.serving_encode``:
                                                                     ``code_mean``, ``code_scale``
                                                                     float32 [B, L] (+ a family's
                                                                     own codes)
``decode``          ``codes`` float32 [B, L]                         ``images`` float32
                                                                     [B, H, W, C] = E[x|z]
``reconstruct``     ``images`` float32 [B, H, W, C]                  ``images`` = decode(encode(x))
``sample``          ``count`` int32 [], ``seed`` int32 []            ``images`` [count, H, W, C]
``elbo``            ``images``, ``num_samples`` int32 [],            ``elbo`` float32 [B]
                    ``seed`` int32 []
``log_likelihood``  ``images``, ``num_samples`` int32 [],            ``log_likelihood`` float32
                    ``seed`` int32 []                                [B]
=================== ================================================ ===========================

``elbo`` and ``log_likelihood`` are exported for probabilistic models (those with ``posterior``,
``likelihood`` and ``prior``). With K = ``num_samples`` log-weights
``w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x)``, ``z_k ~ q(z|x)``::

    elbo           = (1/K) Σ_k w_k                 (unbiased estimate of the ELBO)
    log_likelihood = log (1/K) Σ_k exp(w_k)        (the IWAE bound; tends to log p(x) as K grows)

Both come from :func:`tfvae.estimators.log_weight_statistics`, the estimator of
``tfvae.evaluation.log_likelihood`` too: the K samples are drawn in chunks (at most about
:data:`CODES_PER_CHUNK` codes decoded at once, so memory stays bounded for K = 5000) with a
running ``reduce_logsumexp``.

Randomness is stateless: the same ``seed`` gives the same output on every call and every
server. ``sample`` with ``seed = s`` returns exactly ``model.sample(count, seed=s)`` (prior
draws with the stateless seed ``[0, s]``). ``elbo`` / ``log_likelihood`` draw image i's codes
from seeds derived from ``s`` and i alone (the seed scheme of :mod:`tfvae.estimators`), so
image i of a request gets exactly what ``tfvae.evaluation.log_likelihood(model, images,
num_samples=K, seed=s, return_per_example=True)`` gives it, up to float rounding.

Input checks run inside the graph, so they hold for every client (Python, REST, gRPC) and fail
with ``InvalidArgumentError`` naming the signature, the input and what was expected:

* shape: ``images`` must be ``[batch, H, W, C]``, ``codes`` ``[batch, L]``, and ``count``,
  ``num_samples``, ``seed`` scalars (the message gives the expected and the received shape);
* values: NaN or ±Inf in ``images`` or ``codes`` are rejected;
* support: ``images`` outside the support of the model's likelihood
  (:func:`tfvae.models.likelihoods.facts`; ``tfvae.json`` records it) are **rejected**, not
  clipped. For models of pixels in [0, 1] the usual mistake (sending 0-255 bytes) would otherwise
  give plausible-looking but meaningless codes (the error gives the batch's min and max); models
  of counts take finite integers >= 0, models of real values finite numbers;
* ``count`` and ``num_samples`` must be at least 1.

A family's own outputs plug in by overriding one method, ``serving_encode(images) -> dict``
(see :meth:`tfvae.models.base.VariationalModel.serving_encode`). A model whose code is not one
float vector (LLGAE: a component index and coefficients) also defines
``serving_decode_inputs() -> {name: tf.TensorSpec([None, ...], dtype)}`` and
``serving_decode(**inputs) -> images``, which become the ``decode`` signature's inputs and
computation (each input is shape-checked, and float inputs must be finite). Models without a
``prior`` get no ``sample`` signature; models without q(z|x), p(x|z), p(z) no ``elbo`` and
``log_likelihood``.

Example:
  >>> version_dir = export_saved_model(model, "/models", name="vae")   # /models/vae/1
  >>> served = tf.saved_model.load(version_dir)                         # TensorFlow alone
  >>> served.signatures["serving_default"](images=tf.zeros([2, 28, 28, 1]))["code_mean"]
"""

import collections
import json
import os
import pathlib
import re
import shutil
import tempfile

import tensorflow as tf

from tfvae import estimators
from tfvae.models import likelihoods

#: signature names in the order they are written; ``serving_default`` is the encoder
SIGNATURE_NAMES = ("serving_default", "decode", "reconstruct", "sample", "elbo", "log_likelihood")

#: about the most codes decoded at once by ``elbo`` / ``log_likelihood``: images are taken
#: ``max(1, CODES_PER_CHUNK // min(K, SAMPLES_PER_CHUNK))`` at a time
CODES_PER_CHUNK = 16384

#: draws per image decoded at once by ``elbo`` / ``log_likelihood`` (a multiple of
#: ``tfvae.estimators.SAMPLES_PER_SEED``)
SAMPLES_PER_CHUNK = 250

#: written into the SavedModel's ``assets.extra`` folder to describe it (TF Serving reads only its
#: warm-up requests from there)
METADATA_FILE = "tfvae.json"

_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_OUTPUT_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ServingFunction(collections.namedtuple("ServingFunction", ["function", "input_signature"])):
    """One signature before export: ``function(*inputs) -> {output name: tensor}`` and the
    ``tf.TensorSpec`` of each input (named as the signature names it)."""


def serving_functions(model):
    """The signatures :func:`export_saved_model` writes, as Python functions of the model.

    Calling one in memory (eagerly or under ``tf.function``) computes what the exported
    signature computes, input checks included, which is how tests and benchmarks compare the
    SavedModel with the Keras model.

    Returns:
      dict of signature name -> :class:`ServingFunction`, in :data:`SIGNATURE_NAMES` order
      (``sample`` only for models with a ``prior``; ``elbo`` and ``log_likelihood`` only for
      probabilistic models).

    Raises:
      ValueError: if the model lacks what every export needs (``image_shape``, ``latent_dim``,
        ``serving_encode``, ``decode``, ``reconstruct``).
    """
    image_shape, latent_dim = _check_exportable(model)
    images_spec = tf.TensorSpec([None, *image_shape], tf.float32, name="images")
    decode_specs = _decode_specs(model, latent_dim)
    # Scalars are declared with an unknown shape: Grappler folds the Shape of an input whose spec
    # is fully defined into a constant, which would silently pass the in-graph scalar check.
    scalar = {name: tf.TensorSpec(None, tf.int32, name=name) for name in ("count", "num_samples", "seed")}

    def checked_images(signature, images):
        return _check_values(model, signature, _check_shape(signature, "images", images, images_spec.shape))

    def serving_default(images):
        outputs = model.serving_encode(checked_images("serving_default", images))
        return _as_outputs("serving_default", outputs)

    def decode(*tensors):
        inputs = {}
        for spec, value in zip(decode_specs, tensors):
            value = _check_shape("decode", spec.name, value, spec.shape)
            inputs[spec.name] = _check_finite("decode", spec.name, value) if spec.dtype.is_floating else value
        return {"images": _float32(model.serving_decode(**inputs))}

    def reconstruct(images):
        return {"images": _float32(model.reconstruct(checked_images("reconstruct", images)))}

    def sample(count, seed):
        count = _check_at_least_one("sample", "count", _check_shape("sample", "count", count, []))
        seed = _check_shape("sample", "seed", seed, [])
        # the stateless seed that model.sample(count, seed=s) uses for an integer s
        codes = model.prior.sample(count, seed=tf.stack([0, seed]))
        return {"images": _float32(model.decode(codes))}

    functions = {
        "serving_default": ServingFunction(serving_default, [images_spec]),
        "decode": ServingFunction(decode, decode_specs),
        "reconstruct": ServingFunction(reconstruct, [images_spec]),
    }
    if is_probabilistic(model):
        functions["sample"] = ServingFunction(sample, [scalar["count"], scalar["seed"]])
        def statistics(signature, images, num_samples, seed):
            images = checked_images(signature, images)
            num_samples = _check_at_least_one(
                signature, "num_samples", _check_shape(signature, "num_samples", num_samples, []))
            seed = _check_shape(signature, "seed", seed, [])
            return log_weight_statistics(model, images, num_samples, seed)

        def elbo(images, num_samples, seed):
            return {"elbo": statistics("elbo", images, num_samples, seed)[0]}

        def log_likelihood(images, num_samples, seed):
            return {"log_likelihood": statistics("log_likelihood", images, num_samples, seed)[1]}

        estimate_specs = [images_spec, scalar["num_samples"], scalar["seed"]]
        functions["elbo"] = ServingFunction(elbo, estimate_specs)
        functions["log_likelihood"] = ServingFunction(log_likelihood, estimate_specs)
    return functions


def is_probabilistic(model):
    """Whether the model has a prior, q(z|x) and p(x|z) (its ``is_probabilistic()``), so that
    ``sample``, ``elbo`` and ``log_likelihood`` can be exported."""
    return model.is_probabilistic()


def log_weight_statistics(model, images, num_samples, seed):
    """``(elbo, log_likelihood)``, each ``[batch]``, from ``num_samples`` importance samples:
    :func:`tfvae.estimators.log_weight_statistics` with the int32 ``seed``, image i of the batch
    as example i, ``SAMPLES_PER_CHUNK`` draws per chunk and about ``CODES_PER_CHUNK`` codes
    decoded at once, without XLA (TF Serving runs without it).

    With ``w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x)`` for ``z_k ~ q(z|x)``, k = 1..K::

        elbo = (1/K) Σ_k w_k,      log_likelihood = log Σ_k exp(w_k) − log K.

    Args:
      model: a probabilistic model (see :func:`is_probabilistic`).
      images: float32 ``[batch, H, W, C]``.
      num_samples: K ≥ 1, an int32 scalar.
      seed: an int32 scalar.
    """
    num_samples = tf.reshape(tf.convert_to_tensor(num_samples, tf.int32), [])
    seed = tf.reshape(tf.convert_to_tensor(seed, tf.int32), [])
    draws_at_once = tf.minimum(num_samples, SAMPLES_PER_CHUNK)
    batch_size = tf.maximum(CODES_PER_CHUNK // tf.maximum(draws_at_once, 1), 1)
    return estimators.log_weight_statistics(model, images, num_samples, seed, chunk_size=SAMPLES_PER_CHUNK,
                                            batch_size=batch_size, jit_compile=False)


def export_saved_model(model, path, version=1, name=None, overwrite=False):
    """Writes ``model`` as a SavedModel with the serving signatures of this module.

    Args:
      model: a trained tfvae model (a :class:`tfvae.models.base.VariationalModel` or anything
        with the same serving API).
      path: with ``name``, the model root that holds several models; without, the model's own
        base path (see the module docstring for the layout).
      version: the version number, a positive integer (TF Serving serves the highest).
      name: the model's name under ``path``: letters, digits, ``_``, ``.``, ``-``.
      overwrite: replace an existing version folder instead of failing.

    Returns:
      The version folder written, as a string (``path/name/version`` or ``path/version``).

    Raises:
      ValueError: for an invalid version or name, an existing version without ``overwrite``, or
        a model that cannot be exported.

    Example:
      >>> export_saved_model(model, "/models", name="mnist-vae", version=2)
      '/models/mnist-vae/2'
    """
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(f"version must be a positive integer, got {version!r}")
    if name is not None and (not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name)):
        raise ValueError(f"name must be letters, digits, '_', '.' or '-' (not starting with '.' "
                         f"or '-'), got {name!r}")
    base = pathlib.Path(path) if name is None else pathlib.Path(path) / name
    target = base / str(version)
    if target.exists() and not overwrite:
        raise ValueError(f"{target} already exists; choose another version or pass overwrite=True")
    functions = serving_functions(model)

    archive = _keras_export_archive()
    archive.track(model)
    for signature, (function, input_signature) in functions.items():
        archive.add_endpoint(signature, function, input_signature=input_signature)

    base.mkdir(parents=True, exist_ok=True)
    # A hidden sibling folder: TF Serving only looks at numbered folders, and the final rename
    # is atomic, so a polling server sees either no version or a complete one.
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{version}-", dir=base))
    try:
        archive.write_out(str(staging / "saved_model"), verbose=False)
        extra = staging / "saved_model" / "assets.extra"
        extra.mkdir(exist_ok=True)
        (extra / METADATA_FILE).write_text(json.dumps(_metadata(model, functions), indent=2) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging / "saved_model", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)


# ----------------------------------------------------------------------------- input checks

def _check_shape(signature, input_name, value, expected):
    """Fails unless ``value`` has rank ``len(expected)`` and the given sizes (None = any).

    The shape is read at run time with a raw ``Shape`` op and compared as a padded vector, never
    through ``tf.rank``/``tf.size``: those fold to constants from the static input spec (at trace
    time or by Grappler), and the point is to catch inputs that do not match the spec, which
    TF Serving and ``loaded.signatures[...]`` feed in as the client sent them. (Messages carry
    no quotes: the Assert op prints its strings escaped.)
    """
    expected = list(tf.TensorShape(expected).as_list())
    rank = len(expected)
    shape = tf.raw_ops.Shape(input=value, out_type=tf.int32)
    # Pad with -1 (never a size) and keep rank + 1 entries: the last one is -1 exactly when the
    # rank is not above `rank`, and the first one is -1 when the rank is 0. Comparing this vector
    # is well defined for inputs of any rank; `tf.rank` would fold to the spec's rank.
    padded = tf.concat([shape, tf.fill([rank + 1], -1)], axis=0)[:rank + 1]
    want_padded = [-2 if size is None else size for size in expected] + [-1]
    free = [size is None for size in expected] + [False]
    matches = tf.logical_or(tf.equal(padded, want_padded), tf.logical_and(free, padded >= 0))
    ok = tf.reduce_all(matches)
    want = "a scalar" if not expected else \
        "shape [" + ", ".join("batch" if size is None else str(size) for size in expected) + "]"
    check = tf.debugging.Assert(
        ok, [f"tfvae signature {signature}: input {input_name} must have {want}; got shape", shape],
        summarize=16)
    with tf.control_dependencies([check]):
        return tf.ensure_shape(tf.identity(value), expected)


def _check_finite(signature, input_name, value):
    return tf.debugging.check_numerics(
        value, f"tfvae signature {signature}: input {input_name} must be finite (no NaN or Inf)")


def _check_values(model, signature, inputs):
    """The served input check for the model's data, from its likelihood's facts
    (:func:`tfvae.models.likelihoods.facts`): pixels in [0, 1] for models of [0, 1] data and
    models without a likelihood (:func:`_check_pixels`); finite values, and counts where the
    likelihood needs them, otherwise."""
    known = _facts(model)
    if known is None or known.support in ("binary", "unit-interval"):
        return _check_pixels(signature, inputs)
    low = tf.reduce_min(inputs)
    valid = tf.reduce_all(tf.math.is_finite(inputs))
    if known.support == "counts":
        valid = tf.logical_and(valid, tf.reduce_all(tf.equal(inputs, tf.round(inputs))))
        valid = tf.logical_and(valid, tf.logical_or(tf.equal(tf.size(inputs), 0), low >= 0.0))
    check = tf.debugging.Assert(valid, [f"tfvae signature {signature}: inputs must be {known.values}; got min", low])
    with tf.control_dependencies([check]):
        return tf.identity(inputs)


def _facts(model):
    """The facts of the model's likelihood, or None for a model without one (LLGAE: pixels)."""
    layer = getattr(model, "likelihood_layer", None)
    return None if layer is None else likelihoods.facts(layer)


def _check_pixels(signature, images):
    """Rejects NaN, ±Inf and pixels outside [0, 1] (rejected, not clipped: see the module
    docstring) with one check on the batch's min and max: ``tf.reduce_min``/``reduce_max``
    propagate NaN, and NaN fails every comparison, so ``0 <= min`` and ``max <= 1`` hold exactly
    for finite pixels in [0, 1]. Two reductions cost a fraction of ``tf.debugging.check_numerics``
    plus a range check (which took a fifth of the encoder's time at batch 256, see
    benchmarks/serving.py)."""
    low, high = tf.reduce_min(images), tf.reduce_max(images)
    in_range = tf.logical_or(tf.equal(tf.size(images), 0),
                             tf.logical_and(low >= 0.0, high <= 1.0))
    check = tf.debugging.Assert(in_range, [
        f"tfvae signature {signature}: input images must be finite pixel values in [0, 1] "
        "(NaN, Inf and values outside [0, 1] are rejected; scale 0-255 images by 1/255); got min",
        low, "max", high])
    with tf.control_dependencies([check]):
        return tf.identity(images)


def _check_at_least_one(signature, input_name, value):
    check = tf.debugging.Assert(
        value >= 1, [f"tfvae signature {signature}: input {input_name} must be >= 1; got", value])
    with tf.control_dependencies([check]):
        return tf.identity(value)


# ----------------------------------------------------------------------------- helpers

def _check_exportable(model):
    missing = [attr for attr in ("image_shape", "latent_dim", "serving_encode", "serving_decode",
                                 "serving_decode_inputs", "reconstruct", "is_probabilistic")
               if not hasattr(model, attr)]
    if missing:
        raise ValueError(f"cannot export {type(model).__name__}: a tfvae model needs "
                         f"{', '.join(missing)} (see tfvae.models.base.VariationalModel)")
    return tuple(int(size) for size in model.image_shape), int(model.latent_dim)


def _decode_specs(model, latent_dim):
    """The ``decode`` signature's inputs: what the model's ``serving_decode_inputs()`` names
    (``codes [batch, latent_dim]`` for the variational models; LLGAE's component index,
    coefficients and image mean)."""
    specs = model.serving_decode_inputs()
    if not isinstance(specs, dict) or not specs or not all(
            isinstance(spec, tf.TensorSpec) and spec.shape.rank and spec.shape[0] is None
            for spec in specs.values()):
        raise ValueError("serving_decode_inputs must return a non-empty dict of name -> tf.TensorSpec "
                         f"with a free batch axis first, got {specs!r}")
    bad = [name for name in specs if not isinstance(name, str) or not _OUTPUT_NAME_PATTERN.fullmatch(name)]
    if bad:
        raise ValueError(f"serving_decode_inputs names must be identifiers like 'codes', got {bad}")
    return [tf.TensorSpec(spec.shape, spec.dtype, name=name) for name, spec in specs.items()]


def _as_outputs(signature, outputs):
    if not isinstance(outputs, dict) or not outputs:
        raise ValueError(f"serving_encode must return a non-empty dict of name -> tensor for the "
                         f"{signature!r} signature, got {type(outputs).__name__}")
    bad = [key for key in outputs if not isinstance(key, str) or not _OUTPUT_NAME_PATTERN.fullmatch(key)]
    if bad:
        raise ValueError(f"serving_encode output names must be identifiers like 'code_mean', got {bad}")
    return {key: _float32(value) for key, value in outputs.items()}


def _float32(value):
    value = tf.convert_to_tensor(value)
    return value if value.dtype == tf.float32 else tf.cast(value, tf.float32)


def _keras_export_archive():
    import keras  # only the exporting process needs Keras; the SavedModel does not

    return keras.export.ExportArchive()


def _metadata(model, functions):
    import tfvae

    def spec(s):
        shape = [] if s.shape.rank is None else [-1 if d is None else d for d in s.shape.as_list()]
        return {"dtype": s.dtype.name, "shape": shape}

    known = _facts(model)
    support = "unit-interval" if known is None else known.support
    # what the served input checks accept (_check_values): pixel models say so in the old keys
    pixels = {"pixel_range": [0.0, 1.0], "out_of_range_pixels": "rejected"} \
        if support in ("binary", "unit-interval") else {}
    return {
        "tfvae_version": tfvae.__version__,
        "model_class": type(model).__name__,
        "image_shape": list(model.image_shape),
        "latent_dim": int(model.latent_dim),
        "support": support,
        **pixels,
        "codes_per_chunk": CODES_PER_CHUNK,
        "samples_per_chunk": SAMPLES_PER_CHUNK,
        "samples_per_seed": estimators.SAMPLES_PER_SEED,
        "signatures": {name: {s.name: spec(s) for s in f.input_signature} for name, f in functions.items()},
    }


__all__ = ["CODES_PER_CHUNK", "METADATA_FILE", "SAMPLES_PER_CHUNK", "SIGNATURE_NAMES", "ServingFunction",
           "export_saved_model",
           "is_probabilistic", "log_weight_statistics", "serving_functions"]
