"""The Gaussian-latent Variational Autoencoder, and the base of the variants that keep its latent space.

A VAE is defined by three distributions:

* ``encode(x, y=None)`` -> q(z|x), the approximate posterior,
* ``decode(z, y=None)`` -> p(x|z), the likelihood,
* ``prior()``           -> p(z).

(``y`` is the label, used only by conditional variants.) The ELBO, the
importance weights, sampling and reconstruction are written
once here on top of those three, so a variant overrides only what makes it
different.

Public methods take ``inputs``: the images, or ``(images, labels)`` for a
conditional variant.
"""

import keras
import tensorflow as tf

from vae_zoo import networks
from vae_zoo.models import corruption, distributions
from vae_zoo.models.base import ZooModel
from vae_zoo.models.objectives import flatten_samples, repeat_batch
from vae_zoo.registry import register

# The seed's encoder: 784-400-400, ReLU.
DEFAULT_ENCODER = {"name": "mlp", "hidden_sizes": [400, 400]}


@register("vae")
class VAE(ZooModel):
    """Variational autoencoder with a Gaussian posterior, trained on the ELBO (Kingma & Welling, 2013).

    Args:
        data_shape: shape of one example, e.g. ``(28, 28, 1)``.
        latent_dim: number of latent dimensions.
        encoder: the encoder body, a network spec: a name or a dict with ``name`` and
            options, e.g. ``{"name": "mlp", "hidden_sizes": [400, 400]}`` or
            ``{"name": "conv", "filters": [32, 64]}`` (``vae_zoo.networks``).
        decoder: the decoder body's spec; None mirrors the encoder's.
        likelihood: ``"bernoulli"``, ``"gaussian"`` (learned per-pixel variance) or
            ``"gaussian_fixed"``; a name or a dict with ``name`` and options.
        prior: ``"normal"``, ``"mixture"`` or ``"vamp"``; a name or a dict with ``name`` and options.
        beta: initial weight of the KL term in the loss (1 is the plain ELBO). It is
            held in the non-trainable variable ``kl_weight`` so that callbacks and
            tuners can change it during training.
        free_bits: kappa in nats; each latent dimension's KL enters the loss as at
            least kappa (Kingma et al., 2016), so the optimizer gains nothing by
            pushing it lower. 0 turns it off.
        log_variance_range: ``[low, high]`` bounds on the posterior's log-variance (a hard tanh,
            as in the VampPrior code base of Tomczak and Welling, 2018: ``[-6, 2]``); None leaves
            it unbounded.
        encoder_masks, encoder_mask_width, encoder_shift: in training, the encoder sees each
            example with ``encoder_masks`` bands of up to ``encoder_mask_width`` zeros across
            each of its first two axes and moved by up to ``encoder_shift`` places along the
            first, while the likelihood scores the clean example (the denoising criterion with
            SpecAugment's masks; ``vae_zoo.models.corruption``). 0 turns each off.
    """

    capabilities = frozenset({"elbo", "sample", "gaussian_posterior", "reconstruct"})
    # Per-example quantities reported as metrics by fit() and evaluate().
    metric_names = ("loss", "elbo", "reconstruction", "kl")

    def __init__(
        self,
        data_shape=(28, 28, 1),
        latent_dim=20,
        encoder=DEFAULT_ENCODER,
        decoder=None,
        likelihood="bernoulli",
        prior="normal",
        beta=1.0,
        free_bits=0.0,
        log_variance_range=None,
        encoder_masks=0,
        encoder_mask_width=8,
        encoder_shift=0,
        **kwargs,
    ):
        super().__init__(data_shape=data_shape, **kwargs)
        self.latent_dim = int(latent_dim)
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
        if not float(beta) >= 0:
            raise ValueError(f"beta must be >= 0, got {beta!r}")
        if not float(free_bits) >= 0:
            raise ValueError(f"free_bits must be >= 0 nats, got {free_bits!r}")
        self.free_bits = float(free_bits)
        self.log_variance_range = None if log_variance_range is None else tuple(float(v) for v in log_variance_range)
        if self.log_variance_range and not (len(self.log_variance_range) == 2
                                            and self.log_variance_range[0] < self.log_variance_range[1]):
            raise ValueError(f"log_variance_range must be [low, high] with low < high, got {log_variance_range!r}")
        if self.log_variance_range and type(self).encode is not VAE.encode:
            raise ValueError(f"{self.registered_name} has a posterior of its own: log_variance_range bounds the VAE's")
        self.encoder_masks, self.encoder_mask_width, self.encoder_shift = (
            int(encoder_masks), int(encoder_mask_width), int(encoder_shift))
        if min(self.encoder_masks, self.encoder_shift) < 0 or self.encoder_mask_width < 1:
            raise ValueError("encoder_masks and encoder_shift must be >= 0 and encoder_mask_width >= 1, got "
                             f"{encoder_masks!r}, {encoder_shift!r} and {encoder_mask_width!r}")
        if (self.encoder_masks or self.encoder_shift) and type(self).loss_terms is not VAE.loss_terms:
            raise ValueError(f"{self.registered_name} trains on an objective of its own, which does not corrupt the "
                             "encoder's input: encoder_masks and encoder_shift are for the VAE's ELBO")
        self.encoder_spec = encoder
        self.decoder_spec = encoder if decoder is None else decoder
        self.likelihood = self.make_likelihood(likelihood)
        self.encoder = self.make_encoder()
        self.decoder = self.make_decoder()
        self.prior_layer = self.make_prior(prior)
        if self.free_bits and not self.prior_factorizes:
            raise ValueError(f"free_bits needs a prior that factorizes over dimensions (normal), not {prior!r}")
        self.kl_weight = self.add_weight(
            name="kl_weight", shape=(), initializer=keras.initializers.Constant(float(beta)), trainable=False,
            aggregation="only_first_replica",  # assigned inside the step (KL annealing), on every replica alike
        )
        # Every sub-network is built above, so the model owns its weights from the start.
        self.built = True

    # ------------------------------------------------------------------ networks

    def encoder_input_shape(self):
        return self.data_shape

    def decoder_input_dim(self):
        return self.latent_dim

    def make_likelihood(self, likelihood):
        """The likelihood p(x|z) from its spec, over one example of ``data_shape``."""
        return distributions.make_likelihood(likelihood, event_ndims=len(self.data_shape))

    def make_encoder(self):
        """The encoder body: data -> the parameters of q(z|x) (here a mean and a log-variance)."""
        return networks.make_encoder(self.encoder_spec, self.encoder_input_shape(), 2 * self.latent_dim)

    def make_decoder(self):
        """The decoder body: z -> the parameters of p(x|z)."""
        channels = self.data_shape[-1] * self.likelihood.params_per_channel
        return networks.make_decoder(self.decoder_spec, self.decoder_input_dim(), self.data_shape, channels)

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
        h = tf.cast(self.encoder(self.encoder_inputs(x, y), training=training), tf.float32)
        mean, log_variance = tf.split(h, 2, axis=-1)
        if self.log_variance_range:
            log_variance = tf.clip_by_value(log_variance, *self.log_variance_range)
        return distributions.diagonal_gaussian(mean, log_variance)

    def decode(self, z, y=None, training=False):
        """The likelihood p(x|z) with event shape ``data_shape``."""
        return self.likelihood(self.decoder_params(z, y, training=training))

    def decoder_params(self, z, y=None, training=False):
        """The decoder's raw output, the parameters of p(x|z)."""
        # Distributions are computed in float32, whatever the layers' mixed-precision policy.
        return tf.cast(self.decoder(self.decoder_inputs(z, y), training=training), tf.float32)

    def prior(self):
        """The prior p(z)."""
        return self.prior_layer.distribution(self)

    def top_posterior(self, x):
        """q(z | x) of the latent the prior is on (a hierarchy's top one): a VampPrior's components, at its pseudo-inputs."""
        return self.encode(x)

    # ------------------------------------------------------------------ the objective

    def data_log_prob(self, z, x, y=None, training=False, seed=None):
        """log p(x|z) per example (``seed`` keys any noise the decoder itself draws in training)."""
        if training:
            return self.decode(z, y, training=True).log_prob(x)
        # Outside training nothing needs its gradient: the likelihood's faster form of the same value.
        return self.likelihood.evaluation_log_prob(self.decoder_params(z, y), x)

    def kl_per_dimension(self, q, p):
        """KL(q || p) of each latent dimension, shape (batch, latent_dim); both must factorize."""
        return tf.convert_to_tensor(distributions.tfd.kl_divergence(q.distribution, p.distribution))

    @property
    def prior_factorizes(self):
        """Whether p(z) is a product over dimensions, so that the KL splits into one term per dimension
        (a mixture or VampPrior does not)."""
        return bool(getattr(self.prior_layer, "factorized", False))

    def kl_by_dimension(self, x, y=None):
        """Per-example KL of every latent dimension, (batch, dims), or None if p(z) does not factorize."""
        if not self.prior_factorizes:
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
        q = self.encode(self.encoder_view(x, seed) if training else x, y, training=training)
        z = distributions.reparameterized_sample(q, seed=seed)
        reconstruction = -self.data_log_prob(z, x, y, training=training, seed=seed)
        p = self.prior()
        kl = distributions.kl_divergence(q, p, z)
        return {
            "loss": reconstruction + self.kl_weight * self.kl_penalty(kl, q, p, z),
            "elbo": -(reconstruction + kl),
            "reconstruction": reconstruction,
            "kl": kl,
        }

    def encoder_view(self, x, seed=None):
        """What the encoder sees of ``x`` in training: ``x`` itself, or corrupted (``encoder_masks``, ``encoder_shift``)."""
        if not (self.encoder_masks or self.encoder_shift):
            return x
        return corruption.corrupt(self.check_data(x), self.encoder_masks, self.encoder_mask_width, self.encoder_shift, seed)

    def log_weight_terms(self, x, y=None, k=1, seed=None, training=False):
        """log p(x|z_i), log p(z_i) and log q(z_i|x) for k draws z_i ~ q(z|x); each (k, batch)."""
        q = self.encode(x, y, training=training)
        z, log_posterior = distributions.reparameterized_draw(q, [k], seed=seed)
        return self.draws_log_prob(z, self.check_data(x), y, training=training), self.prior().log_prob(z), log_posterior

    def draws_log_prob(self, z, x, y=None, training=False):
        """log p(x | z_i) of every example under each of its draws: z (k, batch, latent), x (batch, ...) -> (k, batch)."""
        if training:
            return self.repeated_draws_log_prob(z, x, y, training=True)
        # Nothing needs a gradient: all k x batch draws decode in one pass, and x broadcasts over the draws inside
        # the likelihood instead of being repeated k times in memory (at k = 500 on MNIST, 157 MB a call).
        params = self.decoder_params(flatten_samples(z), None if y is None else repeat_batch(y, tf.shape(z)[0]))
        params = tf.reshape(params, tf.concat([tf.shape(z)[:2], tf.shape(params)[1:]], axis=0))
        return self.likelihood.evaluation_log_prob(params, x)

    def repeated_draws_log_prob(self, z, x, y=None, training=False):
        """``draws_log_prob`` through ``data_log_prob``, with x (and y) repeated to one row a draw."""
        k = tf.shape(z)[0]
        labels = None if y is None else repeat_batch(y, k)
        log_likelihood = self.data_log_prob(flatten_samples(z), repeat_batch(x, k), labels, training=training)
        return tf.reshape(log_likelihood, tf.shape(z)[:2])

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
