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
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from vae_zoo import schema
from vae_zoo.data import shapes
from vae_zoo.data import tfds_builders
from vae_zoo.data.base import (
    Data,
    DataSpec,
    FactorGrid,
    Stream,
    as_float_images,
    as_labels,
    from_splits,
    levels_of,
)
from vae_zoo.data.sources import (
    ArraySource,
    CachedSource,
    DataSource,
    Option,
    path_like,
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
    # Lazy: tensorflow-datasets takes seconds to import, and only an online download needs it.
    import tensorflow_datasets as tfds

    try:
        loaded = tfds_builders.load(name, split=["train", "test"], batch_size=-1, as_supervised=True)
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


def data_dir_option(where):
    return Option(None, path_like, f"the folder of the original IDX files (else {where})")


@register_source("mnist_mini")
class MnistMini(CachedSource):
    """10,000 real MNIST digits bundled with vae_zoo (8000/1000/1000), offline"""

    num_classes = 10

    @classmethod
    def read(cls, data_dir=None):
        with importlib.resources.files("vae_zoo.data").joinpath("bundled", "mnist_mini.npz").open("rb") as handle:
            bundle = np.load(handle)
            images, labels = bundle["images"], bundle["labels"]
        return _shuffled_split(images, labels, (8000, 1000))


@register_source("fashion_mnist")
class FashionMnist(CachedSource):
    """Fashion-MNIST 50k/10k/10k: local IDX files (Debian's dataset-fashion-mnist) or tfds"""

    num_classes = 10
    options = {"data_dir": data_dir_option(f"$VAE_ZOO_FASHION_MNIST_DIR, {DEBIAN_FASHION_MNIST}, or tfds online")}

    @classmethod
    def read(cls, data_dir=None):
        splits = _local_or_tfds("fashion_mnist", "Fashion-MNIST", data_dir, "VAE_ZOO_FASHION_MNIST_DIR", DEBIAN_FASHION_MNIST)
        return _hold_out_last(splits, 10000)


@register_source("mnist")
class Mnist(CachedSource):
    """MNIST 50k/10k/10k: local IDX files (data_dir or $VAE_ZOO_MNIST_DIR) or tfds"""

    num_classes = 10
    options = {"data_dir": data_dir_option("$VAE_ZOO_MNIST_DIR, or tfds online")}

    @classmethod
    def read(cls, data_dir=None):
        return _hold_out_last(_local_or_tfds("mnist", "MNIST", data_dir, "VAE_ZOO_MNIST_DIR"), 10000)


@register_source("cifar10")
class Cifar10(CachedSource):
    """CIFAR-10 45k/5k/10k through tfds (online)"""

    num_classes = 10

    @classmethod
    def read(cls, data_dir=None):
        return _hold_out_last(_tfds_splits("cifar10"), 5000)


@register_source("shapes")
class Shapes(CachedSource):
    """6,144 procedural 32x32 shapes with known factors, dSprites-style (4916/614/614), offline"""

    num_classes = 3

    @classmethod
    def read(cls, data_dir=None):
        images, factors = shapes.generate()
        # The label is the shape; the full factors are in vae_zoo.data.shapes.
        return _shuffled_split(images, factors[:, 0], (4916, 614))

    def factor_grid(self):
        images, factors = shapes.generate()
        examples = (images[..., None] / 255.0).astype(np.float32)
        return FactorGrid(examples, factors, shapes.FACTOR_NAMES, shapes.FACTOR_SIZES, shapes.index_of)


@register_source("digits")
class Digits(CachedSource):
    """scikit-learn's 1,797 8x8 digits (1437/180/180), offline"""

    num_classes = 10

    @classmethod
    def read(cls, data_dir=None):
        from sklearn.datasets import load_digits  # lazy: scikit-learn is slow to import

        digits = load_digits()
        # Pixels are counts 0..16; scale to 0..255 so that every data set enters as bytes.
        images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
        return _shuffled_split(images, digits.target, (1437, 180))


# --------------------------------------------------------------------------- user data


def array_splits(images, labels=None, validation_split=0.1, test_split=0.1, seed=0):
    """Train/validation/test splits of user arrays, after a seeded shuffle; uint8 arrays stay bytes (``levels`` 256)."""
    images = np.asarray(images)
    if images.dtype == np.uint8 and images.ndim:
        # Bytes stay bytes until from_splits: only their shape needs checking (on one example, not a float copy of all).
        images = images.reshape((len(images), *as_float_images(images[:1], "images").shape[1:]))
    else:
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


# The formats that tf.io.decode_image reads, as PIL names them.
DECODABLE_FORMATS = ("PNG", "JPEG", "BMP", "GIF")


def unreadable_reason(file):
    """Why TensorFlow could not decode ``file`` as an image, or None if it can: read from the header and checked
    whole (PIL's verify) before training, so that a bad file is not met halfway through an epoch."""
    try:
        with Image.open(file) as image:
            if image.format not in DECODABLE_FORMATS:
                return f"a {image.format} image, which TensorFlow does not decode"
            image.verify()
    except Exception as err:  # PIL raises many kinds for a damaged or foreign file: all mean "cannot use it"
        return f"not a readable image ({type(err).__name__})"
    return None


def readable_images(files):
    """``files`` split into those TensorFlow can decode and (file, reason) for the rest."""
    usable, skipped = [], []
    for file, label in files:
        reason = unreadable_reason(file)
        if reason is None:
            usable.append((file, label))
        else:
            skipped.append((file, reason))
    return usable, skipped


def image_folder_data(path, batch_size=128, binarize="none", labels=False, limit=None, seed=0, exclude_classes=(),
                      validation_split=0.1, test_split=0.1, image_size=None, color_mode="grayscale"):
    """A folder of images as a ``Data`` bundle whose splits are streamed: each file is decoded when it is read.

    Subfolders, if any, name the classes. The files are split by a seeded
    shuffle; ``image_size`` (height, width) defaults to the first image's.
    """
    if color_mode not in CHANNELS:
        raise unknown_name("color mode", color_mode, CHANNELS)
    files, classes = image_files(path)
    files, skipped = readable_images(files)
    if not files:
        raise DataError(f"none of the {len(skipped)} image files in {path} can be read; the first: {skipped[0][0]} "
                        f"({skipped[0][1]})")
    if skipped:
        # As image_dataset_from_directory users expect, a folder may hold files that are not images: they are
        # skipped and counted, and the first few named.
        named = "; ".join(f"{file} ({reason})" for file, reason in skipped[:3])
        warnings.warn(f"skipped {len(skipped)} of {len(files) + len(skipped)} files in {path} that are not images "
                      f"TensorFlow can read: {named}{' ...' if len(skipped) > 3 else ''}", RuntimeWarning, stacklevel=2)
    size = tuple(int(d) for d in (image_size or _image_size(files[0][0])))
    channels = CHANNELS[color_mode]
    order = np.random.default_rng(seed).permutation(len(files))
    n_val, n_test = int(round(len(files) * validation_split)), int(round(len(files) * test_split))
    if len(files) - n_val - n_test < 1:
        raise DataError(f"{len(files)} images are too few for validation_split={validation_split} and test_split={test_split}")
    train_end = len(files) - n_val - n_test
    parts = {"train": order[:train_end], "validation": order[train_end:train_end + n_val], "test": order[train_end + n_val:]}

    def decode(file, label):
        # Decoded as stored, then converted: TensorFlow refuses channels=1 for GIF and BMP files.
        image = as_channels(tf.io.decode_image(tf.io.read_file(file), channels=0, expand_animations=False), channels)
        image.set_shape([None, None, channels])
        # Rounded back to bytes after resizing: the examples stay on the 256 levels of the 8-bit files.
        image = tf.round(tf.image.resize(image, size))
        return tf.clip_by_value(image, 0.0, 255.0) / 255.0, label

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
    spec = DataSpec("image_folder", "image", (*size, channels), num_classes=len(classes), levels=levels_of(binarize, True))
    return Data(spec, streams, binarize, batch_size, labels, seed)


def as_channels(image, channels):
    """A decoded image (1 grey, 2 grey + alpha, 3 RGB or 4 RGBA channels) as ``channels`` (1 or 3) float channels;
    alpha is dropped, as decode_image drops it."""
    image = tf.cast(image, tf.float32)
    first = lambda: image[..., :1]  # noqa: E731
    if channels == 1:
        branches = [first, first, lambda: tf.image.rgb_to_grayscale(image[..., :3]), lambda: tf.image.rgb_to_grayscale(image[..., :3])]
    else:
        tiled = lambda: tf.tile(image[..., :1], [1, 1, 3])  # noqa: E731
        branches = [tiled, tiled, lambda: image[..., :3], lambda: image[..., :3]]
    return tf.switch_case(tf.clip_by_value(tf.shape(image)[-1] - 1, 0, 3), branches)


def _image_size(file):
    with Image.open(file) as image:
        return (image.height, image.width)


# --------------------------------------------------------------------------- user data as sources


class UserImages(DataSource):
    """Images of the user's, split by a seeded shuffle into train, validation and test."""

    options = {
        "validation_split": Option(0.1, schema.number(minimum=0, below=1), "the share of the examples that validate"),
        "test_split": Option(0.1, schema.number(minimum=0, below=1), "the share of the examples that test"),
    }


@register_source("npz")
class Npz(UserImages, ArraySource):
    """Your images in an .npz file (key 'images' or 'x', optional labels 'labels' or 'y')"""

    options = {"path": Option(None, path_like, "the .npz file", required=True)}

    def splits(self):
        o = self.options
        images, labels = read_npz(o["path"])
        return array_splits(images, labels, o["validation_split"], o["test_split"], o["seed"])


@register_source("image_folder")
class ImageFolder(UserImages):
    """Your folder of images, streamed from disk as it is read; subfolders name the classes"""

    options = {
        "path": Option(None, path_like, "the folder of images (subfolders, if any, name the classes)", required=True),
        "image_size": Option(None, schema.sizes(2, 2), "[height, width] the images are resized to (default: the first image's)"),
        "color_mode": Option("grayscale", schema.choice(*CHANNELS), "grayscale (1 channel) or rgb (3 channels)"),
    }

    def load(self):
        # The semi-supervised options are for data held in memory (vae_zoo.data.load refuses them here).
        options = {k: v for k, v in self.options.items() if k not in ("labels_per_class", "labelled_per_batch")}
        return image_folder_data(**options)


def from_arrays(images, labels=None, *, batch_size=128, binarize="none", validation_split=0.1, test_split=0.1, seed=0):
    """Your own numpy arrays as a ``Data`` bundle (uint8 0..255 or floats in [0, 1])."""
    splits = array_splits(images, labels, validation_split, test_split, seed)
    return from_splits(splits, "arrays", batch_size, binarize, labels is not None, None, seed)
