"""The serving kit in export/: export/client.py builds REST and gRPC requests that the SavedModel's
own signatures answer, as TF Serving would (a stand-in server on localhost speaks its documented
REST and gRPC APIs), and the models.config lists several tfvae models."""

import http.server
import importlib.util
import json
import pathlib
import re
import threading

import numpy as np
import pytest
import tensorflow as tf


ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load_client():
    spec = importlib.util.spec_from_file_location("tfvae_serving_client", ROOT / "export" / "client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


client = _load_client()


# ---------------------------------------------------------------- export/ client and kit

class _StandInServer:
    """Answers predict requests with a loaded SavedModel the way tensorflow_model_server does
    (its REST API document: row and columnar forms, lone outputs unnamed, errors as
    ``{"error": ...}``; its gRPC Predict: TensorProtos in and out)."""

    def __init__(self, models):
        self.models = {name: tf.saved_model.load(path) for name, path in models.items()}
        self.requests = []

    def _call(self, name, signature, inputs):
        function = self.models[name].signatures[signature]
        specs = function.structured_input_signature[1]
        if set(inputs) != set(specs):
            raise ValueError(f"signature {signature!r} takes inputs {sorted(specs)}, got {sorted(inputs)}")
        tensors = {key: tf.constant(np.asarray(value), dtype=specs[key].dtype) for key, value in inputs.items()}
        return {key: value.numpy() for key, value in function(**tensors).items()}

    def rest(self, path, body):
        self.requests.append(body)
        match = re.fullmatch(r"/v1/models/([\w.-]+)(?:/versions/(\d+))?:predict", path)
        signature = body.get("signature_name", "serving_default")
        specs = self.models[match.group(1)].signatures[signature].structured_input_signature[1]
        row = "instances" in body
        if row:
            instances = body["instances"]
            if all(isinstance(item, dict) for item in instances):
                inputs = {key: [item[key] for item in instances] for key in instances[0]}
            else:
                inputs = {next(iter(specs)): instances}
        else:
            inputs = body["inputs"] if isinstance(body["inputs"], dict) else {next(iter(specs)): body["inputs"]}
        outputs = self._call(match.group(1), signature, inputs)
        if not row:
            return {"outputs": next(iter(outputs.values())).tolist() if len(outputs) == 1
                    else {key: value.tolist() for key, value in outputs.items()}}
        if len(outputs) == 1:
            return {"predictions": next(iter(outputs.values())).tolist()}
        count = len(next(iter(outputs.values())))
        return {"predictions": [{key: value[i].tolist() for key, value in outputs.items()} for i in range(count)]}

    def grpc_predict(self, request):
        from tensorflow_serving.apis import predict_pb2

        self.requests.append(request)
        inputs = {key: tf.make_ndarray(proto) for key, proto in request.inputs.items()}
        outputs = self._call(request.model_spec.name, request.model_spec.signature_name or "serving_default", inputs)
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for key, value in outputs.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
        return response


@pytest.fixture(scope="module")
def stand_in(exported):
    return _StandInServer({"vae": exported[1]["vae"], "vsc": exported[1]["vsc"]})


@pytest.fixture(scope="module")
def rest_server(stand_in):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            try:
                status, answer = 200, stand_in.rest(self.path, body)
            except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
                status, answer = 400, {"error": getattr(error, "message", str(error))}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_rest_request_bodies(images):
    x = images[:2].astype(np.float64)
    body = client.rest_request({"images": x}, "reconstruct", form="instances")
    assert body["signature_name"] == "reconstruct"
    assert np.asarray(body["instances"]).shape == (2, 8, 8, 1)  # lone input: values, not objects
    np.testing.assert_array_equal(np.asarray(body["instances"], np.float32), x.astype(np.float32))
    body = client.rest_request({"images": x, "extra": x[:, 0, 0, 0]}, "s", form="instances")
    assert [sorted(item) for item in body["instances"]] == [["extra", "images"]] * 2
    assert np.asarray(body["instances"][1]["images"]).shape == (8, 8, 1)
    body = client.rest_request({"count": np.int64(4), "seed": 0}, "sample", form="inputs")
    assert body == {"signature_name": "sample", "inputs": {"count": 4, "seed": 0}}
    assert json.loads(json.dumps(body)) == body
    with pytest.raises(ValueError, match="'instances' form needs every input to share the batch axis"):
        client.rest_request({"count": 4, "seed": 0}, "sample", form="instances")
    with pytest.raises(ValueError, match="form must be"):
        client.rest_request({"images": x}, form="rows")
    with pytest.raises(ValueError, match="non-empty dict"):
        client.rest_request(x)
    assert client.rest_url("http://h:8501/", "vae") == "http://h:8501/v1/models/vae:predict"
    assert client.rest_url("http://h:8501", "vae", 3) == "http://h:8501/v1/models/vae/versions/3:predict"


def test_rest_responses_are_parsed():
    rows = {"predictions": [{"code_mean": [1, 2], "code_scale": [3, 4]}, {"code_mean": [5, 6], "code_scale": [7, 8]}]}
    parsed = client.parse_rest_response(json.dumps(rows))
    np.testing.assert_array_equal(parsed["code_mean"], [[1, 2], [5, 6]])
    assert parsed["code_scale"].dtype == np.float32
    assert list(client.parse_rest_response({"predictions": [1.0, 2.0]}, "elbo")) == ["elbo"]
    assert list(client.parse_rest_response({"outputs": [[0.5]]}, "decode")) == ["images"]
    assert list(client.parse_rest_response({"outputs": [0.5]}, "custom")) == [client.DEFAULT_OUTPUT_NAME]
    with pytest.raises(client.ServingError, match="bad input"):
        client.parse_rest_response({"error": "bad input"})


def test_rest_round_trip_equals_the_signatures(rest_server, stand_in, images):
    x = images[:3]
    served = stand_in.models
    cases = [
        ("vae", "serving_default", {"images": x}, "instances"),
        ("vae", "serving_default", {"images": x}, "inputs"),
        ("vsc", "serving_default", {"images": x}, "instances"),
        ("vae", "decode", {"codes": np.linspace(-1, 1, 6).reshape(2, 3)}, "instances"),
        ("vae", "reconstruct", {"images": x}, "inputs"),
        ("vae", "sample", {"count": 4, "seed": 5}, "inputs"),
        ("vae", "elbo", {"images": x, "num_samples": 8, "seed": 1}, "inputs"),
        ("vsc", "log_likelihood", {"images": x, "num_samples": 8, "seed": 1}, "inputs"),
    ]
    for model, signature, inputs, form in cases:
        got = client.predict_rest(rest_server, model, inputs, signature=signature, form=form, version=1)
        function = served[model].signatures[signature]
        specs = function.structured_input_signature[1]
        expected = function(**{k: tf.constant(np.asarray(v), dtype=specs[k].dtype) for k, v in inputs.items()})
        assert sorted(got) == sorted(expected), (model, signature, form)
        for key, value in expected.items():
            np.testing.assert_allclose(got[key], value.numpy(), rtol=1e-6, atol=1e-6, err_msg=f"{signature} {form}")
    with pytest.raises(client.ServingError, match=r"(?s)HTTP 400: .*input images must be finite"):
        client.predict_rest(rest_server, "vae", {"images": np.full((1, 8, 8, 1), np.nan)})
    with pytest.raises(client.ServingError, match=r"pixel values in \[0, 1\]"):
        client.predict_rest(rest_server, "vae", {"images": x * 255}, form="instances")


def test_grpc_request_and_round_trip(stand_in, images):
    grpc = pytest.importorskip("grpc")
    pytest.importorskip("tensorflow_serving.apis.prediction_service_pb2_grpc")
    from concurrent import futures

    from tensorflow_serving.apis import prediction_service_pb2_grpc

    x = images[:2]
    request = client.grpc_request("vae", {"images": x.astype(np.float64), "seed": 3, "num_samples": 8},
                                  signature="log_likelihood", version=2)
    assert request.model_spec.name == "vae" and request.model_spec.signature_name == "log_likelihood"
    assert request.model_spec.version.value == 2
    assert request.inputs["images"].dtype == tf.float32.as_datatype_enum
    assert [d.size for d in request.inputs["images"].tensor_shape.dim] == [2, 8, 8, 1]
    assert request.inputs["seed"].dtype == tf.int32.as_datatype_enum
    assert request.inputs["seed"].tensor_shape.dim == [] and tf.make_ndarray(request.inputs["num_samples"]) == 8

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            try:
                return stand_in.grpc_predict(request)
            except tf.errors.InvalidArgumentError as error:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, error.message)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        target = f"127.0.0.1:{port}"
        for model, signature, inputs in [("vsc", "serving_default", {"images": x}),
                                         ("vae", "sample", {"count": 3, "seed": 9}),
                                         ("vae", "log_likelihood", {"images": x, "num_samples": 8, "seed": 3})]:
            got = client.predict_grpc(target, model, inputs, signature=signature)
            function = stand_in.models[model].signatures[signature]
            specs = function.structured_input_signature[1]
            expected = function(**{k: tf.constant(np.asarray(v), dtype=specs[k].dtype) for k, v in inputs.items()})
            assert sorted(got) == sorted(expected)
            for key, value in expected.items():
                np.testing.assert_array_equal(got[key], value.numpy())
        with pytest.raises(client.ServingError, match=r"(?s)INVALID_ARGUMENT: .*input count must be >= 1"):
            client.predict_grpc(target, "vae", {"count": 0, "seed": 1}, signature="sample")
    finally:
        server.stop(0)


def test_models_config_lists_several_tfvae_models():
    text_format = pytest.importorskip("google.protobuf.text_format")
    config_pb2 = pytest.importorskip("tensorflow_serving.config.model_server_config_pb2")
    # parsed the way tensorflow_model_server parses --model_config_file
    config = text_format.Parse((ROOT / "export" / "models.config").read_text(), config_pb2.ModelServerConfig())
    models = config.model_config_list.config
    assert len(models) >= 3 and len({m.name for m in models}) == len(models)
    for m in models:
        assert m.model_platform == "tensorflow" and m.base_path == f"/models/{m.name}"
    readme = (ROOT / "export" / "README.md").read_text()
    assert "--model_config_file=/config/models.config" in readme
    assert '-v "$PWD/export/models.config:/config/models.config:ro"' in readme
    assert '-v "$PWD/serving:/models"' in readme and "tfvae export runs/vae      --out serving --name vae" in readme

