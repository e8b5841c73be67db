"""Every variant exports to a SavedModel that serves with TensorFlow alone."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from model_test_case import example_inputs, fit_inputs, small_kwargs

import vae_zoo
from vae_zoo import evaluation

NAMES = vae_zoo.list_models()
# The fast tier exports one model of each kind of signature (latent vector, code grid, labels, tokens, a hierarchy);
# the slow tier exports every registered model.
FAST = ("vae", "vq_vae", "cvae", "sentence_vae", "hierarchical_vae")
EXPORTED = [name if name in FAST else pytest.param(name, marks=pytest.mark.slow) for name in NAMES]
SEED = 11


def reference_outputs(model, inputs):
    """What each signature must return, computed in-process with the same seeds."""
    x = inputs["x"]
    labels = inputs.get("labels")
    seed = tf.constant([SEED, 0])
    reference = {"serving_default/reconstruction": model.reconstruction(x, labels)}
    if model.can("latent"):
        reference.update({f"encode/{k}": v for k, v in model.encoded_outputs(x, labels).items()})
        reference.update({f"decode/{k}": v for k, v in model.decoded_outputs(inputs[model.decoder_input_spec().name], labels).items()})
    if model.can("elbo"):
        reference["elbo/elbo"] = model.loss_terms(x, labels, seed=seed)["elbo"]
        reference["log_likelihood/log_likelihood"] = evaluation.importance_log_likelihood(model, x, labels, k=int(inputs["k"]), seed=seed)
    if model.can("sample"):
        n = len(labels) if labels is not None else int(inputs["n"])
        reference["sample/samples"] = model.sample(n, seed=seed, labels=labels)
    return {k: np.asarray(v) for k, v in reference.items()}


def selected_exports(session):
    """The models this session's tests check: all of them when the serving test runs, else those parametrized."""
    chosen = {item.callspec.params["name"] for item in session.items
              if item.originalname == "test_every_signature_matches_the_in_process_model"}
    if any(item.originalname == "test_serving_needs_neither_vae_zoo_nor_tfp" for item in session.items):
        chosen = set(NAMES)
    return sorted(chosen)


@pytest.fixture(scope="module")
def exports(tmp_path_factory, request):
    root = tmp_path_factory.mktemp("exports")
    cases = {}
    names = selected_exports(request.session)
    for name in names:
        model = vae_zoo.create_model(name, **small_kwargs(name))
        x = example_inputs(model, batch=5)
        images, labels = fit_inputs(model, x)
        model.compile()
        model.fit(images, labels, epochs=1, batch_size=5, verbose=0)
        vae_zoo.export(model, root / name)
        inputs = {"x": x, "n": np.int32(4), "seed": np.int32(SEED), "k": np.int32(7)}
        if model.can("latent"):  # the decode signature's latent input (a model without z has none)
            spec = model.decoder_input_spec()
            rng = np.random.default_rng(1)
            z = rng.integers(0, model.codebook_size, (4, *spec.shape[1:])) if spec.dtype == tf.int32 else rng.normal(size=(4, *spec.shape[1:]))
            if labels is not None:  # conditional decode takes one label per z
                z = np.concatenate([z, z])[:5]
            inputs[spec.name] = z.astype(spec.dtype.as_numpy_dtype)
        if labels is not None:
            inputs["labels"] = labels[:5].astype(np.int32)
        np.savez(root / f"{name}.inputs.npz", **inputs)
        cases[name] = (model, inputs)
    client = Path(__file__).parent / "export_client.py"
    run = subprocess.run([sys.executable, str(client), str(root), *names], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return root, cases


@pytest.mark.slow
def test_serving_needs_neither_vae_zoo_nor_tfp(exports):
    root, _ = exports
    modules = set(json.loads((root / "modules.json").read_text()))
    assert "tensorflow" in modules
    assert "vae_zoo" not in modules and "tensorflow_probability" not in modules


@pytest.mark.parametrize("name", EXPORTED)
def test_every_signature_matches_the_in_process_model(exports, name):
    root, cases = exports
    model, inputs = cases[name]
    served = dict(np.load(root / f"{name}.outputs.npz"))
    assert str(served.pop("card_model")) == name
    reference = reference_outputs(model, inputs)
    for key, value in reference.items():
        assert key in served, f"{name}: the export has no {key}"
        np.testing.assert_allclose(served[key], value, rtol=1e-4, atol=1e-4, err_msg=f"{name} {key}")
    # Anomaly scores: the reconstruction error is deterministic; the score is -ELBO (or that error).
    error = served["anomaly_score/reconstruction_error"]
    recon = reference["serving_default/reconstruction"]
    x = inputs["x"]
    if x.dtype.kind == "i":  # token models: the tokens the reconstruction gets wrong, padding after both ignored
        expected = ((x != recon) & ((x != 0) | (recon != 0))).sum(1)
    else:
        expected = ((x - recon) ** 2).reshape(len(error), -1).sum(1)
    np.testing.assert_allclose(error, expected, rtol=1e-4, atol=1e-4)
    assert served["anomaly_score/score"].shape == error.shape
    if model.can("sample"):
        # Unseeded samples match the in-process model in distribution: the mean image.
        ours = np.asarray(model.sample(400, labels=np.zeros(400, np.int32) if model.can("labels") else None))
        theirs = served["sample/random"]
        spread = np.sqrt(ours.var(0) / len(ours) + theirs.var(0) / len(theirs))
        assert np.mean(np.abs(ours.mean(0) - theirs.mean(0)) < 5 * spread + 1e-3) > 0.99


def test_saved_model_cli_lists_every_signature(exports):
    root, cases = exports
    cli = shutil.which("saved_model_cli") or pytest.skip("saved_model_cli is not on the PATH")
    shown = subprocess.run([cli, "show", "--dir", str(root / "cvae"), "--all"], capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    for signature in ("serving_default", "encode", "decode", "sample", "elbo", "log_likelihood", "anomaly_score", "model_card"):
        assert f"signature_def['{signature}']" in shown.stdout
    assert "inputs['labels'] tensor_info:" in shown.stdout and "shape: (-1, 8, 8, 1)" in shown.stdout


def test_export_refuses_to_overwrite_and_rejects_bad_requests(exports, tmp_path):
    root, cases = exports
    model, _ = cases["vae"]
    with pytest.raises(vae_zoo.ModelFileError, match="already exists"):
        vae_zoo.export(model, root / "vae")
    loaded = tf.saved_model.load(str(root / "vae"))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"vae: input x must have shape \(batch, 8, 8, 1\); got shape\] \[2 64\]"):
        loaded.signatures["encode"](x=tf.zeros((2, 64)))
    with pytest.raises(tf.errors.InvalidArgumentError, match="log_likelihood: k must be >= 1"):
        loaded.signatures["log_likelihood"](x=tf.zeros((2, 8, 8, 1)), k=tf.constant(0), seed=tf.constant(1))
    conditional = tf.saved_model.load(str(root / "cvae"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="cvae: labels must be < 10"):
        conditional.signatures["serving_default"](x=tf.zeros((2, 8, 8, 1)), labels=tf.constant([1, 12]))


def test_one_request_cannot_crash_or_tie_up_a_served_model(exports):
    """Huge n and k, NaN latents and out-of-support pixels are refused by the signature, in the graph."""
    root, _ = exports
    served = tf.saved_model.load(str(root / "vae"))
    x = tf.fill((2, 8, 8, 1), 0.5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="sample: n must be <= 10000"):
        served.signatures["sample"](n=tf.constant(10**8), seed=tf.constant(1))
    with pytest.raises(tf.errors.InvalidArgumentError, match="log_likelihood: k must be <= 100000"):
        served.signatures["log_likelihood"](x=x, k=tf.constant(10**7), seed=tf.constant(1))
    with pytest.raises(tf.errors.InvalidArgumentError, match="batch size x k must be <= 1000000"):
        served.signatures["log_likelihood"](x=tf.fill((20, 8, 8, 1), 0.5), k=tf.constant(90_000), seed=tf.constant(1))
    with pytest.raises(tf.errors.InvalidArgumentError, match="vae: input z contains NaN or infinity"):
        served.signatures["decode"](z=tf.fill((1, 20), float("nan")))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"vae: input x must lie in \[0, 1\]"):
        served.signatures["elbo"](x=tf.fill((2, 8, 8, 1), 3.0), seed=tf.constant(1))
    # The bounds leave ordinary requests alone.
    assert served.signatures["sample"](n=tf.constant(3), seed=tf.constant(1))["samples"].shape[0] == 3
