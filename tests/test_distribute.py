"""The same recipe on one process, on two logical CPU devices (MirroredStrategy) and on two worker
processes on 127.0.0.1 (MultiWorkerMirroredStrategy) learns the same weights.

Each run is a subprocess of ``tests/run_worker.py``: a strategy must be chosen
before TensorFlow starts, and the workers of a cluster are processes. The last
test runs ``vae-zoo train --distribute multi_worker`` itself, kills both workers
and resumes them.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("run_worker.py")
MODELS = ["vae", "iwae", "aae", "hierarchical_vae"]  # the AAE: its own two-optimizer step


def run(out, model, distribute, env=None):
    return subprocess.Popen([sys.executable, str(WORKER), str(out), model, distribute], env={**os.environ, **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process):
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]


def weights(path):
    saved = np.load(path)
    return saved["loss"], [saved[f"w{i}"] for i in range(sum(k.startswith("w") for k in saved.files))], int(saved["replicas"])


@pytest.fixture(scope="module")
def single_process(tmp_path_factory):
    folder = tmp_path_factory.mktemp("single")
    processes = {model: run(folder / f"{model}.npz", model, "none") for model in MODELS}
    for process in processes.values():
        finish(process)
    return {model: weights(folder / f"{model}.npz") for model in MODELS}


def assert_same_run(reference, other):
    loss, params, _ = reference
    other_loss, other_params, _ = other
    np.testing.assert_allclose(other_loss, loss, rtol=1e-5)
    assert len(other_params) == len(params)
    for a, b in zip(params, other_params):
        np.testing.assert_allclose(b, a, atol=1e-5)


@pytest.mark.parametrize("model", MODELS)
def test_mirrored_strategy_over_two_logical_cpus_matches_one_process(tmp_path, single_process, model):
    process = run(tmp_path / "mirrored.npz", model, "mirrored")
    finish(process)
    result = weights(tmp_path / "mirrored.npz")
    assert result[2] == 2, "the run did not use two replicas"
    assert_same_run(single_process[model], result)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_two_workers_on_localhost_hold_identical_weights_that_match_one_process(tmp_path, single_process, model):
    cluster = {"worker": [f"127.0.0.1:{free_port()}" for _ in range(2)]}
    processes = [
        run(tmp_path / f"worker{i}.npz", model, "multi_worker",
            env={"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})
        for i in range(2)
    ]
    for process in processes:
        finish(process)
    first, second = weights(tmp_path / "worker0.npz"), weights(tmp_path / "worker1.npz")
    assert first[2] == second[2] == 2
    for a, b in zip(first[1], second[1]):
        np.testing.assert_array_equal(a, b)
    assert_same_run(single_process[model], first)


MULTI_WORKER_RECIPE = """
model: {name: vae, latent_dim: 4, encoder: {name: mlp, hidden_sizes: [32]}}
data: {name: digits, binarize: dynamic, batch_size: 64}
training: {epochs: 4, jit_compile: false, seed: 2, monitor: val_elbo, early_stopping: {patience: 5}}
callbacks: [{name: kl_annealing, schedule: linear, warmup_steps: 50}]
"""


def train_workers(recipe, out, kill_after_epochs=None):
    """``vae-zoo train --distribute multi_worker`` in two processes on 127.0.0.1; optionally SIGKILL both."""
    cluster = {"worker": [f"127.0.0.1:{free_port()}" for _ in range(2)]}
    processes = [
        subprocess.Popen([sys.executable, "-m", "vae_zoo", "train", str(recipe), "--out", str(out), "--distribute", "multi_worker"],
                         env={**os.environ, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)
    ]
    if kill_after_epochs:
        metadata = out.parent / f".{out.name}.run" / "backup" / "training_metadata.json"
        deadline = time.time() + 300
        while time.time() < deadline and all(p.poll() is None for p in processes):
            if metadata.is_file() and json.loads(metadata.read_text() or "{}").get("epoch", 0) >= kill_after_epochs:
                break
            time.sleep(0.05)
        for process in processes:
            process.send_signal(signal.SIGKILL)
        for process in processes:
            process.wait()
        return
    for process in processes:
        finish(process)


@pytest.mark.slow
def test_a_killed_multi_worker_run_resumes_and_ends_as_an_uninterrupted_one(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(MULTI_WORKER_RECIPE)
    train_workers(recipe, tmp_path / "resumed", kill_after_epochs=2)
    assert not (tmp_path / "resumed").exists() and (tmp_path / ".resumed.run").is_dir()
    train_workers(recipe, tmp_path / "resumed")
    train_workers(recipe, tmp_path / "straight")
    resumed = json.loads((tmp_path / "resumed" / "card.json").read_text())
    straight = json.loads((tmp_path / "straight" / "card.json").read_text())
    assert resumed["training"]["distribute"] == "multi_worker"
    assert resumed["training"]["resumed_after_epoch"] >= 2 and resumed["training"]["epochs_run"] == 4
    assert resumed["metrics"]["test"]["elbo"] == pytest.approx(straight["metrics"]["test"]["elbo"], abs=1e-5)
