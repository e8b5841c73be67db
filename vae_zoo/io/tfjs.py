"""TF.js graph models of the portable signatures, one folder each, with the names a JavaScript client needs.

tensorflowjs 4.22 needs TensorFlow 2.19, so its converter lives in an environment of its own
(``pip install -r tools/tfjs/requirements.txt`` in a venv; docs/deploy.md) and is run as a program:
``VAE_ZOO_TFJS_CONVERTER`` names it, else ``tensorflowjs_converter`` on the PATH.

The converter names a signature's outputs ``Identity:0``, ``Identity_1:0``, ... in the order of the
signature's output keys, sorted (how TensorFlow flattens a dict). ``signatures.json`` maps them back:

    {"encode": {"inputs": {"x": "x:0"}, "outputs": {"mean": "Identity:0", "stddev": "Identity_1:0", "valid": ...}}}

Where Node.js and ``@tensorflow/tfjs`` are at hand (``VAE_ZOO_TFJS_NODE_MODULES`` names the node_modules
folder), every signature is run in Node on the export's test inputs and must agree with the SavedModel like
TFLite and ONNX; otherwise the card says that the conversion was not run.
"""

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import tensorflow as tf

from vae_zoo.errors import ModelFileError

RUNNER = Path(__file__).with_name("tfjs_run.mjs")
INSTALL = 'in a separate venv: pip install tensorflowjs==4.22.0 "ydf<0.14" (tools/tfjs/requirements.txt)'


def converter_command():
    """The converter program: ``VAE_ZOO_TFJS_CONVERTER``, else ``tensorflowjs_converter`` on the PATH."""
    named = os.environ.get("VAE_ZOO_TFJS_CONVERTER")
    found = named or shutil.which("tensorflowjs_converter")
    if not found or not Path(found).is_file():
        where = f"VAE_ZOO_TFJS_CONVERTER={named} is not a file" if named else "tensorflowjs_converter is not on the PATH"
        raise ModelFileError(f"tfjs export needs the TF.js converter ({where}): {INSTALL}, then set "
                             "VAE_ZOO_TFJS_CONVERTER to its bin/tensorflowjs_converter")
    return found


def signature_names(portable_dir, name):
    """{"inputs": {key: tfjs name}, "outputs": {key: tfjs name}} of one portable signature."""
    function = tf.saved_model.load(str(portable_dir)).signatures[name]
    inputs = {key: f"{key}:0" for key in sorted(function.structured_input_signature[1])}
    outputs = sorted(function.structured_outputs)
    return {"inputs": inputs, "outputs": {key: "Identity:0" if i == 0 else f"Identity_{i}:0" for i, key in enumerate(outputs)}}


def check_output_names(name, outputs, converted):
    """Check the mapping ``outputs`` (key -> tensor) against the converter's own signature, which keeps some keys
    ("valid": Identity_2:0) and replaces others by the tensor's name ("Identity:0" for mean)."""
    tensors = {key: entry.get("name") for key, entry in (converted.get("outputs") or {}).items()}
    if set(tensors.values()) != set(outputs.values()):
        raise ModelFileError(f"tfjs: {name!r} has outputs {sorted(tensors.values())}, not {sorted(outputs.values())}")
    for key, tensor in tensors.items():
        if key in outputs and outputs[key] != tensor:
            raise ModelFileError(f"tfjs: {name!r} names {tensor} {key!r}, where the SavedModel's order gives {outputs[key]}")


def convert(portable_dir, out_dir, names, progress=None):
    """Convert each signature of ``names`` to ``out_dir/<signature>/model.json``; write ``signatures.json``."""
    command = converter_command()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = {}
    for name in names:
        run = subprocess.run([command, "--input_format=tf_saved_model", f"--signature_name={name}", "--saved_model_tags=serve",
                              str(portable_dir), str(out_dir / name)], capture_output=True, text=True)
        model_json = out_dir / name / "model.json"
        if run.returncode or not model_json.is_file():
            raise ModelFileError(f"tfjs: the converter could not convert {name!r}: {' '.join(run.stderr.split())[-400:]}")
        table[name] = signature_names(portable_dir, name)
        check_output_names(name, table[name]["outputs"], json.loads(model_json.read_text()).get("signature") or {})
        if progress is not None:
            progress()
    (out_dir / "signatures.json").write_text(json.dumps(table, indent=2) + "\n")
    return table


def node_modules():
    """The node_modules folder holding @tensorflow/tfjs, or None."""
    folder = os.environ.get("VAE_ZOO_TFJS_NODE_MODULES")
    if folder and (Path(folder) / "@tensorflow" / "tfjs").is_dir() and shutil.which("node"):
        return Path(folder)
    return None


def run_in_node(model_dir, name, feed, modules):
    """The outputs of signature ``name`` of the converted ``model_dir`` on ``feed``, computed by tfjs in Node."""
    request = {key: encoded(value) for key, value in feed.items()}
    # Node resolves a bare import from the script's own folder up, never from NODE_PATH for ES modules:
    # the runner is copied beside the node_modules it needs.
    script = Path(modules).parent / RUNNER.name
    shutil.copy(RUNNER, script)
    run = subprocess.run(["node", str(script), str(model_dir), name], input=json.dumps(request),
                         capture_output=True, text=True)
    if run.returncode:
        raise ModelFileError(f"tfjs: Node could not run {name!r}: {' '.join(run.stderr.split())[-400:]}")
    answer = json.loads(run.stdout)
    return {key: np.frombuffer(base64.b64decode(value["base64"]), "<f4").reshape(value["shape"]) for key, value in answer.items()}


def encoded(value):
    """An array as JSON for the runner: little-endian bytes in base64, since JSON has no NaN (invalid rows hold one)."""
    array = np.asarray(value)
    dtype = "int32" if array.dtype.kind in "iub" else "float32"
    raw = np.ascontiguousarray(array, "<i4" if dtype == "int32" else "<f4").tobytes()
    return {"shape": list(array.shape), "dtype": dtype, "base64": base64.b64encode(raw).decode("ascii")}
