"""Adversarial autoencoder: a discriminator on z replaces the KL term."""

import keras
import tensorflow as tf
from keras.src.losses.loss import (
    scale_loss_for_distribution,
    unscale_loss_for_distribution,
)

from vae_zoo.models import distributions, objectives
from vae_zoo.models.base import step_seed
from vae_zoo.models.objectives import split_seed
from vae_zoo.models.vae import VAE
from vae_zoo.networks.mlp import make_mlp
from vae_zoo.registry import register


@register("aae")
class AdversarialAutoencoder(VAE):
    """Adversarial autoencoder (Makhzani et al., 2015): a discriminator on z matches q(z) to the prior.

    Each training step has the paper's two phases. Reconstruction: the encoder
    and decoder minimise -log p(x|z) plus ``beta`` times the generator loss (the
    encoder trying to make the discriminator take its codes for prior samples).
    Regularization: the discriminator, with its own optimizer, learns to tell
    prior samples from codes of the aggregate posterior q(z) = E_x q(z|x). The
    encoder is the VAE's Gaussian one, so the ELBO and KL are still reported,
    as diagnostics: they are not what the AAE optimises.
    """

    metric_names = ("loss", "elbo", "reconstruction", "kl", "discriminator_loss", "generator_loss")

    def __init__(self, discriminator_sizes=(256, 256), **kwargs):
        super().__init__(**kwargs)
        self.discriminator = make_mlp(discriminator_sizes, 1, self.latent_dim, "relu", name="discriminator")
        self.discriminator_optimizer = None

    def compile(self, optimizer="adam", discriminator_optimizer=None, jit_compile="auto", **kwargs):
        """``discriminator_optimizer`` defaults to a fresh copy of ``optimizer``'s configuration."""
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
        if discriminator_optimizer is None:
            discriminator_optimizer = self.optimizer.__class__.from_config(self.optimizer.get_config())
        discriminator_optimizer = keras.optimizers.get(discriminator_optimizer)
        if self.dtype_policy.name == "mixed_float16":
            # Keras wraps the main optimizer itself; the second one needs the same loss scaling.
            discriminator_optimizer = keras.optimizers.LossScaleOptimizer(discriminator_optimizer)
        self.discriminator_optimizer = discriminator_optimizer
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)

    def autoencoder_variables(self):
        discriminator = {id(v) for v in self.discriminator.trainable_variables}
        return [v for v in self.trainable_variables if id(v) not in discriminator]

    def loss_terms(self, x, y=None, training=False, seed=None):
        posterior_seed, prior_seed = split_seed(seed, 2)
        q = self.encode(x, y, training=training)
        z = distributions.reparameterized_sample(q, seed=posterior_seed)
        log_likelihood = self.decode(z, y, training=training).log_prob(x)
        p = self.prior()
        kl = distributions.kl_divergence(q, p, z)
        # Non-saturating generator loss: -log D(z) for the encoder's codes.
        generator = tf.nn.softplus(-self.discriminator(z, training=training)[:, 0])
        prior_samples = distributions.replica_sample(p, tf.shape(z)[0], seed=prior_seed)
        discriminator = (
            tf.nn.softplus(-self.discriminator(prior_samples, training=training)[:, 0])
            + tf.nn.softplus(self.discriminator(tf.stop_gradient(z), training=training)[:, 0])
        )
        # The encoder's regularizer is the generator loss; the KL is reported only.
        terms = objectives.elbo_terms(log_likelihood, kl, self.kl_weight, penalty=generator)
        return {**terms, "generator_loss": generator, "discriminator_loss": discriminator}

    def train_step(self, data):
        """Both phases in one step, each loss scaled for replicas and for mixed precision as Keras scales its own."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        autoencoder_variables = self.autoencoder_variables()
        discriminator_variables = self.discriminator.trainable_variables
        self.follow_kl_schedule()
        with tf.GradientTape(persistent=True) as tape:
            terms = self.loss_terms(x, y, training=True, seed=step_seed(self, self.noise_seed))
            self.update_trackers(terms, sample_weight)
            loss = scale_loss_for_distribution(self.batch_loss(terms, sample_weight))
            for extra in self.losses:
                loss += self._aggregate_additional_loss(extra)
            discriminator_loss = scale_loss_for_distribution(tf.reduce_mean(terms["discriminator_loss"]))
            scaled = self.optimizer.scale_loss(loss)
            scaled_discriminator = self.discriminator_optimizer.scale_loss(discriminator_loss)
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, autoencoder_variables), autoencoder_variables))
        self.discriminator_optimizer.apply_gradients(
            zip(tape.gradient(scaled_discriminator, discriminator_variables), discriminator_variables))
        del tape
        self._loss_tracker.update_state(unscale_loss_for_distribution(loss), sample_weight=tf.shape(x)[0])
        return self.step_results()
