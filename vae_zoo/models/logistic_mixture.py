"""The discretized logistic mixture likelihood for 8-bit images (Salimans et al., PixelCNN++, ICLR 2017).

Each pixel is a mixture of K logistics over its channels. Under component k, channel c has mean
mu_ck + sum_{j<c} a_cjk x_j (the channel-wise linear dependence of PixelCNN++, which has it for RGB: green
depends on red, blue on both) and scale s_ck. A value is one of 256 bins of [-1, 1] (the grey level v maps
to 2 v / 255 - 1, bins 2 / 255 wide): its probability is the logistic's mass over the bin, with the first bin
reaching down to -inf and the last up to +inf, so that the 256 probabilities sum to 1 exactly. The
log-likelihood is therefore a discrete probability, and -log2 of it a code length in bits.

The decoder emits, per position, K logits, K * C means, K * C log-scales and K * C (C - 1) / 2 coefficients.
"""

import numpy as np
import tensorflow as tf

from vae_zoo.errors import InputError

# PixelCNN++ bounds the log-scales below: narrower logistics than this put all their mass in one bin anyway.
MIN_LOG_SCALE = -7.0
HALF_BIN = 1.0 / 255.0  # half the width of a grey level's bin on [-1, 1]


def parameter_count(components, channels):
    """Numbers per position: logits, means, log-scales and the channel coefficients of every component."""
    return components * (1 + 2 * channels + channels * (channels - 1) // 2)


def log_sigmoid(x):
    return -tf.nn.softplus(-x)


def log_one_minus_exp_neg(log_d):
    """log(1 - exp(-d)) from log d, finite for every finite log d. Below d = 0.1 it is the series
    log d - d/2 + d^2/24 - d^4/2880 (that of log((1 - e^-d) / d), to 4e-8 there), exact where 1 - e^-d rounds to 0."""
    d = tf.exp(log_d)
    # Each branch sees inputs on which it is finite, so the one not taken passes no NaN into the gradient.
    small = tf.minimum(d, 0.1)
    series = log_d - small / 2.0 + tf.square(small) / 24.0 - tf.square(tf.square(small)) / 2880.0
    direct = tf.math.log(-tf.math.expm1(-tf.maximum(d, 0.1)))
    return tf.where(d < 0.1, series, direct)


def bin_log_probability(x, mean, log_scale):
    """log P(x's bin) under a logistic(mean, exp(log_scale)), elementwise, for x on the 256 levels of [-1, 1].

    The bin's mass sigmoid(a) - sigmoid(b), a = (x + h - mean) / s, b = (x - h - mean) / s, is taken as
    sigmoid(a) * sigmoid(-b) * (1 - exp(b - a)), whose logarithm has no cancellation whatever the mean and the
    scale (a - b = 2h / s > 0); the lowest bin is log sigmoid(a), the highest log sigmoid(-b).
    """
    inverse_scale = tf.exp(-log_scale)
    centred = x - mean
    upper = inverse_scale * (centred + HALF_BIN)
    lower = inverse_scale * (centred - HALF_BIN)
    # log(1 - exp(b - a)) from the log-scale: b - a itself underflows to 0 once the scale passes e^88 or so.
    inner = log_sigmoid(upper) + log_sigmoid(-lower) + log_one_minus_exp_neg(np.log(2.0 * HALF_BIN) - log_scale)
    return tf.where(x < -1.0 + HALF_BIN, log_sigmoid(upper), tf.where(x > 1.0 - HALF_BIN, log_sigmoid(-lower), inner))


def clipped_logistic_mean(mean, scale):
    """E[clip(X, -1, 1)] for X ~ logistic(mean, scale): -1 + s (softplus((mean + 1) / s) - softplus((mean - 1) / s))."""
    return -1.0 + scale * (tf.nn.softplus((mean + 1.0) / scale) - tf.nn.softplus((mean - 1.0) / scale))


class DiscretizedLogisticMixture:
    """p(x | params) over images of ``channels`` channels, for x in [0, 1] holding 8-bit levels v / 255.

    ``params``: (..., H, W, K * (1 + 2C + C(C-1)/2)). ``log_prob(x)`` sums over the last ``event_ndims`` axes of
    x (3 for an image: height, width and the channels, which each pixel's mixture covers).
    """

    def __init__(self, params, channels, event_ndims=3):
        self.params = tf.convert_to_tensor(params, tf.float32)
        self.channels, self.event_ndims = int(channels), int(event_ndims)
        per_component = parameter_count(1, self.channels)
        total = self.params.shape[-1]
        if total is None or total % per_component:
            raise InputError(f"a discretized logistic mixture over {self.channels} channels takes a multiple of "
                             f"{per_component} parameters per position, got {total}")
        self.components = total // per_component
        k, c = self.components, self.channels
        sizes = [k, k * c, k * c, k * (c * (c - 1) // 2)]
        logits, means, log_scales, coefficients = tf.split(self.params, sizes, axis=-1)
        shape = tf.concat([tf.shape(self.params)[:-1], [c, k]], axis=0)
        self.logits = logits  # (..., K)
        self.means = tf.reshape(means, shape)  # (..., C, K)
        self.log_scales = tf.maximum(tf.reshape(log_scales, shape), MIN_LOG_SCALE)
        self.coefficients = tf.tanh(coefficients)  # (..., K * pairs): pair (c, j) for j < c, in order

    def _coefficient(self, c, j):
        pair = c * (c - 1) // 2 + j
        return self.coefficients[..., pair * self.components:(pair + 1) * self.components]

    def _component_means(self, values):
        """(..., C, K) means with each channel shifted by the ``values`` (..., C) of the channels before it."""
        means = [self.means[..., 0, :]]
        for c in range(1, self.channels):
            shift = tf.add_n([self._coefficient(c, j) * values[..., j:j + 1] for j in range(c)])
            means.append(self.means[..., c, :] + shift)
        return tf.stack(means, axis=-2)

    def pixel_log_prob(self, x):
        """log p of each pixel (all its channels), (..., H, W), for x (..., H, W, C) in [0, 1]."""
        x = tf.cast(x, tf.float32)
        # Exact bins: x holds v / 255, and rounding keeps float noise in x from moving it off its bin's centre.
        scaled = 2.0 * tf.round(x * 255.0) / 255.0 - 1.0
        means = self._component_means(scaled)
        per_channel = bin_log_probability(scaled[..., None], means, self.log_scales)  # (..., C, K)
        return tf.reduce_logsumexp(tf.nn.log_softmax(self.logits) + tf.reduce_sum(per_channel, axis=-2), axis=-1)

    def log_prob(self, x):
        """log p(x) per example, computed (and differentiated) as one XLA-compiled function: see
        ``fused_pixel_log_prob``."""
        return self._sum_pixels(fused_pixel_log_prob(self.params, tf.cast(x, tf.float32), self.channels))

    def unfused_log_prob(self, x):
        """The same value with TensorFlow's ops only, for exports to runtimes without XLA (TFLite, ONNX)."""
        return self._sum_pixels(self.pixel_log_prob(x))

    def _sum_pixels(self, pixels):
        return tf.reduce_sum(pixels, axis=list(range(-(self.event_ndims - 1), 0)))

    def mean(self):
        """The expected image in [0, 1] (to within half a grey level: the clipped logistic's mean, not the binned
        one's), each channel's component mean shifted by the expected values of the channels before it."""
        weights = tf.nn.softmax(self.logits)  # (..., K)
        scales = tf.exp(self.log_scales)
        expected, channels = [], []
        for c in range(self.channels):
            mean = self.means[..., c, :]
            for j in range(c):
                mean += self._coefficient(c, j) * expected[j]
            expected.append(clipped_logistic_mean(mean, scales[..., c, :]))
            channels.append(tf.reduce_sum(weights * expected[-1], axis=-1))
        return (tf.stack(channels, axis=-1) + 1.0) / 2.0

    def sample_levels(self, seed=None):
        """One draw as int32 grey levels 0-255, (..., H, W, C): a component, then the channels in order."""
        seed = tf.random.uniform([2], 0, 2**31 - 1, dtype=tf.int32) if seed is None else tf.cast(seed, tf.int32)
        component_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        batch_shape = tf.shape(self.logits)[:-1]
        flat_logits = tf.reshape(self.logits, [-1, self.components])
        component = tf.random.stateless_categorical(flat_logits, 1, component_seed)[:, 0]
        chosen = tf.reshape(tf.one_hot(component, self.components), tf.shape(self.logits))
        uniform = tf.random.stateless_uniform(tf.concat([batch_shape, [self.channels]], 0), noise_seed,
                                              minval=1e-5, maxval=1.0 - 1e-5)
        values = []
        for c in range(self.channels):
            mean = self.means[..., c, :]
            for j in range(c):
                mean += self._coefficient(c, j) * values[j][..., None]
            loc = tf.reduce_sum(chosen * mean, axis=-1)
            scale = tf.exp(tf.reduce_sum(chosen * self.log_scales[..., c, :], axis=-1))
            u = uniform[..., c]
            draw = loc + scale * (tf.math.log(u) - tf.math.log1p(-u))
            # The next channels depend on this one's value as it will be stored: on its level.
            values.append(2.0 * tf.round(tf.clip_by_value((draw + 1.0) / 2.0, 0.0, 1.0) * 255.0) / 255.0 - 1.0)
        return tf.cast(tf.round((tf.stack(values, axis=-1) + 1.0) * 127.5), tf.int32)

    def sample(self, seed=None):
        """One draw as uint8 images, (..., H, W, C)."""
        return tf.cast(self.sample_levels(seed), tf.uint8)

    def float_sample(self, seed=None):
        """One draw as float32 images of the levels v / 255 on [0, 1], for models whose images are floats."""
        return tf.cast(self.sample_levels(seed), tf.float32) / 255.0


@tf.function(jit_compile=True)
def fused_pixel_log_prob(params, x, channels):
    """``DiscretizedLogisticMixture(params, channels).pixel_log_prob(x)``, compiled by XLA whatever the caller: the
    slices, sigmoids, selects and their gradients fuse into a few passes over the pixels. Without XLA (convolutional
    models on a CPU) they were about 5% of the hierarchical VAE's training step (an ablation beside
    tools/bench_vs_torch.py)."""
    return DiscretizedLogisticMixture(params, channels).pixel_log_prob(x)
