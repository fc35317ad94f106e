"""Client for tfvae models served by TensorFlow Serving: REST (JSON) and gRPC (PredictRequest).

Command line (the server as started in export/README.md)::

    python export/client.py --rest http://localhost:8501 --model vae --digits 4
    python export/client.py --rest http://localhost:8501 --model vae --signature reconstruct \\
        --images batch.npy --form instances
    python export/client.py --grpc localhost:8500 --model vae --signature sample --count 8 --seed 1
    python export/client.py --grpc localhost:8500 --model vae --signature log_likelihood \\
        --digits 16 --num-samples 1000 --out log_likelihood.npz

Library::

    body = rest_request({"images": images}, signature="serving_default", form="instances")
    outputs = predict_rest("http://localhost:8501", "vae", {"images": images})
    outputs = predict_grpc("localhost:8500", "vae", {"count": 8, "seed": 1}, signature="sample")

Every call returns ``{output name: numpy array}``. The tfvae signatures and their tensors are
listed in ``tfvae/export.py``; images are float32 ``[batch, H, W, C]`` with pixels in [0, 1]
(the server rejects anything else with a message naming what was expected, raised here as
:class:`ServingError`).

REST has two request forms. ``instances`` (row form) sends one entry per example, so it needs
every input to share the batch axis: use it for ``serving_default``, ``decode`` and
``reconstruct``. ``inputs`` (columnar form) sends whole tensors and works for every signature,
including those with scalar inputs (``sample``, ``elbo``, ``log_likelihood``).

REST needs only numpy and the standard library; gRPC needs ``tensorflow-serving-api`` (the
``serving`` extra: ``pip install -e .[serving]``), which brings TensorFlow and grpcio.
"""

import argparse
import json
import sys
import urllib.error
import urllib.request

import numpy as np

#: inputs that tfvae signatures take as int32 scalars; every other input is float32
INT32_INPUTS = frozenset({"count", "num_samples", "seed"})

#: the name of the lone output of single-output signatures (TF Serving's REST responses omit it)
SINGLE_OUTPUT_NAMES = {"decode": "images", "reconstruct": "images", "sample": "images",
                       "elbo": "elbo", "log_likelihood": "log_likelihood"}

#: the name given to a lone output that :data:`SINGLE_OUTPUT_NAMES` does not know
DEFAULT_OUTPUT_NAME = "output"

#: gRPC message limit both ways (TF Serving's own default is 4 MiB for what it receives)
GRPC_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class ServingError(RuntimeError):
    """The server answered with an error (its message says which input was wrong and why)."""


# ------------------------------------------------------------------------------------ tensors

def as_input_array(name, value):
    """``value`` as the numpy array the signature's input ``name`` takes (int32 or float32)."""
    dtype = np.int32 if name in INT32_INPUTS else np.float32
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind not in "biuf":
        raise ValueError(f"input {name!r} must be numeric, got dtype {array.dtype}")
    return array.astype(dtype, copy=False)


def _inputs(inputs):
    if not isinstance(inputs, dict) or not inputs:
        raise ValueError("inputs must be a non-empty dict of input name -> array, e.g. {'images': x}")
    return {name: as_input_array(name, value) for name, value in inputs.items()}


# --------------------------------------------------------------------------------------- REST

def rest_url(server, model, version=None):
    """The predict URL: ``{server}/v1/models/{model}[/versions/{version}]:predict``."""
    url = f"{server.rstrip('/')}/v1/models/{model}"
    if version is not None:
        url += f"/versions/{int(version)}"
    return url + ":predict"


def rest_request(inputs, signature="serving_default", form="inputs"):
    """The JSON body (a dict) of a REST predict request.

    Args:
      inputs: dict of input name -> array-like, e.g. ``{"images": x}`` or
        ``{"count": 4, "seed": 0}``.
      signature: the signature name.
      form: ``"inputs"`` (columnar: ``{"inputs": {name: tensor}}``) or ``"instances"`` (row:
        one entry per example; a list of values for a single input, else a list of
        ``{name: value}`` objects). The row form needs every input to have the same batch size.
    """
    arrays = _inputs(inputs)
    body = {"signature_name": signature}
    if form == "inputs":
        body["inputs"] = {name: array.tolist() for name, array in arrays.items()}
    elif form == "instances":
        sizes = {name: (array.shape[0] if array.ndim else None) for name, array in arrays.items()}
        if None in sizes.values() or len(set(sizes.values())) != 1:
            shapes = {name: array.shape for name, array in arrays.items()}
            raise ValueError(f"the 'instances' form needs every input to share the batch axis, got "
                             f"shapes {shapes}; use form='inputs' for signature {signature!r}")
        if len(arrays) == 1:
            body["instances"] = next(iter(arrays.values())).tolist()
        else:
            count = next(iter(sizes.values()))
            body["instances"] = [{name: array[i].tolist() for name, array in arrays.items()}
                                 for i in range(count)]
    else:
        raise ValueError(f"form must be 'inputs' or 'instances', got {form!r}")
    return body


def parse_rest_response(body, signature="serving_default"):
    """``{output name: float32 array}`` from a REST predict response (a dict or JSON text).

    ``{"outputs": ...}`` answers the ``inputs`` form and ``{"predictions": [...]}`` the
    ``instances`` form; a lone output comes without its name, which is then taken from
    :data:`SINGLE_OUTPUT_NAMES` (or :data:`DEFAULT_OUTPUT_NAME`).

    Raises:
      ServingError: for an ``{"error": message}`` body.
    """
    if isinstance(body, (str, bytes)):
        body = json.loads(body)
    if "error" in body:
        raise ServingError(body["error"])
    lone = SINGLE_OUTPUT_NAMES.get(signature, DEFAULT_OUTPUT_NAME)
    if "outputs" in body:
        outputs = body["outputs"]
        if isinstance(outputs, dict):
            return {name: np.asarray(value, np.float32) for name, value in outputs.items()}
        return {lone: np.asarray(outputs, np.float32)}
    if "predictions" in body:
        predictions = body["predictions"]
        if predictions and all(isinstance(row, dict) for row in predictions):
            return {name: np.asarray([row[name] for row in predictions], np.float32)
                    for name in predictions[0]}
        return {lone: np.asarray(predictions, np.float32)}
    raise ServingError(f"unexpected response: neither 'outputs' nor 'predictions' in {sorted(body)}")


def predict_rest(server, model, inputs, signature="serving_default", form="inputs", version=None,
                 timeout=30.0):
    """POSTs a predict request to TF Serving's REST port and returns the parsed outputs.

    Example:
      >>> codes = predict_rest("http://localhost:8501", "vae", {"images": images})["code_mean"]
    """
    data = json.dumps(rest_request(inputs, signature, form)).encode()
    request = urllib.request.Request(rest_url(server, model, version), data=data,
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        body = error.read()
        try:
            message = json.loads(body).get("error", body.decode(errors="replace"))
        except ValueError:
            message = body.decode(errors="replace")
        raise ServingError(f"HTTP {error.code}: {message}") from None
    return parse_rest_response(body, signature)


# --------------------------------------------------------------------------------------- gRPC

def grpc_request(model, inputs, signature="serving_default", version=None):
    """A ``tensorflow_serving.apis.predict_pb2.PredictRequest`` for ``inputs``.

    Example:
      >>> request = grpc_request("vae", {"images": images})
      >>> request.inputs["images"].dtype == tf.float32.as_datatype_enum
      True
    """
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, array in _inputs(inputs).items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
    return request


def parse_grpc_response(response):
    """``{output name: numpy array}`` from a ``PredictResponse``."""
    import tensorflow as tf

    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def predict_grpc(target, model, inputs, signature="serving_default", version=None, timeout=30.0):
    """Calls ``PredictionService/Predict`` on TF Serving's gRPC port (e.g. ``localhost:8500``).

    Raises:
      ServingError: with the server's message when the call fails.
    """
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    options = [("grpc.max_send_message_length", GRPC_MAX_MESSAGE_BYTES),
               ("grpc.max_receive_message_length", GRPC_MAX_MESSAGE_BYTES)]
    with grpc.insecure_channel(target, options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            response = stub.Predict(grpc_request(model, inputs, signature, version), timeout=timeout)
        except grpc.RpcError as error:
            raise ServingError(f"{error.code().name}: {error.details()}") from None
    return parse_grpc_response(response)


# ------------------------------------------------------------------------------ command line

def _digits(count):
    from sklearn.datasets import load_digits

    return (load_digits().images[:count] / 16.0).astype(np.float32)[..., None]


def _parser():
    parser = argparse.ArgumentParser(description="Query a tfvae model served by TensorFlow Serving.")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--rest", metavar="URL", help="REST server, e.g. http://localhost:8501")
    where.add_argument("--grpc", metavar="HOST:PORT", help="gRPC server, e.g. localhost:8500")
    parser.add_argument("--model", required=True, help="model name in the server's config")
    parser.add_argument("--version", type=int, help="model version (default: the newest)")
    parser.add_argument("--signature", default="serving_default",
                        help="serving_default (encode), decode, reconstruct, sample, elbo, log_likelihood")
    parser.add_argument("--form", choices=["inputs", "instances"], default="inputs", help="REST request form")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--images", metavar="NPY", help="images [batch, H, W, C] in [0, 1] (.npy)")
    data.add_argument("--digits", type=int, metavar="N", help="the first N scikit-learn 8x8 digits as images")
    data.add_argument("--codes", metavar="NPY", help="codes [batch, latent] for decode (.npy)")
    parser.add_argument("--count", type=int, help="sample: number of images")
    parser.add_argument("--num-samples", type=int, help="elbo / log_likelihood: importance samples K")
    parser.add_argument("--seed", type=int, help="sample / elbo / log_likelihood: stateless seed")
    parser.add_argument("--out", metavar="NPZ", help="save the outputs here instead of printing them")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    inputs = {}
    if args.images:
        inputs["images"] = np.load(args.images)
    if args.digits:
        inputs["images"] = _digits(args.digits)
    if args.codes:
        inputs["codes"] = np.load(args.codes)
    for name in ("count", "num_samples", "seed"):
        if getattr(args, name) is not None:
            inputs[name] = getattr(args, name)
    try:
        if args.rest:
            outputs = predict_rest(args.rest, args.model, inputs, args.signature, args.form, args.version,
                                   args.timeout)
        else:
            outputs = predict_grpc(args.grpc, args.model, inputs, args.signature, args.version, args.timeout)
    except (ServingError, ValueError, OSError) as error:
        print(f"client: error: {error}", file=sys.stderr)
        return 1
    if args.out:
        np.savez(args.out, **outputs)
        print(args.out)
    else:
        with np.printoptions(precision=4, suppress=True, threshold=50):
            for name, value in sorted(outputs.items()):
                print(f"{name} {value.dtype}{list(value.shape)}\n{value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
