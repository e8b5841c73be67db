"""The residual convolutional body: residual blocks between stride-2 down- and up-sampling stages.

``ResidualBlock`` is also the building block of the hierarchical VAE's bottom-up and top-down paths
(``vae_zoo.models.hierarchical_vae``).
"""

import math

import keras

from vae_zoo.networks import register_network
from vae_zoo.networks.activations import activation_layer
from vae_zoo.networks.conv import Conv

NORMALIZATIONS = (None, "batch", "layer", "group")


def normalization_layer(kind, name):
    """A normalization layer by name, or None. Group normalization uses up to 8 groups (fewer for narrow layers)."""
    if kind is None:
        return None
    if kind == "batch":
        return keras.layers.BatchNormalization(name=name)
    if kind == "layer":
        return keras.layers.LayerNormalization(name=name)
    if kind == "group":
        return keras.layers.GroupNormalization(groups=-1, name=name)  # groups set in ResidualBlock.build
    raise ValueError(f"normalization must be one of {', '.join(map(str, NORMALIZATIONS))}, got {kind!r}")


@keras.saving.register_keras_serializable(package="vae_zoo")
class SqueezeExcitation(keras.layers.Layer):
    """Channel gating by the global mean of each channel (Hu et al., 2018), as in NVAE's residual cells."""

    def __init__(self, channels, reduction=4, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.reduction = int(reduction)
        # Swish, not the paper's ReLU: with only a few squeeze units and the small activations of a fresh residual
        # branch, every ReLU unit can start dead, and then the gate never learns (seen in CI).
        self.squeeze = keras.layers.Dense(max(self.channels // self.reduction, 4), activation="swish", name="squeeze")
        self.excite = keras.layers.Dense(self.channels, activation="sigmoid", name="excite")

    def build(self, input_shape):
        self.squeeze.build((input_shape[0], input_shape[-1]))
        self.excite.build((input_shape[0], self.squeeze.units))

    def call(self, inputs):
        gate = self.excite(self.squeeze(keras.ops.mean(inputs, axis=(1, 2))))
        return inputs * gate[:, None, None, :]

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "reduction": self.reduction}


@keras.saving.register_keras_serializable(package="vae_zoo")
class ResidualBlock(keras.layers.Layer):
    """x + scale * f(x), f = [norm] act conv3x3 [norm] act conv3x3 [squeeze-excitation], channels kept.

    The last convolution starts small (``residual_scale``), so that a deep stack starts near the identity and
    its activations do not grow with depth (VDVAE scales it by 1/sqrt(depth) for the same reason).
    """

    def __init__(self, channels, activation="swish", normalization=None, squeeze_excitation=False,
                 residual_scale=0.1, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.activation = activation
        self.normalization = normalization
        self.squeeze_excitation = bool(squeeze_excitation)
        self.residual_scale = float(residual_scale)
        self.norms = [normalization_layer(normalization, f"norm_{i}") for i in range(2)]
        self.convs = [
            # A normalization follows the first convolution and would cancel its bias: it has none.
            keras.layers.Conv2D(self.channels, 3, padding="same", use_bias=normalization is None, name="conv_0"),
            keras.layers.Conv2D(self.channels, 3, padding="same", name="conv_1",
                                kernel_initializer=keras.initializers.VarianceScaling(self.residual_scale ** 2)),
        ]
        self.gate = SqueezeExcitation(self.channels, name="squeeze_excitation") if self.squeeze_excitation else None
        self.act = activation_layer(activation, "act")

    def build(self, input_shape):
        if input_shape[-1] != self.channels:
            raise ValueError(f"a residual block keeps its {self.channels} channels; got an input of {input_shape[-1]}")
        for norm in self.norms:
            if isinstance(norm, keras.layers.GroupNormalization):
                norm.groups = math.gcd(8, self.channels)
            if norm is not None:
                norm.build(input_shape)
        for conv in self.convs:
            conv.build(input_shape)
        if self.gate is not None:
            self.gate.build(input_shape)

    def call(self, inputs, training=False):
        h = inputs
        for norm, conv in zip(self.norms, self.convs):
            if norm is not None:
                h = norm(h, training=training)
            h = conv(self.act(h, training=training))
        if self.gate is not None:
            h = self.gate(h)
        return inputs + h

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "activation": self.activation,
                "normalization": self.normalization, "squeeze_excitation": self.squeeze_excitation,
                "residual_scale": self.residual_scale}


@register_network("resnet")
class ResNet(Conv):
    """A stem convolution, then for each of ``filters`` a stride-2 convolution (halving height and width) and
    ``blocks`` residual blocks; dense ``hidden_sizes`` on top. The decoder mirrors it with transposed convolutions.

    Options: ``filters``, ``blocks`` (residual blocks a stage), ``hidden_sizes``, ``activation``,
    ``normalization`` (None, ``batch``, ``layer`` or ``group``), ``squeeze_excitation``.
    For images whose sides divide by 2 ** len(filters). The conv body's layout (its checks, grid, dense layers
    and heads), with residual stages.
    """

    def __init__(self, filters=(32, 64), blocks=1, hidden_sizes=(), activation="swish", normalization=None,
                 squeeze_excitation=False):
        if int(blocks) < 0:
            raise ValueError(f"blocks must be >= 0, got {blocks!r}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {', '.join(map(str, NORMALIZATIONS))}, got {normalization!r}")
        if activation == "gated":
            raise ValueError("activation 'gated' is for the mlp network's dense units, not convolutions")
        super().__init__(filters, hidden_sizes, activation, batch_norm=False)
        self.blocks = int(blocks)
        self.normalization, self.squeeze_excitation = normalization, bool(squeeze_excitation)

    def _blocks(self, channels, name):
        return [ResidualBlock(channels, self.activation, self.normalization, self.squeeze_excitation, name=f"{name}_{i}")
                for i in range(self.blocks)]

    def _downsampling(self):
        layers = [keras.layers.Conv2D(self.filters[0], 3, padding="same", name="encoder_stem")]
        for i, filters in enumerate(self.filters):
            layers.append(keras.layers.Conv2D(filters, 3, strides=2, padding="same", name=f"encoder_down_{i}"))
            layers += self._blocks(filters, f"encoder_res_{i}")
        return layers

    def _upsampling(self):
        layers = []
        reversed_filters = self.filters[::-1]
        for i, filters in enumerate(reversed_filters):
            layers += self._blocks(filters, f"decoder_res_{i}")
            following = reversed_filters[i + 1] if i + 1 < len(reversed_filters) else reversed_filters[-1]
            layers.append(keras.layers.Conv2DTranspose(following, 3, strides=2, padding="same", name=f"decoder_up_{i}"))
        return layers

    def _before_output(self, where):
        # A residual stage ends in a sum, not an activation.
        return [activation_layer(self.activation, f"{where}_act")]
