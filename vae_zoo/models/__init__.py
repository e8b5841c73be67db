"""Importing this package registers every variant in the zoo."""

from vae_zoo.models.aae import AdversarialAutoencoder
from vae_zoo.models.autoencoder import Autoencoder
from vae_zoo.models.bayesian_vae import BayesianVAE
from vae_zoo.models.beta_vae import BetaVAE
from vae_zoo.models.cvae import ConditionalVAE
from vae_zoo.models.iwae import IWAE
from vae_zoo.models.ladder_vae import LadderVAE
from vae_zoo.models.vae import VAE
from vae_zoo.models.vq_vae import VQVAE

__all__ = [
    "AdversarialAutoencoder",
    "Autoencoder",
    "BayesianVAE",
    "BetaVAE",
    "ConditionalVAE",
    "IWAE",
    "LadderVAE",
    "VAE",
    "VQVAE",
]
