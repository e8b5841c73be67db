"""Modalities: what a kind of data means to the rest of the library, as registered objects.

A ``Modality`` knows, for its kind of data (images, audio spectrograms, token sentences):

* how to render and save examples: ``save_samples`` (a PNG grid; a spectrogram PNG and WAV files; a text file),
  ``describe_samples`` (what a terminal shows) and ``save_folder_samples`` (the samples of a saved model folder);
* its score units: ``elbo_units`` and ``nll_units`` (bits per dimension; perplexity per token);
* what an export must carry besides the model's signatures: ``export_card`` and ``add_to_export`` (a vocabulary
  asset and the ``vocabulary`` and ``detokenize`` signatures for token models);
* the raw features a probe on latents is compared with (``raw_features``), the data options that read a data set
  as a model takes it (``data_options``), whether examples are token ids (``token_ids``) and the report parts
  that only its data have (``report_parts``).

A ``DataSpec`` and a model (``ZooModel.modality``) name their modality; the CLI, evaluation, io and training find
the object with ``get_modality(name)`` and ask it. They never compare modality names. A new kind of data is one
class here or in a file of its own:

    @register_modality
    class Points(ImageModality):
        name = "points"

        def save_samples(self, model, samples, out, spec=None, title=None):
            ...  # write the file(s); return their paths
"""

import abc
from pathlib import Path

import numpy as np
import tensorflow as tf

from vae_zoo.data import audio, text
from vae_zoo.data.base import DataSpec
from vae_zoo.data.plotting import save_image_grid
from vae_zoo.data.sources import SOURCES
from vae_zoo.errors import InputError, ModelFileError, unknown_name

# The files a picture can be written as (matplotlib picks the format from the suffix). vae_zoo.cli names the same
# as IMAGE_SUFFIXES so that its --help does not import TensorFlow (a test holds them equal).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pdf", ".svg")

MODALITIES = {}


def register_modality(cls):
    """Class decorator: make (an instance of) the ``Modality`` subclass ``cls`` the modality ``cls.name``."""
    if not (isinstance(cls, type) and issubclass(cls, Modality)):
        raise TypeError(f"a modality must be a Modality subclass, got {cls!r}")
    if not isinstance(cls.name, str) or not cls.name:
        raise ValueError(f"modality class {cls.__name__} has no name")
    if cls.name in MODALITIES:
        raise ValueError(f"modality {cls.name!r} is already registered")
    MODALITIES[cls.name] = cls()
    return cls


def get_modality(name):
    """The registered ``Modality`` called ``name`` ("image", "audio", "text", ...)."""
    if name not in MODALITIES:
        raise unknown_name("modality", name, MODALITIES)
    return MODALITIES[name]


def list_modalities():
    return sorted(MODALITIES)


def trained_data_spec(model, card):
    """The ``DataSpec`` of the data a saved model was trained on, as far as sampling needs it: the modality,
    features and attribution its card records, else those of the registered source the card names, else the model's
    own modality."""
    section = (card or {}).get("data") or {}
    source = SOURCES.get(section.get("name"))
    modality = section.get("modality") or (source.modality if source else model.modality)
    features = section.get("features") or (source.features if source else None)
    attribution = section.get("attribution") or (source.attribution if source else None)
    return DataSpec(section.get("name"), modality, tuple(model.data_shape), features=features, attribution=attribution)


def bits_per_dimension(nats, data_shape):
    """Negative log-likelihood in nats per example -> bits per data dimension."""
    return float(nats) / (np.prod(data_shape) * np.log(2.0))


class Modality(abc.ABC):
    """A kind of data. Subclasses set ``name`` and implement ``save_samples``; the rest has defaults that suit data
    scored per example in nats, exported with the model's signatures alone."""

    name = None
    description = ""
    # Examples are token ids into the data's vocabulary: a model's size follows that vocabulary.
    token_ids = False
    # Report parts (``vae_zoo.evaluation.report.PARTS``) that apply only to data of this kind.
    report_parts = ()
    # What a probe on the latents is compared with (``raw_features``): the examples flattened, by this name.
    raw_feature_name = "raw"
    # A saved model folder's samples: the file name (``save_samples`` may give it its suffix), the card entry that
    # names the file written, and the most drawn (None: as many as asked).
    folder_samples_file = "samples"
    folder_samples_entry = "sample_file"
    folder_samples_limit = None

    @abc.abstractmethod
    def save_samples(self, model, samples, out, spec=None, title=None):
        """Write ``samples`` (what ``model.sample`` returned) at ``out``, a file name whose suffix the modality may
        replace with its own; ``spec`` is the ``DataSpec`` of the data (audio features...). Returns the paths
        written: none when the modality cannot render data of the model's shape."""

    def describe_samples(self, model, samples):
        """Lines that show ``samples`` on a terminal; none for data that must be looked at or listened to."""
        return []

    def save_folder_samples(self, model, folder, n, seed=0):
        """Draw prior samples into a saved model's ``folder``: the card entries that name the file ({} if none)."""
        count = n if self.folder_samples_limit is None else min(n, self.folder_samples_limit)
        path = Path(folder) / self.folder_samples_file
        written = self.save_samples(model, model.sample(count, seed=seed), path, title=f"{model.registered_name}: samples from the prior")
        return {self.folder_samples_entry: Path(written[0]).name} if written else {}

    def elbo_units(self, elbo, data_shape):
        """Scores that restate a mean ELBO (nats per example) in this modality's units."""
        return {}

    def nll_units(self, log_likelihoods, examples, data_shape):
        """Scores that restate per-example log-likelihoods (nats) of ``examples`` in this modality's units."""
        return {}

    def raw_features(self, model, examples):
        """(name, features): what a probe on the latents is compared with, for ``examples``."""
        examples = np.asarray(examples)
        return self.raw_feature_name, examples.reshape(len(examples), -1)

    def data_options(self, model):
        """Options that read a data set as ``model`` takes it (a token model's own vocabulary)."""
        return {}

    def export_card(self, model):
        """Entries a SavedModel export adds to its card."""
        return {}

    def add_to_export(self, archive, model, scratch):
        """Add assets and signatures to a SavedModel ``archive`` (a ``keras.export.ExportArchive``); ``scratch`` is
        a temporary folder for asset files."""


@register_modality
class ImageModality(Modality):
    """Images in [0, 1]: PNG grids, scored in bits per dimension."""

    name = "image"
    description = "images in [0, 1]: PNG grids, bits per dimension"
    raw_feature_name = "pixels"
    folder_samples_file = "samples.png"
    folder_samples_entry = "sample_image"

    def picture_path(self, out):
        out = Path(out)
        if out.suffix.lower() not in IMAGE_SUFFIXES:
            raise InputError(f"{self.name} samples are a picture: give an image file ({', '.join(IMAGE_SUFFIXES)}) for --out, "
                             f"got {out.name!r}")
        return out

    def save_samples(self, model, samples, out, spec=None, title=None):
        out = self.picture_path(out)
        return [str(out)] if save_image_grid(samples, out, title=title) else []

    def elbo_units(self, elbo, data_shape):
        return {"negative_elbo_bits_per_dim": bits_per_dimension(-elbo, data_shape)}

    def nll_units(self, log_likelihoods, examples, data_shape):
        return {"bits_per_dim": bits_per_dimension(-np.mean(log_likelihoods), data_shape)}


@register_modality
class FeaturesModality(Modality):
    """Real-valued feature vectors (another model's latents, ``data: {name: latents}``): nothing to picture."""

    name = "features"
    description = "real-valued feature vectors: scored in nats, no pictures"
    raw_feature_name = "features"

    def save_samples(self, model, samples, out, spec=None, title=None):
        return []

    def describe_samples(self, model, samples):
        return [f"{len(samples)} vectors of {int(np.prod(np.shape(samples)[1:]))} numbers"]


@register_modality
class AudioModality(ImageModality):
    """Spectrograms (``DataSpec.features`` says which): a spectrogram PNG and WAV files, bits per dimension."""

    name = "audio"
    description = "spectrograms: a spectrogram PNG and WAV files (phase by Griffin-Lim), bits per dimension"
    report_parts = ("audio",)

    def save_samples(self, model, samples, out, spec=None, title=None):
        out = self.picture_path(out)
        samples = np.asarray(samples, np.float32)
        kind = audio.features_named(spec.features if spec is not None else None)
        png = audio.spectrogram_png(samples, out, title)
        return [png, *audio.write_wavs(samples, out.with_name(out.stem + "_wav"), "sample", kind)]


@register_modality
class TokensModality(Modality):
    """Sentences as token ids: text files, scored per sentence in nats and as perplexity per predicted token."""

    name = "text"
    description = "sentences as token ids: text files, nats per sentence and perplexity per token"
    token_ids = True
    report_parts = ("text",)
    raw_feature_name = "bag_of_words"
    folder_samples_file = "samples.txt"
    folder_samples_entry = "sample_text"
    folder_samples_limit = 16

    def save_samples(self, model, samples, out, spec=None, title=None):
        out = Path(out).with_suffix(".txt")
        out.write_text("\n".join(model.texts(samples)) + "\n", encoding="utf-8")
        return [str(out)]

    def describe_samples(self, model, samples):
        return model.texts(samples)

    def save_folder_samples(self, model, folder, n, seed=0):
        # A model built without a vocabulary knows ids only: it has no sentences to show.
        return super().save_folder_samples(model, folder, n, seed) if model.vocabulary is not None else {}

    def nll_units(self, log_likelihoods, examples, data_shape):
        # Per sentence (the nats themselves); perplexity per predicted token (words and <eos>).
        return {"perplexity": text.perplexity(log_likelihoods, examples), "tokens": int(text.predicted_tokens(examples).sum())}

    def raw_features(self, model, examples):
        return self.raw_feature_name, text.bag_of_words(examples, model.vocabulary_size)

    def data_options(self, model):
        # The same words keep the same ids.
        return {"vocabulary": list(model.vocabulary)} if model.vocabulary is not None else {}

    def export_card(self, model):
        if model.vocabulary is None:
            return {}
        return {"vocabulary": {"asset": "vocabulary.txt", "size": len(model.vocabulary), "signatures": ["vocabulary", "detokenize"]}}

    def add_to_export(self, archive, model, scratch):
        """The model's vocabulary as the asset ``vocabulary.txt`` and the ``vocabulary`` and ``detokenize`` signatures."""
        if model.vocabulary is None:
            return
        if any("\n" in token or "\r" in token for token in model.vocabulary):
            raise ModelFileError("a token of the vocabulary holds a line break; the vocabulary asset is one token per line")
        vocabulary_file = Path(scratch) / "vocabulary.txt"
        vocabulary_file.write_text("\n".join(model.vocabulary) + "\n", encoding="utf-8")
        size = len(model.vocabulary)
        table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(str(vocabulary_file), tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER, tf.string,
                                          tf.lookup.TextFileIndex.WHOLE_LINE),
            default_value=text.UNK,
        )
        archive.track(table)
        pad_id, bos_id, eos_id = (text.SPECIALS.index(token) for token in (text.PAD, text.BOS, text.EOS))

        def detokenize(ids):
            ids = tf.cast(ids, tf.int64)
            # Words are the tokens before each sentence's first <eos>, without <bos> and padding.
            ended = tf.cumsum(tf.cast(tf.equal(ids, eos_id), tf.int32), axis=1) > 0
            keep = ~ended & tf.not_equal(ids, bos_id) & tf.not_equal(ids, pad_id)
            words = tf.ragged.boolean_mask(table.lookup(ids), keep)
            return {"text": tf.strings.reduce_join(words, axis=1, separator=" ")}

        archive.add_endpoint("vocabulary", lambda: {"tokens": table.lookup(tf.range(size, dtype=tf.int64))}, input_signature=[])
        archive.add_endpoint("detokenize", detokenize, input_signature=[tf.TensorSpec([None, None], tf.int32, name="ids")])
