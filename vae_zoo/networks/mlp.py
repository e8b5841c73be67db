"""The multilayer perceptron body: dense layers on the flattened example (the seed's 784-400-400 network)."""

import math

import keras

from vae_zoo.networks import register_network


@keras.saving.register_keras_serializable(package="vae_zoo")
class GatedDense(keras.layers.Layer):
    """h(x) * sigmoid(g(x)) with two dense maps h and g (Dauphin et al., 2017's gated linear unit): the hidden
    units of the VampPrior code base (Tomczak and Welling, 2018), whose likelihood benchmark the zoo compares with.
    ``activation: gated`` in an MLP spec."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.h = keras.layers.Dense(self.units, name="h")
        self.g = keras.layers.Dense(self.units, name="g")

    def build(self, input_shape):
        self.h.build(input_shape)
        self.g.build(input_shape)

    def call(self, inputs):
        return self.h(inputs) * keras.ops.sigmoid(self.g(inputs))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def dense_block(units, activation, batch_norm, name):
    if activation == "gated":
        if batch_norm:
            raise ValueError("activation 'gated' does not take batch_norm: the gate already scales each unit")
        return [GatedDense(units, name=name)]
    if not batch_norm:
        return [keras.layers.Dense(units, activation=activation, name=name)]
    # Normalise before the non-linearity, as in Ioffe & Szegedy (2015).
    return [
        keras.layers.Dense(units, use_bias=False, name=name),
        keras.layers.BatchNormalization(name=f"{name}_bn"),
        keras.layers.Activation(activation, name=f"{name}_act"),
    ]


def dense_stack(hidden_sizes, activation="relu", batch_norm=False, prefix="dense"):
    layers = []
    for i, units in enumerate(hidden_sizes):
        layers += dense_block(int(units), activation, batch_norm, f"{prefix}_dense_{i}")
    return layers


def make_mlp(hidden_sizes, output_units, input_units, activation="relu", name="mlp"):
    """A small built MLP head from vectors to ``output_units`` numbers (ladder levels, discriminators)."""
    stack = keras.Sequential(dense_stack(hidden_sizes, activation, prefix=name) + [keras.layers.Dense(int(output_units), name=f"{name}_out")], name=name)
    stack.build((None, int(input_units)))
    return stack


@register_network("mlp")
class MLP:
    """Dense layers of ``hidden_sizes`` on the flattened example; the decoder mirrors them in reverse.

    Options: ``hidden_sizes``, ``activation`` (a Keras activation, or ``gated`` for gated dense units),
    ``batch_norm``.
    """

    # The encoder sees the example flattened: a conditional model appends its label once.
    spatial = False

    def __init__(self, hidden_sizes=(400, 400), activation="relu", batch_norm=False):
        if isinstance(hidden_sizes, (str, bytes)) or not all(int(h) >= 1 for h in hidden_sizes):
            raise ValueError(f"hidden_sizes must be a list of positive layer widths, got {hidden_sizes!r}")
        self.hidden_sizes = [int(h) for h in hidden_sizes]
        self.activation, self.batch_norm = activation, bool(batch_norm)

    def encoder_layers(self, data_shape, output_units):
        layers = [keras.layers.Flatten(name="flatten")]
        layers += dense_stack(self.hidden_sizes, self.activation, self.batch_norm, "encoder")
        layers.append(keras.layers.Dense(output_units, name="encoder_out"))
        return layers

    def decoder_layers(self, data_shape, output_channels):
        layers = dense_stack(self.hidden_sizes[::-1], self.activation, self.batch_norm, "decoder")
        out_shape = (*data_shape[:-1], output_channels)
        layers.append(keras.layers.Dense(math.prod(out_shape), name="decoder_out"))
        layers.append(keras.layers.Reshape(out_shape, name="to_data_shape"))
        return layers

    def grid(self, data_shape, positions):
        return (positions,)

    def grid_encoder_layers(self, data_shape, grid, channels):
        layers = [keras.layers.Flatten(name="flatten")]
        layers += dense_stack(self.hidden_sizes, self.activation, self.batch_norm, "encoder")
        layers.append(keras.layers.Dense(math.prod(grid) * channels, name="encoder_out"))
        layers.append(keras.layers.Reshape((*grid, channels), name="to_grid"))
        return layers

    def grid_decoder_layers(self, data_shape, output_channels):
        return [keras.layers.Flatten(name="flatten"), *self.decoder_layers(data_shape, output_channels)]
