"""How bits-back coding codes the pixels under p(x|z): the step between the latents' pop and push.

``BernoulliPixels`` codes binary images bit by bit. ``LevelPixels`` codes 8-bit images (levels 0-255, grey or
colour) under the discretized logistic mixture (``vae_zoo.models.logistic_mixture``) with the exact discrete
probabilities the model assigns: a pixel's channels one after another, each with a categorical over its 256
levels, the mixture's component weights updated by the channels already coded, so that the product of the
coded probabilities is the pixel's joint probability p(r) p(g | r) p(b | r, g) = p(r, g, b). The probabilities
are computed in float64 numpy from the decoder's float32 parameters, the same arithmetic when encoding and
decoding. ``constriction``'s ``Categorical`` is the coder's model: no coder here is written by hand.
"""

import constriction
import numpy as np
from scipy import special

from vae_zoo.errors import InputError
from vae_zoo.models.logistic_mixture import HALF_BIN, MIN_LOG_SCALE, parameter_count

LEVELS = 256
_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)
_BERNOULLI = constriction.stream.model.Bernoulli(perfect=False)
CHUNK_VALUES = 4_000_000  # float64 numbers of one (pixels, components, 256) block: about 32 MB


def _values_kept(mask, shape):
    """Which of the flattened values of an (n, H, W, C) array a pixel mask (n, H, W) keeps; all without one."""
    if mask is None:
        return slice(None)
    return np.broadcast_to(np.asarray(mask)[..., None], shape).reshape(-1)


class BernoulliPixels:
    """Binary images (0 and 1) coded under Bernoulli(sigmoid(logits))."""

    kind = "binary"

    def check(self, images):
        values = np.unique(images)
        if not np.isin(values, (0, 1)).all():
            raise InputError(f"lossless coding with a Bernoulli likelihood needs binary images (0 and 1); these have "
                             f"{len(values)} distinct values from {values.min()} to {values.max()}: binarize them first "
                             "(vae-zoo compress --binarize threshold or stochastic)")

    def symbols(self, images):
        return np.asarray(images).astype(np.int32)

    def network_input(self, symbols):
        return symbols.astype(np.float32)

    def restore(self, symbols, dtype):
        return symbols.astype(dtype)

    def push(self, coder, params, symbols, mask=None):
        """Code ``symbols`` (n, H, W, C); with ``mask`` (n, H, W), only the pixels where it is true."""
        keep = _values_kept(mask, symbols.shape)
        coder.encode_reverse(symbols.reshape(-1)[keep], _BERNOULLI, self.probabilities(params)[keep])

    def pop(self, coder, params, shape, mask=None):
        """The inverse of ``push``; pixels outside ``mask`` come back as 0, for the caller to fill."""
        keep = _values_kept(mask, shape)
        values = np.zeros(int(np.prod(shape)), np.int32)
        values[keep] = coder.decode(_BERNOULLI, self.probabilities(params)[keep])
        return values.reshape(shape)

    @staticmethod
    def probabilities(logits):
        # This formula, not scipy's expit: the files written before 8-bit coding existed decode bit for bit.
        return 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64).reshape(-1)))


def bin_probabilities(means, log_scales):
    """P(level v) for v = 0..255 under logistics (..., ) of ``means`` and ``log_scales`` on [-1, 1]: (..., 256),
    float64, each row summing to 1; the edge bins reach to -inf and +inf, as in the likelihood."""
    means = np.asarray(means, np.float64)[..., None]
    inverse_scale = np.exp(-np.maximum(np.asarray(log_scales, np.float64), MIN_LOG_SCALE))[..., None]
    centres = 2.0 * np.arange(LEVELS) / (LEVELS - 1) - 1.0
    upper = inverse_scale * (centres - means + HALF_BIN)
    lower = inverse_scale * (centres - means - HALF_BIN)
    # log(sigmoid(upper) - sigmoid(lower)) without cancellation (see logistic_mixture.bin_log_probability).
    log_mass = special.log_expit(upper) + special.log_expit(-lower) + np.log(-np.expm1(lower - upper))
    log_mass[..., 0] = special.log_expit(upper[..., 0])
    log_mass[..., -1] = special.log_expit(-lower[..., -1])
    mass = np.exp(log_mass)
    return mass / mass.sum(axis=-1, keepdims=True)  # float64 rounding only: the bins tile the line


class LevelPixels:
    """8-bit images (levels 0-255 as integers, or as floats v / 255) coded under a discretized logistic mixture
    of ``components`` logistics over ``channels`` channels, channel by channel."""

    kind = "8-bit"

    def __init__(self, components, channels):
        self.components, self.channels = int(components), int(channels)

    def check(self, images):
        images = np.asarray(images)
        levels = images if np.issubdtype(images.dtype, np.integer) else images * (LEVELS - 1)
        if levels.min() < 0 or levels.max() > LEVELS - 1 or not np.array_equal(self.restore(self.symbols(images), images.dtype), images):
            raise InputError("lossless coding under the discretized logistic mixture needs 8-bit images: integers "
                             "0-255, or floats that are exactly v / 255")

    def symbols(self, images):
        images = np.asarray(images)
        levels = images if np.issubdtype(images.dtype, np.integer) else np.rint(images * (LEVELS - 1))
        return levels.astype(np.int32)

    def network_input(self, symbols):
        return symbols.astype(np.float32) / np.float32(LEVELS - 1)

    def restore(self, symbols, dtype):
        """The decoded levels in the dtype the images had: integers as they are, floats as v / 255 in that dtype."""
        dtype = np.dtype(dtype)
        if np.issubdtype(dtype, np.integer):
            return symbols.astype(dtype)
        return (symbols.astype(dtype) / dtype.type(LEVELS - 1)).astype(dtype)

    def _split(self, params):
        """(log mixture weights (n, K), means (n, C, K), log-scales (n, C, K), coefficients (n, pairs, K)) per
        pixel, from the decoder's (..., parameters) output, as the likelihood reads them."""
        k, c = self.components, self.channels
        params = np.asarray(params, np.float64).reshape(-1, parameter_count(k, c))
        logits, means, log_scales, coefficients = np.split(params, np.cumsum([k, k * c, k * c]), axis=-1)
        n = len(params)
        return (special.log_softmax(logits, axis=-1), means.reshape(n, c, k), log_scales.reshape(n, c, k),
                np.tanh(coefficients).reshape(n, c * (c - 1) // 2, k))

    def _channel_means(self, means, coefficients, values, channel):
        """Means of ``channel`` under every component, shifted by the values (on [-1, 1]) of the channels before it."""
        mean = means[:, channel, :].copy()
        for j in range(channel):
            mean += coefficients[:, channel * (channel - 1) // 2 + j, :] * values[:, j:j + 1]
        return mean

    def _channel_probabilities(self, parts, levels, channel):
        """(pixels, 256) probabilities of ``channel`` given the levels of the channels before it; ``parts`` from
        ``_split``; the component weights are updated by those channels' probabilities."""
        log_weights, means, log_scales, coefficients = parts
        values = 2.0 * levels / (LEVELS - 1) - 1.0
        pixels = len(log_weights)
        rows = max(1, CHUNK_VALUES // (self.components * LEVELS))
        result = np.empty((pixels, LEVELS))
        for start in range(0, pixels, rows):
            part = slice(start, start + rows)
            weights = log_weights[part].copy()
            for j in range(channel):  # the posterior over components after the channels already coded
                table = bin_probabilities(self._channel_means(means[part], coefficients[part], values[part], j),
                                          log_scales[part, j, :])
                taken = np.take_along_axis(table, levels[part, j].astype(np.int64)[:, None, None], axis=-1)[..., 0]
                weights += np.log(taken)
            weights = special.softmax(weights, axis=-1)
            table = bin_probabilities(self._channel_means(means[part], coefficients[part], values[part], channel),
                                      log_scales[part, channel, :])
            result[part] = np.einsum("pk,pkv->pv", weights, table)
        return result

    def push(self, coder, params, symbols, mask=None):
        """Code ``symbols`` (n, H, W, C); with ``mask`` (n, H, W), only the pixels where it is true."""
        keep = slice(None) if mask is None else np.asarray(mask).reshape(-1)
        parts = tuple(part[keep] for part in self._split(params))
        levels = symbols.reshape(-1, self.channels)[keep]
        # A stack: the last channel first, so that decoding pops the first channel first.
        for channel in reversed(range(self.channels)):
            coder.encode_reverse(levels[:, channel], _CATEGORICAL, self._channel_probabilities(parts, levels, channel))

    def pop(self, coder, params, shape, mask=None):
        """The inverse of ``push``; pixels outside ``mask`` come back as 0, for the caller to fill."""
        keep = slice(None) if mask is None else np.asarray(mask).reshape(-1)
        parts = tuple(part[keep] for part in self._split(params))
        levels = np.zeros((len(parts[0]), self.channels), np.int32)
        for channel in range(self.channels):
            levels[:, channel] = coder.decode(_CATEGORICAL, self._channel_probabilities(parts, levels, channel))
        every = np.zeros((int(np.prod(shape[:-1])), self.channels), np.int32)
        every[keep] = levels
        return every.reshape(shape)
