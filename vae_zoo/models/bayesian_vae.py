"""A VAE whose decoder weights are random variables, trained by Bayes by backprop."""

import tensorflow as tf

from vae_zoo import networks
from vae_zoo.models.vae import VAE
from vae_zoo.networks.bayesian_mlp import BayesianMLP
from vae_zoo.registry import register

DEFAULT_DECODER = {"name": "bayesian_mlp", "hidden_sizes": [400, 400]}


@register("bayesian_vae")
class BayesianVAE(VAE):
    """VAE with a Bayesian decoder (Blundell et al., 2015): Gaussian posteriors over the decoder's weights.

    The decoder's dense layers hold q(w) = N(mu, sigma^2) per weight, trained by
    Bayes by backprop: each training batch draws one weight sample, and the
    loss adds KL(q(w) || p(w)) spread over the ``dataset_size`` training
    examples, so that the whole-data objective is sum_n ELBO_n - KL(q(w)||p(w)).
    ``weight_kl`` reports that KL. At inference the decoder uses the posterior
    means; ``decode_with_weight_samples`` draws weights for predictive spread.
    The decoder is a ``bayesian_mlp`` body (its ``prior_scale`` is the weight prior's).
    """

    metric_names = ("loss", "elbo", "reconstruction", "kl", "weight_kl")

    def __init__(self, dataset_size=50000, decoder=DEFAULT_DECODER, **kwargs):
        self.dataset_size = int(dataset_size)
        if self.dataset_size < 1:
            raise ValueError(f"dataset_size must be >= 1, got {dataset_size!r}")
        if not isinstance(networks.network_body(decoder), BayesianMLP):
            raise ValueError(f"bayesian_vae needs a 'bayesian_mlp' decoder body, got {decoder!r}")
        super().__init__(decoder=decoder, **kwargs)

    def weight_kl(self):
        return BayesianMLP.weight_kl(self.decoder)

    def decode_with_weight_samples(self, z, y=None):
        """p(x|z) under one fresh draw of the decoder's weights."""
        return self.decode(z, y, training=True)

    def loss_terms(self, x, y=None, training=False, seed=None):
        terms = super().loss_terms(x, y, training=training, seed=seed)
        weight_kl = self.weight_kl()
        terms["loss"] = terms["loss"] + weight_kl / self.dataset_size
        terms["weight_kl"] = tf.fill(tf.shape(terms["loss"]), weight_kl)
        return terms
