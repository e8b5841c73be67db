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


def importance_log_likelihood(model, x, y=None, k=5000, chunk=500, seed=None):
    """log p(x) estimated by importance sampling with k draws from q(z|x), per example.

    log p(x) ~ log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x) (Burda et al.,
    2015). The k draws go in chunks of ``chunk`` so that k = 5000 fits in memory,
    and the log-mean-exp is accumulated stably (running logsumexp). ``k`` may be a
    tensor, so the same code serves the exported ``log_likelihood`` signature.
    ``seed`` (a stateless [2] seed) makes the estimate reproducible; chunk i uses
    seed + [0, i].
    """
    k = tf.cast(k, tf.int32)
    chunk = tf.minimum(tf.cast(chunk, tf.int32), k)
    batch = tf.shape(x)[0]

    def body(done, total):
        size = tf.minimum(chunk, k - done)
        chunk_seed = None if seed is None else tf.cast(seed, tf.int32) + tf.stack([0, done])
        log_weights = model.log_weights(x, y, k=size, seed=chunk_seed)
        return done + size, tf.reduce_logsumexp(tf.stack([total, tf.reduce_logsumexp(log_weights, axis=0)]), axis=0)

    start = tf.fill([batch], tf.constant(-float("inf"), model.compute_dtype))
    _, total = tf.while_loop(lambda done, _: done < k, body, (tf.constant(0), start))
    return total - tf.math.log(tf.cast(k, total.dtype))
