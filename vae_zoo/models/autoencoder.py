"""The deterministic autoencoder: the baseline the seed compares VAEs against."""

import tensorflow as tf

from vae_zoo import networks
from vae_zoo.models import distributions
from vae_zoo.models.base import ZooModel
from vae_zoo.models.vae import DEFAULT_ENCODER
from vae_zoo.registry import register


@register("autoencoder")
class Autoencoder(ZooModel):
    """Deterministic autoencoder: minimises reconstruction loss only; no prior, no ELBO, no sampling.

    The encoder maps x to a single code, the decoder and its likelihood are
    built as a VAE's are, so ``reconstruction`` (-log p(x|code)) is directly
    comparable with a VAE's. It cannot generate: there is no distribution over
    codes to sample.

    Args:
        data_shape, latent_dim, encoder, decoder, likelihood: as for ``vae``.
    """

    capabilities = frozenset({"reconstruct", "latent"})
    metric_names = ("loss", "reconstruction")

    def __init__(self, data_shape=(28, 28, 1), latent_dim=20, encoder=DEFAULT_ENCODER, decoder=None, likelihood="bernoulli",
                 **kwargs):
        super().__init__(data_shape=data_shape, **kwargs)
        self.latent_dim = int(latent_dim)
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
        self.likelihood = distributions.make_likelihood(likelihood, event_ndims=len(self.data_shape))
        self.encoder = networks.make_encoder(encoder, self.data_shape, self.latent_dim)
        channels = self.likelihood.param_channels(self.data_shape[-1])
        self.decoder = networks.make_decoder(encoder if decoder is None else decoder, self.latent_dim, self.data_shape, channels)
        self.built = True

    def encode_code(self, x, training=False):
        """The code of ``x``: (batch, latent_dim)."""
        return tf.cast(self.encoder(self.check_data(x), training=training), tf.float32)

    def decode(self, code, y=None, training=False):
        """p(x | code)."""
        return self.likelihood(tf.cast(self.decoder(code, training=training), tf.float32))

    def loss_terms(self, x, y=None, training=False, seed=None):
        reconstruction = -self.decode(self.encode_code(x, training), training=training).log_prob(self.check_data(x))
        return {"loss": reconstruction, "reconstruction": reconstruction}

    def reconstruction(self, x, y=None, training=False):
        return self.decode(self.encode_code(x, training), training=training).mean()

    def transform(self, inputs):
        """The codes, for dimensionality reduction."""
        x, _ = self.split_inputs(inputs)
        return self.encode_code(x)

    def encoded_outputs(self, x, y=None):
        return {"code": self.encode_code(x)}

    def decoder_input_spec(self):
        return tf.TensorSpec([None, self.latent_dim], tf.float32, name="z")

    def decoded_mean(self, code, y=None):
        return self.decode(code).mean()
