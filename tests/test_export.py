"""tfvae.export, `tfvae export` and the export/ serving kit.

* The SavedModels load and run in a fresh process where tfvae, Keras and TensorFlow Probability
  cannot be imported; every signature's outputs equal the in-memory model's (exactly for the
  deterministic ones, with the same stateless seed for the sampled ones).
* Inputs are checked inside the graph, per signature (shape, NaN/Inf, pixel range, counts).
* elbo / log_likelihood: against closed forms and the evaluation function in
  tests/test_log_likelihood.py.
* saved_model_cli lists and runs the signatures.
* The serving kit's client (export/client.py) is tested in tests/test_export_client.py.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny_export_models

from tfvae import cli, export

IMAGE_SHAPE = (8, 8, 1)
LATENT = 3




def _tiny_models():
    return tiny_export_models()


# --------------------------------------------------------------------------- layout and API

def test_layout_versions_and_metadata(tmp_path, exported):
    models, paths = exported
    assert pathlib.Path(paths["vae"]).parts[-2:] == ("vae", "1")
    model = models["vae"]
    # without a name, path is the model's base path; an existing version is kept unless overwritten
    (tmp_path / "base" / "3").mkdir(parents=True)
    (tmp_path / "base" / "3" / "old-file").write_text("from an earlier export")
    with pytest.raises(ValueError, match="already exists; choose another version or pass overwrite=True"):
        export.export_saved_model(model, tmp_path / "base", version=3)
    assert os.listdir(tmp_path / "base" / "3") == ["old-file"]
    written = export.export_saved_model(model, tmp_path / "base", version=3, overwrite=True)
    assert pathlib.Path(written) == tmp_path / "base" / "3"
    assert (tmp_path / "base" / "3" / "saved_model.pb").is_file()
    assert not (tmp_path / "base" / "3" / "old-file").exists()
    assert os.listdir(tmp_path / "base") == ["3"]  # no staging folder left behind
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="version must be a positive integer"):
            export.export_saved_model(model, tmp_path, version=bad)
    for bad in ("", "../up", "a/b", ".hidden", "sp ace"):
        with pytest.raises(ValueError, match="name must be"):
            export.export_saved_model(model, tmp_path, name=bad)

    metadata = json.loads((pathlib.Path(paths["vsc"]) / "assets.extra" / export.METADATA_FILE).read_text())
    assert metadata["model_class"] == "VSC" and metadata["image_shape"] == [8, 8, 1]
    assert metadata["latent_dim"] == LATENT and metadata["out_of_range_pixels"] == "rejected"
    assert sorted(metadata["signatures"]) == sorted(export.SIGNATURE_NAMES)
    assert metadata["signatures"]["elbo"] == {
        "images": {"dtype": "float32", "shape": [-1, 8, 8, 1]},
        "num_samples": {"dtype": "int32", "shape": []}, "seed": {"dtype": "int32", "shape": []}}


def test_non_exportable_model_is_refused(tmp_path):
    class NotAModel:
        image_shape, latent_dim = IMAGE_SHAPE, LATENT

    with pytest.raises(ValueError, match="cannot export NotAModel: a tfvae model needs serving_encode, serving_decode, "
                                         "serving_decode_inputs, reconstruct, is_probabilistic "):
        export.export_saved_model(NotAModel(), tmp_path)


def test_signature_set_follows_the_model():
    model = _tiny_models()["vae"]
    assert tuple(export.serving_functions(model)) == export.SIGNATURE_NAMES

    class Deterministic:  # an autoencoder without a prior, q(z|x), p(x|z): no sample, elbo, log_likelihood
        image_shape, latent_dim = IMAGE_SHAPE, LATENT
        serving_encode, reconstruct = model.serving_encode, model.reconstruct
        serving_decode, serving_decode_inputs = model.serving_decode, model.serving_decode_inputs
        is_probabilistic = staticmethod(lambda: False)  # the capability, asked of the model

    assert tuple(export.serving_functions(Deterministic())) == export.SIGNATURE_NAMES[:3]


@pytest.mark.parametrize("likelihood, good, bad", [
    ("poisson", [[0.0, 3.0, 12.0]], [[0.0, 2.5, 1.0]]),
    ("negative-binomial", [[0.0, 3.0, 12.0]], [[0.0, -1.0, 1.0]]),
    ("gaussian", [[-2.5, 0.0, 300.0]], [[0.0, np.nan, 1.0]]),
    ("continuous-bernoulli", [[0.0, 0.5, 1.0]], [[0.0, 2.0, 1.0]]),
])
def test_served_inputs_are_checked_against_the_likelihoods_support(likelihood, good, bad):
    """The served check and tfvae.json's ``support`` come from the likelihood's facts."""
    from tfvae.models import VAE, likelihoods

    model = VAE(input_shape=(3,), latent_dim=2, likelihood=likelihood)
    functions = export.serving_functions(model)
    encode = functions["serving_default"].function
    assert encode(tf.constant(good, tf.float32))["code_mean"].shape == (1, 2)
    known = likelihoods.facts(likelihood)
    expected = "finite pixel values in [0, 1]" if known.support == "unit-interval" else \
        f"inputs must be {known.values}"
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(expected)):
        encode(tf.constant(bad, tf.float32))
    metadata = export._metadata(model, functions)
    assert metadata["support"] == known.support
    assert ("pixel_range" in metadata) == (known.support == "unit-interval")


class _TwoComponentCoder(keras.Model):
    """A decoder-only autoencoder whose code is not one float vector (like LLGAE): a component
    k ∈ {0, 1} (darker or brighter images) and coefficients b, x̂ = mean_k + b @ basis."""

    def __init__(self):
        super().__init__(name="two_component_coder")
        self.image_shape, self.latent_dim = IMAGE_SHAPE, 2
        self.means = self.add_weight(shape=(2, 64), name="means",
                                     initializer=keras.initializers.RandomUniform(0, 1, seed=1))
        self.basis = self.add_weight(shape=(2, 64), name="basis", initializer=keras.initializers.RandomNormal(seed=2))
        self.built = True

    def _encode(self, images):
        flat = tf.reshape(images, [-1, 64])
        return tf.cast(tf.reduce_mean(flat, axis=1) > 0.3, tf.int32), tf.matmul(flat, self.basis, transpose_b=True)

    def decode(self, component, coefficients):
        flat = tf.gather(self.means, component) + tf.matmul(coefficients, self.basis)
        return tf.reshape(flat, [-1, *IMAGE_SHAPE])

    def reconstruct(self, images):
        return self.decode(*self._encode(images))

    def serving_encode(self, images):
        component, coefficients = self._encode(images)
        return {"component": component, "coefficients": coefficients}


class _HookedCoder(_TwoComponentCoder):
    """... with the hooks that make its code the ``decode`` signature's inputs."""

    def serving_decode_inputs(self):
        return {"component": tf.TensorSpec([None], tf.int32), "coefficients": tf.TensorSpec([None, 2], tf.float32)}

    def serving_decode(self, component, coefficients):
        return self.decode(component, coefficients)

    def is_probabilistic(self):
        return False


def test_a_decoder_only_model_plugs_in_its_own_code(tmp_path, images):
    model = _HookedCoder()
    served = tf.saved_model.load(export.export_saved_model(model, tmp_path, name="coder"))
    assert sorted(served.signatures) == ["decode", "reconstruct", "serving_default"]  # no prior, no q(z|x)
    x = tf.constant(images[:4])
    encoded = served.signatures["serving_default"](images=x)
    component, coefficients = model._encode(x)
    np.testing.assert_array_equal(encoded["component"].numpy(), component.numpy())
    assert encoded["component"].dtype == tf.float32  # every served output is float32
    np.testing.assert_allclose(encoded["coefficients"].numpy(), coefficients.numpy(), rtol=1e-5, atol=1e-6)
    decoded = served.signatures["decode"](component=component, coefficients=coefficients)["images"]
    np.testing.assert_allclose(decoded.numpy(), model.reconstruct(x).numpy(), rtol=1e-5, atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"signature decode: input coefficients must have shape \[batch, 2\]; got shape\] \[4 3\]"):
        served.signatures["decode"](component=component, coefficients=tf.zeros([4, 3]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="input coefficients must be finite"):
        served.signatures["decode"](component=component, coefficients=coefficients * np.nan)


    class HalfHooked:
        image_shape, latent_dim = IMAGE_SHAPE, 2
        serving_encode = decode = reconstruct = serving_decode = staticmethod(lambda *args: None)
        is_probabilistic = staticmethod(lambda: False)

    with pytest.raises(ValueError, match="a tfvae model needs serving_decode_inputs"):
        export.serving_functions(HalfHooked())


# ------------------------------------------------------- the SavedModel with TensorFlow alone

_TF_ONLY_SCRIPT = textwrap.dedent(r'''
    import importlib.abc, importlib.machinery, json, sys

    BLOCKED = ("tfvae", "tensorflow_probability", "keras", "tf_keras")

    class Refuse(importlib.abc.Loader):
        def create_module(self, spec):
            raise ImportError(f"{spec.name} is blocked in this process")

        def exec_module(self, module):
            pass

    class Block(importlib.abc.MetaPathFinder):
        # A spec without an origin, whose loading fails: `import keras` raises ImportError, and
        # TensorFlow's own probe (importlib.util.find_spec) sees no installed keras.
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                return importlib.machinery.ModuleSpec(name, Refuse())
            return None

    sys.meta_path.insert(0, Block())
    import numpy as np
    import tensorflow as tf

    plan = json.load(open(sys.argv[1]))
    arrays = np.load(plan["arrays"])
    results, errors = {}, {}
    loaded = {name: tf.saved_model.load(path) for name, path in plan["models"].items()}
    signatures = {name: sorted(model.signatures) for name, model in loaded.items()}
    for call in plan["calls"]:
        function = loaded[call["model"]].signatures[call["signature"]]
        inputs = {key: tf.constant(arrays[value]) for key, value in call["inputs"].items()}
        try:
            outputs = function(**inputs)
        except tf.errors.InvalidArgumentError as error:
            errors[call["id"]] = error.message
            continue
        for key, value in outputs.items():
            results[call["id"] + "/" + key] = value.numpy()

    # The way tensorflow_model_server runs a signature: a session over the MetaGraph, fed and
    # fetched by the signature's tensor names (so the checks live in the graph, not in Python).
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], plan["models"]["vae"])
        signature = meta_graph.signature_def["serving_default"]
        feed = {signature.inputs["images"].name: arrays["images"]}
        fetch = signature.outputs["code_mean"].name
        results["session/code_mean"] = session.run(fetch, feed)
        for case in ("nan", "above"):
            try:
                session.run(fetch, {signature.inputs["images"].name: arrays["images_" + case]})
                errors["session/" + case] = "NO ERROR"
            except tf.errors.InvalidArgumentError as error:
                errors["session/" + case] = error.message

    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    try:
        import keras  # noqa: F401
        blocked = False
    except ImportError:
        blocked = True
    np.savez(plan["results"], **results)
    json.dump({"errors": errors, "signatures": signatures, "leaked": leaked, "blocked": blocked},
              open(plan["report"], "w"))
''')

# (id, signature, {input: array name}, substrings every error message must contain)
_BAD_IMAGES = {
    "feature size": ("images_7x7", ["must have shape [batch, 8, 8, 1]", "[2 7 7 1]"]),
    "rank": ("images_flat", ["must have shape [batch, 8, 8, 1]", "[2 64]"]),
    "rank 5": ("images_rank5", ["must have shape [batch, 8, 8, 1]", "[1 2 8 8 1]"]),
    "nan": ("images_nan", ["input images must be finite pixel values in [0, 1]", "min] [nan]"]),
    "inf": ("images_inf", ["input images must be finite pixel values in [0, 1]", "max] [inf]"]),
    "above 1": ("images_above", ["pixel values in [0, 1]", "max] [255]"]),
    "below 0": ("images_below", ["pixel values in [0, 1]", "min] [-0.5"]),
}


def _error_cases():
    cases = []
    for signature in ("serving_default", "reconstruct", "elbo", "log_likelihood"):
        extra = {"num_samples": "k4", "seed": "seed7"} if signature in ("elbo", "log_likelihood") else {}
        for what, (array, expected) in _BAD_IMAGES.items():
            cases.append((f"{signature}: {what}", signature, dict(extra, images=array),
                          [f"tfvae signature {signature}: input images"] + expected))
    for signature in ("elbo", "log_likelihood"):
        cases.append((f"{signature}: num_samples 0", signature,
                      {"images": "images", "num_samples": "zero", "seed": "seed7"},
                      ["input num_samples must be >= 1", "[0]"]))
    cases += [
        ("decode: size", "decode", {"codes": "codes_4"}, ["signature decode: input codes must have shape [batch, 3]", "[2 4]"]),
        ("decode: rank", "decode", {"codes": "codes_rank3"}, ["input codes must have shape [batch, 3]", "[2 3 1]"]),
        ("decode: nan", "decode", {"codes": "codes_nan"}, ["signature decode: input codes must be finite"]),
        ("sample: count 0", "sample", {"count": "zero", "seed": "seed7"}, ["signature sample: input count must be >= 1", "[0]"]),
        ("sample: count -3", "sample", {"count": "minus3", "seed": "seed7"}, ["input count must be >= 1", "[-3]"]),
    ]
    return cases


# Non-scalar scalars: TensorFlow's eager call specialises the graph on the int32 input's actual
# shape, so the error may come from the in-graph EnsureShape instead of the Assert; both name
# the input and the expected (scalar) shape.
_SCALAR_SHAPE = re.compile(r"input (count|seed) must be a scalar; got shape\] \[2\]|"
                           r"Shape of tensor (count|seed) \[2\] is not compatible with expected shape \[\]")


def _arrays(images):
    rng = np.random.default_rng(0)
    x = images[:4]
    nan, inf = x[:2].copy(), x[:2].copy()
    nan[0, 3, 3, 0], inf[1, 0, 0, 0] = np.nan, np.inf
    return {
        "images": x, "images_7x7": x[:2, :7, :7], "images_flat": x[:2].reshape(2, 64),
        "images_rank5": x[None, :2], "images_nan": nan, "images_inf": inf,
        "images_above": x[:2] * 255.0, "images_below": x[:2] - 0.5,
        "codes": rng.normal(size=(5, LATENT)).astype("float32"),
        "codes_4": np.zeros((2, 4), "float32"), "codes_rank3": np.zeros((2, LATENT, 1), "float32"),
        "codes_nan": np.full((2, LATENT), np.nan, "float32"),
        "count5": np.int32(5), "seed7": np.int32(7), "seed8": np.int32(8), "k4": np.int32(4),
        "k9": np.int32(9), "zero": np.int32(0), "minus3": np.int32(-3), "pair": np.array([2, 3], np.int32),
    }


def test_every_signature_runs_with_tensorflow_alone(tmp_path, exported, images):
    models, paths = exported
    arrays = _arrays(images)
    np.savez(tmp_path / "arrays.npz", **arrays)
    calls = []
    for name in models:
        calls += [
            dict(id=f"{name}/encode", model=name, signature="serving_default", inputs={"images": "images"}),
            dict(id=f"{name}/decode", model=name, signature="decode", inputs={"codes": "codes"}),
            dict(id=f"{name}/reconstruct", model=name, signature="reconstruct", inputs={"images": "images"}),
            dict(id=f"{name}/sample7", model=name, signature="sample", inputs={"count": "count5", "seed": "seed7"}),
            dict(id=f"{name}/sample7again", model=name, signature="sample",
                 inputs={"count": "count5", "seed": "seed7"}),
            dict(id=f"{name}/sample8", model=name, signature="sample", inputs={"count": "count5", "seed": "seed8"}),
            dict(id=f"{name}/elbo", model=name, signature="elbo",
                 inputs={"images": "images", "num_samples": "k9", "seed": "seed7"}),
            dict(id=f"{name}/log_likelihood", model=name, signature="log_likelihood",
                 inputs={"images": "images", "num_samples": "k9", "seed": "seed7"}),
        ]
    cases = _error_cases()
    calls += [dict(id=case_id, model="vae", signature=signature, inputs=inputs)
              for case_id, signature, inputs, _ in cases]
    calls += [dict(id=f"sample: {which} not scalar", model="vae", signature="sample",
                   inputs={"count": "pair" if which == "count" else "count5",
                           "seed": "pair" if which == "seed" else "seed7"}) for which in ("count", "seed")]
    plan = dict(models=paths, arrays=str(tmp_path / "arrays.npz"), calls=calls,
                results=str(tmp_path / "results.npz"), report=str(tmp_path / "report.json"))
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "tf_only.py").write_text(_TF_ONLY_SCRIPT)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, str(tmp_path / "tf_only.py"), str(tmp_path / "plan.json")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    results = np.load(tmp_path / "results.npz")
    assert report["blocked"] and report["leaked"] == []
    assert report["signatures"] == {name: sorted(export.SIGNATURE_NAMES) for name in models}

    x = arrays["images"]
    for name, model in models.items():
        # deterministic signatures: the in-memory model's public API, to float precision
        encoded = {key: value.numpy() for key, value in model.serving_encode(tf.constant(x)).items()}
        got = {key.split("/")[-1]: results[key] for key in results.files if key.startswith(f"{name}/encode/")}
        assert sorted(got) == sorted(encoded)
        for key in encoded:
            np.testing.assert_allclose(got[key], encoded[key], rtol=1e-5, atol=1e-6, err_msg=f"{name} {key}")
        code = "sparse_code" if name == "vsc" else "code_mean"
        np.testing.assert_allclose(got[code], model.encode(x).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(results[f"{name}/decode/images"], model.decode(arrays["codes"]).numpy(),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(results[f"{name}/reconstruct/images"], model.reconstruct(x).numpy(),
                                   rtol=1e-5, atol=1e-6)
        # sample: stateless, and exactly model.sample with the same integer seed
        sample = results[f"{name}/sample7/images"]
        assert sample.shape == (5,) + IMAGE_SHAPE
        np.testing.assert_array_equal(sample, results[f"{name}/sample7again/images"])
        np.testing.assert_allclose(sample, model.sample(5, seed=7).numpy(), rtol=1e-5, atol=1e-6)
        assert np.abs(sample - results[f"{name}/sample8/images"]).max() > 1e-3
        # elbo / log_likelihood: the same computation in memory with the same seed
        functions = export.serving_functions(model)
        for signature in ("elbo", "log_likelihood"):  # eagerly: the graph is what was exported
            expected = functions[signature].function(tf.constant(x), tf.constant(9), tf.constant(7))
            np.testing.assert_allclose(results[f"{name}/{signature}/{signature}"], expected[signature].numpy(),
                                       rtol=1e-5, atol=1e-4, err_msg=f"{name} {signature}")
        assert np.all(results[f"{name}/elbo/elbo"] <= results[f"{name}/log_likelihood/log_likelihood"] + 1e-4)
    code_scale = np.exp(0.5 * np.split(models["vae"].encoder(x).numpy(), 2, axis=-1)[1])
    np.testing.assert_allclose(results["vae/encode/code_scale"], code_scale, rtol=1e-5)
    np.testing.assert_allclose(results["session/code_mean"], results["vae/encode/code_mean"], rtol=1e-5, atol=1e-6)

    errors = report["errors"]
    for case_id, signature, _, expected in cases:
        assert case_id in errors, f"{case_id}: no error raised"
        for text in expected:
            assert text in errors[case_id], f"{case_id}: {text!r} not in {errors[case_id]!r}"
    for which in ("count", "seed"):
        assert _SCALAR_SHAPE.search(errors[f"sample: {which} not scalar"]), errors[f"sample: {which} not scalar"]
    assert "signature serving_default: input images must be finite pixel values" in errors["session/nan"]
    assert "pixel values in [0, 1]" in errors["session/above"] and "max] [255]" in errors["session/above"]


# saved_model_cli's console-script entry point (tensorflow.python.tools.saved_model_cli:main), run
# for `show --all` and then `run` in one process: the same program as the installed command,
# for one TensorFlow start-up instead of two.
_SAVED_MODEL_CLI = textwrap.dedent(r'''
    import sys
    from tensorflow.python.tools import saved_model_cli

    folder, images, outdir = sys.argv[1:]
    commands = {"show": ["show", "--dir", folder, "--all"],
                "run": ["run", "--dir", folder, "--tag_set", "serve", "--signature_def", "reconstruct",
                        "--inputs", "images=" + images, "--outdir", outdir]}
    for name, arguments in commands.items():
        sys.argv = ["saved_model_cli"] + arguments
        code = 0
        try:
            saved_model_cli.main()
        except SystemExit as exit:
            code = exit.code or 0
        print(f"=== saved_model_cli {name} exited with {code}", flush=True)
''')


def test_saved_model_cli_show_and_run(tmp_path, exported, images):
    models, paths = exported
    np.save(tmp_path / "x.npy", images[:3])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run([sys.executable, "-c", _SAVED_MODEL_CLI, paths["vae"], str(tmp_path / "x.npy"),
                           str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    show, _, run = done.stdout.partition("=== saved_model_cli show exited with 0")
    assert "=== saved_model_cli run exited with 0" in run, done.stdout[-2000:] + done.stderr[-2000:]

    blocks = dict(chunk.split("']", 1) for chunk in show.split("signature_def['")[1:])
    assert set(export.SIGNATURE_NAMES) <= set(blocks)
    assert re.search(r"inputs\['images'\] tensor_info:\s+dtype: DT_FLOAT\s+shape: \(-1, 8, 8, 1\)",
                     blocks["serving_default"])
    for output in ("code_mean", "code_scale"):
        assert re.search(rf"outputs\['{output}'\] tensor_info:\s+dtype: DT_FLOAT\s+shape: \(-1, 3\)",
                         blocks["serving_default"])
    assert re.search(r"inputs\['codes'\] tensor_info:\s+dtype: DT_FLOAT\s+shape: \(-1, 3\)", blocks["decode"])
    for name in ("count", "seed"):
        assert re.search(rf"inputs\['{name}'\] tensor_info:\s+dtype: DT_INT32", blocks["sample"])
    for signature in ("elbo", "log_likelihood"):
        assert re.search(rf"outputs\['{signature}'\] tensor_info:\s+dtype: DT_FLOAT\s+shape: \(-1\)",
                         blocks[signature])
    for signature in export.SIGNATURE_NAMES:
        assert "Method name is: tensorflow/serving/predict" in blocks[signature]
    np.testing.assert_allclose(np.load(tmp_path / "out" / "images.npy"),
                               models["vae"].reconstruct(images[:3]).numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------- the CLI

def test_cli_export(tmp_path, capsys):
    model = _tiny_models()["vae"]
    run = tmp_path / "vae-digits"
    run.mkdir()
    model.save(run / "model.keras")
    (run / "config.json").write_text(json.dumps({"settings": {"model": "vae", "dataset": "digits"}}))
    out = tmp_path / "serving"
    assert cli.main(["export", str(run), "--out", str(out), "--name", "digits", "--version", "4"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "digits" / "4")
    assert sorted(os.listdir(out / "digits" / "4")) == ["assets", "assets.extra", "fingerprint.pb",
                                                        "saved_model.pb", "variables"]
    # the default name is the run directory's, and versions are not overwritten
    (out / "vae-digits" / "1").mkdir(parents=True)
    assert cli.main(["export", str(run), "--out", str(out)]) == 2
    assert f"{out / 'vae-digits' / '1'} already exists" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "not a finished tfvae run" in capsys.readouterr().err
    loaded = tf.saved_model.load(str(out / "digits" / "4"))
    x = tf.random.stateless_uniform([2] + list(IMAGE_SHAPE), seed=[1, 2])
    np.testing.assert_allclose(loaded.signatures["serving_default"](images=x)["code_mean"].numpy(),
                               model.encode(x).numpy(), rtol=1e-5, atol=1e-6)


