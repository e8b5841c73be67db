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


HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


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

    def log_weights(self, x, k):
        """log p(x|z) + log p(z) - log q(z|x) of k draws for each example, (k, batch): the IS-NLL's terms."""
        batch = x.shape[0]
        mean, log_variance = self.encoder(x).chunk(2, dim=-1)  # once; the draws repeat it, as the zoo's repeat_batch
        mean, log_variance = mean.repeat(k, 1), log_variance.repeat(k, 1)
        noise = torch.randn_like(mean)
        z = mean + torch.exp(0.5 * log_variance) * noise
        log_q = (-HALF_LOG_TWO_PI - 0.5 * log_variance - 0.5 * noise.square()).sum(1)
        log_p = (-HALF_LOG_TWO_PI - 0.5 * z.square()).sum(1)
        targets = x.repeat(k, *([1] * (x.dim() - 1)))
        log_likelihood = -functional.binary_cross_entropy_with_logits(self.decoder(z), targets, reduction="none").flatten(1).sum(1)
        return (log_likelihood + log_p - log_q).view(k, batch)


# --------------------------------------------------------------------------- the hierarchical VAE


def stage_sizes(height, width, min_resolution=4):
    """As ``vae_zoo.models.hierarchical_vae.stage_sizes``: halved while both sides are even and stay >= the minimum."""
    sizes = [(height, width)]
    while all(side % 2 == 0 and side // 2 >= min_resolution for side in sizes[-1]):
        sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
    return sizes


class LatentGroup(nn.Module):
    """``hierarchical_vae.LatentGroup``: prior and posterior heads, the projection of z, a residual block."""

    def __init__(self, width, latent_channels):
        super().__init__()
        self.latent_channels = latent_channels
        self.act = nn.SiLU()
        self.prior_hidden = nn.Conv2d(width, width, 3, padding=1)
        self.prior_out = nn.Conv2d(width, 2 * latent_channels + width, 1)
        self.posterior_hidden = nn.Conv2d(2 * width, width, 3, padding=1)
        self.posterior_out = nn.Conv2d(width, 2 * latent_channels, 1)
        self.project = nn.Conv2d(latent_channels, width, 1)
        self.block = ResidualBlock(width, "swish")

    def forward(self, h, bottom_up):
        """(features after this group, KL of each example, log p(z) - log q(z|x) of each example's draw)."""
        out = self.prior_out(self.act(self.prior_hidden(self.act(h))))
        p_mean, p_log_variance, prior_features = out.split([self.latent_channels, self.latent_channels, out.shape[1] - 2 * self.latent_channels], 1)
        joined = torch.cat([h, bottom_up], dim=1)
        q_mean, q_log_variance = self.posterior_out(self.act(self.posterior_hidden(self.act(joined)))).chunk(2, dim=1)
        noise = torch.randn_like(q_mean)
        z = q_mean + torch.exp(0.5 * q_log_variance) * noise
        kl = 0.5 * (p_log_variance - q_log_variance
                    + (q_log_variance.exp() + (q_mean - p_mean).square()) * torch.exp(-p_log_variance) - 1.0)
        log_p = -HALF_LOG_TWO_PI - 0.5 * p_log_variance - 0.5 * (z - p_mean).square() * torch.exp(-p_log_variance)
        log_q = -HALF_LOG_TWO_PI - 0.5 * q_log_variance - 0.5 * noise.square()
        return self.block(h + prior_features + self.project(z)), kl.flatten(1).sum(1), (log_p - log_q).flatten(1).sum(1)


def discretized_logistic_mixture_log_prob(params, x, components):
    """log p(x) per example under ``vae_zoo.models.logistic_mixture.DiscretizedLogisticMixture`` (PixelCNN++):
    ``params`` (batch, K (1 + 2C + C(C-1)/2), H, W), ``x`` (batch, C, H, W) holding levels v / 255."""
    channels = x.shape[1]
    k, pairs = components, channels * (channels - 1) // 2
    logits, means, log_scales, coefficients = params.split([k, k * channels, k * channels, k * pairs], dim=1)
    batch, height, width = x.shape[0], x.shape[2], x.shape[3]
    means = means.view(batch, channels, k, height, width)
    log_scales = log_scales.view(batch, channels, k, height, width).clamp(min=-7.0)
    coefficients = torch.tanh(coefficients).view(batch, pairs, k, height, width)
    scaled = 2.0 * torch.round(x * 255.0) / 255.0 - 1.0  # (batch, C, H, W)
    shifted = [means[:, 0]]
    for c in range(1, channels):
        shifted.append(means[:, c] + sum(coefficients[:, c * (c - 1) // 2 + j] * scaled[:, j:j + 1] for j in range(c)))
    means = torch.stack(shifted, dim=1)
    centred, inverse_scale = scaled[:, :, None] - means, torch.exp(-log_scales)
    upper, lower = inverse_scale * (centred + 1.0 / 255.0), inverse_scale * (centred - 1.0 / 255.0)
    log_d = math.log(2.0 / 255.0) - log_scales
    d = log_d.exp()
    small = d.clamp(max=0.1)
    series = log_d - small / 2.0 + small.square() / 24.0 - small.square().square() / 2880.0
    direct = torch.log(-torch.expm1(-d.clamp(min=0.1)))
    inner = functional.logsigmoid(upper) + functional.logsigmoid(-lower) + torch.where(d < 0.1, series, direct)
    values = scaled[:, :, None].expand_as(means)
    per_channel = torch.where(values < -1.0 + 1.0 / 255.0, functional.logsigmoid(upper),
                              torch.where(values > 1.0 - 1.0 / 255.0, functional.logsigmoid(-lower), inner))
    pixels = torch.logsumexp(functional.log_softmax(logits, dim=1) + per_channel.sum(1), dim=1)
    return pixels.flatten(1).sum(1)


class HierarchicalVAE(nn.Module):
    """``vae_zoo.models.hierarchical_vae.HierarchicalVAE`` with the swish residual blocks, no normalization and the
    discretized logistic mixture: a bottom-up residual path, then a top-down path from learned top features with
    ``groups_per_stage`` latent groups at every resolution up to ``max_latent_resolution``."""

    def __init__(self, shape, width=32, latent_channels=4, groups_per_stage=2, blocks_per_stage=1,
                 max_latent_resolution=16, components=5):
        super().__init__()
        height, width_pixels, channels = shape
        self.components = components
        self.sizes = stage_sizes(height, width_pixels)
        latent_sizes = [size for size in self.sizes if max(size) <= max_latent_resolution]
        self.act = nn.SiLU()
        self.stem = nn.Conv2d(channels, width, 3, padding=1)
        self.encoder_stages = nn.ModuleList(
            nn.ModuleList(ResidualBlock(width, "swish") for _ in range(blocks_per_stage)) for _ in self.sizes)
        self.decoder_stages = nn.ModuleList(
            nn.ModuleList(LatentGroup(width, latent_channels) for _ in range(groups_per_stage)) if size in latent_sizes
            else nn.ModuleList(ResidualBlock(width, "swish") for _ in range(blocks_per_stage)) for size in self.sizes)
        self.top_features = nn.Parameter(0.1 * torch.randn(width, *self.sizes[-1]))
        self.output = nn.Conv2d(width, components * (1 + 2 * channels + channels * (channels - 1) // 2), 1)

    def loss(self, x):
        log_likelihood, kl, _ = self.terms(x)
        return (kl - log_likelihood).mean()

    def log_weights(self, x, k):
        """(k, batch) importance weights' logarithms; the bottom-up pass runs once, its features repeated k times."""
        log_likelihood, _, log_ratio = self.terms(x, k)
        return (log_likelihood + log_ratio).view(k, x.shape[0])

    def terms(self, x, k=1):
        """log p(x|z), the summed KL and log p(z) - log q(z|x), per draw (k draws of each example, draw-major)."""
        h = self.stem(2.0 * x - 1.0)
        features = []
        for s, stage in enumerate(self.encoder_stages):
            if s:
                h = functional.avg_pool2d(h, 2)
            for block in stage:
                h = block(h)
            features.append(h.repeat(k, 1, 1, 1) if k > 1 else h)
        x = x.repeat(k, 1, 1, 1) if k > 1 else x
        h = self.top_features[None].expand(x.shape[0], -1, -1, -1)
        kl = log_ratio = 0.0
        for s in reversed(range(len(self.sizes))):
            if s < len(self.sizes) - 1:
                h = functional.interpolate(h, scale_factor=2, mode="nearest")  # Keras's UpSampling2D
            for layer in self.decoder_stages[s]:
                if isinstance(layer, LatentGroup):
                    h, group_kl, group_log_ratio = layer(h, features[s])
                    kl, log_ratio = kl + group_kl, log_ratio + group_log_ratio
                else:
                    h = layer(h)
        log_likelihood = discretized_logistic_mixture_log_prob(self.output(self.act(h)).float(), x, self.components)
        return log_likelihood, kl, log_ratio


def build(architecture, shape, latent=20):
    """The PyTorch VAE for one of tools/bench_vs_torch.py's ARCHITECTURES at ``shape`` (height, width, channels)."""
    if architecture == "mlp":
        encoder, decoder = mlp_networks(shape, latent)
    elif architecture == "conv":
        encoder, decoder = conv_networks(shape, latent)
    elif architecture == "resnet":
        encoder, decoder = conv_networks(shape, latent, activation_name="swish", blocks=1)
    elif architecture == "hierarchical":
        return HierarchicalVAE(shape)
    else:
        raise ValueError(f"no PyTorch mirror of {architecture!r}")
    return BernoulliVAE(encoder, decoder, latent)
