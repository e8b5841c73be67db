"""Importance-weighted autoencoder: a tighter bound from k samples."""

import tensorflow as tf

from vae_zoo.models.objectives import iwae_bound
from vae_zoo.models.vae import VAE
from vae_zoo.registry import register


@register("iwae")
class IWAE(VAE):
    """Importance-weighted autoencoder (Burda et al., 2015): trains on the k-sample bound log mean_i w_i.

    With w_i = p(x, z_i) / q(z_i|x) and z_i ~ q(z|x), the bound
    L_k = E[log (1/k) sum_i w_i] rises with k towards log p(x); k = 1 is the
    ELBO. ``beta`` weights log q - log p inside each weight (1 is the true bound).
    The metrics report the bound as ``iwae_bound`` and the ELBO, its
    reconstruction and KL terms as Monte-Carlo averages over the same k draws.
    """

    metric_names = ("loss", "iwae_bound", "elbo", "reconstruction", "kl")

    def __init__(self, k=5, **kwargs):
        self.k = int(k)
        if self.k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        super().__init__(**kwargs)

    def loss_terms(self, x, y=None, training=False, seed=None):
        log_likelihood, log_prior, log_posterior = self.log_weight_terms(x, y, self.k, seed, training)
        kl = log_posterior - log_prior
        log_weights = log_likelihood - kl
        return {
            # beta weighs the KL inside each importance weight (beta = 1: the bound itself).
            "loss": -iwae_bound(log_likelihood - self.kl_weight * kl),
            "iwae_bound": iwae_bound(log_weights),
            "elbo": tf.reduce_mean(log_weights, axis=0),
            "reconstruction": -tf.reduce_mean(log_likelihood, axis=0),
            "kl": tf.reduce_mean(kl, axis=0),
        }
