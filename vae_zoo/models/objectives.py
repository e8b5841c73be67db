"""The objectives, as functions over what a model's ``encode``, ``decode`` and ``prior`` give.

A variant composes these instead of inheriting them from a wide base:

* ``elbo_terms(log_likelihood, kl, beta, penalty)``: the per-example terms a model trains on and reports
  (``loss``, ``elbo``, ``reconstruction``, ``kl``);
* ``kl_penalty(kl, pairs, kappa)``: the KL term that enters the loss, with free bits where kappa > 0;
* ``free_bits(kl_per_dim, kappa)`` and ``kl_per_dimension(q, p)``: the pieces of that penalty;
* ``importance_log_weights(log_likelihood, log_prior, log_posterior)`` and ``iwae_bound(log_weights)``:
  log p(x, z_i) - log q(z_i|x) for k draws, and their log-mean-exp (Burda et al., 2015);
* ``importance_log_likelihood(model, x, ...)``: log p(x) by importance sampling, in chunks of draws.

Plus seeds for several draws and the sample axes (``split_seed``, ``flatten_samples``, ``repeat_batch``).
"""

import math

import tensorflow as tf
import tensorflow_probability as tfp

from vae_zoo.models.distributions import tfd


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


def elbo_terms(log_likelihood, kl, beta=1.0, penalty=None):
    """Per-example ``loss``, ``elbo``, ``reconstruction`` and ``kl`` from log p(x|z) and KL(q(z|x) || p(z)).

    The loss is -log p(x|z) + beta * ``penalty``; the penalty is the KL itself unless a variant trains on
    another regularizer (free bits, a discriminator's loss). The ELBO is always log p(x|z) - KL.
    """
    reconstruction = -log_likelihood
    return {
        "loss": reconstruction + beta * (kl if penalty is None else penalty),
        "elbo": -(reconstruction + kl),
        "reconstruction": reconstruction,
        "kl": kl,
    }


def kl_per_dimension(q, p):
    """KL(q || p) of each latent dimension, shape (batch, latent_dim); both must factorize over dimensions."""
    return tf.convert_to_tensor(tfd.kl_divergence(q.distribution, p.distribution))


def free_bits(kl_per_dim, kappa):
    """Free bits (Kingma et al., 2016, eq. 15): each dimension's batch-mean KL counts as at least ``kappa``.

    Dimensions whose batch-mean KL is under kappa contribute kappa and no gradient; the others their own
    KL. ``kl_per_dim`` is (batch, dims); returns the per-example penalty, (batch,).
    """
    above = tf.reduce_mean(kl_per_dim, axis=0) > kappa
    return tf.reduce_sum(tf.where(above, kl_per_dim, kappa), axis=-1)


def kl_penalty(kl, pairs, kappa=0.0):
    """The KL term that enters the loss: ``kl`` itself, or free bits over every dimension of the (q, p) ``pairs``
    (one pair per stochastic layer; with several, their dimensions are pooled)."""
    if not kappa:
        return kl
    return free_bits(tf.concat([kl_per_dimension(q, p) for q, p in pairs], axis=-1), kappa)


def importance_log_weights(log_likelihood, log_prior, log_posterior):
    """log p(x|z_i) + log p(z_i) - log q(z_i|x): their mean estimates the ELBO, their log-mean-exp is ``iwae_bound``."""
    return log_likelihood + log_prior - log_posterior


def iwae_bound(log_weights):
    """The importance-weighted bound of Burda et al. (2015): log (1/k) sum_i exp(log_weights_i) over axis 0 (k draws).

    With k = 1 it is the single-sample ELBO; it tightens towards log p(x) as k grows.
    """
    k = log_weights.shape[0]
    log_k = math.log(k) if k is not None else tf.math.log(tf.cast(tf.shape(log_weights)[0], log_weights.dtype))
    return tf.reduce_logsumexp(log_weights, axis=0) - log_k


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
