"""The base Variational Autoencoder; every variant in the zoo derives from it.

A model is defined by three distributions (the contract every variant keeps):

* ``encode(x, y=None)`` -> q(z|x), the approximate posterior,
* ``decode(z, y=None)`` -> p(x|z), the likelihood,
* ``prior()``           -> p(z).

(``y`` is the label, used only by conditional variants.) The ELBO, the
importance weights, the training step, sampling and reconstruction are written
once here on top of those three, so a variant overrides only what makes it
different.

Public methods take ``inputs``: the images, or ``(images, labels)`` for a
conditional variant.
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp

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
        prior: ``"normal"``, ``"mixture"`` or ``"vamp"``; a name or a dict with ``name`` and options.
        beta: initial weight of the KL term in the loss (1 is the plain ELBO). It is
            held in the non-trainable variable ``kl_weight`` so that callbacks and
            tuners can change it during training.
        free_bits: kappa in nats; each latent dimension's KL enters the loss as at
            least kappa (Kingma et al., 2016), so the optimizer gains nothing by
            pushing it lower. 0 turns it off.
    """

    # Per-example quantities reported as metrics by fit() and evaluate().
    metric_names = ("loss", "elbo", "reconstruction", "kl")
    # Conditional variants take (images, labels).
    needs_labels = False
    # Whether the model defines an ELBO and can generate from a prior.
    has_elbo = True
    generative = True

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
        free_bits=0.0,
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
        if not float(free_bits) >= 0:
            raise ValueError(f"free_bits must be >= 0 nats, got {free_bits!r}")
        self.free_bits = float(free_bits)
        self.network = network
        self.network_options = dict(
            hidden_sizes=hidden_sizes, activation=activation, batch_norm=batch_norm, conv_filters=conv_filters
        )
        self.likelihood = distributions.make_likelihood(likelihood, event_ndims=len(self.data_shape))
        self.encoder = self.make_encoder()
        self.decoder = self.make_decoder()
        self.prior_layer = self.make_prior(prior)
        if self.free_bits and not getattr(self.prior_layer, "factorized", False):
            raise ValueError(f"free_bits needs a prior that factorizes over dimensions (normal), not {prior!r}")
        self.kl_weight = self.add_weight(
            name="kl_weight", shape=(), initializer=keras.initializers.Constant(float(beta)), trainable=False
        )
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names}
        # Every sub-network is built above, so the model owns its weights from the start.
        self.built = True

    # ------------------------------------------------------------------ networks

    def encoder_input_shape(self):
        return self.data_shape

    def decoder_input_dim(self):
        return self.latent_dim

    def make_encoder(self):
        """The encoder body: data -> the parameters of q(z|x) (here a mean and a log-variance)."""
        return make_encoder(self.network, self.encoder_input_shape(), 2 * self.latent_dim, **self.network_options)

    def make_decoder(self):
        """The decoder body: z -> the parameters of p(x|z)."""
        channels = self.data_shape[-1] * self.likelihood.params_per_channel
        return make_decoder(self.network, self.decoder_input_dim(), self.data_shape, channels, **self.network_options)

    def make_prior(self, prior):
        """The prior layer, from the ``prior`` spec."""
        return distributions.make_prior(prior, self.latent_dim, data_shape=self.data_shape)

    # ------------------------------------------------------------------ the three distributions

    def encoder_inputs(self, x, y=None):
        """What the encoder network sees: the checked data (conditional variants add the label)."""
        return self.check_data(x)

    def decoder_inputs(self, z, y=None):
        """What the decoder network sees: z (conditional variants add the label)."""
        return z

    def encode(self, x, y=None, training=False):
        """The approximate posterior q(z|x), a diagonal Gaussian (the seed's mean and log-variance heads)."""
        h = self.encoder(self.encoder_inputs(x, y), training=training)
        mean, log_variance = tf.split(h, 2, axis=-1)
        return distributions.diagonal_gaussian(mean, log_variance)

    def decode(self, z, y=None, training=False):
        """The likelihood p(x|z) with event shape ``data_shape``."""
        return self.likelihood(self.decoder(self.decoder_inputs(z, y), training=training))

    def prior(self):
        """The prior p(z)."""
        return self.prior_layer.distribution(self)

    # ------------------------------------------------------------------ the objective

    def kl_per_dimension(self, q, p):
        """KL(q || p) of each latent dimension, shape (batch, latent_dim); both must factorize."""
        return tf.convert_to_tensor(distributions.tfd.kl_divergence(q.distribution, p.distribution))

    def kl_by_dimension(self, x, y=None):
        """Per-example KL of every latent dimension, (batch, dims), or None if p(z) does not factorize."""
        if not getattr(self.prior_layer, "factorized", False):
            return None
        return self.kl_per_dimension(self.encode(x, y), self.prior())

    def free_bits_penalty(self, per_dimension):
        """Free bits (Kingma et al., 2016, eq. 15): each dimension's batch-mean KL counts as at least kappa.

        Dimensions whose batch-mean KL is under kappa contribute kappa and no
        gradient; the others their own KL. Returns the per-example penalty.
        """
        above = tf.reduce_mean(per_dimension, axis=0) > self.free_bits
        return tf.reduce_sum(tf.where(above, per_dimension, self.free_bits), axis=-1)

    def kl_penalty(self, kl, q, p, z):
        """The KL term that enters the loss: ``kl`` itself, or with free bits per dimension."""
        if not self.free_bits:
            return kl
        return self.free_bits_penalty(self.kl_per_dimension(q, p))

    def loss_terms(self, x, y=None, training=False, seed=None):
        """Per-example tensors: ``loss`` (what is minimised), ``elbo``, ``reconstruction``, ``kl``.

        ``reconstruction`` is -log p(x|z) for one reparameterized sample
        z = mean + sigma * eps (so gradients flow to the encoder), ``kl`` is KL(q(z|x) || p(z)) in nats: in closed form where
        it has one, else estimated at the same z.
        """
        q = self.encode(x, y, training=training)
        z = distributions.reparameterized_sample(q, seed=seed)
        reconstruction = -self.decode(z, y, training=training).log_prob(x)
        p = self.prior()
        kl = distributions.kl_divergence(q, p, z)
        return {
            "loss": reconstruction + self.kl_weight * self.kl_penalty(kl, q, p, z),
            "elbo": -(reconstruction + kl),
            "reconstruction": reconstruction,
            "kl": kl,
        }

    def log_weight_terms(self, x, y=None, k=1, seed=None, training=False):
        """log p(x|z_i), log p(z_i) and log q(z_i|x) for k draws z_i ~ q(z|x); each (k, batch)."""
        q = self.encode(x, y, training=training)
        z = distributions.reparameterized_sample(q, [k], seed=seed)
        labels = None if y is None else repeat_batch(y, k)
        x = repeat_batch(self.check_data(x), k)
        log_likelihood = self.decode(flatten_samples(z), labels, training=training).log_prob(x)
        return tf.reshape(log_likelihood, tf.shape(z)[:2]), self.prior().log_prob(z), q.log_prob(z)

    def log_weights(self, x, y=None, k=1, seed=None):
        """log p(x, z_i) - log q(z_i | x) for k draws z_i ~ q(z|x); shape (k, batch).

        Their mean is an unbiased ELBO estimate; their log-mean-exp is the
        importance-weighted bound of Burda et al. (2015), which tends to log p(x).
        """
        log_likelihood, log_prior, log_posterior = self.log_weight_terms(x, y, k, seed)
        return log_likelihood + log_prior - log_posterior

    def elbo(self, inputs, num_samples=1):
        """Per-example ELBO = E_q[log p(x|z)] - KL(q||p), averaged over ``num_samples`` draws of z."""
        x, y = self.split_inputs(inputs)
        total = 0.0
        for _ in range(int(num_samples)):
            total += self.loss_terms(x, y)["elbo"]
        return total / int(num_samples)

    # ------------------------------------------------------------------ using a trained model

    def reconstruction(self, x, y=None, training=False):
        """The mean of p(x|z) at the posterior mean of z."""
        return self.decode(self.encode(x, y, training=training).mean(), y, training=training).mean()

    def call(self, inputs, training=False):
        """Reconstruction: the mean of p(x|z) at the posterior mean of z."""
        x, y = self.split_inputs(inputs)
        return self.reconstruction(x, y, training=training)

    def reconstruct(self, inputs):
        return self(inputs)

    def transform(self, inputs):
        """Latent codes (the posterior mean), for dimensionality reduction."""
        x, y = self.split_inputs(inputs)
        return self.encode(x, y).mean()

    def encoded_outputs(self, x, y=None):
        """What the ``encode`` serving signature returns: the posterior's mean and standard deviation."""
        q = self.encode(x, y)
        return {"mean": q.mean(), "stddev": q.stddev()}

    def decoder_input_spec(self):
        """The latent input of the ``decode`` serving signature."""
        return tf.TensorSpec([None, self.latent_dim], tf.float32, name="z")

    def decoded_mean(self, z, y=None):
        """The mean of p(x|z): what the ``decode`` serving signature returns."""
        return self.decode(z, y).mean()

    def sample(self, n, seed=None, labels=None):
        """``n`` new examples: z ~ p(z), then the mean of p(x|z)."""
        return self.decode(self.prior().sample(n, seed=seed)).mean()

    # ------------------------------------------------------------------ input checks

    def split_inputs(self, inputs):
        """``(x, y)`` from a conditional model's inputs, ``(x, None)`` from anyone else's."""
        if isinstance(inputs, (tuple, list)) and len(inputs) == 2 and not self.needs_labels:
            raise InputError(f"{self.registered_name} is not conditional: pass images only, not (images, labels)")
        return inputs, None

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
        # beta is logged so that annealing schedules show in the progress bar and TensorBoard.
        return {**self._update_metrics(terms, loss, sample_weight), "beta": tf.identity(self.kl_weight)}

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
