"""Objective pieces shared by the variants: seeds for several draws, sample axes, the importance-sampled log-likelihood."""

import tensorflow as tf
import tensorflow_probability as tfp


def split_seed(seed, n):
    """``n`` independent seeds from one (None stays None: fresh randomness each call).

    A step that draws several times must not reuse one stateless seed, or the
    draws would share their noise.
    """
    if seed is None:
        return [None] * n
    return tf.unstack(tfp.random.split_seed(seed, n=n))


def flatten_samples(tensor):
    """(k, batch, ...) -> (k * batch, ...), so that sample axes go through networks as one batch."""
    return tf.reshape(tensor, tf.concat([[-1], tf.shape(tensor)[2:]], axis=0))


def repeat_batch(tensor, k):
    """(batch, ...) -> (k * batch, ...), matching ``flatten_samples`` of k draws."""
    return tf.reshape(tf.repeat(tensor[None], k, axis=0), tf.concat([[-1], tf.shape(tensor)[1:]], axis=0))


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
