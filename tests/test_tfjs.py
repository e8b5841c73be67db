"""The TF.js path as docs/deploy.md tells it, end to end (the first test is in the slow tier: -m slow).

A venv of its own with tools/tfjs/requirements.txt (tensorflowjs 4.22 pulls TensorFlow 2.19 and 2.9 GB; pass an
existing one as VAE_ZOO_TFJS_VENV), pure @tensorflow/tfjs from tools/tfjs/package-lock.json, then the export,
which runs every signature in Node on valid and invalid rows, and the JavaScript example, which decodes a latent
vector as the SavedModel does.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import vae_zoo

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools" / "tfjs"


@pytest.fixture(scope="module")
def converter(tmp_path_factory):
    venv = Path(os.environ.get("VAE_ZOO_TFJS_VENV") or tmp_path_factory.mktemp("tfjs") / "venv")
    program = venv / "bin" / "tensorflowjs_converter"
    if not program.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        installed = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-r", str(TOOLS / "requirements.txt")],
                                   capture_output=True, text=True)
        unreachable = ("NewConnectionError", "Temporary failure in name resolution", "No matching distribution found")
        if installed.returncode and any(sign in installed.stderr for sign in unreachable):
            pytest.skip(f"the package index is out of reach: {installed.stderr.strip().splitlines()[-1]}")
        assert installed.returncode == 0, installed.stderr[-3000:]
    version = subprocess.run([str(program), "--version"], capture_output=True, text=True, check=True).stdout
    assert "tensorflow 2.19" in version, version  # the converter's own TensorFlow, apart from vae_zoo's 2.21
    return program


@pytest.fixture(scope="module")
def node_modules():
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed")
    installed = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=TOOLS, capture_output=True, text=True)
    if installed.returncode and any(sign in installed.stderr for sign in ("ENOTFOUND", "ECONNREFUSED", "EAI_AGAIN")):
        pytest.skip(f"the npm registry is out of reach: {installed.stderr.strip().splitlines()[-1]}")
    assert installed.returncode == 0, installed.stderr[-3000:]
    return TOOLS / "node_modules"


@pytest.mark.slow
def test_the_tfjs_export_runs_in_node_and_the_example_decodes_as_the_saved_model(converter, node_modules, tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_ZOO_TFJS_CONVERTER", str(converter))
    monkeypatch.setenv("VAE_ZOO_TFJS_NODE_MODULES", str(node_modules))
    model = vae_zoo.load_pretrained("vae.mnist_mini")
    path = vae_zoo.export(model, tmp_path / "web", format="tfjs")
    card = json.loads((path / "card.json").read_text())
    # Every signature ran in Node and agreed with the SavedModel on every row, the NaN row too (vae_zoo.io.runtimes).
    assert card["tfjs_verified"].startswith("every signature run in Node"), card["tfjs_verified"]
    names = json.loads((path / "signatures.json").read_text())
    assert names["encode"]["outputs"] == {"mean": "Identity:0", "stddev": "Identity_1:0", "valid": "Identity_2:0"}
    z = [0.5, -1.0, 2.0]
    run = subprocess.run(["node", str(TOOLS / "decode.mjs"), str(path), *map(str, z)], capture_output=True, text=True, check=True)
    answer = json.loads(run.stdout)
    full_z = np.zeros((1, model.latent_dim), np.float32)
    full_z[0, :3] = z
    expected = np.asarray(model.decoded_mean(tf.constant(full_z)))
    assert answer["shape"] == list(expected.shape)
    np.testing.assert_allclose(np.reshape(answer["mean"], expected.shape), expected, atol=1e-5)


def test_without_a_converter_the_tfjs_export_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_ZOO_TFJS_CONVERTER", str(tmp_path / "missing"))
    with pytest.raises(vae_zoo.ModelFileError, match=r"tensorflowjs==4.22.0 \"ydf<0.14\""):
        vae_zoo.export(vae_zoo.load_pretrained("vae.mnist_mini"), tmp_path / "web", format="tfjs")
    assert not (tmp_path / "web").exists()
