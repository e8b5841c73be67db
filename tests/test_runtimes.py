"""Portable exports convert to TFLite and ONNX, and every signature agrees with the SavedModel within 1e-5."""

import numpy as np
import pytest
import tensorflow as tf

import vae_zoo
from model_test_case import SMALL_DATA_SHAPE, example_batch, fit_inputs
from vae_zoo.io import runtimes

# Token models decode step by step with a beam or a sampler: they export as SavedModels only.
NAMES = [name for name in vae_zoo.list_models() if vae_zoo.get_model_class(name).portable]
# The fast tier converts the seed VAE and the VQ-VAE (integer codes); the slow tier every other portable model.
FAST = ("vae", "vq_vae")
CONVERTED = [name if name in FAST else pytest.param(name, marks=pytest.mark.slow) for name in NAMES]


def trained(name):
    model = vae_zoo.create_model(name, data_shape=SMALL_DATA_SHAPE)
    images, labels = fit_inputs(model, example_batch(batch=6))
    model.compile()
    model.fit(images, labels, epochs=1, batch_size=6, verbose=0)
    return model


def assert_close(runtime, name, expected, got):
    # Every row, the invalid (NaN) example's too: its outputs are defined, those of a blank input.
    for key, want in expected.items():
        have = np.asarray(got[key])
        if key == "valid":
            assert np.array_equal(have.astype(bool), want), (runtime, name)
            continue
        assert np.all(np.isfinite(want)), f"the SavedModel's {name} {key} is not finite"
        np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-5, err_msg=f"{runtime} {name} {key}")


@pytest.mark.parametrize("name", CONVERTED)
def test_tflite_and_onnx_match_the_portable_saved_model(name, tmp_path):
    model = trained(name)
    portable = vae_zoo.export(model, tmp_path / "portable", format="portable")
    vae_zoo.export(model, tmp_path / "tflite", format="tflite")
    loaded = tf.saved_model.load(str(portable))
    assert {"serving_default", "encode", "decode"} <= set(loaded.signatures)
    assert (portable / "card.json").is_file() and not (portable / "assets" / "card.json").exists()
    inputs = runtimes.test_inputs(model, batch=5, seed=3)  # other inputs than the export's own check
    interpreter = tf.lite.Interpreter(model_path=str(tmp_path / "tflite" / "model.tflite"))
    onnxruntime = pytest.importorskip("onnxruntime", reason="the export extra is not installed")
    vae_zoo.export(model, tmp_path / "onnx", format="onnx")
    for signature, function in loaded.signatures.items():
        feed = {key: inputs[key] for key in function.structured_input_signature[1]}
        expected = {k: v.numpy() for k, v in function(**{k: tf.constant(v) for k, v in feed.items()}).items()}
        assert_close("tflite", signature, expected, interpreter.get_signature_runner(signature)(**feed))
        session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / f"{signature}.onnx"), providers=["CPUExecutionProvider"])
        outputs = session.run(None, {i.name: feed[i.name.split(":")[0]] for i in session.get_inputs()})
        assert_close("onnx", signature, expected, dict(zip([o.name for o in session.get_outputs()], outputs)))
    if "elbo" in loaded.signatures:
        assert not bool(np.asarray(loaded.signatures["elbo"](x=tf.constant(inputs["x"]), noise=tf.constant(inputs["noise"]),
                                                               **({"labels": tf.constant(inputs["labels"])} if model.can("labels") else {}))["valid"])[-1])


def test_a_conversion_that_disagrees_is_not_written(tmp_path, monkeypatch):
    model = trained("vae")
    real = runtimes._reference

    def shifted(portable_dir, inputs):  # pretend the SavedModel says something else
        reference = real(portable_dir, inputs)
        expected, feed = reference["decode"]
        reference["decode"] = ({"mean": expected["mean"] + 1e-3}, feed)
        return reference

    monkeypatch.setattr(runtimes, "_reference", shifted)
    with pytest.raises(vae_zoo.ModelFileError, match="tflite: signature 'decode' output 'mean' differs from the SavedModel by 0.001"):
        vae_zoo.export(model, tmp_path / "t", format="tflite")
    assert not (tmp_path / "t").exists() and list(tmp_path.iterdir()) == []
