"""Scores of a trained model on a data split."""

import numpy as np
import tensorflow as tf


def score(model, images, labels=None, batch_size=500, seed=0):
    """Mean per-example ELBO, its two terms and the reconstruction error over ``images``.

    One z is drawn from q(z|x) per image (the single-sample ELBO); the
    reconstruction error is the squared error between x and the model's
    reconstruction (the likelihood mean at the posterior mean), summed over
    pixels, as in the seed's ||x - decoder(encoder(x))||^2. Models without an
    ELBO (the plain autoencoder) report the reconstruction terms only.
    """
    from vae_zoo.latents import batches, model_inputs

    tf.random.set_seed(seed)
    names = [n for n in ("elbo", "reconstruction", "kl") if n in model.metric_names]

    @tf.function(jit_compile=True)
    def batch_scores(x, y):
        terms = model.loss_terms(x, y)
        error = tf.reduce_sum(tf.reshape(tf.square(x - model(model_inputs(model, x, y))), [tf.shape(x)[0], -1]), axis=1)
        return [tf.reduce_sum(terms[n]) for n in names] + [tf.reduce_sum(error)]

    totals = np.zeros(len(names) + 1)
    for x, y in batches(model, images, labels if model.needs_labels else None, batch_size):
        totals += [float(t) for t in batch_scores(tf.convert_to_tensor(x), None if y is None else tf.convert_to_tensor(y))]
    means = dict(zip([*names, "reconstruction_squared_error"], totals / len(images)))
    if "reconstruction" in means:
        means["reconstruction_nll"] = means.pop("reconstruction")
    return {**means, "examples": int(len(images))}
