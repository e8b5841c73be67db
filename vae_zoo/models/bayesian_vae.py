"""A VAE whose decoder weights are random variables, trained by Bayes by backprop."""

import keras
import math
import tensorflow as tf

from vae_zoo.models import distributions
from vae_zoo.models.vae import VAE
from vae_zoo.registry import register

tfd = distributions.tfd


@keras.saving.register_keras_serializable(package="vae_zoo")
class BayesianDense(keras.layers.Layer):
    """Dense layer with a factorized Gaussian posterior over its kernel and bias (Blundell et al., 2015).

    In training, every call draws one set of weights w = mu + softplus(rho) * eps
    (reparameterized, so mu and rho get gradients); at inference it uses the
    posterior means. ``kl()`` is KL(q(w) || N(0, prior_scale^2)) in closed form.
    """

    def __init__(self, units, activation=None, prior_scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.activation = keras.activations.get(activation)
        self.prior_scale = float(prior_scale)
        # A Keras seed generator keeps its state in a variable: checkpoints restore the weight noise too.
        self.seed_generator = keras.random.SeedGenerator(0)

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        # Start with small posterior scales: softplus(-6) is about 0.0025.
        rho = keras.initializers.Constant(-6.0)
        self.kernel_loc = self.add_weight(name="kernel_loc", shape=(fan_in, self.units), initializer="glorot_uniform")
        self.kernel_rho = self.add_weight(name="kernel_rho", shape=(fan_in, self.units), initializer=rho)
        self.bias_loc = self.add_weight(name="bias_loc", shape=(self.units,), initializer="zeros")
        self.bias_rho = self.add_weight(name="bias_rho", shape=(self.units,), initializer=rho)

    def posteriors(self):
        return [tfd.Normal(self.kernel_loc, tf.nn.softplus(self.kernel_rho)), tfd.Normal(self.bias_loc, tf.nn.softplus(self.bias_rho))]

    def call(self, inputs, training=False):
        kernel, bias = (
            q.mean() + q.stddev() * keras.random.normal(q.batch_shape, seed=self.seed_generator) if training else q.mean()
            for q in self.posteriors()
        )
        return self.activation(tf.matmul(inputs, kernel) + bias)

    def kl(self):
        prior = tfd.Normal(0.0, self.prior_scale)
        return tf.add_n([tf.reduce_sum(tfd.kl_divergence(q, prior)) for q in self.posteriors()])

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": keras.activations.serialize(self.activation), "prior_scale": self.prior_scale}


@register("bayesian_vae")
class BayesianVAE(VAE):
    """VAE with a Bayesian decoder (Blundell et al., 2015): Gaussian posteriors over the decoder's weights.

    The decoder's dense layers hold q(w) = N(mu, sigma^2) per weight, trained by
    Bayes by backprop: each training batch draws one weight sample, and the
    loss adds KL(q(w) || p(w)) spread over the ``dataset_size`` training
    examples, so that the whole-data objective is sum_n ELBO_n - KL(q(w)||p(w)).
    ``weight_kl`` reports that KL. At inference the decoder uses the posterior
    means; ``decode_with_weight_samples`` draws weights for predictive spread.
    """

    metric_names = ("loss", "elbo", "reconstruction", "kl", "weight_kl")

    def __init__(self, dataset_size=50000, weight_prior_scale=1.0, **kwargs):
        self.dataset_size = int(dataset_size)
        self.weight_prior_scale = float(weight_prior_scale)
        if self.dataset_size < 1 or not self.weight_prior_scale > 0:
            raise ValueError("dataset_size must be >= 1 and weight_prior_scale > 0")
        if kwargs.get("network", "mlp") != "mlp":
            raise ValueError("bayesian_vae has Bayesian dense layers in its decoder: network must be 'mlp'")
        super().__init__(**kwargs)

    def make_decoder(self):
        options = self.network_options
        out_shape = (*self.data_shape[:-1], self.data_shape[-1] * self.likelihood.params_per_channel)
        layers = [
            BayesianDense(int(h), activation=options["activation"], prior_scale=self.weight_prior_scale, name=f"decoder_bayes_{i}")
            for i, h in enumerate(list(options["hidden_sizes"])[::-1])
        ]
        layers += [
            BayesianDense(math.prod(out_shape), prior_scale=self.weight_prior_scale, name="decoder_out"),
            keras.layers.Reshape(out_shape, name="to_data_shape"),
        ]
        decoder = keras.Sequential(layers, name="decoder")
        decoder.build((None, self.decoder_input_dim()))
        return decoder

    def weight_kl(self):
        return tf.add_n([layer.kl() for layer in self.decoder.layers if isinstance(layer, BayesianDense)])

    def decode_with_weight_samples(self, z, y=None):
        """p(x|z) under one fresh draw of the decoder's weights."""
        return self.decode(z, y, training=True)

    def loss_terms(self, x, y=None, training=False, seed=None):
        terms = super().loss_terms(x, y, training=training, seed=seed)
        weight_kl = self.weight_kl()
        terms["loss"] = terms["loss"] + weight_kl / self.dataset_size
        terms["weight_kl"] = tf.fill(tf.shape(terms["loss"]), weight_kl)
        return terms
