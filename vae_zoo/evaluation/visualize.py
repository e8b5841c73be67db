"""The pictures a trained model is judged by, as PNG files (matplotlib, no display)."""

import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure

from vae_zoo.evaluation.latents import model_inputs
from vae_zoo.data.plotting import as_images, mosaic, save_image_grid


def sample_grid(model, path, n=64, seed=0):
    """Samples from the prior: z ~ p(z), shown as the mean of p(x|z)."""
    return save_image_grid(model.sample(n, seed=seed), path, title=f"{model.registered_name}: samples from the prior")


def class_grid(model, path, per_class=10, seed=0):
    """Class-conditional samples of a conditional model: one row per class."""
    labels = np.repeat(np.arange(model.num_classes), per_class)
    images = model.sample(len(labels), seed=seed, labels=labels)
    return save_image_grid(images, path, ncols=per_class, title=f"{model.registered_name}: one row per class")


def reconstruction_grid(model, images, labels, path, n=32):
    """Inputs and their reconstructions: each input row is followed by its reconstruction row."""
    x, y = images[:n], None if labels is None else labels[:n]
    reconstructions = np.asarray(model(model_inputs(model, x, y)))
    columns = 8
    rows = []
    for start in range(0, len(x), columns):
        rows += [x[start : start + columns], reconstructions[start : start + columns]]
    return save_image_grid(np.concatenate(rows), path, ncols=columns, title="inputs (odd rows) and reconstructions (even rows)")


def group_grid(model, image, path, n=8, seed=0, temperature=0.8):
    """A hierarchical model's groups at work: row g holds ``n`` images whose top g latent groups are the posterior
    means for ``image`` and whose lower groups are drawn from their priors (row 0: free samples; last row: the
    reconstruction, n times)."""
    groups = len(model.group_shapes)
    rows = [np.asarray(model.sample_from_top_groups(image[None], g, n, seed=tf.constant([seed, g]), temperature=temperature))
            for g in range(groups + 1)]
    return save_image_grid(np.concatenate([image[None], np.zeros_like(image)[None].repeat(n - 1, 0), *rows]), path, ncols=n,
                           title=f"input (top); row g: top g of {groups} groups from it, the rest sampled (T={temperature})")


def slerp(a, b, t):
    """Spherical interpolation between vectors a and b (White, 2016); linear when they are parallel."""
    cosine = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12)
    omega = np.arccos(np.clip(cosine, -1.0, 1.0))
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def interpolation_strip(model, first, second, path, steps=10, label=None):
    """Decoded points between two encoded inputs: the linear path (top row) and the spherical one (bottom)."""
    pair = np.stack([first, second])
    labels = None if label is None else np.array([label, label])
    codes = np.asarray(model.encode(pair, labels).mean())
    flat = codes.reshape(2, -1)
    ts = np.linspace(0.0, 1.0, steps)
    linear = np.stack([(1 - t) * flat[0] + t * flat[1] for t in ts])
    spherical = np.stack([slerp(flat[0], flat[1], t) for t in ts])
    paths = np.concatenate([linear, spherical]).reshape(2 * steps, *codes.shape[1:]).astype(np.float32)
    path_labels = None if label is None else np.full(2 * steps, label)
    decoded = model.decode(tf.constant(paths), path_labels).mean()
    return save_image_grid(decoded, path, ncols=steps, title="interpolation: linear (top), spherical (bottom)")


def latent_scatter(points, labels, path, title):
    """A 2-D scatter of latent codes coloured by label."""
    figure = Figure(figsize=(6, 5.5))
    axes = figure.add_subplot()
    scatter = axes.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=4, alpha=0.8)
    if labels is not None and len(np.unique(labels)) <= 20:
        figure.colorbar(scatter, ax=axes, label="label", ticks=np.unique(labels))
    axes.set_title(title, fontsize=10)
    axes.set_xticks([]), axes.set_yticks([])
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def latent_maps(codes, labels, out_dir, examples=2000, seed=0):
    """t-SNE and PCA of the codes (scikit-learn), coloured by label; returns the files written."""
    # Lazy: scikit-learn is slow to import, and only the latent maps need it.
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE  # lazy, as above

    codes, labels = codes[:examples], None if labels is None else labels[:examples]
    written = {}
    if codes.shape[1] > 2:
        embedded = TSNE(n_components=2, init="pca", random_state=seed, perplexity=30).fit_transform(codes)
        latent_scatter(embedded, labels, out_dir / "latent_tsne.png", f"t-SNE of {len(codes)} posterior means")
        written["tsne"] = "latent_tsne.png"
    projected = PCA(n_components=2, random_state=seed).fit_transform(codes) if codes.shape[1] > 2 else codes
    latent_scatter(projected, labels, out_dir / "latent_pca.png", f"PCA of {len(codes)} posterior means")
    written["pca"] = "latent_pca.png"
    return written


def traversal_2d(model, path, steps=15, extent=3.0):
    """For a 2-D latent space: the decoded grid z in [-extent, extent]^2."""
    values = np.linspace(-extent, extent, steps)
    grid = np.array([[x, -y] for y in values for x in values], np.float32)
    return save_image_grid(model.decode(tf.constant(grid)).mean(), path, ncols=steps, title="latent traversal")


def image_summary(batch):
    """A batch of images as one (1, H, W, C) mosaic tensor, for TensorBoard."""
    images = as_images(batch)
    if images is None:
        return None
    canvas = mosaic(images, ncols=int(np.ceil(np.sqrt(len(images)))))
    return canvas[None, ..., None] if canvas.ndim == 2 else canvas[None]
