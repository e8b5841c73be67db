"""Encoder and decoder bodies built from plain config values.

An encoder maps a batch of data of shape ``data_shape`` to ``output_units``
numbers per example; a decoder maps latent vectors to a tensor of shape
``(*data_shape[:-1], data_shape[-1] * params_per_channel)`` that a likelihood
turns into a distribution. Both are ``keras.Sequential`` stacks, built eagerly
so that a model owns its weights as soon as it is constructed.
"""

import math

import keras

from vae_zoo.errors import unknown_name


def _dense_block(units, activation, batch_norm, name):
    if not batch_norm:
        return [keras.layers.Dense(units, activation=activation, name=name)]
    # Normalise before the non-linearity, as in Ioffe & Szegedy (2015).
    return [
        keras.layers.Dense(units, use_bias=False, name=name),
        keras.layers.BatchNormalization(name=f"{name}_bn"),
        keras.layers.Activation(activation, name=f"{name}_act"),
    ]


def _conv_block(layer_cls, filters, activation, batch_norm, name):
    if not batch_norm:
        return [layer_cls(filters, 3, strides=2, padding="same", activation=activation, name=name)]
    return [
        layer_cls(filters, 3, strides=2, padding="same", use_bias=False, name=name),
        keras.layers.BatchNormalization(name=f"{name}_bn"),
        keras.layers.Activation(activation, name=f"{name}_act"),
    ]


def _hidden_stack(hidden_sizes, activation, batch_norm, prefix):
    layers = []
    for i, units in enumerate(hidden_sizes):
        layers += _dense_block(int(units), activation, batch_norm, f"{prefix}_dense_{i}")
    return layers


def mlp_encoder(data_shape, output_units, hidden_sizes, activation, batch_norm, **_):
    layers = [keras.layers.Flatten(name="flatten")]
    layers += _hidden_stack(hidden_sizes, activation, batch_norm, "encoder")
    layers.append(keras.layers.Dense(output_units, name="encoder_out"))
    return layers


def mlp_decoder(data_shape, output_channels, hidden_sizes, activation, batch_norm, **_):
    # The decoder mirrors the encoder: hidden sizes in reverse order.
    layers = _hidden_stack(list(hidden_sizes)[::-1], activation, batch_norm, "decoder")
    out_shape = (*data_shape[:-1], output_channels)
    layers.append(keras.layers.Dense(math.prod(out_shape), name="decoder_out"))
    layers.append(keras.layers.Reshape(out_shape, name="to_data_shape"))
    return layers


def _check_conv_shape(data_shape, conv_filters):
    if len(data_shape) != 3:
        raise ValueError(f"the conv network needs images of shape (height, width, channels), got data_shape={tuple(data_shape)}")
    factor = 2 ** len(conv_filters)
    if data_shape[0] % factor or data_shape[1] % factor:
        raise ValueError(
            f"the conv network halves the image {len(conv_filters)} times, so height and width must be "
            f"divisible by {factor}; got data_shape={tuple(data_shape)}"
        )


def conv_encoder(data_shape, output_units, hidden_sizes, activation, batch_norm, conv_filters, **_):
    _check_conv_shape(data_shape, conv_filters)
    layers = []
    for i, filters in enumerate(conv_filters):
        layers += _conv_block(keras.layers.Conv2D, int(filters), activation, batch_norm, f"encoder_conv_{i}")
    layers.append(keras.layers.Flatten(name="flatten"))
    layers += _hidden_stack(hidden_sizes, activation, batch_norm, "encoder")
    layers.append(keras.layers.Dense(output_units, name="encoder_out"))
    return layers


def conv_decoder(data_shape, output_channels, hidden_sizes, activation, batch_norm, conv_filters, **_):
    _check_conv_shape(data_shape, conv_filters)
    factor = 2 ** len(conv_filters)
    base = (data_shape[0] // factor, data_shape[1] // factor, int(conv_filters[-1]))
    layers = _hidden_stack(list(hidden_sizes)[::-1], activation, batch_norm, "decoder")
    layers.append(keras.layers.Dense(math.prod(base), activation=activation, name="decoder_project"))
    layers.append(keras.layers.Reshape(base, name="to_feature_map"))
    for i, filters in enumerate(list(conv_filters)[::-1]):
        layers += _conv_block(keras.layers.Conv2DTranspose, int(filters), activation, batch_norm, f"decoder_deconv_{i}")
    layers.append(keras.layers.Conv2D(output_channels, 3, padding="same", name="decoder_out"))
    return layers


def mlp_grid_encoder(data_shape, grid_shape, channels, hidden_sizes, activation, batch_norm, **_):
    layers = [keras.layers.Flatten(name="flatten")]
    layers += _hidden_stack(hidden_sizes, activation, batch_norm, "encoder")
    layers.append(keras.layers.Dense(math.prod(grid_shape) * channels, name="encoder_out"))
    layers.append(keras.layers.Reshape((*grid_shape, channels), name="to_grid"))
    return layers


def mlp_grid_decoder(data_shape, output_channels, hidden_sizes, activation, batch_norm, **_):
    return [keras.layers.Flatten(name="flatten")] + mlp_decoder(data_shape, output_channels, hidden_sizes, activation, batch_norm)


def conv_grid_encoder(data_shape, grid_shape, channels, activation, batch_norm, conv_filters, **_):
    _check_conv_shape(data_shape, conv_filters)
    layers = []
    for i, filters in enumerate(conv_filters):
        layers += _conv_block(keras.layers.Conv2D, int(filters), activation, batch_norm, f"encoder_conv_{i}")
    layers.append(keras.layers.Conv2D(channels, 1, name="encoder_out"))
    return layers


def conv_grid_decoder(data_shape, output_channels, activation, batch_norm, conv_filters, **_):
    layers = [keras.layers.Conv2D(int(conv_filters[-1]), 3, padding="same", activation=activation, name="decoder_in")]
    for i, filters in enumerate(list(conv_filters)[::-1]):
        layers += _conv_block(keras.layers.Conv2DTranspose, int(filters), activation, batch_norm, f"decoder_deconv_{i}")
    layers.append(keras.layers.Conv2D(output_channels, 3, padding="same", name="decoder_out"))
    return layers


def grid_shape(network, data_shape, conv_filters, mlp_positions):
    """The latent grid of a spatial (VQ) encoder: the image shrunk by the convs, or ``mlp_positions`` codes."""
    if network == "conv":
        _check_conv_shape(data_shape, conv_filters)
        factor = 2 ** len(conv_filters)
        return (data_shape[0] // factor, data_shape[1] // factor)
    return (int(mlp_positions),)


GRID_NETWORKS = {
    "mlp": (mlp_grid_encoder, mlp_grid_decoder),
    "conv": (conv_grid_encoder, conv_grid_decoder),
}


def make_grid_encoder(network, data_shape, grid, channels, name="encoder", **options):
    """Encoder from data to a grid of ``channels``-vectors of shape ``(*grid, channels)``, built."""
    build, _ = _lookup(network, GRID_NETWORKS)
    stack = keras.Sequential(build(tuple(data_shape), tuple(grid), int(channels), **_options(**options)), name=name)
    stack.build((None, *data_shape))
    return stack


def make_grid_decoder(network, grid, channels, data_shape, output_channels, name="decoder", **options):
    """Decoder from a ``(*grid, channels)`` grid to ``(*data_shape[:-1], output_channels)``, built."""
    _, build = _lookup(network, GRID_NETWORKS)
    stack = keras.Sequential(build(tuple(data_shape), int(output_channels), **_options(**options)), name=name)
    stack.build((None, *grid, int(channels)))
    return stack


NETWORKS = {
    "mlp": (mlp_encoder, mlp_decoder),
    "conv": (conv_encoder, conv_decoder),
}


def _options(hidden_sizes, activation, batch_norm, conv_filters):
    return dict(
        hidden_sizes=[int(h) for h in hidden_sizes],
        activation=activation,
        batch_norm=bool(batch_norm),
        conv_filters=[int(f) for f in conv_filters],
    )


def _lookup(network, table=None):
    table = NETWORKS if table is None else table
    if network not in table:
        raise unknown_name("network", network, table)
    return table[network]


def make_encoder(network, data_shape, output_units, *, name="encoder", **options):
    """Encoder for ``data_shape`` emitting ``output_units`` numbers per example, built."""
    build, _ = _lookup(network)
    stack = keras.Sequential(build(tuple(data_shape), int(output_units), **_options(**options)), name=name)
    stack.build((None, *data_shape))
    return stack


def make_decoder(network, latent_dim, data_shape, output_channels, *, name="decoder", **options):
    """Decoder from ``latent_dim`` inputs to ``(*data_shape[:-1], output_channels)``, built."""
    _, build = _lookup(network)
    stack = keras.Sequential(build(tuple(data_shape), int(output_channels), **_options(**options)), name=name)
    stack.build((None, int(latent_dim)))
    return stack
