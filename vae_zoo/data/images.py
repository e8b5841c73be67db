"""Image data sets: readers for IDX files, .npz files and image folders, and the registered image sources.

    data = vae_zoo.data.load("mnist_mini", binarize="dynamic", batch_size=128)
    model.fit(data.train, validation_data=data.validation)

Every image source gives three fixed splits (train, validation, test) of
images in [0, 1] with shape (height, width, channels), and integer labels.

Binarization follows the likelihood-benchmark protocol: ``dynamic`` draws
x ~ Bernoulli(pixel) afresh for every training batch, while the validation and
test splits are binarized once with a fixed seed so that their scores are
comparable between epochs and runs; ``static`` binarizes every split once;
``none`` keeps grey levels.
"""

import gzip
import importlib.resources
import math
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from vae_zoo.data.base import (
    BINARIZATIONS,
    SOURCES,
    Data,
    DataSpec,
    Stream,
    as_float_images,
    as_labels,
    from_splits,
    from_token_splits,
    get_source,
    read_source,
    register_source,
)
from vae_zoo.errors import DataError, unknown_name

# Where Debian's dataset-fashion-mnist package puts the original IDX files.
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


# --------------------------------------------------------------------------- readers


def read_idx(path):
    """Read an IDX file of unsigned bytes (the MNIST format), gzipped or not."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read IDX file {path}: {err}") from None
    if len(raw) < 4 or raw[0:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DataError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated: its header is cut short")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    values = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if values.size != math.prod(dims):
        raise DataError(f"{path} is truncated: its header promises {dims} values, it holds {values.size}")
    return values.reshape(dims)


def _idx_file(directory, stem):
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.is_file():
            return candidate
    return None


def read_idx_directory(directory, title):
    """The train and test splits of an MNIST-format directory (four IDX files)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{title} directory {directory} does not exist")
    found = {}
    for split, stems in IDX_FILES.items():
        paths = [_idx_file(directory, stem) for stem in stems]
        if None in paths:
            missing = [f"{s}[.gz]" for s, p in zip(stems, paths) if p is None]
            raise DataError(f"{title} directory {directory} lacks {', '.join(missing)}")
        images, labels = (read_idx(p) for p in paths)
        if len(images) != len(labels):
            raise DataError(f"{title} in {directory}: {len(images)} {split} images but {len(labels)} labels")
        found[split] = (images, labels)
    return found


def _tfds_splits(name):
    """Train and test splits through tensorflow-datasets (needs network the first time)."""
    import tensorflow_datasets as tfds

    try:
        loaded = tfds.load(name, split=["train", "test"], batch_size=-1, as_supervised=True)
    except Exception as err:  # tfds raises many types when offline; say what to do instead.
        raise DataError(
            f"could not load {name!r} through tensorflow-datasets ({type(err).__name__}: {str(err)[:200]}). "
            "Offline, pass data_dir= pointing at the original IDX files"
        ) from None
    return {split: tuple(np.asarray(a) for a in tfds.as_numpy(pair)) for split, pair in zip(["train", "test"], loaded)}


def _local_or_tfds(name, title, data_dir, env_var, default_dir=None):
    """The IDX files from ``data_dir``, the environment variable, a default directory, else tfds."""
    explicit = data_dir or os.environ.get(env_var)
    if explicit:
        return read_idx_directory(explicit, title)
    if default_dir and Path(default_dir).is_dir():
        return read_idx_directory(default_dir, title)
    try:
        return _tfds_splits(name)
    except DataError as err:
        searched = f" nor {default_dir}" if default_dir else ""
        raise DataError(f"{title} not found: no data_dir given, ${env_var} unset{searched}; {err}") from None


def _hold_out_last(splits, validation_size):
    """Train/validation/test from train/test: the last ``validation_size`` training images validate."""
    (x, y), test = splits["train"], splits["test"]
    return {"train": (x[:-validation_size], y[:-validation_size]), "validation": (x[-validation_size:], y[-validation_size:]), "test": test}


def _shuffled_split(x, y, sizes, seed=0):
    """Fixed train/validation/test parts of one array, after a seeded permutation."""
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    train_end, validation_end = sizes[0], sizes[0] + sizes[1]
    return {"train": (x[:train_end], y[:train_end]), "validation": (x[train_end:validation_end], y[train_end:validation_end]), "test": (x[validation_end:], y[validation_end:])}


# --------------------------------------------------------------------------- named data sets


@register_source("mnist_mini", 10, "10,000 real MNIST digits bundled with vae_zoo (8000/1000/1000), offline")
def _mnist_mini(data_dir=None):
    with importlib.resources.files("vae_zoo.data").joinpath("bundled", "mnist_mini.npz").open("rb") as handle:
        bundle = np.load(handle)
        images, labels = bundle["images"], bundle["labels"]
    return _shuffled_split(images, labels, (8000, 1000))


@register_source("fashion_mnist", 10, "Fashion-MNIST 50k/10k/10k: local IDX files (Debian's dataset-fashion-mnist) or tfds")
def _fashion_mnist(data_dir=None):
    splits = _local_or_tfds("fashion_mnist", "Fashion-MNIST", data_dir, "VAE_ZOO_FASHION_MNIST_DIR", DEBIAN_FASHION_MNIST)
    return _hold_out_last(splits, 10000)


@register_source("mnist", 10, "MNIST 50k/10k/10k: local IDX files (data_dir or $VAE_ZOO_MNIST_DIR) or tfds")
def _mnist(data_dir=None):
    return _hold_out_last(_local_or_tfds("mnist", "MNIST", data_dir, "VAE_ZOO_MNIST_DIR"), 10000)


@register_source("cifar10", 10, "CIFAR-10 45k/5k/10k through tfds (online)")
def _cifar10(data_dir=None):
    return _hold_out_last(_tfds_splits("cifar10"), 5000)


@register_source("shapes", 3, "6,144 procedural 32x32 shapes with known factors, dSprites-style (4916/614/614), offline")
def _shapes(data_dir=None):
    from vae_zoo.data import shapes

    images, factors = shapes.generate()
    # The label is the shape; the full factors are in vae_zoo.data.shapes.
    return _shuffled_split(images, factors[:, 0], (4916, 614))


@register_source("digits", 10, "scikit-learn's 1,797 8x8 digits (1437/180/180), offline")
def _digits(data_dir=None):
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Pixels are counts 0..16; scale to 0..255 so that every data set enters as bytes.
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    return _shuffled_split(images, digits.target, (1437, 180))


# --------------------------------------------------------------------------- user data


def array_splits(images, labels=None, validation_split=0.1, test_split=0.1, seed=0):
    """Train/validation/test splits of user arrays, after a seeded shuffle."""
    images = as_float_images(images, "images")
    count = len(images)
    labels = as_labels(labels, count, "user")
    n_val, n_test = int(round(count * validation_split)), int(round(count * test_split))
    if count - n_val - n_test < 1:
        raise DataError(f"{count} examples are too few for validation_split={validation_split} and test_split={test_split}")
    return _shuffled_split(images, labels, (count - n_val - n_test, n_val), seed)


def read_npz(path):
    """Images (key ``images`` or ``x``) and optional labels (``labels`` or ``y``) from an .npz file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no .npz file at {path}")
    try:
        bundle = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise DataError(f"cannot read {path} as .npz: {err}") from None
    keys = set(bundle.files)
    image_key = next((k for k in ("images", "x") if k in keys), None)
    if image_key is None:
        raise DataError(f"{path} has no 'images' (or 'x') array; it holds {sorted(keys)}")
    label_key = next((k for k in ("labels", "y") if k in keys), None)
    arrays = []
    for key in (image_key, label_key):
        if key is None:
            arrays.append(None)
            continue
        try:  # arrays are read lazily: a pickled (object) array fails here, not in np.load
            arrays.append(bundle[key])
        except (ValueError, OSError) as err:
            raise DataError(f"cannot read array {key!r} of {path}: {' '.join(str(err).split())}") from None
    return tuple(arrays)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
CHANNELS = {"grayscale": 1, "rgb": 3}


def image_files(path):
    """The image files below ``path`` and their class indices (by subfolder; -1 without subfolders), sorted, and the class names."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"image folder {path} does not exist")
    classes = sorted(p.name for p in path.iterdir() if p.is_dir())
    folders = [(path / name, index) for index, name in enumerate(classes)] or [(path, -1)]
    files = [(file, index) for folder, index in folders for file in sorted(folder.rglob("*"))
             if file.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise DataError(f"no images found in {path}")
    return files, classes


def image_folder_data(path, batch_size=128, binarize="none", labels=False, limit=None, seed=0, exclude_classes=(),
                      validation_split=0.1, test_split=0.1, image_size=None, color_mode="grayscale"):
    """A folder of images as a ``Data`` bundle whose splits are streamed: each file is decoded when it is read.

    Subfolders, if any, name the classes. The files are split by a seeded
    shuffle; ``image_size`` (height, width) defaults to the first image's.
    """
    if color_mode not in CHANNELS:
        raise unknown_name("color mode", color_mode, CHANNELS)
    files, classes = image_files(path)
    size = tuple(int(d) for d in (image_size or _first_image_size(Path(path))))
    channels = CHANNELS[color_mode]
    order = np.random.default_rng(seed).permutation(len(files))
    n_val, n_test = int(round(len(files) * validation_split)), int(round(len(files) * test_split))
    if len(files) - n_val - n_test < 1:
        raise DataError(f"{len(files)} images are too few for validation_split={validation_split} and test_split={test_split}")
    train_end = len(files) - n_val - n_test
    parts = {"train": order[:train_end], "validation": order[train_end:train_end + n_val], "test": order[train_end + n_val:]}

    def decode(file, label):
        image = tf.io.decode_image(tf.io.read_file(file), channels=channels, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), size)
        return tf.clip_by_value(image / 255.0, 0.0, 1.0), label

    def stream(chosen):
        paths = tf.constant([str(f) for f, _ in chosen], tf.string)
        class_indices = tf.constant([c for _, c in chosen], tf.int64)
        make = lambda: tf.data.Dataset.from_tensor_slices((paths, class_indices)).map(decode, num_parallel_calls=tf.data.AUTOTUNE)  # noqa: E731
        return Stream(make, len(chosen), (*size, channels))

    streams = {}
    for split, indices in parts.items():
        chosen = [files[i] for i in indices]
        if exclude_classes and split != "test":
            chosen = [(f, c) for f, c in chosen if c not in set(exclude_classes)]
        streams[split] = stream(chosen[: int(limit)] if limit else chosen)
    spec = DataSpec("image_folder", "image", (*size, channels), num_classes=len(classes))
    return Data(spec, streams, binarize, batch_size, labels, seed)


def _first_image_size(folder):
    from PIL import Image

    for file in sorted(folder.rglob("*")):
        if file.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".gif"):
            with Image.open(file) as image:
                return (image.height, image.width)
    raise DataError(f"no images found in {folder}")


# Text sources build their splits with a vocabulary (vae_zoo.data.text), not through the image source table.
TEXT_SOURCES = ("fortunes", "ptb", "text_file", "ag_news", "imdb_reviews")


def load(name="mnist_mini", *, batch_size=128, binarize="none", labels=False, limit=None, seed=0, exclude_classes=(),
         data_dir=None, path=None, validation_split=0.1, test_split=0.1, image_size=None, color_mode="grayscale",
         max_length=30, vocabulary_size=10000, min_count=2, vocabulary=None):
    """Load a data set by name as train/validation/test pipelines.

    Names: ``mnist_mini`` (bundled, offline), ``fashion_mnist``, ``mnist``,
    ``cifar10``, ``digits``, and for your own data ``npz`` (``path`` to an .npz
    with ``images`` and optional ``labels``) or ``image_folder`` (``path`` to a
    folder of images, streamed from disk as it is read; subfolders name classes).

    ``labels=True`` makes the pipelines yield ``(images, labels)`` pairs.
    ``limit`` keeps at most that many examples of each split (for quick checks).
    ``exclude_classes`` removes those labels from train and validation (anomaly protocol).

    Text (``fortunes``, ``ptb``, ``text_file`` with ``path``; online ``ag_news``, ``imdb_reviews``): sentences of at most ``max_length`` tokens as
    padded ids; the vocabulary (``vocabulary_size`` tokens seen ``min_count`` times in the training split) is
    built unless ``vocabulary`` (a trained model's tokens) is given. Audio: ``fsdd``.
    """
    if name in TEXT_SOURCES:
        from vae_zoo.data import text

        if binarize != "none":
            raise DataError(f"data set {name!r} is text: binarize does not apply")
        given = text.Vocabulary(tuple(vocabulary)) if vocabulary is not None else None
        splits, built = text.token_splits(text.text_parts(name, data_dir, path), given, int(max_length),
                                          int(vocabulary_size), int(min_count))
        classes = text.TFDS_TEXT[name][2] if name in text.TFDS_TEXT else 0
        return from_token_splits(splits, built, name, batch_size, labels, limit, seed, classes)
    if name == "wav_folder":
        from vae_zoo.data.audio import wav_folder_splits

        if not path:
            raise DataError("data set 'wav_folder' needs a path: a folder of .wav files (subfolders name classes)")
        splits = wav_folder_splits(path)
        return from_splits(splits, name, batch_size, "none", labels, limit, seed, exclude_classes=exclude_classes, modality="audio")
    if name in ("npz", "image_folder"):
        if not path:
            raise DataError(f"data set {name!r} needs a path")
        if binarize not in BINARIZATIONS:
            raise unknown_name("binarization", binarize, BINARIZATIONS)
        if name == "image_folder":
            return image_folder_data(path, batch_size, binarize, labels, limit, seed, exclude_classes, validation_split,
                                     test_split, image_size, color_mode)
        images, user_labels = read_npz(path)
        splits = array_splits(images, user_labels, validation_split, test_split, seed)
        return from_splits(splits, name, batch_size, binarize, labels, limit, seed, exclude_classes=exclude_classes)
    if name not in SOURCES:
        raise unknown_name("data set", name, [*SOURCES, "npz", "image_folder", "wav_folder", *TEXT_SOURCES])
    splits = read_source(name, str(data_dir) if data_dir else None)
    source = get_source(name)
    return from_splits(splits, name, batch_size, binarize, labels, limit, seed, source.num_classes, exclude_classes, source.modality)


def from_arrays(images, labels=None, *, batch_size=128, binarize="none", validation_split=0.1, test_split=0.1, seed=0):
    """Your own numpy arrays as a ``Data`` bundle (uint8 0..255 or floats in [0, 1])."""
    splits = array_splits(images, labels, validation_split, test_split, seed)
    return from_splits(splits, "arrays", batch_size, binarize, labels is not None, None, seed)
