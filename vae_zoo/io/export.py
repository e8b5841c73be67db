"""SavedModel export with named serving signatures that run in plain TensorFlow.

    vae_zoo.export(model, "export/vae")      # or: vae-zoo export runs/fmnist --out export/vae

The export needs neither vae_zoo nor TensorFlow Probability to serve: the TFP
distributions are traced into ordinary TF ops. Signatures (those that apply to
the variant):

    serving_default(x)            -> reconstruction
    encode(x)                     -> mean, stddev   (VQ-VAE: codes; autoencoder: code)
    decode(z)                     -> mean           (VQ-VAE: z is a grid of code indices)
    sample(n, seed)               -> samples        (seed < 0: a fresh random draw)
    elbo(x, seed)                 -> elbo           (single-sample ELBO, nats)
    log_likelihood(x, k, seed)    -> log_likelihood (importance-sampled, k draws)
    anomaly_score(x)              -> score, reconstruction_error
    model_card()                  -> card           (the JSON card, also stored as an asset)

Token models (the sentence VAE, the language model) take and return token ids (padded with 0; each
sentence's length is where its padding starts); ``decode`` returns ``tokens``. Built with a vocabulary, their
export carries it as the asset ``vocabulary.txt`` (one token per line, line i is id i) and two more signatures
(what the text modality adds: ``vae_zoo.data.modalities``):

    vocabulary()                  -> tokens         (the strings by id)
    detokenize(ids)               -> text           (the words up to <eos>, joined by spaces)

Conditional models (the CVAE) take ``labels`` with every signature that sees x,
and ``sample`` draws one example per label. Batch dimensions are dynamic.
"""

import shutil
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from vae_zoo.data.modalities import get_modality
from vae_zoo.errors import ModelFileError, unknown_name
from vae_zoo.io import folders, saving, strict_json
from vae_zoo.io.runtimes import export_runtime

FORMATS = ("savedmodel", "portable", "tflite", "onnx", "tfjs")


def export(model, path, card=None, overwrite=False, format="savedmodel", progress=False):
    """Write ``model`` for serving at ``path`` (a folder), in one of ``FORMATS``.

    ``savedmodel`` (TF Serving: every signature, the card inside as an asset);
    ``portable``, ``tflite``, ``onnx``: the portable signatures (``vae_zoo.io.runtimes``),
    each conversion verified against the SavedModel before it is written
    (``progress`` shows a bar over the signatures as they are checked).
    Like ``vae_zoo.save``, it writes into a staging folder and moves it into
    place only when complete, and never replaces ``path`` without ``overwrite``.
    """
    if format not in FORMATS:
        raise unknown_name("export format", format, FORMATS)
    path = Path(path)
    with folders.exclusive(path):
        folders.recover(path)
        if path.exists() and not overwrite:
            raise ModelFileError(f"{path} already exists; choose another folder, or replace it with --overwrite (overwrite=True in Python)")
        signatures = model.serving_signatures() if format == "savedmodel" else model.portable_signatures()
        card = {**saving.base_card(model), **(card or {}), "export_format": format, "signatures": [name for name, _, _ in signatures]}
        if format == "savedmodel":  # what the data's kind adds (a token model's vocabulary asset)
            card.update(get_modality(model.modality).export_card(model))
        staging = folders.staging_folder(path)
        try:
            if format == "savedmodel":
                _write_archive(model, card, staging)
            else:
                export_runtime(model, staging, card, format, progress)
            folders.move_into_place(staging, path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return path


def _write_archive(model, card, staging):
    with tempfile.TemporaryDirectory() as scratch:
        card_file = Path(scratch) / "card.json"
        text = strict_json.dumps(card, indent=2)
        card_file.write_text(text + "\n")
        # A lookup table initialized from the file is the resource Keras' archive knows how to
        # keep: the SavedModel then holds card.json as an asset and the table reads it back.
        card_table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                str(card_file), tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE
            ),
            default_value="",
        )
        lines = len(text.splitlines())
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.track(card_table)
        for name, fn, specs in model.serving_signatures():
            archive.add_endpoint(name, fn, input_signature=specs)
        get_modality(model.modality).add_to_export(archive, model, Path(scratch))
        archive.add_endpoint(
            "model_card",
            lambda: {"card": tf.strings.reduce_join(card_table.lookup(tf.range(lines, dtype=tf.int64)), separator="\n")},
            input_signature=[],
        )
        archive.write_out(str(staging), verbose=False)

