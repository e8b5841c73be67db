"""The base Variational Autoencoder; every variant in the zoo derives from it.

A model is defined by three distributions (the contract every variant keeps):

* ``encode(x)`` -> q(z|x), the approximate posterior,
* ``decode(z)`` -> p(x|z), the likelihood,
* ``prior()``   -> p(z).

The ELBO, the training step, sampling and reconstruction are written once here
on top of those three, so a variant overrides only what makes it different.
"""

import keras
import tensorflow as tf

from vae_zoo import distributions
from vae_zoo.errors import InputError
from vae_zoo.networks import make_decoder, make_encoder
from vae_zoo.registry import bound_hyperparameters, hyperparameter_defaults, register


def _to_json(value):
    """Tuples become lists so that a config equals its own JSON round trip."""
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_json(v) for k, v in value.items()}
    return value


@register("vae")
class VAE(keras.Model):
    """Variational autoencoder with a Gaussian posterior, trained on the ELBO (Kingma & Welling, 2013).

    Args:
        data_shape: shape of one example, e.g. ``(28, 28, 1)``.
        latent_dim: number of latent dimensions.
        network: ``"mlp"`` or ``"conv"`` encoder/decoder bodies.
        hidden_sizes: widths of the encoder's hidden dense layers (the decoder mirrors them).
        conv_filters: filters of the stride-2 conv layers (``network="conv"`` only).
        activation: activation of hidden layers.
        batch_norm: batch normalization after each hidden layer.
        likelihood: ``"bernoulli"``, ``"gaussian"`` (learned per-pixel variance) or
            ``"gaussian_fixed"``; a name or a dict with ``name`` and options.
        prior: ``"normal"`` or ``"mixture"``; a name or a dict with ``name`` and options.
        beta: initial weight of the KL term in the loss (1 is the plain ELBO). It is
            held in the non-trainable variable ``kl_weight`` so that callbacks and
            tuners can change it during training.
    """

    # Per-example quantities reported as metrics by fit() and evaluate().
    metric_names = ("loss", "elbo", "reconstruction", "kl")

    def __new__(cls, *args, **kwargs):
        # __new__ sees exactly the arguments of the outermost constructor call, which
        # is what get_config() must return, whatever chain of super().__init__ follows.
        instance = super().__new__(cls, *args, **kwargs)
        object.__setattr__(instance, "_hyperparameters", bound_hyperparameters(cls, args, kwargs))
        return instance

    def __init__(
        self,
        data_shape=(28, 28, 1),
        latent_dim=20,
        network="mlp",
        hidden_sizes=(400, 400),
        conv_filters=(32, 64),
        activation="relu",
        batch_norm=False,
        likelihood="bernoulli",
        prior="normal",
        beta=1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.data_shape = tuple(int(d) for d in data_shape)
        self.latent_dim = int(latent_dim)
        if not self.data_shape or min(self.data_shape) < 1:
            raise ValueError(f"data_shape must be a non-empty tuple of positive sizes, got {data_shape!r}")
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
        if not float(beta) >= 0:
            raise ValueError(f"beta must be >= 0, got {beta!r}")
        self.network_options = dict(
            hidden_sizes=hidden_sizes, activation=activation, batch_norm=batch_norm, conv_filters=conv_filters
        )
        self.network = network
        self.likelihood = distributions.make_likelihood(likelihood, event_ndims=len(self.data_shape))
        self.encoder = self.make_encoder()
        self.decoder = self.make_decoder()
        self.prior_layer = distributions.make_prior(prior, self.latent_dim)
        self.kl_weight = self.add_weight(
            name="kl_weight", shape=(), initializer=keras.initializers.Constant(float(beta)), trainable=False
        )
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names}
        # Every sub-network is built above, so the model owns its weights from the start.
        self.built = True

    # ------------------------------------------------------------------ networks

    def make_encoder(self):
        """The encoder body: data -> the parameters of q(z|x) (here a mean and a log-variance)."""
        return make_encoder(self.network, self.data_shape, 2 * self.latent_dim, **self.network_options)

    def make_decoder(self):
        """The decoder body: z -> the parameters of p(x|z)."""
        channels = self.data_shape[-1] * self.likelihood.params_per_channel
        return make_decoder(self.network, self.latent_dim, self.data_shape, channels, **self.network_options)

    # ------------------------------------------------------------------ the three distributions

    def encode(self, x, training=False):
        """The approximate posterior q(z|x), a diagonal Gaussian (the seed's mean and log-variance heads)."""
        h = self.encoder(self.check_data(x), training=training)
        mean, log_variance = tf.split(h, 2, axis=-1)
        return distributions.diagonal_gaussian(mean, log_variance)

    def decode(self, z, training=False):
        """The likelihood p(x|z) with event shape ``data_shape``."""
        return self.likelihood(self.decoder(z, training=training))

    def prior(self):
        """The prior p(z)."""
        return self.prior_layer.distribution()

    # ------------------------------------------------------------------ the objective

    def kl_penalty(self, kl, q, p, z):
        """The KL term that enters the loss; the plain ELBO uses ``kl`` itself (free bits change it)."""
        return kl

    def loss_terms(self, x, y=None, training=False):
        """Per-example tensors: ``loss`` (what is minimised), ``elbo``, ``reconstruction``, ``kl``.

        ``reconstruction`` is -log p(x|z) for one reparameterized sample
        z = mean + sigma * eps (TFP's Normal samples that way, so gradients flow
        to the encoder), ``kl`` is KL(q(z|x) || p(z)) in nats.
        """
        q = self.encode(x, training=training)
        z = q.sample()
        reconstruction = -self.decode(z, training=training).log_prob(x)
        p = self.prior()
        kl = distributions.kl_divergence(q, p, z)
        return {
            "loss": reconstruction + self.kl_weight * self.kl_penalty(kl, q, p, z),
            "elbo": -(reconstruction + kl),
            "reconstruction": reconstruction,
            "kl": kl,
        }

    def elbo(self, x, num_samples=1):
        """Per-example ELBO = E_q[log p(x|z)] - KL(q||p), averaged over ``num_samples`` draws of z."""
        total = 0.0
        for _ in range(int(num_samples)):
            total += self.loss_terms(x)["elbo"]
        return total / int(num_samples)

    # ------------------------------------------------------------------ using a trained model

    def call(self, x, training=False):
        """Reconstruction: the mean of p(x|z) at the posterior mean of z."""
        return self.decode(self.encode(x, training=training).mean(), training=training).mean()

    def reconstruct(self, x):
        return self(x)

    def transform(self, x):
        """Latent codes (the posterior mean), for dimensionality reduction."""
        return self.encode(x).mean()

    def sample(self, n, seed=None):
        """``n`` new examples: z ~ p(z), then the mean of p(x|z)."""
        z = self.prior().sample(int(n), seed=seed)
        return self.decode(z).mean()

    # ------------------------------------------------------------------ input checks

    def check_data(self, x):
        """Convert ``x`` to a float tensor of shape (batch, *data_shape), or raise a clear error."""
        x = tf.convert_to_tensor(x)
        if not x.dtype.is_floating:
            raise InputError(
                f"{self.registered_name} expects float pixels in [0, 1], got dtype {x.dtype.name}"
                + (" (divide uint8 images by 255)" if x.dtype == tf.uint8 else "")
            )
        shape = tuple(x.shape)
        if len(shape) != len(self.data_shape) + 1 or any(
            s is not None and s != d for s, d in zip(shape[1:], self.data_shape)
        ):
            got = ", ".join("None" if s is None else str(s) for s in shape)
            raise InputError(
                f"{self.registered_name} expects inputs of shape (batch, {', '.join(map(str, self.data_shape))}), got ({got})"
            )
        if tf.executing_eagerly() and not bool(tf.reduce_all(tf.math.is_finite(x))):
            raise InputError(f"{self.registered_name} got input containing NaN or infinity")
        return tf.cast(x, self.compute_dtype)

    # ------------------------------------------------------------------ training with model.fit

    def compile(self, optimizer="adam", jit_compile=True, **kwargs):
        """Like ``keras.Model.compile``, with Adam and XLA by default. The loss is the model's own."""
        if kwargs.get("loss") is not None:
            raise ValueError(f"{self.registered_name} trains on its own loss (the negative ELBO); do not pass loss=")
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _update_metrics(self, terms, total_loss, sample_weight):
        # The loss is a batch mean: weight it by the batch's examples so that, like the
        # per-example metrics, it averages over examples rather than over batches.
        examples = tf.reduce_sum(sample_weight) if sample_weight is not None else tf.shape(terms["loss"])[0]
        for name, tracker in self.trackers.items():
            if name == "loss":
                tracker.update_state(total_loss, sample_weight=tf.cast(examples, total_loss.dtype))
            elif name in terms:
                tracker.update_state(terms[name], sample_weight=sample_weight)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def _total_loss(self, terms, sample_weight):
        per_example = terms["loss"]
        if sample_weight is None:
            loss = tf.reduce_mean(per_example)
        else:
            weight = tf.cast(tf.reshape(sample_weight, tf.shape(per_example)), per_example.dtype)
            loss = tf.reduce_sum(per_example * weight) / tf.maximum(tf.reduce_sum(weight), 1e-12)
        if self.losses:
            loss += tf.add_n(self.losses)
        return loss

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            terms = self.loss_terms(x, y, training=True)
            loss = self._total_loss(terms, sample_weight)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._update_metrics(terms, loss, sample_weight)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        terms = self.loss_terms(x, y, training=False)
        return self._update_metrics(terms, self._total_loss(terms, sample_weight), sample_weight)

    # ------------------------------------------------------------------ config

    def get_config(self):
        """Exactly the constructor's keyword arguments (plus the Keras name), as JSON values."""
        params = {**hyperparameter_defaults(type(self)), **self._hyperparameters}
        return _to_json({"name": self.name, **params})

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def build_from_config(self, config):
        # Built in __init__ already; nothing to do when Keras loads a .keras file.
        pass
