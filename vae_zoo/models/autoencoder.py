"""The deterministic autoencoder: the baseline the seed compares VAEs against."""


from vae_zoo import distributions
from vae_zoo.networks import make_encoder
from vae_zoo.models.vae import VAE
from vae_zoo.registry import register


@register("autoencoder")
class Autoencoder(VAE):
    """Deterministic autoencoder: minimises reconstruction loss only; no prior, no ELBO, no sampling.

    The encoder maps x to a single code z (a point mass), the decoder and its
    likelihood are the VAE's, so ``reconstruction`` is directly comparable with a
    VAE's. It cannot generate: there is no distribution over codes to sample.
    """

    metric_names = ("loss", "reconstruction")
    has_elbo = False
    generative = False

    def make_encoder(self):
        return make_encoder(self.network, self.encoder_input_shape(), self.latent_dim, **self.network_options)

    def make_prior(self, prior):
        return None

    def encode(self, x, y=None, training=False):
        code = self.encoder(self.encoder_inputs(x, y), training=training)
        return distributions.tfd.Independent(distributions.tfd.Deterministic(code), reinterpreted_batch_ndims=1)

    def loss_terms(self, x, y=None, training=False, seed=None):
        reconstruction = -self.decode(self.encode(x, training=training).mean(), training=training).log_prob(x)
        return {"loss": reconstruction, "reconstruction": reconstruction}

    def prior(self):
        raise NotImplementedError("an autoencoder has no prior p(z); use a VAE to generate or score likelihoods")

    def log_weight_terms(self, *args, **kwargs):
        raise NotImplementedError("an autoencoder defines no ELBO or likelihood: it has no prior or posterior")

    def elbo(self, inputs, num_samples=1):
        raise NotImplementedError("an autoencoder defines no ELBO: it has no prior or posterior")

    def sample(self, n, seed=None, labels=None):
        raise NotImplementedError("an autoencoder cannot generate: it has no prior to sample codes from")

    def kl_by_dimension(self, x, y=None):
        return None

    def encoded_outputs(self, x, y=None):
        return {"code": self.encode(x, y).mean()}
