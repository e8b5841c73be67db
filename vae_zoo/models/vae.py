"""The Gaussian-latent Variational Autoencoder, and the base of the variants that keep its latent space.

A VAE is defined by three distributions:

* ``encode(x, y=None)`` -> q(z|x), the approximate posterior,
* ``decode(z, y=None)`` -> p(x|z), the likelihood,
* ``prior()``           -> p(z).

(``y`` is the label, used only by conditional variants.) The ELBO and the
importance weights are composed from those three by ``LatentVariableModel``
(``vae_zoo.models.latent``) with the functions of ``vae_zoo.models.objectives``;
this class adds the networks from specs, the likelihood over pixels or
features, and what is particular to it (a bounded log-variance, a corrupted
encoder input). A variant overrides only what makes it different.

Public methods take ``inputs``: the images, or ``(images, labels)`` for a
conditional variant.
"""

import tensorflow as tf

from vae_zoo import networks
from vae_zoo.models import corruption, distributions
from vae_zoo.models.latent import LatentVariableModel
from vae_zoo.models.objectives import flatten_samples, repeat_batch
from vae_zoo.registry import register

# The seed's encoder: 784-400-400, ReLU.
DEFAULT_ENCODER = {"name": "mlp", "hidden_sizes": [400, 400]}


@register("vae")
class VAE(LatentVariableModel):
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
        prior, beta, free_bits: as for every latent-variable model (``LatentVariableModel``):
            the prior's spec, the initial KL weight (held in ``kl_weight``), and kappa of free bits.
        log_variance_range: ``[low, high]`` bounds on the posterior's log-variance (a hard tanh,
            as in the VampPrior code base of Tomczak and Welling, 2018: ``[-6, 2]``); None leaves
            it unbounded.
        encoder_masks, encoder_mask_width, encoder_shift: in training, the encoder sees each
            example with ``encoder_masks`` bands of up to ``encoder_mask_width`` zeros across
            each of its first two axes and moved by up to ``encoder_shift`` places along the
            first, while the likelihood scores the clean example (the denoising criterion with
            SpecAugment's masks; ``vae_zoo.models.corruption``). 0 turns each off.
    """

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
        self.likelihood_spec = likelihood
        super().__init__(data_shape=data_shape, latent_dim=latent_dim, prior=prior, beta=beta, free_bits=free_bits, **kwargs)

    # ------------------------------------------------------------------ networks

    def make_networks(self):
        """The likelihood p(x|z) over one example, the encoder body (data -> a mean and a log-variance) and the
        decoder body (z -> the parameters of p(x|z)), from their specs."""
        self.likelihood = distributions.make_likelihood(self.likelihood_spec, event_ndims=len(self.data_shape))
        self.encoder = networks.make_encoder(self.encoder_spec, self.encoder_input_shape(), 2 * self.latent_dim)
        channels = self.likelihood.param_channels(self.data_shape[-1])
        self.decoder = networks.make_decoder(self.decoder_spec, self.decoder_input_dim(), self.data_shape, channels)

    def encoder_input_shape(self):
        return self.data_shape

    def decoder_input_dim(self):
        return self.latent_dim

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

    def top_posterior(self, x):
        """q(z | x) of the latent the prior is on (a hierarchy's top one): a VampPrior's components, at its pseudo-inputs."""
        return self.encode(x)

    # ------------------------------------------------------------------ what the objective needs

    def data_log_prob(self, z, x, y=None, training=False, seed=None):
        """log p(x|z) per example (``seed`` keys any noise the decoder itself draws in training)."""
        if training:
            return self.decode(z, y, training=True).log_prob(x)
        # Outside training nothing needs its gradient: the likelihood's faster form of the same value.
        return self.likelihood.evaluation_log_prob(self.decoder_params(z, y), x)

    def encoder_view(self, x, seed=None):
        """What the encoder sees of ``x`` in training: ``x`` itself, or corrupted (``encoder_masks``, ``encoder_shift``)."""
        if not (self.encoder_masks or self.encoder_shift):
            return x
        return corruption.corrupt(self.check_data(x), self.encoder_masks, self.encoder_mask_width, self.encoder_shift, seed)

    def draws_log_prob(self, z, x, y=None, training=False):
        """log p(x | z_i) of every example under each of its draws: z (k, batch, latent), x (batch, ...) -> (k, batch)."""
        if training:
            return super().draws_log_prob(z, x, y, training=True)
        # Nothing needs a gradient: all k x batch draws decode in one pass, and x broadcasts over the draws inside
        # the likelihood instead of being repeated k times in memory (at k = 500 on MNIST, 157 MB a call).
        params = self.decoder_params(flatten_samples(z), None if y is None else repeat_batch(y, tf.shape(z)[0]))
        params = tf.reshape(params, tf.concat([tf.shape(z)[:2], tf.shape(params)[1:]], axis=0))
        return self.likelihood.evaluation_log_prob(params, x)

    # ------------------------------------------------------------------ using a trained model

    def reconstruction(self, x, y=None, training=False):
        """The mean of p(x|z) at the posterior mean of z."""
        return self.decode(self.encode(x, y, training=training).mean(), y, training=training).mean()

    def decoded_mean(self, z, y=None):
        """The mean of p(x|z): what the ``decode`` serving signature returns."""
        return self.decode(z, y).mean()

    def sample(self, n, seed=None, labels=None):
        """``n`` new examples: z ~ p(z), then the mean of p(x|z)."""
        return self.decode(self.prior().sample(n, seed=seed)).mean()
