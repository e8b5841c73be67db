"""What ``vae-zoo compress`` reads: an .npz of images, a folder of image files, or a named data set's split."""

from pathlib import Path

import numpy as np
from PIL import Image

from vae_zoo import data as data_module
from vae_zoo.data import binarize_static
from vae_zoo.data.images import image_files, readable_images
from vae_zoo.errors import InputError

BINARIZATIONS = ("none", "threshold", "stochastic")


def read_images(source, split="test", limit=None, seed=0, binarized=False, channels=1, levels=False):
    """(images as float32 in [0, 1] or the .npz's own array, a description) from ``source``.

    ``source``: a path to an ``.npz`` (key ``images`` or ``x``; its dtype is kept, so a lossless
    round trip gives back the same array), a folder of images (sorted by path, read with ``channels`` channels:
    1 grey, 3 RGB, 4 RGBA; with ``levels`` as uint8, so that a PNG decodes to its own pixels),
    or a data set name such as ``mnist_mini`` (``split`` of it: grey, or with ``binarized`` (what lossless
    coding with a Bernoulli model needs) binarized once with ``seed``, exactly as ``vae-zoo evaluate`` scores it).
    """
    path = Path(source)
    if path.suffix == ".npz":
        images, _ = data_module.read_npz(path)
        description = str(path)
    elif path.is_dir():
        images = _read_folder(path, channels, levels)
        description = f"{path}/ ({len(images)} files)"
    elif path.exists() or "/" in str(source):
        raise InputError(f"{source} is neither an .npz file, a folder of images, nor a data set name")
    else:
        data = data_module.load(str(source), binarize="dynamic" if binarized else "none", seed=seed)  # held-out splits: once
        images, _ = data.take(split, limit)
        description = f"{source}:{split}" + (f" (binarized once with seed {seed})" if binarized else " (grey)")
    if limit is not None:
        images = images[:limit]
    return images, description


PILLOW_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def _read_folder(path, channels=1, levels=False):
    if channels not in PILLOW_MODES:
        raise InputError(f"images are read with 1, 3 or 4 channels, not {channels}")
    files, skipped = readable_images(image_files(path)[0])
    if skipped:  # a file the user asked to compress is never left out quietly
        raise InputError(f"cannot compress {skipped[0][0]}: {skipped[0][1]}")
    arrays = []
    for file, _ in files:
        with Image.open(file) as image:
            pixels = np.asarray(image.convert(PILLOW_MODES[channels]), np.uint8).reshape(image.height, image.width, channels)
            arrays.append(pixels if levels else pixels.astype(np.float32) / 255.0)
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise InputError(f"the images in {path} differ in size ({sorted(shapes)[:3]}...); compress images of one size")
    return np.stack(arrays)


def binarize(images, how, seed=0):
    """Binary images for a lossless Bernoulli code: ``threshold`` at 0.5, or ``stochastic`` x ~ Bernoulli(pixel)."""
    if how == "none":
        return images
    if how not in BINARIZATIONS:
        raise InputError(f"unknown binarization {how!r}; choose from {', '.join(BINARIZATIONS)}")
    grey = np.asarray(images, np.float32)
    if grey.max(initial=0) > 1.0 or grey.min(initial=0) < 0.0:
        grey = grey / 255.0
    if how == "threshold":
        return (grey >= 0.5).astype(np.float32)
    return binarize_static(grey, seed)
