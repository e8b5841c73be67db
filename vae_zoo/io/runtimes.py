"""The portable export converted for other runtimes, each conversion verified before it is written.

    portable  a SavedModel of ``models.portable_signatures`` (plain ops, noise as input), card.json beside it
    tflite    one ``model.tflite`` with every portable signature (TFLite's builtin op set only)
    onnx      one ``<signature>.onnx`` per signature (tf2onnx; an ONNX graph has one signature), for onnxruntime
    tfjs      one TF.js graph model per signature and ``signatures.json`` (``vae_zoo.io.tfjs``), for Node or a browser

A converted file is run on test inputs next to the portable SavedModel and is
written only if every output of every signature agrees within ``TOLERANCE``
(absolute, and relative to the output's size) on every example, the invalid ones
too, and the ``valid`` flags agree exactly. tf2onnx and onnxruntime are the ``export``
extra: ``pip install "vae_zoo[export]"``.
"""

import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from vae_zoo.errors import ModelFileError
from vae_zoo.io import strict_json, tfjs

TOLERANCE = 1e-5
ONNX_OPSET = 17


def write_portable(model, path, card):
    """The portable SavedModel of ``model`` at ``path`` (a new folder), with ``card.json`` as a plain file in it."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    for name, fn, specs in model.portable_signatures():
        archive.add_endpoint(name, fn, input_signature=specs)
    archive.write_out(str(path), verbose=False)
    (Path(path) / "card.json").write_text(strict_json.dumps(card, indent=2) + "\n")


def test_inputs(model, batch=4, seed=0):
    """Inputs for every portable signature: examples the model generates (valid) plus one NaN example."""
    rng = np.random.default_rng(seed)
    latent = model.decoder_input_spec()
    shape = (batch, *latent.shape[1:])
    if latent.dtype.is_integer:
        z = rng.integers(0, model.codebook_size if model.can("discrete_codes") else 2, shape).astype(np.int32)
    else:
        z = rng.normal(size=shape).astype(np.float32)
    labels = rng.integers(0, model.num_classes if model.can("labels") else 1, batch).astype(np.int32)
    x = np.array(model.decoded_mean(z, labels if model.can("labels") else None), np.float32)  # a writable copy
    x[-1].flat[0] = np.nan  # the last example is invalid: its flag must say so in every runtime
    inputs = {"x": x, latent.name: z, "noise": rng.normal(size=shape).astype(np.float32), "labels": labels}
    return inputs


def _reference(portable_dir, inputs):
    loaded = tf.saved_model.load(str(portable_dir))
    results = {}
    for name, function in loaded.signatures.items():
        feed = {key: tf.constant(inputs[key]) for key in function.structured_input_signature[1]}
        results[name] = ({k: v.numpy() for k, v in function(**feed).items()}, {k: inputs[k] for k in feed})
    return results


def _compare(runtime, name, expected, got):
    valid = expected.get("valid")
    for key, want in expected.items():
        if key not in got:
            raise ModelFileError(f"{runtime}: signature {name!r} lost its output {key!r} in conversion; not written")
        have = np.asarray(got[key])
        if key == "valid":
            if not np.array_equal(have.astype(bool), want.astype(bool)):
                raise ModelFileError(f"{runtime}: signature {name!r} flags different examples as invalid; not written")
            continue
        # Every row, the invalid ones too: their outputs are defined (those of a blank input), and a runtime
        # that gives NaN there breaks the contract (ONNX once did while this compared valid rows only).
        difference = np.abs(have.astype(np.float64) - want.astype(np.float64))
        bound = TOLERANCE * np.maximum(1.0, np.abs(want.astype(np.float64)))
        if difference.size and not np.all(difference <= bound):  # NaN fails the comparison
            raise ModelFileError(f"{runtime}: signature {name!r} output {key!r} differs from the SavedModel by "
                                 f"{difference.max():.3g} (tolerance {TOLERANCE:g}, relative above 1); not written")


def _progress(reference, show):
    """The signatures to check, with a Keras progress bar when ``show`` (conversions take seconds each)."""
    bar = keras.utils.Progbar(len(reference), unit_name="signature") if show else None
    for name in sorted(reference):
        yield name, reference[name]
        if bar is not None:
            bar.add(1, values=[])


def to_tflite(portable_dir, out_file, inputs, progress=False):
    """Convert every signature to one .tflite file (builtin ops only), verify it, then write it."""
    reference = _reference(portable_dir, inputs)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(portable_dir), signature_keys=sorted(reference))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        flatbuffer = converter.convert()
    except Exception as err:  # the converter raises ConverterError and others for unsupported ops
        raise ModelFileError(f"tflite: conversion failed: {' '.join(str(err).split())[:400]}") from None
    interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    for name, (expected, feed) in _progress(reference, progress):
        _compare("tflite", name, expected, interpreter.get_signature_runner(name)(**feed))
    Path(out_file).write_bytes(flatbuffer)
    return sorted(reference)


def to_onnx(portable_dir, out_dir, inputs, progress=False):
    """One verified ONNX file per signature in ``out_dir`` (tf2onnx, run in a subprocess; onnxruntime to verify)."""
    try:
        import onnxruntime  # lazy: an optional extra (vae_zoo[export]), needed by the onnx export only
        import tf2onnx  # noqa: F401  lazy, as above
    except ImportError:
        raise ModelFileError('onnx export needs the export extra: pip install "vae_zoo[export]"') from None
    reference = _reference(portable_dir, inputs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (expected, feed) in _progress(reference, progress):
        target = out_dir / f"{name}.onnx"
        run = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(portable_dir), "--signature_def", name,
                              "--opset", str(ONNX_OPSET), "--output", str(target)], capture_output=True, text=True)
        if run.returncode or not target.is_file():
            raise ModelFileError(f"onnx: tf2onnx could not convert {name!r}: {' '.join(run.stderr.split())[-400:]}")
        # tf2onnx can report success for a graph onnxruntime then rejects: loading it is part of the check.
        try:
            session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
            outputs = session.run(None, {i.name: feed[i.name.split(":")[0]] for i in session.get_inputs()})
        except Exception as err:  # onnxruntime's own error types
            raise ModelFileError(f"onnx: onnxruntime rejects the conversion of {name!r}: {' '.join(str(err).split())[:400]}") from None
        _compare("onnx", name, expected, dict(zip([o.name for o in session.get_outputs()], outputs)))
    return sorted(reference)


def to_tfjs(portable_dir, out_dir, inputs, progress=False):
    """One TF.js graph model per signature in ``out_dir`` and ``signatures.json`` (``vae_zoo.io.tfjs``); verified in
    Node where @tensorflow/tfjs is at hand. Returns how it was verified, or why it was not."""
    reference = _reference(portable_dir, inputs)
    tfjs.convert(portable_dir, out_dir, sorted(reference))
    modules = tfjs.node_modules()
    if modules is None:
        warnings.warn("tfjs: converted but not run (set VAE_ZOO_TFJS_NODE_MODULES to a node_modules folder with "
                      "@tensorflow/tfjs to check every signature in Node)", RuntimeWarning, stacklevel=2)
        return "not run: no Node.js with @tensorflow/tfjs (VAE_ZOO_TFJS_NODE_MODULES)"
    for name, (expected, feed) in _progress(reference, progress):
        _compare("tfjs", name, expected, tfjs.run_in_node(out_dir, name, feed, modules))
    return f"every signature run in Node with @tensorflow/tfjs from {modules}, within {TOLERANCE:g} of the SavedModel"


def export_runtime(model, path, card, runtime, progress=False):
    """Write ``runtime`` (portable, tflite or onnx) for ``model`` into the new staging folder ``path``."""
    inputs = test_inputs(model)
    if runtime == "portable":
        write_portable(model, path, card)
        return
    with tempfile.TemporaryDirectory() as scratch:
        portable = Path(scratch) / "portable"
        write_portable(model, portable, card)
        if runtime == "tflite":
            to_tflite(portable, Path(path) / "model.tflite", inputs, progress)
        elif runtime == "tfjs":
            card = {**card, "tfjs_verified": to_tfjs(portable, path, inputs, progress)}
        else:
            to_onnx(portable, path, inputs, progress)
        (Path(path) / "card.json").write_text(strict_json.dumps(card, indent=2) + "\n")
