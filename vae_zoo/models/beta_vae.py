"""beta-VAE: the KL term weighted by beta > 1."""

from vae_zoo.models.vae import VAE
from vae_zoo.registry import register


@register("beta_vae")
class BetaVAE(VAE):
    """beta-VAE (Higgins et al., 2017): the ELBO's KL weighted by beta > 1, for disentangled latents.

    The seed's L_beta = -E_q[log p(x|z)] + beta * KL(q(z|x) || p(z)). The
    default beta = 4 trades reconstruction for a more factorized latent code;
    everything else is the plain VAE.
    """

    def __init__(self, beta=4.0, latent_dim=10, **kwargs):
        super().__init__(beta=beta, latent_dim=latent_dim, **kwargs)
