"""Latent-space statistics: per-dimension KL and active units, over a set of examples."""

import numpy as np
import tensorflow as tf


def model_inputs(model, images, labels=None):
    """What the model's methods take: images, or (images, labels) for conditional variants."""
    return (images, labels) if model.can("labels") else images


def batches(model, images, labels=None, batch_size=500):
    for start in range(0, len(images), batch_size):
        stop = start + batch_size
        yield images[start:stop], (None if labels is None else labels[start:stop])


def posterior_means(model, images, labels=None, batch_size=500):
    """E_q[z|x] for every example, as numpy (examples, latent_dim)."""
    return np.concatenate([
        np.asarray(model.transform(model_inputs(model, x, y))) for x, y in batches(model, images, labels, batch_size)
    ])


def kl_per_dimension(model, images, labels=None, batch_size=500):
    """Mean KL(q(z_d|x) || p(z_d)) over the examples, per latent dimension, or None when p(z) does not factorize."""
    total = None
    for x, y in batches(model, images, labels, batch_size):
        part = model.kl_by_dimension(x, None if y is None else tf.convert_to_tensor(y))
        if part is None:
            return None
        part = np.asarray(tf.reduce_sum(part, axis=0))
        total = part if total is None else total + part
    return total / len(images)


def active_units(model, images, labels=None, threshold=0.01, batch_size=500):
    """Burda et al. (2015): dimension d is active if Cov_x(E_q[z_d|x]) > threshold. Returns (count, variances)."""
    variances = posterior_means(model, images, labels, batch_size).var(axis=0)
    return int(np.sum(variances > threshold)), variances
