"""VQ-VAE: discrete latents through a learned codebook."""

import math

import keras
import numpy as np
import tensorflow as tf

from vae_zoo import networks
from vae_zoo.models import distributions, objectives
from vae_zoo.models.base import ZooModel
from vae_zoo.registry import register

tfd = distributions.tfd


class CodePrior(keras.layers.Layer):
    """A learned categorical prior over the code index at every grid position (independent positions)."""

    factorized = False

    def __init__(self, grid, codebook_size, **kwargs):
        super().__init__(**kwargs)
        self.grid = tuple(grid)
        self.logits = self.add_weight(name="logits", shape=(*self.grid, int(codebook_size)), initializer="zeros")

    def distribution(self, model=None):
        return tfd.Independent(tfd.Categorical(logits=self.logits), reinterpreted_batch_ndims=len(self.grid))


class MaskedDense(keras.layers.Layer):
    """A dense layer whose kernel is multiplied by a fixed 0/1 mask (for MADE)."""

    def __init__(self, mask, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.mask = tf.constant(mask, dtype="float32")
        self.activation = keras.activations.get(activation)
        self.kernel = self.add_weight(name="kernel", shape=mask.shape, initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(mask.shape[1],), initializer="zeros")

    def call(self, inputs):
        return self.activation(tf.matmul(inputs, self.kernel * self.mask) + self.bias)


class AutoregressiveCodePrior(keras.layers.Layer):
    """p(codes) = prod_i p(code_i | codes before i) over the flattened grid, by a MADE
    (Germain et al., 2015) with one masked hidden layer, as TFP's ``tfd.Autoregressive``.

    Position i's logits see only positions before it, so one pass gives every
    conditional for log_prob, and sampling takes one pass per position.
    """

    factorized = False

    def __init__(self, grid, codebook_size, hidden=512, **kwargs):
        super().__init__(**kwargs)
        self.grid, self.codebook_size = tuple(grid), int(codebook_size)
        positions = math.prod(self.grid)
        input_degrees = np.repeat(np.arange(1, positions + 1), self.codebook_size)
        hidden_degrees = np.arange(int(hidden)) % max(1, positions - 1) + 1
        self.positions = positions
        self.hidden = MaskedDense((hidden_degrees[None, :] >= input_degrees[:, None]).astype("float32"), activation="relu", name="made_hidden")
        self.out = MaskedDense((input_degrees[None, :] > hidden_degrees[:, None]).astype("float32"), name="made_logits")

    def logits(self, codes):
        flat = tf.reshape(tf.one_hot(tf.reshape(codes, [-1, self.positions]), self.codebook_size), [-1, self.positions * self.codebook_size])
        logits = self.out(self.hidden(flat))
        return tf.reshape(logits, [-1, *self.grid, self.codebook_size])

    def distribution(self, model=None):
        def conditionals(codes):
            batch_shape = tf.shape(codes)[: tf.rank(codes) - len(self.grid)]
            logits = tf.reshape(self.logits(codes), tf.concat([batch_shape, [*self.grid, self.codebook_size]], axis=0))
            return tfd.Independent(tfd.Categorical(logits=logits), reinterpreted_batch_ndims=len(self.grid))

        return tfd.Autoregressive(conditionals, sample0=tf.zeros(self.grid, tf.int32), num_steps=self.positions)


CODE_PRIORS = {"categorical": CodePrior, "autoregressive": AutoregressiveCodePrior}
# Strided convolutions give the 7x7 grid of codes of the paper's 28x28 experiments.
DEFAULT_ENCODER = {"name": "conv", "filters": [32, 64]}


@register("vq_vae")
class VQVAE(ZooModel):
    """VQ-VAE (van den Oord et al., 2017): discrete codes from a codebook, straight-through gradients.

    The encoder emits a grid of ``latent_dim``-vectors (7x7 for 28x28 images
    with the conv body); each is replaced by its nearest of ``codebook_size``
    codebook vectors. Gradients pass the quantization straight through. The
    loss is -log p(x|z_q) + ||sg[z_e] - e||^2 (codebook; replaced by an
    exponential-moving-average update when ``ema=True``) + beta ||z_e - sg[e]||^2
    (commitment; ``beta`` is the paper's commitment cost, 0.25) + -log p(codes)
    under a prior over the code grid, trained jointly (it gets no gradient
    into the encoder) so that ``sample`` can generate: ``"autoregressive"`` (a
    MADE over the grid, the default) or ``"categorical"`` (independent positions). With a one-hot posterior, KL(q||p) is exactly
    -log p(codes), which is reported as ``kl``; ``perplexity`` is the effective
    number of codes in use.

    Args:
        data_shape, encoder, decoder, likelihood: as for ``vae``; the encoder emits a
            grid of codes (a conv body keeps the image's layout, an MLP gives ``mlp_positions`` codes).
        latent_dim: the size of a code vector.
        codebook_size: number of codes. beta: commitment cost. prior: the code prior.
        ema, ema_decay: update the codebook by moving averages instead of gradients.
        restart_dead_codes: move unused codes onto encoder outputs.
        mlp_positions: number of codes per example with the MLP body.
    """

    capabilities = frozenset({"elbo", "sample", "discrete_codes", "reconstruct", "latent"})
    retired_arguments = ("free_bits",)
    metric_names = ("loss", "elbo", "reconstruction", "kl", "codebook_loss", "commitment_loss", "perplexity")

    @classmethod
    def spec_arguments(cls):
        return {**super().spec_arguments(), "prior": (CODE_PRIORS, "code prior", ("grid", "codebook_size"))}

    def __init__(self, data_shape=(28, 28, 1), codebook_size=64, latent_dim=16, encoder=DEFAULT_ENCODER, decoder=None,
                 likelihood="bernoulli", beta=0.25,
                 prior="autoregressive", ema=False, ema_decay=0.99, restart_dead_codes=True, mlp_positions=16, **kwargs):
        super().__init__(data_shape=data_shape, **kwargs)
        self.latent_dim = int(latent_dim)
        self.codebook_size = int(codebook_size)
        self.ema = bool(ema)
        self.restart_dead_codes = bool(restart_dead_codes)
        self.ema_decay = float(ema_decay)
        self.mlp_positions = int(mlp_positions)
        if self.codebook_size < 2 or not 0.0 < self.ema_decay < 1.0:
            raise ValueError("codebook_size must be >= 2 and ema_decay in (0, 1)")
        if self.latent_dim < 1 or not float(beta) >= 0:
            raise ValueError(f"latent_dim must be >= 1 and beta >= 0, got {latent_dim!r} and {beta!r}")
        self.grid = networks.grid_shape(encoder, self.data_shape, self.mlp_positions)
        self.likelihood = distributions.make_likelihood(likelihood, event_ndims=len(self.data_shape))
        self.encoder = networks.make_grid_encoder(encoder, self.data_shape, self.grid, self.latent_dim)
        channels = self.likelihood.param_channels(self.data_shape[-1])
        self.decoder = networks.make_grid_decoder(encoder if decoder is None else decoder, self.grid, self.latent_dim,
                                                  self.data_shape, channels)
        self.prior_layer = distributions.resolve(CODE_PRIORS, "code prior", prior, self.grid, self.codebook_size, name="code_prior", dtype="float32")
        # The commitment cost, in the variable that callbacks and tuners set as every model's beta.
        self.kl_weight = self.add_weight(name="kl_weight", shape=(), initializer=keras.initializers.Constant(float(beta)), trainable=False,
                                         aggregation="only_first_replica")  # assigned in the step (KL annealing)
        # Small initial codes (+-1/K, as in the authors' Sonnet module): with codes far from the
        # encoder's first outputs, a few codes win every assignment and the rest never train.
        scale = 1.0 / self.codebook_size
        self.codebook = self.add_weight(
            name="codebook", shape=(self.codebook_size, self.latent_dim), trainable=not self.ema,
            initializer=keras.initializers.RandomUniform(-scale, scale, seed=0), dtype="float32",
        )
        # Running mean (over about ten batches) of how many vectors each code receives. It starts
        # at zero, so with restarts on, the first training step places every code on a real
        # encoder output: a data-dependent initialization.
        self.code_usage = self.add_weight(name="code_usage", shape=(self.codebook_size,), initializer="zeros", trainable=False)
        if self.ema:
            self.ema_counts = self.add_weight(name="ema_counts", shape=(self.codebook_size,), initializer="ones", trainable=False)
            self.ema_sums = self.add_weight(name="ema_sums", shape=(self.codebook_size, self.latent_dim), initializer="zeros", trainable=False)
            self.ema_sums.assign(self.codebook)
        self.built = True

    # ------------------------------------------------------------------ quantization

    def encoded_grid(self, x, training=False):
        """The encoder's continuous output z_e, (batch, *grid, latent_dim), in float32."""
        return tf.cast(self.encoder(self.check_data(x), training=training), tf.float32)

    def decode(self, z_q, y=None, training=False):
        """p(x | z_q) for a grid of code vectors."""
        return self.likelihood(tf.cast(self.decoder(z_q, training=training), tf.float32))

    def prior(self):
        """The prior over code grids."""
        return self.prior_layer.distribution(self)

    def nearest_codes(self, z_e, training=False, seed=None):
        """Nearest codebook vectors and their indices; updates an EMA codebook in training."""
        flat = tf.reshape(z_e, [-1, self.latent_dim])
        distances = (
            tf.reduce_sum(flat**2, axis=1, keepdims=True)
            - 2.0 * tf.matmul(flat, self.codebook, transpose_b=True)
            + tf.reduce_sum(self.codebook**2, axis=1)
        )
        indices = tf.argmin(distances, axis=1, output_type=tf.int32)
        if training:
            self._track_usage(flat, indices, seed)
        z_q = tf.reshape(tf.gather(self.codebook, indices), tf.shape(z_e))
        return z_q, tf.reshape(indices, tf.shape(z_e)[:-1])

    def _track_usage(self, flat, indices, seed=None):
        one_hot = tf.one_hot(indices, self.codebook_size, dtype=flat.dtype)
        self.code_usage.assign(0.9 * self.code_usage + 0.1 * tf.reduce_sum(one_hot, axis=0))
        if self.ema:
            self._ema_update(flat, one_hot)
        if self.restart_dead_codes:
            self._restart_dead_codes(flat, seed)

    def _restart_dead_codes(self, flat, seed=None):
        """Move codes that have gone unused onto random encoder outputs of this batch.

        A dead code gets no codebook gradient and no EMA update, so it would stay
        dead for ever; restarting it where the data are puts it back in play
        (Dhariwal et al., 2020, Jukebox, "random restarts").
        """
        dead = self.code_usage < 0.01
        # Keyed by the step's seed, so that a resumed run restarts the same codes.
        uniform = tf.random.uniform([self.codebook_size]) if seed is None else tf.random.stateless_uniform(
            [self.codebook_size], seed=distributions.stateless_seed(seed))
        picks = tf.cast(uniform * tf.cast(tf.shape(flat)[0], tf.float32), tf.int32)
        restarted = tf.stop_gradient(tf.gather(flat, picks))
        self.codebook.assign(tf.where(dead[:, None], restarted, self.codebook))
        self.code_usage.assign(tf.where(dead, tf.ones_like(self.code_usage), self.code_usage))
        if self.ema:
            self.ema_sums.assign(tf.where(dead[:, None], restarted, self.ema_sums))
            self.ema_counts.assign(tf.where(dead, tf.ones_like(self.ema_counts), self.ema_counts))

    def _ema_update(self, flat, one_hot):
        decay = self.ema_decay
        self.ema_counts.assign(decay * self.ema_counts + (1 - decay) * tf.reduce_sum(one_hot, axis=0))
        self.ema_sums.assign(decay * self.ema_sums + (1 - decay) * tf.matmul(one_hot, flat, transpose_a=True))
        # Laplace smoothing keeps unused codes from dividing by zero.
        total = tf.reduce_sum(self.ema_counts)
        counts = (self.ema_counts + 1e-5) / (total + self.codebook_size * 1e-5) * total
        self.codebook.assign(self.ema_sums / counts[:, None])

    def encode_indices(self, x, y=None):
        """The code index at every grid position, (batch, *grid)."""
        return self.nearest_codes(self.encoded_grid(x))[1]

    # ------------------------------------------------------------------ the contract

    def encode(self, x, y=None, training=False):
        """The posterior: a point mass on the quantized grid z_q (batch, *grid, latent_dim)."""
        z_q, _ = self.nearest_codes(self.encoded_grid(x, training))
        return tfd.Independent(tfd.Deterministic(z_q), reinterpreted_batch_ndims=len(self.grid) + 1)

    def loss_terms(self, x, y=None, training=False, seed=None):
        x = self.check_data(x)
        z_e = self.encoded_grid(x, training)
        z_q, indices = self.nearest_codes(z_e, training=training, seed=seed)
        straight_through = z_e + tf.stop_gradient(z_q - z_e)
        reconstruction = -self.decode(straight_through, y, training=training).log_prob(x)
        axes = list(range(1, len(self.grid) + 2))
        codebook_loss = tf.reduce_sum((tf.stop_gradient(z_e) - z_q) ** 2, axis=axes)
        commitment_loss = tf.reduce_sum((z_e - tf.stop_gradient(z_q)) ** 2, axis=axes)
        code_nll = -self.prior().log_prob(indices)
        usage = tf.reduce_mean(tf.one_hot(tf.reshape(indices, [-1]), self.codebook_size), axis=0)
        perplexity = tf.exp(-tf.reduce_sum(usage * tf.math.log(usage + 1e-10)))
        loss = reconstruction + self.kl_weight * commitment_loss + code_nll
        if not self.ema:
            loss += codebook_loss
        return {
            "loss": loss,
            "elbo": -(reconstruction + code_nll),
            "reconstruction": reconstruction,
            "kl": code_nll,
            "codebook_loss": codebook_loss,
            "commitment_loss": commitment_loss,
            "perplexity": tf.fill(tf.shape(loss), perplexity),
        }

    def log_weight_terms(self, x, y=None, k=1, seed=None, training=False):
        # q is a point mass, so every draw is the same code grid and log q = 0: each weight is the ELBO.
        z_q, indices = self.nearest_codes(self.encoded_grid(x, training))
        log_likelihood = self.decode(z_q, y, training=training).log_prob(self.check_data(x))
        log_prior = self.prior().log_prob(indices)
        tile = lambda t: tf.repeat(t[None], k, axis=0)
        return tile(log_likelihood), tile(log_prior), tf.zeros_like(tile(log_prior))

    def log_weights(self, x, y=None, k=1, seed=None):
        return objectives.importance_log_weights(*self.log_weight_terms(x, y, k, seed))

    def elbo(self, inputs, num_samples=1):
        """Per-example ELBO: -log p(x|z_q) - (-log p(codes)); exact, as q is a point mass."""
        x, y = self.split_inputs(inputs)
        return self.loss_terms(x, y)["elbo"]

    def reconstruction(self, x, y=None, training=False):
        """The mean of p(x | z_q) at the quantized code grid of x."""
        z_q, _ = self.nearest_codes(self.encoded_grid(x, training))  # the posterior's point mass, without TFP's broadcasting
        return self.decode(z_q, y, training=training).mean()

    def encoded_outputs(self, x, y=None):
        return {"codes": self.encode_indices(x, y)}

    def decoder_input_spec(self):
        return tf.TensorSpec([None, *self.grid], tf.int32, name="codes")

    def decoded_mean(self, codes, y=None):
        """The mean of p(x | z_q) for a grid of code indices."""
        codes = tf.convert_to_tensor(codes)
        tf.debugging.assert_less(codes, self.codebook_size, message="vq_vae codes must be < codebook_size")
        tf.debugging.assert_non_negative(codes, message="vq_vae codes must be >= 0")
        return self.decode(tf.gather(self.codebook, codes)).mean()

    def transform(self, inputs):
        """The quantized code grid, flattened: (batch, grid positions * latent_dim)."""
        x, y = self.split_inputs(inputs)
        z_q = self.encode(x, y).mean()
        return tf.reshape(z_q, [tf.shape(z_q)[0], -1])

    def sample(self, n, seed=None, labels=None):
        """Code grids drawn from the learned prior, decoded to the likelihood mean."""
        return self.decoded_mean(self.prior().sample(n, seed=seed))
