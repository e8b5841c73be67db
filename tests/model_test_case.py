"""The standard checks every zoo model must pass, written once.

``run_standard_checks`` is what the registry-wide test runs over
``list_models()``; ``ModelTestCase`` wraps the same helpers as test methods, so a
variant's own test file is a few lines: subclass it, name the model and kwargs,
and add only what is special about the variant.
"""

import json
import subprocess
import sys

import numpy as np
import tensorflow as tf

import vae_zoo
from vae_zoo.errors import CapabilityError
from vae_zoo.hardware import has_accelerator
from vae_zoo.training import compilation

SMALL_DATA_SHAPE = (8, 8, 1)
# A small token model: sentences of up to 8 words over 20 ids.
SMALL_TEXT_KWARGS = {"data_shape": (10,), "vocabulary_size": 20, "embedding_dim": 8, "encoder": {"name": "lstm", "units": 16},
                     "latent_dim": 4}


def small_kwargs(name):
    """Constructor arguments of a small model of the registered ``name``, for its modality."""
    if vae_zoo.get_model_class(name).modality == "text":
        return dict(SMALL_TEXT_KWARGS)
    return {"data_shape": SMALL_DATA_SHAPE}


def example_batch(data_shape=SMALL_DATA_SHAPE, batch=6, seed=0):
    """Binary images: valid input for every likelihood."""
    rng = np.random.default_rng(seed)
    return (rng.random((batch, *data_shape)) < 0.3).astype(np.float32)


def example_sentences(length=10, vocabulary_size=20, batch=6, seed=0):
    """Token ids ``<bos> words <eos> <pad>...`` of random lengths (1 to length - 2 words)."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((batch, length), np.int32)
    for row in ids:
        words = rng.integers(1, length - 1)
        row[0], row[words + 1] = 2, 3
        row[1:words + 1] = rng.integers(4, vocabulary_size, words)
    return ids


def example_inputs(model, batch=6, seed=0):
    """A valid batch for ``model``: sentences for a token model, binary images for the rest."""
    if model.input_dtype.is_integer:
        return example_sentences(model.data_shape[0], model.vocabulary_size, batch, seed)
    return example_batch(model.data_shape, batch, seed)


def fit_inputs(model, x):
    """What model.fit takes for this model: images, or (images, labels) for conditional variants."""
    if model.can("labels"):
        return x, np.arange(len(x)) % model.num_classes
    return x, None


def check_contract(model):
    """Every model declares known capabilities, and its input specs and signatures follow from them."""
    from vae_zoo.models.base import CAPABILITIES, CAPABILITY_METHODS, ZooModel

    assert isinstance(model, ZooModel)
    assert model.capabilities and set(model.capabilities) <= set(CAPABILITIES)
    names = [spec.name for spec in model.input_specs()]
    assert names == (["x", "labels"] if model.can("labels") else ["x"])
    signatures = {name for name, _, _ in model.serving_signatures()}
    assert {"serving_default", "anomaly_score"} <= signatures
    assert ({"encode", "decode"} <= signatures) == model.can("latent")
    assert not ({"encode", "decode"} & signatures) or model.can("latent")
    assert ("sample" in signatures) == model.can("sample")
    assert ({"elbo", "log_likelihood"} <= signatures) == model.can("elbo")
    # The methods of a capability are there exactly when it is declared; otherwise they name what is missing.
    for method, capability in CAPABILITY_METHODS.items():
        if model.can(capability):
            assert callable(getattr(model, method)), method
        else:
            try:
                getattr(model, method)
            except CapabilityError as err:
                assert repr(capability) in str(err)
            else:
                raise AssertionError(f"{model.registered_name} has {method} without the {capability!r} capability")


def check_build(model):
    assert model.built
    assert model.count_params() > 0
    assert len(model.trainable_variables) > 0


def model_args(model, x):
    inputs, labels = fit_inputs(model, x)
    return inputs if labels is None else (inputs, labels)


def check_forward_shapes(model, x):
    batch = x.shape[0]
    reconstruction = model(model_args(model, x))
    assert tuple(reconstruction.shape) == x.shape
    assert np.all(np.isfinite(reconstruction))
    if model.can("latent"):
        assert np.asarray(model.transform(model_args(model, x))).shape[0] == batch
    if model.can("elbo"):
        elbo = model.elbo(model_args(model, x))
        assert tuple(elbo.shape) == (batch,) and np.all(np.isfinite(elbo))
    if model.can("sample"):
        samples = model.sample(3, seed=1)
        assert tuple(samples.shape) == (3, *x.shape[1:]) and np.all(np.isfinite(samples))


def check_fit_step(model, x):
    inputs, labels = fit_inputs(model, x)
    before = [v.numpy().copy() for v in model.trainable_variables]
    model.compile()
    # The default is the zoo's rule (training/compilation.py): XLA except for convolutions on a CPU.
    convolutional = compilation.convolution_count(model) > 0
    assert model.jit_compile == (has_accelerator() or not convolutional), "model.compile() follows the XLA rule"
    history = model.fit(inputs, labels, epochs=1, batch_size=len(x), verbose=0).history
    assert "loss" in model.metric_names
    for name in model.metric_names:
        assert name in history, f"fit did not report {name}"
        assert np.isfinite(history[name][0]), f"{name} is not finite: {history[name][0]}"
    changed = [not np.allclose(b, v.numpy()) for b, v in zip(before, model.trainable_variables)]
    unchanged = [v.path for v, c in zip(model.trainable_variables, changed) if not c]
    assert not unchanged, f"one fit step left these weights unchanged: {unchanged}"


def check_keras_round_trip(model, x, tmp_path):
    args = model_args(model, x)
    folder = vae_zoo.save(model, tmp_path / "saved")
    loaded = vae_zoo.load(folder)
    assert type(loaded) is type(model)
    np.testing.assert_allclose(loaded(args), model(args), rtol=1e-5, atol=1e-6)
    if hasattr(model, "kl_weight"):
        assert float(loaded.kl_weight) == float(model.kl_weight)
    assert len(loaded.weights) == len(model.weights)
    for a, b in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def check_config_round_trip(model):
    config = model.get_config()
    assert json.loads(json.dumps(config)) == config, "get_config() must be plain JSON"
    clone = type(model).from_config(config)
    assert clone.get_config() == config
    assert clone.count_params() == model.count_params()


def run_standard_checks(name, tmp_path, **kwargs):
    kwargs = {**small_kwargs(name), **kwargs}
    model = vae_zoo.create_model(name, **kwargs)
    x = example_inputs(model)
    tf.random.set_seed(0)
    check_build(model)
    check_contract(model)
    check_config_round_trip(model)
    check_forward_shapes(model, x)
    check_fit_step(model, x)
    check_keras_round_trip(model, x, tmp_path)


class ModelTestCase:
    """Subclass with ``model_name`` and ``model_kwargs``; pytest collects the checks."""

    model_name = None
    model_kwargs = {}

    def make_model(self, **overrides):
        kwargs = {**small_kwargs(self.model_name), **self.model_kwargs, **overrides}
        return vae_zoo.create_model(self.model_name, **kwargs)

    def test_standard_checks(self, tmp_path):
        run_standard_checks(self.model_name, tmp_path, **self.model_kwargs)


def serve_with_tensorflow_alone(export_dir, body):
    """Run ``body`` (Python lines that read the SavedModel ``m`` and fill the dict ``out``) in a fresh process
    that imports TensorFlow only; check that neither vae_zoo nor TensorFlow Probability was loaded; return ``out``."""
    script = (f"import json, sys, numpy as np, tensorflow as tf\nm = tf.saved_model.load({str(export_dir)!r})\nout = {{}}\n{body}\n"
              "out['modules'] = sorted({k.split('.')[0] for k in sys.modules})\nprint(json.dumps(out))\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert "vae_zoo" not in out["modules"] and "tensorflow_probability" not in out["modules"]
    return out
