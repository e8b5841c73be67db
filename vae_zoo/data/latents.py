"""The ``latents`` data set: another data set as a trained model encodes it, for models stacked on a model (M1 + M2).

    data: {name: latents, model: vae.mnist_mini, labels: true, labels_per_class: 10}

Each example becomes the posterior mean of the model (its ``transform``), a vector of ``latent_dim`` numbers;
the labels are the data set's. ``draw: sample`` trains on draws z ~ q(z | x) instead, afresh for every training
batch (validation and test keep the means), as Kingma et al. (2014) train M2 on samples of M1's posterior: the
stacked model then never sees the same vector of a labelled example twice. The data set and how it is read (its binarization) are those on the model's card,
unless ``of`` names another; a model trained on dynamically binarized images encodes every split binarized once,
with fixed seeds, so that the vectors are the same each time they are read.
"""

import importlib

import numpy as np

from vae_zoo import schema
from vae_zoo.data.base import with_gaussian_draws
from vae_zoo.data.sources import ArraySource, Option, load, register_source
from vae_zoo.errors import DataError

ENCODE_BATCH = 500


@register_source("latents")
class Latents(ArraySource):
    """Another data set as a trained zoo model encodes it (posterior means): for models stacked on a model (M1 + M2)"""

    modality = "features"
    options = {
        "model": Option(None, schema.string, "the encoding model: a saved zoo folder or a pretrained name", required=True),
        "of": Option(None, schema.string, "the data set to encode (default: the one the model was trained on)"),
        # The vectors are real numbers: nothing to binarize.
        "binarize": Option("none", schema.choice("none"), "none: latent vectors are not binarized"),
        "draw": Option("mean", schema.choice("mean", "sample"),
                       "mean: the posterior means; sample: training batches draw z ~ q(z|x) afresh (Gaussian posteriors)"),
    }

    def finish(self, data):
        return with_gaussian_draws(data) if self.options["draw"] == "sample" else data

    def splits(self):
        # vae_zoo.io (models on disk) builds on vae_zoo.data; this one source needs it back, so it is bound by name
        # when a latents data set is read, which keeps the data package free of a dependency on io.
        pretrained = importlib.import_module("vae_zoo.io.pretrained")
        saving = importlib.import_module("vae_zoo.io.saving")
        folder = pretrained.resolve(self.options["model"])
        model = saving.load(folder)
        if not model.can("latent"):
            raise DataError(f"latents: {self.options['model']!r} ({model.registered_name}) has no latent codes to encode")
        if self.options["draw"] == "sample" and not model.can("gaussian_posterior"):
            raise DataError(f"latents: draw: sample needs a Gaussian posterior; {self.options['model']!r} "
                            f"({model.registered_name}) has none")
        card = importlib.import_module("vae_zoo.io.cards").read_card(folder)
        trained_on = card.get("data", {})
        name = self.options["of"] or trained_on.get("name")
        if not name:
            raise DataError(f"latents: the card of {self.options['model']!r} names no data set; set data.of")
        binarize = trained_on.get("binarize") or "none"
        source = load(name, binarize="static" if binarize == "dynamic" else binarize, labels=True, seed=self.options["seed"])
        if tuple(source.data_shape) != tuple(model.data_shape):
            raise DataError(f"latents: {name!r} has examples of shape {tuple(source.data_shape)}, but the model takes "
                            f"{tuple(model.data_shape)}")
        splits = {}
        for split in ("train", "validation", "test"):
            examples, labels = source.take(split)
            codes = [self.encoded(model, examples[i:i + ENCODE_BATCH]) for i in range(0, len(examples), ENCODE_BATCH)]
            splits[split] = (np.concatenate(codes).astype(np.float32), labels)
        return splits

    def encoded(self, model, examples):
        """The means of ``examples``, or with ``draw: sample`` [mean, standard deviation] side by side."""
        if self.options["draw"] == "mean":
            return np.asarray(model.transform(examples))
        posterior = model.encode(examples)
        return np.concatenate([posterior.mean(), posterior.stddev()], axis=-1)
