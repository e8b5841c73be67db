"""Encoder and decoder bodies, chosen by a spec and resolved through a registry.

A spec is a name or a dict with a ``name`` and the body's options::

    encoder={"name": "conv", "filters": [32, 64], "hidden_sizes": [256]}
    decoder=None                      # the encoder's body, mirrored

A body is one file in this package: a class registered with
``@register_network("name")`` whose constructor takes the options and which
builds the layer stacks a model asks for (``encoder_layers``,
``decoder_layers``, and for models with a grid of codes ``grid``,
``grid_encoder_layers``, ``grid_decoder_layers``). Adding a body adds no
option to any model's constructor.
"""

import importlib
import pkgutil

import keras

from vae_zoo.registry import resolve

NETWORKS = {}


def register_network(name):
    """Class decorator: make a network body available to specs under ``name``."""

    def decorator(cls):
        if name in NETWORKS:
            raise ValueError(f"network {name!r} is already registered")
        cls.registered_name = name
        NETWORKS[name] = cls
        return cls

    return decorator


def list_networks():
    return sorted(NETWORKS)


def network_body(spec):
    """The body a spec names, with its options."""
    return resolve(NETWORKS, "network", spec)


def _stack(layers, input_shape, name):
    stack = keras.Sequential(layers, name=name)
    stack.build((None, *input_shape))
    return stack


def make_encoder(spec, data_shape, output_units, name="encoder"):
    """Encoder for examples of ``data_shape`` emitting ``output_units`` numbers each, built."""
    return _stack(network_body(spec).encoder_layers(tuple(data_shape), int(output_units)), data_shape, name)


def make_decoder(spec, input_units, data_shape, output_channels, name="decoder"):
    """Decoder from ``input_units`` numbers to ``(*data_shape[:-1], output_channels)``, built."""
    return _stack(network_body(spec).decoder_layers(tuple(data_shape), int(output_channels)), (int(input_units),), name)


def grid_shape(spec, data_shape, positions):
    """The grid of codes a body's grid encoder gives for ``data_shape`` (``positions`` codes where it has no spatial layout)."""
    return network_body(spec).grid(tuple(data_shape), int(positions))


def make_grid_encoder(spec, data_shape, grid, channels, name="encoder"):
    """Encoder from examples to a grid of ``channels``-vectors, shape ``(*grid, channels)``, built."""
    return _stack(network_body(spec).grid_encoder_layers(tuple(data_shape), tuple(grid), int(channels)), data_shape, name)


def make_grid_decoder(spec, grid, channels, data_shape, output_channels, name="decoder"):
    """Decoder from a ``(*grid, channels)`` grid to ``(*data_shape[:-1], output_channels)``, built."""
    return _stack(network_body(spec).grid_decoder_layers(tuple(data_shape), int(output_channels)), (*grid, int(channels)), name)


# Importing every module of this package registers every body: adding a body is adding its file.
for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
