"""The Exemplar prior (Norouzi, Fleet & Norouzi, NeurIPS 2020): p(z) = 1/N sum_n N(z; mu(x_n), sigma^2 I).

Its N components sit at the posterior means mu(x_n) of N training exemplars under the model's own encoder (in a
hierarchy, the top latent's), with one learned scale sigma shared by all. What the model saves is a cache of those
means and sigma: the saved model is exactly a VAE whose prior is that mixture, so its IS-NLL, samples and exports
need nothing else, and the exported SavedModel carries the exemplars it needs (their means, N x latent floats).

Training follows the paper's retrieval-augmented objective. For an example x_i of the training split the prior is
the mixture over the K exemplars whose cached means lie nearest to mu(x_i), with x_i itself left out
(leave-one-out: otherwise sigma shrinks to nothing around each example's own mean), normalised by N - 1:

    log p(z_i) ~ logsumexp_{n in kNN(i), n != i} log N(z_i; mu(x_n), sigma^2 I) - log(N - 1)

The means of those K exemplars are recomputed with the current encoder, so the prior's gradient reaches it; the
cache only decides which exemplars are near. The cache is refreshed from the exemplar bank every epoch
(``vae_zoo.training.callbacks.ExemplarRefresh``), which also attaches the bank: the training images as the
model sees them, held in memory only, never saved. Without a bank (a loaded model, validation, evaluation) the
prior is the exact mixture over all N cached means.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from vae_zoo.errors import InputError
from vae_zoo.models import distributions


class RetrievedExemplars:
    """The training prior of one batch: each example's mixture over its K retrieved exemplars, ``means`` (B, K, D),
    without those ``left_out`` (B, K booleans), normalised by how many exemplars its full mixture has (B,)."""

    def __init__(self, means, scale, left_out, exemplars_in_mixture):
        self.means, self.scale, self.left_out = means, scale, left_out
        self.log_count = tf.math.log(tf.cast(exemplars_in_mixture, tf.float32))

    def log_prob(self, z):
        dims = tf.cast(tf.shape(z)[-1], tf.float32)
        squared = tf.reduce_sum(tf.square(z[:, None, :] - self.means), axis=-1) / tf.square(self.scale)
        log_normal = -0.5 * squared - dims * (tf.math.log(self.scale) + 0.5 * math.log(2 * math.pi))
        log_normal = tf.where(self.left_out, -np.inf, log_normal)
        return tf.reduce_logsumexp(log_normal, axis=-1) - self.log_count


class _Attached:
    bank = slot_of_example = None


class ExemplarPrior(distributions.Prior):
    """p(z) = 1/N sum_n N(z; mu(x_n), sigma^2 I) over ``exemplars`` training examples.

    Args:
        exemplars: N, how many training examples serve as exemplars (a fixed draw of them where the training split
            is larger; all of them where it has exactly N).
        neighbours: K, the exemplars retrieved per training example (the paper's kNN); 0 sums over all N.
        scale: sigma's initial value (learned).
    """

    # The model passes each training example's index in the training split (data option ``indices: true``).
    uses_example_indices = True

    def __init__(self, latent_dim, data_shape=None, exemplars=1000, neighbours=10, scale=1.0, **kwargs):
        super().__init__(latent_dim, **kwargs)
        self.exemplars, self.neighbours = int(exemplars), int(neighbours)
        if self.exemplars < 2:
            raise ValueError(f"the exemplar prior needs at least 2 exemplars, got {exemplars!r}")
        if not 0 <= self.neighbours < self.exemplars:
            raise ValueError(f"neighbours must be in [0, exemplars), got {neighbours!r} with {exemplars} exemplars")
        if not float(scale) > 0:
            raise ValueError(f"the exemplar prior's scale must be > 0, got {scale!r}")
        self.means = self.add_weight(name="exemplar_means", shape=(self.exemplars, self.latent_dim),
                                     initializer="zeros", trainable=False)
        self.log_scale = self.add_weight(name="log_scale", shape=(),
                                         initializer=keras.initializers.Constant(math.log(float(scale))))
        # The exemplar images and the map from training-split index to exemplar slot (-1: not an exemplar), held
        # for training only, in a plain object: Keras and tf.Module do not track them into saved weights or exports.
        self._attached = _Attached()

    def get_config(self):
        return {**super().get_config(), "exemplars": self.exemplars, "neighbours": self.neighbours}

    @property
    def scale(self):
        return tf.exp(self.log_scale)

    def distribution(self, model=None):
        """The exact mixture over all N cached means (evaluation, sampling, export)."""
        scale = tf.fill([self.exemplars, self.latent_dim], self.scale)
        return distributions.diagonal_gaussian_mixture(tf.zeros([self.exemplars]), self.means, scale)

    # ------------------------------------------------------------------ evaluation

    # Exemplars per example that the importance-sampled likelihood sums over (``log_prob_near``); 0: all of them.
    candidates = 4096

    @property
    def evaluation_values_per_draw(self):
        """About three (draws x exemplars summed) matrices: 12,000 values a draw at 4,096 candidates."""
        return 3 * min(self.exemplars, self.candidates or self.exemplars)

    def log_prob_near(self, z, posterior):
        """log p(z) of draws ``z`` (k, batch, D) from each example's ``posterior`` q(z|x) (batch, D), summed over the
        ``candidates`` exemplars nearest each example's posterior mean instead of all N.

        The importance-sampled likelihood needs log p(z) for thousands of draws of each example against every
        exemplar: 2.5e8 terms an example at k = 5000 and N = 50,000, about 1.2 s an example on a 2-core CPU, three
        hours for a test set. Draws of one example lie near its mean, so few exemplars carry its mass. The short
        sum leaves terms out, never adds any: it is never above the exact log p(z), so the likelihood it gives is
        never above the exact model's at the same draws, and the NLL reported is never flattering. By how much it
        falls short is measured, not assumed: ``tools/bench_exemplar_nll.py`` compares it with the full sum at the
        same draws (the recipe's note gives the figure). ``candidates = 0`` sums over all N.
        """
        count = min(self.candidates or self.exemplars, self.exemplars)
        if count == self.exemplars:
            return self.distribution().log_prob(z)
        mean = posterior.mean()
        centred = self.means[None, :, :] - mean[:, None, :]  # (batch, N, D), relative to each example's mean
        _, nearest = tf.math.top_k(-tf.reduce_sum(tf.square(centred), -1), k=count)
        chosen = tf.gather(centred, nearest, batch_dims=1)  # (batch, M, D)
        offsets = z - mean  # (k, batch, D)
        squared = (tf.reduce_sum(tf.square(offsets), -1)[..., None] - 2.0 * tf.einsum("kbd,bmd->kbm", offsets, chosen)
                   + tf.reduce_sum(tf.square(chosen), -1)[None])
        log_kept = tf.reduce_logsumexp(-0.5 * tf.maximum(squared, 0.0) / tf.square(self.scale), axis=-1)
        dims = tf.cast(tf.shape(z)[-1], z.dtype)
        return log_kept - math.log(self.exemplars) - dims * (tf.math.log(self.scale) + 0.5 * math.log(2 * math.pi))

    # ------------------------------------------------------------------ the bank and its cache

    def attach(self, images, example_indices):
        """Hold the exemplar ``images`` (N, ...) and which training-split index each one is, for training."""
        images = np.asarray(images, np.float32)
        example_indices = np.asarray(example_indices, np.int64)
        if len(images) != self.exemplars or len(example_indices) != self.exemplars:
            raise InputError(f"the exemplar prior was built for {self.exemplars} exemplars, got {len(images)} images")
        slots = np.full(int(example_indices.max()) + 1, -1, np.int64)
        slots[example_indices] = np.arange(self.exemplars)
        # Variables, not constants: a compiled step would otherwise carry the whole bank in its graph.
        self._attached.bank = tf.Variable(images, trainable=False, name="exemplar_bank")
        self._attached.slot_of_example = tf.Variable(slots, trainable=False, name="exemplar_slots")

    def detach(self):
        self._attached = _Attached()

    @property
    def bank(self):
        """The attached exemplar images (N, ...), or None outside training."""
        return self._attached.bank

    @property
    def slot_of_example(self):
        return self._attached.slot_of_example

    def refresh(self, model, batch_size=1000):
        """Recompute the cache: every exemplar's posterior mean under the model's current encoder."""
        if self.bank is None:
            raise InputError("the exemplar prior has no exemplars attached: attach(images, indices) first")
        means = [model.top_posterior(self.bank[start:start + batch_size]).mean()
                 for start in range(0, self.exemplars, batch_size)]
        self.means.assign(tf.concat(means, axis=0))

    # ------------------------------------------------------------------ training

    def retrieval_distribution(self, model, query_means, example_indices=None):
        """Each training example's prior: its K nearest exemplars by cached mean, itself left out."""
        query = tf.stop_gradient(query_means)
        distance = (tf.reduce_sum(tf.square(query), -1, keepdims=True)
                    - 2.0 * tf.matmul(query, self.means, transpose_b=True)
                    + tf.reduce_sum(tf.square(self.means), -1)[None, :])
        slots = tf.fill(tf.shape(query)[:1], tf.constant(-1, tf.int64))
        if example_indices is not None:
            indices = tf.cast(tf.reshape(example_indices, [-1]), tf.int64)
            known = (indices >= 0) & (indices < tf.shape(self.slot_of_example, out_type=tf.int64)[0])
            slots = tf.where(known, tf.gather(self.slot_of_example, tf.where(known, indices, 0)), -1)
            # Leave-one-out: an exemplar is never its own neighbour (one_hot of slot -1 is a row of zeros).
            distance += tf.one_hot(slots, self.exemplars, on_value=np.inf, off_value=0.0)
        count = self.neighbours or self.exemplars
        _, nearest = tf.math.top_k(-distance, k=count)
        images = tf.gather(self.bank, tf.reshape(nearest, [-1]))
        means = tf.reshape(model.top_posterior(images).mean(), [-1, count, self.latent_dim])
        left_out = tf.equal(tf.cast(nearest, tf.int64), slots[:, None])  # only where K covers all N
        in_mixture = self.exemplars - tf.cast(slots >= 0, tf.int32)
        return RetrievedExemplars(means, self.scale, left_out, in_mixture)


distributions.PRIORS["exemplar"] = ExemplarPrior


def exemplar_bank(data, count, seed=0):
    """(images, training-split indices) of ``count`` exemplars from the training split of ``data``, as the model
    sees them: binarized once with ``seed`` for binarized data (the training split itself is redrawn every epoch)."""
    images, _ = data.take("train")
    if count > len(images):
        raise InputError(f"the exemplar prior wants {count} exemplars, but the training split has {len(images)} examples")
    indices = np.arange(len(images)) if count == len(images) else np.sort(
        np.random.default_rng(seed).choice(len(images), count, replace=False))
    chosen = np.asarray(images[indices], np.float32)
    if data.binarize != "none":
        chosen = (np.random.default_rng(seed + 17).random(chosen.shape, dtype=np.float32) < chosen).astype(np.float32)
    return chosen, indices
