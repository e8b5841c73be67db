"""Image grids and strips as PNG files, drawn with matplotlib (no display needed): how the image and audio
modalities (``vae_zoo.data.modalities``) and the evaluation's pictures (``vae_zoo.evaluation.visualize``) draw examples."""

import math

import numpy as np


def as_images(batch):
    """(n, H, W, C) or (n, D) with D a square -> (n, H, W) or (n, H, W, 3) in [0, 1], or None."""
    batch = np.asarray(batch, dtype=np.float32)
    if batch.ndim == 2:
        side = math.isqrt(batch.shape[1])
        if side * side != batch.shape[1]:
            return None
        batch = batch.reshape(-1, side, side, 1)
    if batch.ndim != 4 or batch.shape[-1] not in (1, 3):
        return None
    batch = np.clip(batch, 0.0, 1.0)
    return batch[..., 0] if batch.shape[-1] == 1 else batch


def mosaic(images, ncols, pad=1):
    """Tile (n, H, W[, 3]) images into one array, ``ncols`` per row, with a white ``pad``."""
    n, h, w = images.shape[:3]
    nrows = math.ceil(n / ncols)
    canvas = np.ones((nrows * (h + pad) + pad, ncols * (w + pad) + pad) + images.shape[3:], np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        canvas[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = image
    return canvas


def save_image_grid(batch, path, ncols=None, title=None, scale=0.35):
    """Write a batch of images as one PNG grid. Returns False if the data are not images."""
    from matplotlib.figure import Figure  # lazily: matplotlib is heavy, and importing vae_zoo.data needs no pictures

    images = as_images(batch)
    if images is None:
        return False
    ncols = ncols or math.ceil(math.sqrt(len(images)))
    canvas = mosaic(images, ncols)
    nrows = math.ceil(len(images) / ncols)
    # A title needs room: narrow grids get a wider canvas rather than a clipped title.
    min_width = 0.085 * len(title) if title else 2.0
    figure = Figure(figsize=(max(min_width, 2.0, ncols * scale * images.shape[2] / 28), max(2.0, nrows * scale * images.shape[1] / 28)))
    axes = figure.add_axes([0, 0, 1, 0.92 if title else 1])
    axes.imshow(canvas, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    axes.set_axis_off()
    if title:
        figure.suptitle(title, fontsize=9)
    figure.savefig(path, dpi=100)
    return True
