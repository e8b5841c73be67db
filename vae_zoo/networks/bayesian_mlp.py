"""The Bayesian MLP body: dense layers whose weights are random variables (Bayes by backprop)."""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from vae_zoo.networks import register_network

tfd = tfp.distributions


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


@register_network("bayesian_mlp")
class BayesianMLP:
    """Bayesian dense layers of ``hidden_sizes`` (a decoder body): Gaussian posteriors over every weight.

    Options: ``hidden_sizes``, ``activation``, ``prior_scale`` (the N(0, prior_scale^2) weight prior).
    ``weight_kl(stack)`` sums KL(q(w) || p(w)) over a built stack's Bayesian layers.
    """

    spatial = False

    def __init__(self, hidden_sizes=(400, 400), activation="relu", prior_scale=1.0):
        if not float(prior_scale) > 0:
            raise ValueError(f"prior_scale must be > 0, got {prior_scale!r}")
        self.hidden_sizes = [int(h) for h in hidden_sizes]
        self.activation, self.prior_scale = activation, float(prior_scale)

    def encoder_layers(self, data_shape, output_units):
        raise ValueError("bayesian_mlp is a decoder body; give the encoder an 'mlp' or 'conv' spec")

    grid_encoder_layers = grid_decoder_layers = encoder_layers

    def decoder_layers(self, data_shape, output_channels):
        out_shape = (*data_shape[:-1], output_channels)
        layers = [
            BayesianDense(h, activation=self.activation, prior_scale=self.prior_scale, name=f"decoder_bayes_{i}")
            for i, h in enumerate(self.hidden_sizes[::-1])
        ]
        return [*layers, BayesianDense(math.prod(out_shape), prior_scale=self.prior_scale, name="decoder_out"),
                keras.layers.Reshape(out_shape, name="to_data_shape")]

    @staticmethod
    def weight_kl(stack):
        return tf.add_n([layer.kl() for layer in stack.layers if isinstance(layer, BayesianDense)])
