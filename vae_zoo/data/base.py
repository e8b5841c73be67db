"""Data as specs and streams: what a data set is, where it comes from, and how it is read.

* ``DataSpec``: the modality, the shape and dtype of one example, the classes
  and the vocabulary (for token data).
* Sources are registered classes (``vae_zoo.data.sources``) that declare their
  options and build a ``Data`` bundle.
* ``Data`` serves the splits as batched ``tf.data`` pipelines. A split is
  either arrays in memory or a ``Stream`` that reads its source as it is
  iterated (``image_folder`` decodes its files one by one), so a data set need
  not fit in memory. Consumers read pipelines; a metric that needs arrays asks
  ``take(split, limit)`` for an explicit, bounded sample.

Training that must resume exactly reads ``training_stream(first_epoch)``: one
endless pipeline whose order and binarization in epoch e are a function of
(seed, e) alone, so that epoch 7 of a resumed run is epoch 7 of one that never
stopped. ``train`` is the same data as an ordinary one-epoch pipeline for
``model.fit(data.train, epochs=...)``.
"""

import dataclasses
import functools
import math

import numpy as np
import tensorflow as tf

from vae_zoo.errors import DataError, unknown_name
from vae_zoo.hardware import has_accelerator

SPLITS = ("train", "validation", "test")
BINARIZATIONS = ("none", "static", "dynamic")


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What one example of a data set is."""

    name: str
    modality: str  # "image" (text and audio sources declare theirs)
    shape: tuple
    dtype: str = "float32"
    num_classes: int = 0
    vocabulary: tuple = None
    # How an audio source's examples encode sound, which the way back to a waveform needs
    # ("log_magnitude", "log_mel": ``vae_zoo.data.audio.FEATURES``); None for other data.
    features: str = None
    # Credit that must travel with anything that redistributes the examples (cards, reports); None where none is due.
    attribution: str = None
    # How many values each dimension takes, evenly spaced on [0, 1] (k / (levels - 1)): 256 for 8-bit data, 2 for
    # binarized data; None for continuous values (audio features, float arrays) and token ids. A likelihood or a
    # report can then treat the data as discrete.
    levels: int = None

    def element_spec(self, labels=False):
        x = tf.TensorSpec([None, *self.shape], self.dtype)
        return (x, tf.TensorSpec([None], tf.int64)) if labels else x


@dataclasses.dataclass(frozen=True)
class FactorGrid:
    """Every combination of a data set's known factors of variation, for disentanglement scores.

    ``examples`` (float32 in [0, 1], the data set's shape), ``factors`` (n, len(names)) integer values, the
    factors' ``names`` and ``sizes`` (values each), and ``index_of(factors)``: the rows holding those values.
    """

    examples: object
    factors: object
    names: tuple
    sizes: tuple
    index_of: object


@dataclasses.dataclass(frozen=True)
class Stream:
    """A split that is read from its source as it is iterated, never held whole in memory.

    ``make()`` returns an unbatched ``tf.data`` pipeline of (example, label)
    pairs, float32 examples in [0, 1], in a fixed order; ``count`` is its length.
    """

    make: object
    count: int
    shape: tuple


# Examples per shuffled block of a stream: its memory bound while shuffling.
STREAM_SHUFFLE_BLOCK = 10_000


# --------------------------------------------------------------------------- binarization


def is_binary(images):
    """Whether every value is 0 or 1 (what a Bernoulli likelihood's lossless code and a 1-bit PNG need)."""
    return bool(np.isin(np.unique(np.asarray(images)), (0, 1)).all())


def binarize_static(images, seed):
    """x ~ Bernoulli(pixel), drawn once with a fixed seed."""
    rng = np.random.default_rng(seed)
    return (rng.random(images.shape, dtype=np.float32) < images).astype(np.float32)


def _binarize(batch, seed=None):
    uniform = tf.random.uniform(tf.shape(batch)) if seed is None else tf.random.stateless_uniform(tf.shape(batch), seed=seed)
    return tf.cast(uniform < batch, batch.dtype)


def _draw_gaussian(batch, seed=None):
    """x ~ N(mean, sd^2) from ``batch`` holding [mean, sd] side by side on its last axis."""
    mean, sd = tf.split(batch, 2, axis=-1)
    noise = tf.random.normal(tf.shape(mean)) if seed is None else tf.random.stateless_normal(tf.shape(mean), seed=seed)
    return mean + sd * noise


def with_gaussian_draws(data):
    """``data`` (from ``from_splits``) whose examples are [mean, standard deviation] side by side on the last axis,
    turned into a bundle of examples drawn from those Gaussians: each training batch draws afresh (as dynamic
    binarization redraws pixels), validation and test hold the means. Its spec's shape is the means'."""
    if any(isinstance(part, Stream) for part in data._splits.values()) or data.binarize != "none":
        raise DataError("Gaussian draws need arrays held in memory, not binarized")
    width = data.spec.shape[-1]
    if width % 2:
        raise DataError(f"Gaussian draws need [mean, sd] side by side: an even last axis, got {width}")
    data._splits = {split: (part if split == "train" else (np.split(part[0], 2, axis=-1)[0], part[1]))
                    for split, part in data._splits.items()}
    data.spec = dataclasses.replace(data.spec, shape=(*data.spec.shape[:-1], width // 2))
    data.gaussian_draws = True
    return data


# --------------------------------------------------------------------------- the data bundle


class Data:
    """The train, validation and test splits of one data set, as ``tf.data`` pipelines.

    ``train`` reshuffles (and, with dynamic binarization, redraws its pixels)
    every time it is iterated; ``validation`` and ``test`` are the same every
    time. ``labels=True`` makes the pipelines yield ``(examples, labels)``.
    """

    # The ``DataSource`` that built the bundle (``vae_zoo.data.load`` sets it; None for arrays of one's own).
    source = None
    # Whether the "labels" are each example's index in the training split (-1 elsewhere): the exemplar prior's.
    indices = False
    # Whether the training split holds Gaussians, [mean, standard deviation] side by side on the last axis, from
    # which every training batch draws its examples afresh (``with_gaussian_draws``; M1 + M2 on q(z1 | x)).
    gaussian_draws = False

    def __init__(self, spec, splits, binarize="none", batch_size=128, labels=False, seed=0, labelled_per_batch=0):
        self.spec, self.binarize, self.batch_size = spec, binarize, int(batch_size)
        self.labels, self.seed = bool(labels), int(seed)
        self._splits = splits
        # Semi-supervised: add this many examples with known labels (>= 0) to every training batch.
        self.labelled_per_batch = int(labelled_per_batch or 0)
        if self.labelled_per_batch:
            if not self.labels or isinstance(splits["train"], Stream):
                raise DataError("labelled_per_batch needs labels: true and a data set held in memory")
            self.labelled_indices = np.flatnonzero(np.asarray(splits["train"][1]) >= 0)
            if not len(self.labelled_indices):
                raise DataError("labelled_per_batch: the training split has no known labels to draw from")

    @property
    def known_labels(self):
        """How many training examples have a known label (>= 0; -1 marks unknown ones)."""
        part = self._splits["train"]
        return None if isinstance(part, Stream) else int(np.sum(np.asarray(part[1]) >= 0))

    @property
    def name(self):
        return self.spec.name

    @property
    def data_shape(self):
        return tuple(self.spec.shape)

    @property
    def num_classes(self):
        return self.spec.num_classes

    def count(self, split):
        """Examples in ``split``."""
        part = self._splits[self._check_split(split)]
        return part.count if isinstance(part, Stream) else len(part[0])

    def take(self, split, limit=None):
        """At most ``limit`` examples of ``split`` and their labels, as numpy (for metrics that need arrays)."""
        part = self._splits[self._check_split(split)]
        stop = None if limit is None else int(limit)
        if not isinstance(part, Stream):
            examples = part[0][:stop]
            if self.gaussian_draws and split == "train":
                examples = np.split(examples, 2, axis=-1)[0]  # the means: what a probe or a bank reads
            return examples, part[1][:stop]
        pairs = self._pairs(split).take(-1 if stop is None else stop).batch(1024)
        chunks = [(x.numpy(), y.numpy()) for x, y in pairs]
        if not chunks:
            return np.zeros((0, *part.shape), np.float32), np.zeros((0,), np.int64)
        return np.concatenate([x for x, _ in chunks]), np.concatenate([y for _, y in chunks])

    def split(self, name):
        return getattr(self, self._check_split(name))

    def _check_split(self, name):
        if name not in SPLITS:
            raise unknown_name("split", name, SPLITS)
        return name

    def _pairs(self, split):
        """Unbatched (example, label) pairs of a split, in its fixed order; a stream's held-out splits binarized once."""
        part = self._splits[split]
        if not isinstance(part, Stream):
            return tf.data.Dataset.from_tensor_slices(part).cache()
        pairs = part.make()
        if self.binarize == "static" or (self.binarize == "dynamic" and split != "train"):
            # Once with a fixed seed, as for arrays: the same pixels every time the split is read.
            salt = tf.constant(self.seed + 1 + SPLITS.index(split), tf.int64)
            pairs = pairs.enumerate().map(lambda i, pair: (_binarize(pair[0], seed=tf.stack([salt, i])), pair[1]))
        return pairs

    def _elements(self, split):
        pairs = self._pairs(split)
        return pairs if self.labels else pairs.map(lambda x, y: x)

    @functools.cached_property
    def train(self):
        buffer = min(self.count("train"), STREAM_SHUFFLE_BLOCK) if isinstance(self._splits["train"], Stream) else self.count("train")
        dataset = self._elements("train").shuffle(buffer, seed=self.seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(self.batch_size)
        if self.labelled_per_batch:
            examples, labels = (tf.constant(a) for a in self._splits["train"])
            known = tf.constant(self.labelled_indices)

            def add_labelled(x, y):
                picks = tf.gather(known, tf.random.uniform([self.labelled_per_batch], maxval=len(self.labelled_indices),
                                                           dtype=tf.int64))
                return tf.concat([x, tf.gather(examples, picks)], 0), tf.concat([y, tf.gather(labels, picks)], 0)

            dataset = dataset.map(add_labelled)
        if self.binarize == "dynamic":
            # After cache(): a fresh binarization every epoch, never stored.
            # tf.data passes a pair as two arguments: gather them back into the one element.
            dataset = dataset.map(lambda *elements: self._binarize_elements(elements if self.labels else elements[0]),
                                  num_parallel_calls=tf.data.AUTOTUNE)
        if self.gaussian_draws:
            dataset = dataset.map(lambda *elements: ((_draw_gaussian(elements[0]), *elements[1:]) if self.labels
                                                     else _draw_gaussian(elements[0])))
        return dataset.prefetch(tf.data.AUTOTUNE)

    @functools.cached_property
    def validation(self):
        return self._elements("validation").batch(self.batch_size).prefetch(tf.data.AUTOTUNE)

    @functools.cached_property
    def test(self):
        return self._elements("test").batch(self.batch_size).prefetch(tf.data.AUTOTUNE)

    def _binarize_elements(self, elements, seed=None):
        if self.labels:
            return _binarize(elements[0], seed), elements[1]
        return _binarize(elements, seed)

    def steps_per_epoch(self, batch_size=None, drop_remainder=False):
        count, size = self.count("train"), int(batch_size or self.batch_size)
        return count // size if drop_remainder else math.ceil(count / size)

    def training_stream(self, first_epoch=0, batch_size=None, drop_remainder=False):
        """Epochs ``first_epoch``, ``first_epoch + 1``, ... of the training split, one after another, without end.

        Epoch e's order and binarization depend on (seed, e) only, so a run
        resumed at epoch e reads what an uninterrupted run read there. Use it
        with ``steps_per_epoch(batch_size, drop_remainder)``.
        """
        size, count = int(batch_size or self.batch_size), self.count("train")
        salt = tf.constant(self.seed, tf.int64)
        if isinstance(self._splits["train"], Stream):
            return self._streamed_epochs(first_epoch, size, drop_remainder)
        examples, labels = (tf.constant(a) for a in self._splits["train"])
        known = tf.constant(getattr(self, "labelled_indices", np.zeros(0, np.int64)), tf.int64)

        def epoch(e):
            # A stateless permutation keyed by (seed, epoch), drawn whole, applied batch by batch.
            order = tf.argsort(tf.random.stateless_uniform([count], seed=tf.stack([salt, e])))
            batches = tf.data.Dataset.from_tensor_slices(order).batch(size, drop_remainder=drop_remainder).enumerate()

            def gather(i, indices):
                if self.labelled_per_batch:  # drawn again for every batch, keyed by (seed, epoch, batch)
                    picks = tf.random.stateless_uniform([self.labelled_per_batch], seed=tf.stack([salt * 7 + 3 + e, i]),
                                                        maxval=len(self.labelled_indices), dtype=tf.int64)
                    indices = tf.concat([indices, tf.cast(tf.gather(known, picks), indices.dtype)], 0)
                batch = tf.gather(examples, indices)
                if self.binarize == "dynamic":
                    batch = _binarize(batch, seed=tf.stack([salt * 1_000_003 + e, i]))
                if self.gaussian_draws:
                    batch = _draw_gaussian(batch, seed=tf.stack([salt * 1_000_033 + e, i]))
                return (batch, tf.gather(labels, indices)) if self.labels else batch

            return batches.map(gather)

        return fed_to_step(tf.data.Dataset.range(int(first_epoch), 2**62).flat_map(epoch))

    def _streamed_epochs(self, first_epoch, size, drop_remainder):
        """``training_stream`` for a streamed split: each block of examples is permuted by keys drawn from (seed, epoch, index)."""
        salt = tf.constant(self.seed, tf.int64) * 1_000_003

        def epoch(e):
            def permute(keys, examples, labels):
                order = tf.argsort(keys)
                return tf.gather(examples, order), tf.gather(labels, order)

            keyed = self._pairs("train").enumerate().map(
                lambda i, pair: (tf.random.stateless_uniform([], seed=tf.stack([salt + e, i])), *pair))
            shuffled = keyed.batch(STREAM_SHUFFLE_BLOCK).map(permute).unbatch()
            batches = shuffled.batch(size, drop_remainder=drop_remainder).enumerate()

            def finish(i, batch):
                x, y = batch
                if self.binarize == "dynamic":
                    x = _binarize(x, seed=tf.stack([salt + e, i]))
                return (x, y) if self.labels else x

            return batches.map(finish)

        return tf.data.Dataset.range(int(first_epoch), 2**62).flat_map(epoch).prefetch(tf.data.AUTOTUNE)


def fed_to_step(stream):
    """An in-memory training stream, arranged for the step that consumes it.

    With an accelerator the stream is prefetched: the host prepares the next
    batch while the device runs the step. On a CPU-only machine the compiled
    step already keeps every core busy, and a pipeline running ahead on the same
    cores preempts the step's threads in the middle of its matmuls; there the
    stream is pulled between steps, on one thread, with tf.data's autotuning off
    (the seed VAE trains about 10% faster that way on 2 cores, dynamic
    binarization included; tools/bench_speed.py measures both).
    """
    if has_accelerator():
        return stream.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.autotune.enabled = False
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    return stream.with_options(options)


# --------------------------------------------------------------------------- building a bundle


def as_float_images(images, where, unit_range=True):
    """uint8 or float images -> float32 in [0, 1] with a channel axis; clear errors otherwise. ``unit_range=False``:
    real-valued features (any finite values)."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    elif np.issubdtype(images.dtype, np.floating):
        images = images.astype(np.float32)
        if not np.all(np.isfinite(images)):
            raise DataError(f"{where} contains NaN or infinite values")
        if unit_range and images.size and (images.min() < 0.0 or images.max() > 1.0):
            raise DataError(f"{where} must hold pixels in [0, 1] (or uint8 0..255); got values in [{images.min():g}, {images.max():g}]")
    else:
        raise DataError(f"{where} must be uint8 or floating point, got dtype {images.dtype}")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim not in (2, 4):
        raise DataError(f"{where} must have shape (n, height, width[, channels]) or (n, features); got {images.shape}")
    return images


def as_labels(labels, count, where):
    if labels is None:
        return np.full((count,), -1, np.int64)
    labels = np.asarray(labels)
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where} labels must be {count} integers, got shape {labels.shape} and dtype {labels.dtype}")
    return labels.astype(np.int64)


def without_classes(examples, labels, exclude_classes, split):
    """``examples`` and ``labels`` without those of ``exclude_classes`` in the train and validation splits (the
    test split keeps them): the protocol for anomaly detection on a held-out class."""
    if not exclude_classes or split == "test":
        return examples, labels
    keep = ~np.isin(labels, list(exclude_classes))
    return examples[keep], labels[keep]


def from_token_splits(token_splits, vocabulary, name="text", batch_size=128, labels=False, limit=None, seed=0, num_classes=0,
                      exclude_classes=()):
    """Padded token-id arrays and their labels per split (``vae_zoo.data.text.token_splits``) as a ``Data``
    bundle of modality "text"."""
    if not int(batch_size) >= 1:
        raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
    prepared = {}
    for split in SPLITS:
        ids, split_labels = token_splits[split]
        ids, split_labels = without_classes(np.asarray(ids, np.int32), np.asarray(split_labels, np.int64), exclude_classes, split)
        count = int(limit) if limit else None
        prepared[split] = (ids[:count], split_labels[:count])
    shape = tuple(prepared["train"][0].shape[1:])
    spec = DataSpec(name, "text", shape, dtype="int32", num_classes=int(num_classes), vocabulary=tuple(vocabulary.tokens))
    return Data(spec, prepared, "none", batch_size, labels, seed)


def keep_labels_per_class(labels, per_class, seed=0):
    """``labels`` with all but ``per_class`` of each class (drawn with ``seed``) replaced by -1, unknown."""
    labels = np.asarray(labels, np.int64)
    generator = np.random.default_rng([int(seed), 104729])
    kept = np.full_like(labels, -1)
    for label in np.unique(labels[labels >= 0]):
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            raise DataError(f"labels_per_class={per_class}, but class {label} has only {len(members)} training examples")
        chosen = generator.choice(members, int(per_class), replace=False)
        kept[chosen] = label
    return kept


def from_splits(splits, name="arrays", batch_size=128, binarize="none", labels=False, limit=None, seed=0, num_classes=None,
                exclude_classes=(), modality="image", labels_per_class=None, labelled_per_batch=0, indices=False):
    """Turn split arrays (uint8 or [0, 1] floats) into a ``Data`` bundle.

    ``exclude_classes`` drops those labels from the train and validation splits
    (not from test): the protocol for anomaly detection on a held-out class.
    Validation and test are binarized once here, with fixed seeds. uint8
    examples become exactly k / 255 in float32, and the spec's ``levels`` says
    so (256; 2 once binarized).

    ``labels_per_class`` keeps that many training labels of each class (drawn with ``seed``) and marks the others
    -1, unknown (validation and test keep theirs): the semi-supervised protocol. ``labelled_per_batch`` adds that
    many examples with known labels, drawn again for every batch, to each training batch.

    ``indices`` puts each example's index in the training split where its label would be (-1 in validation and
    test): the exemplar prior's leave-one-out.
    """
    if indices and (labels or labels_per_class or labelled_per_batch):
        raise DataError("indices take the labels' place: they cannot be combined with labels")
    if binarize not in BINARIZATIONS:
        raise unknown_name("binarization", binarize, BINARIZATIONS)
    if not int(batch_size) >= 1:
        raise DataError(f"batch_size must be a positive integer, got {batch_size!r}")
    prepared = {}
    eight_bit = True
    for index, split in enumerate(SPLITS):
        raw_examples, raw_labels = splits[split]
        eight_bit = eight_bit and np.asarray(raw_examples).dtype == np.uint8
        examples = as_float_images(raw_examples, f"{name} {split} images", unit_range=modality != "features")
        split_labels = as_labels(raw_labels, len(examples), f"{name} {split}")
        examples, split_labels = without_classes(examples, split_labels, exclude_classes, split)
        if limit:
            examples, split_labels = examples[: int(limit)], split_labels[: int(limit)]
        if binarize == "static" or (binarize == "dynamic" and split != "train"):
            examples = binarize_static(examples, seed=seed + 1 + index)
        prepared[split] = (examples, split_labels)
    if num_classes is None:
        num_classes = int(max(prepared["train"][1].max(), -1) + 1)
    if labels_per_class:
        prepared["train"] = (prepared["train"][0], keep_labels_per_class(prepared["train"][1], labels_per_class, seed))
    if indices:
        prepared = {split: (examples, np.arange(len(examples), dtype=np.int64) if split == "train"
                            else np.full(len(examples), -1, np.int64))
                    for split, (examples, _) in prepared.items()}
    spec = DataSpec(name, modality, tuple(prepared["train"][0].shape[1:]), num_classes=int(num_classes),
                    levels=levels_of(binarize, eight_bit))
    data = Data(spec, prepared, binarize, batch_size, labels or indices, seed, labelled_per_batch)
    data.indices = bool(indices)
    return data


def levels_of(binarize, eight_bit):
    """``DataSpec.levels`` of examples read as bytes (``eight_bit``: k / 255 exactly) or as floats, binarized or not."""
    if binarize != "none":
        return 2
    return 256 if eight_bit else None
