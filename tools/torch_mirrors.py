"""PyTorch versions of the zoo's VAE bodies, layer for layer, for tools/bench_vs_torch.py (never imported by vae_zoo).

Each mirrors what ``vae_zoo.create_model("vae", encoder=SPEC, likelihood="bernoulli")`` builds for the same spec:
the same layers in the same order, the same widths, kernels, strides and activations, the same Bernoulli
likelihood on logits and the closed-form KL to N(0, I). Only the layout differs: PyTorch keeps images as
(batch, channels, height, width).
"""

import math

import torch
from torch import nn
from torch.nn import functional


def activation(name):
    return {"relu": nn.ReLU(), "swish": nn.SiLU()}[name]


def downsample(in_channels, out_channels):
    """Keras's Conv2D(3, strides=2, padding='same') on even sides: PyTorch pads one on each side."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1)


def upsample(in_channels, out_channels):
    """Keras's Conv2DTranspose(3, strides=2, padding='same'): twice the side."""
    return nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1)


class ResidualBlock(nn.Module):
    """x + conv(act(conv(act(x)))), as ``vae_zoo.networks.resnet.ResidualBlock`` without normalization."""

    def __init__(self, channels, act):
        super().__init__()
        self.conv_0 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv_1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = activation(act)

    def forward(self, x):
        return x + self.conv_1(self.act(self.conv_0(self.act(x))))


def dense_stack(sizes, in_units, act):
    layers = []
    for units in sizes:
        layers += [nn.Linear(in_units, units), activation(act)]
        in_units = units
    return layers, in_units


def mlp_networks(shape, latent, hidden_sizes=(400, 400), activation_name="relu"):
    pixels = math.prod(shape)
    encoder, units = dense_stack(hidden_sizes, pixels, activation_name)
    decoder, back = dense_stack(hidden_sizes[::-1], latent, activation_name)
    return (nn.Sequential(nn.Flatten(), *encoder, nn.Linear(units, 2 * latent)),
            nn.Sequential(*decoder, nn.Linear(back, pixels), nn.Unflatten(1, (shape[2], shape[0], shape[1]))))


def conv_networks(shape, latent, filters=(32, 64), hidden_sizes=(256,), activation_name="relu", blocks=None):
    """The conv body (``blocks`` None) or the resnet body (``blocks`` residual blocks a stage)."""
    height, width, channels = shape
    act = activation_name
    encoder, previous = [], channels
    if blocks is not None:  # resnet: a linear stem, linear stride-2 convolutions, residual stages, one activation
        encoder.append(nn.Conv2d(channels, filters[0], 3, padding=1))
        previous = filters[0]
    for count in filters:
        encoder.append(downsample(previous, count))
        encoder += [activation(act)] if blocks is None else [ResidualBlock(count, act) for _ in range(blocks)]
        previous = count
    if blocks is not None:
        encoder.append(activation(act))
    grid = (height // 2 ** len(filters), width // 2 ** len(filters))
    flat = filters[-1] * grid[0] * grid[1]
    dense, units = dense_stack(hidden_sizes, flat, act)
    encoder = nn.Sequential(*encoder, nn.Flatten(), *dense, nn.Linear(units, 2 * latent))

    dense, units = dense_stack(hidden_sizes[::-1], latent, act)
    decoder = [*dense, nn.Linear(units, flat), activation(act), nn.Unflatten(1, (filters[-1], *grid))]
    reversed_filters = list(filters[::-1])
    for i, count in enumerate(reversed_filters):
        if blocks is None:
            decoder += [upsample(count if i == 0 else reversed_filters[i - 1], count), activation(act)]
        else:
            following = reversed_filters[i + 1] if i + 1 < len(reversed_filters) else reversed_filters[-1]
            decoder += [ResidualBlock(count, act) for _ in range(blocks)] + [upsample(count, following)]
    last = reversed_filters[-1]
    if blocks is not None:
        decoder.append(activation(act))
    decoder.append(nn.Conv2d(last, channels, 3, padding=1))
    return encoder, nn.Sequential(*decoder)


class BernoulliVAE(nn.Module):
    """The seed's objective: a Gaussian posterior, N(0, I) prior, Bernoulli likelihood on logits, one z per example."""

    def __init__(self, encoder, decoder, latent):
        super().__init__()
        self.encoder, self.decoder, self.latent = encoder, decoder, latent

    def loss(self, x):
        mean, log_variance = self.encoder(x).chunk(2, dim=-1)
        z = mean + torch.exp(0.5 * log_variance) * torch.randn_like(mean)
        logits = self.decoder(z)
        reconstruction = functional.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
        kl = 0.5 * (mean.square() + log_variance.exp() - 1.0 - log_variance).sum(1)
        return (reconstruction + kl).mean()


def build(architecture, shape, latent=20):
    """The PyTorch VAE for one of tools/bench_vs_torch.py's ARCHITECTURES at ``shape`` (height, width, channels)."""
    if architecture == "mlp":
        encoder, decoder = mlp_networks(shape, latent)
    elif architecture == "conv":
        encoder, decoder = conv_networks(shape, latent)
    elif architecture == "resnet":
        encoder, decoder = conv_networks(shape, latent, activation_name="swish", blocks=1)
    else:
        raise ValueError(f"no PyTorch mirror of {architecture!r}")
    return BernoulliVAE(encoder, decoder, latent)
