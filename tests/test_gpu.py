"""The GPU path: the code that only runs where TensorFlow sees a GPU (marked ``gpu``).

On a machine without a GPU these tests skip, saying so. ``tools/gpu_check.sh --dry-run`` sets
``VAE_ZOO_GPU_DRY_RUN=1``: they then run the same code on the CPU at the same tiny sizes, so that they cannot rot
while no GPU is lent (tests/test_gpu_check.py runs that dry run in CI).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import vae_zoo
from vae_zoo import evaluation
from vae_zoo.evaluation import metrics
from vae_zoo.training import recipe as recipes
from vae_zoo.training import runner

GPUS = tf.config.list_logical_devices("GPU")
DRY_RUN = os.environ.get("VAE_ZOO_GPU_DRY_RUN") == "1"

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not GPUS and not DRY_RUN,
                       reason="no GPU: TensorFlow sees none here (VAE_ZOO_GPU_DRY_RUN=1 runs these on the CPU)"),
]

DEVICE = "GPU" if GPUS else "CPU"
RECIPE = {
    "model": {"name": "vae", "latent_dim": 8, "encoder": {"name": "conv", "filters": [16, 32], "hidden_sizes": [64]}},
    "data": {"name": "digits", "binarize": "static", "batch_size": 64, "limit": 1024},
    "training": {"epochs": 3, "seed": 1, "verbose": 0, "jit_compile": True},
}
HIERARCHICAL = {"name": "hierarchical_vae", "width": 8, "latent_channels": 2, "likelihood": "bernoulli"}


def on_device(variable):
    """Whether a variable lives on the device these tests target (a mirrored one on each of them)."""
    backing = getattr(variable, "value", variable)  # Keras 3 wraps the tf.Variable
    values = getattr(backing, "values", (backing,))
    return all(DEVICE in v.device for v in values)


def test_training_and_evaluation_run_under_xla_on_the_device():
    recipe = recipes.parse(RECIPE)
    data = recipes.build_data(recipe)
    model = recipes.compile_model(recipes.build_model(recipe, data), recipe, data.steps_per_epoch())
    logs = runner.fit(model, data, recipe, verbose=0)
    assert all(on_device(v) for v in model.trainable_variables), [v.device for v in model.trainable_variables[:3]]
    losses = [epoch["loss"] for epoch in logs]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    scores = evaluation.score(model, data.take("test")[0][:256])
    assert np.isfinite(scores["elbo"]) and scores["elbo"] < 0


@pytest.mark.parametrize("model_name", ["vae", "aae", "hierarchical_vae"])
def test_mixed_float16_trains_with_loss_scaling(model_name):
    overrides = ["training.mixed_precision=mixed_float16", f"model.name={model_name}"]
    spec = {**RECIPE, "model": HIERARCHICAL} if model_name == "hierarchical_vae" else RECIPE
    recipe = recipes.parse(spec, overrides=overrides)
    with runner.precision("mixed_float16"):
        data = recipes.build_data(recipe)
        model = recipes.compile_model(recipes.build_model(recipe, data), recipe, data.steps_per_epoch())
        logs = runner.fit(model, data, recipe, verbose=0)
    optimizers = [model.optimizer, getattr(model, "discriminator_optimizer", model.optimizer)]
    assert all(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in optimizers)
    losses = [epoch["loss"] for epoch in logs]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    assert keras.config.dtype_policy().name == "float32", "the policy is put back after the run"


def test_mirrored_strategy_trains_over_the_devices(tmp_path):
    strategy = runner.make_strategy("mirrored")
    assert strategy.num_replicas_in_sync == max(1, len(GPUS))
    recipe = recipes.parse(RECIPE, overrides=["training.distribute=mirrored", "training.epochs=2"])
    folder, history, card = runner.train(recipe, tmp_path / "mirrored", verbose=0)
    assert np.all(np.isfinite(history["loss"])), history["loss"]
    model = vae_zoo.load(folder)
    assert np.isfinite(evaluation.score(model, recipes.build_data(recipe).take("test")[0][:128])["elbo"])


def test_whole_chunk_xla_likelihood_agrees_with_the_cpu_path():
    recipe = recipes.parse(RECIPE, overrides=["training.epochs=2"])
    data = recipes.build_data(recipe)
    model = recipes.compile_model(recipes.build_model(recipe, data), recipe, data.steps_per_epoch())
    runner.fit(model, data, recipe, verbose=0)
    images = data.take("test")[0][:200]
    assert metrics.chunks_use_xla() == bool(GPUS), "a GPU compiles whole chunks; a CPU does not"
    on_device_xla = evaluation.log_likelihood(model, images, k=256, chunk=128, jit_compile=True)
    with tf.device("/CPU:0"):
        on_cpu = evaluation.log_likelihood(model, images, k=256, chunk=128, jit_compile=False)
    difference = on_device_xla - on_cpu
    # The same stateless draws give the same estimate up to float rounding; a different random algorithm under XLA
    # would still agree within a few standard errors of the mean difference.
    bound = 4 * difference.std() / np.sqrt(len(difference)) + 1e-3 * abs(on_cpu.mean())
    print(f"IS-NLL k=256: {DEVICE} XLA {-on_device_xla.mean():.4f}, CPU {-on_cpu.mean():.4f} nats")
    assert abs(difference.mean()) <= bound, (difference.mean(), bound)


def test_a_model_exported_on_the_device_serves_on_the_cpu(tmp_path):
    recipe = recipes.parse(RECIPE, overrides=["training.epochs=1"])
    data = recipes.build_data(recipe)
    model = recipes.compile_model(recipes.build_model(recipe, data), recipe, data.steps_per_epoch())
    runner.fit(model, data, recipe, verbose=0)
    vae_zoo.export(model, tmp_path / "vae")
    x = data.take("test")[0][:5]
    z = np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32)
    np.savez(tmp_path / "vae.inputs.npz", x=x, z=z, n=np.int32(4), seed=np.int32(3), k=np.int32(7))
    client = Path(__file__).parent / "export_client.py"
    run = subprocess.run([sys.executable, str(client), str(tmp_path), "vae"], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "CUDA_VISIBLE_DEVICES": "-1"})
    assert run.returncode == 0, run.stderr[-3000:]
    served = np.load(tmp_path / "vae.outputs.npz")
    np.testing.assert_allclose(served["decode/mean"], np.asarray(model.decoded_outputs(z)["mean"]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(served["serving_default/reconstruction"], np.asarray(model.reconstruction(x)),
                               rtol=1e-4, atol=1e-5)
    modules = json.loads((tmp_path / "modules.json").read_text())
    assert "vae_zoo" not in modules
