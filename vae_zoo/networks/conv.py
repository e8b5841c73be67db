"""The convolutional body: stride-2 convolutions, then dense layers; the decoder mirrors it with transposed convolutions."""

import math

import keras

from vae_zoo.networks import register_network
from vae_zoo.networks.mlp import dense_stack


def conv_block(layer_cls, filters, activation, batch_norm, name):
    if activation == "gated":
        raise ValueError("activation 'gated' is for the mlp network's dense units, not convolutions")
    if not batch_norm:
        return [layer_cls(filters, 3, strides=2, padding="same", activation=activation, name=name)]
    return [
        layer_cls(filters, 3, strides=2, padding="same", use_bias=False, name=name),
        keras.layers.BatchNormalization(name=f"{name}_bn"),
        keras.layers.Activation(activation, name=f"{name}_act"),
    ]


@register_network("conv")
class Conv:
    """``filters`` stride-2 3x3 convolutions (each halves height and width), then dense ``hidden_sizes``.

    Options: ``filters``, ``hidden_sizes``, ``activation``, ``batch_norm``.
    For images (height, width, channels) whose sides divide by 2 ** len(filters).
    """

    # The encoder keeps the spatial layout: a conditional model adds its label as channels.
    spatial = True

    def __init__(self, filters=(32, 64), hidden_sizes=(), activation="relu", batch_norm=False):
        if isinstance(filters, (str, bytes)) or not filters or not all(int(f) >= 1 for f in filters):
            raise ValueError(f"filters must be a non-empty list of positive filter counts, got {filters!r}")
        self.filters = [int(f) for f in filters]
        self.hidden_sizes = [int(h) for h in hidden_sizes]
        self.activation, self.batch_norm = activation, bool(batch_norm)

    def _check(self, data_shape):
        if len(data_shape) != 3:
            raise ValueError(f"the {self.registered_name} network needs images of shape (height, width, channels), "
                             f"got data_shape={tuple(data_shape)}")
        factor = 2 ** len(self.filters)
        if data_shape[0] % factor or data_shape[1] % factor:
            raise ValueError(
                f"the {self.registered_name} network halves the image {len(self.filters)} times, so height and width must be "
                f"divisible by {factor}; got data_shape={tuple(data_shape)}"
            )

    def _downsampling(self):
        layers = []
        for i, filters in enumerate(self.filters):
            layers += conv_block(keras.layers.Conv2D, filters, self.activation, self.batch_norm, f"encoder_conv_{i}")
        return layers

    def _upsampling(self):
        layers = []
        for i, filters in enumerate(self.filters[::-1]):
            layers += conv_block(keras.layers.Conv2DTranspose, filters, self.activation, self.batch_norm, f"decoder_deconv_{i}")
        return layers

    def _before_output(self, where):
        """Layers between the last feature map and an output layer (``where``: encoder or decoder): none here, the
        convolutions are activated already; a body whose stages end in a linear sum adds its activation."""
        return []

    def encoder_layers(self, data_shape, output_units):
        self._check(data_shape)
        layers = [*self._downsampling(), *self._before_output("encoder"), keras.layers.Flatten(name="flatten")]
        layers += dense_stack(self.hidden_sizes, self.activation, self.batch_norm, "encoder")
        layers.append(keras.layers.Dense(output_units, name="encoder_out"))
        return layers

    def decoder_layers(self, data_shape, output_channels):
        self._check(data_shape)
        base = (*self.grid(data_shape, 0), self.filters[-1])
        layers = dense_stack(self.hidden_sizes[::-1], self.activation, self.batch_norm, "decoder")
        layers.append(keras.layers.Dense(math.prod(base), activation=self.activation, name="decoder_project"))
        layers.append(keras.layers.Reshape(base, name="to_feature_map"))
        layers += [*self._upsampling(), *self._before_output("decoder")]
        layers.append(keras.layers.Conv2D(output_channels, 3, padding="same", name="decoder_out"))
        return layers

    def grid(self, data_shape, positions):
        self._check(data_shape)
        factor = 2 ** len(self.filters)
        return (data_shape[0] // factor, data_shape[1] // factor)

    def grid_encoder_layers(self, data_shape, grid, channels):
        self._check(data_shape)
        return [*self._downsampling(), *self._before_output("encoder"), keras.layers.Conv2D(channels, 1, name="encoder_out")]

    def grid_decoder_layers(self, data_shape, output_channels):
        return [
            keras.layers.Conv2D(self.filters[-1], 3, padding="same", activation=self.activation, name="decoder_in"),
            *self._upsampling(),
            *self._before_output("decoder"),
            keras.layers.Conv2D(output_channels, 3, padding="same", name="decoder_out"),
        ]
