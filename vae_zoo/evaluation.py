"""Scores of a trained model on a data split."""

import numpy as np
import tensorflow as tf


def score(model, images, batch_size=500, seed=0):
    """Mean per-example ELBO, its two terms and the reconstruction error over ``images``.

    One z is drawn from q(z|x) per image (the single-sample ELBO); the
    reconstruction error is the squared error between x and the model's
    reconstruction (the likelihood mean at the posterior mean), summed over
    pixels, as in the seed's ||x - decoder(encoder(x))||^2.
    """
    tf.random.set_seed(seed)

    @tf.function(jit_compile=True)
    def batch_scores(x):
        terms = model.loss_terms(x)
        error = tf.reduce_sum(tf.reshape(tf.square(x - model(x)), [tf.shape(x)[0], -1]), axis=1)
        return terms["elbo"], terms["reconstruction"], terms["kl"], error

    totals = np.zeros(4)
    for start in range(0, len(images), batch_size):
        batch = tf.convert_to_tensor(images[start : start + batch_size])
        totals += [float(tf.reduce_sum(t)) for t in batch_scores(batch)]
    means = totals / len(images)
    return {
        "elbo": means[0],
        "reconstruction_nll": means[1],
        "kl": means[2],
        "reconstruction_squared_error": means[3],
        "examples": int(len(images)),
    }
