"""Likelihoods p(x|z) and priors p(z) as TFP distributions, chosen by name.

A spec is either a name (``"bernoulli"``) or a dict with a ``name`` and keyword
arguments (``{"name": "gaussian_fixed", "scale": 0.1}``), so that a model's
config stays plain JSON and round-trips through ``.keras`` files.
"""

import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from vae_zoo.models import logistic_mixture
from vae_zoo.registry import resolve

tfd = tfp.distributions


# --------------------------------------------------------------------------- likelihoods


class Likelihood:
    """Turns the decoder's raw output into p(x|z) over one data example.

    ``params_per_channel`` tells the decoder how many numbers to emit per data
    channel (1 for Bernoulli logits, 2 for a Gaussian's mean and log-variance).
    """

    params_per_channel = 1
    # The values data may take, (low, high), where the likelihood is only defined on a range.
    support = None

    def __init__(self, event_ndims):
        self.event_ndims = event_ndims

    def __call__(self, params):
        raise NotImplementedError

    def param_channels(self, data_channels):
        """How many numbers the decoder emits per position for data with ``data_channels`` channels."""
        return data_channels * self.params_per_channel

    def plain_log_prob(self, params, x):
        """log p(x | params) per example with elementary ops only (for the portable export); the
        distribution's own ``log_prob`` where that is already so."""
        return self(params).log_prob(x)

    def evaluation_log_prob(self, params, x):
        """log p(x | params) per example where no gradient is needed (importance-sampled likelihoods, validation):
        the distribution's own ``log_prob`` unless a likelihood has a faster form of the same value."""
        return self(params).log_prob(x)

    def _independent(self, distribution):
        return tfd.Independent(distribution, reinterpreted_batch_ndims=self.event_ndims)


# Factors multiplied together before one logarithm in bernoulli_log_prob_sum: each factor lies in (1, 2], so a
# group's product stays under 2 ** 16 and its relative rounding under 16 float32 ulps (1e-6 nats a group).
SOFTPLUS_GROUP = 16


@tf.function(jit_compile=True)
def bernoulli_log_prob_sum(logits, x):
    """sum_j [x_j l_j - softplus(l_j)] over the last axis of (draws, rows, values) logits, for (rows, values) x that
    broadcasts over the draws, with one logarithm per ``SOFTPLUS_GROUP`` values: softplus(l) = max(l, 0) +
    log(1 + exp(-|l|)), and the logs of a group add up to the log of its product. Same value as TFP's Bernoulli
    log_prob to float32 rounding (tested), about twice as fast on a CPU, where the IS-NLL's time otherwise goes as
    much to the per-pixel logarithms as to the decoder's matmuls. Compiled by XLA whatever the caller, so the exp,
    products, sums and the broadcast of x fuse into one pass over the logits."""
    draws, rows, values = tf.shape(logits)[0], tf.shape(logits)[1], logits.shape[-1]
    padding = -values % SOFTPLUS_GROUP
    # Padded logits of -inf give factors of exactly 1 and a max(l, 0) of 0: they change nothing.
    padded = tf.pad(logits, [[0, 0], [0, 0], [0, padding]], constant_values=-float("inf"))
    factors = 1.0 + tf.exp(-tf.abs(padded))
    groups = tf.reduce_prod(tf.reshape(factors, [draws, rows, (values + padding) // SOFTPLUS_GROUP, SOFTPLUS_GROUP]),
                            axis=-1)
    return tf.reduce_sum(x * logits - tf.nn.relu(logits), axis=-1) - tf.reduce_sum(tf.math.log(groups), axis=-1)


class FusedBernoulli(tfd.Bernoulli):
    """TFP's Bernoulli, with log_prob as one fused sigmoid cross-entropy.

    TFP evaluates log p and log(1 - p) separately and combines them with two
    multiply_no_nan ops; on a CPU that costs about 7% of a training step of the
    seed's VAE (an ablation beside tools/bench_train.py). The value is the same:
    x log sigmoid(l) + (1 - x) log sigmoid(-l), for binary or grey x.
    """

    def _log_prob(self, event):
        logits = self._logits_parameter_no_checks()
        event = tf.cast(event, logits.dtype)
        # The op wants equal shapes; TFP's log_prob broadcasts x against the logits (k draws of one x, say).
        if event.shape != logits.shape or not logits.shape.is_fully_defined():
            shape = tf.broadcast_dynamic_shape(tf.shape(event), tf.shape(logits))
            event, logits = tf.broadcast_to(event, shape), tf.broadcast_to(logits, shape)
        return -tf.nn.sigmoid_cross_entropy_with_logits(labels=event, logits=logits)


class BernoulliLikelihood(Likelihood):
    """Bernoulli pixels parameterized by logits (for binary or [0, 1] data)."""

    support = (0.0, 1.0)

    def plain_log_prob(self, logits, x):
        # x log s(l) + (1 - x) log s(-l) = x l - max(l, 0) - log(1 + exp(-|l|)), written without
        # log1p: tf2onnx exports Log1p, which onnxruntime refuses to load.
        per_value = x * logits - tf.nn.relu(logits) - tf.math.log(1.0 + tf.exp(-tf.abs(logits)))
        return tf.reduce_sum(tf.reshape(per_value, [tf.shape(x)[0], -1]), axis=1)

    def evaluation_log_prob(self, logits, x):
        event_axis = logits.shape.rank - self.event_ndims
        values = math.prod(logits.shape[event_axis:])
        x = tf.cast(x, logits.dtype)
        x_batch = x.shape[:x.shape.rank - self.event_ndims]
        if 0 < len(x_batch) <= event_axis and x_batch.is_fully_defined() and (
                x_batch.as_list() == logits.shape[event_axis - len(x_batch):event_axis].as_list()):
            # The same x under every draw (the k draws of an IS estimate lead): it broadcasts in the fused pass.
            rows = x_batch.num_elements()
            flat_logits, flat_x = tf.reshape(logits, [-1, rows, values]), tf.reshape(x, [rows, values])
        else:
            flat_logits = tf.reshape(logits, [1, -1, values])
            flat_x = tf.reshape(tf.broadcast_to(x, tf.shape(logits)), [-1, values])
        return tf.reshape(bernoulli_log_prob_sum(flat_logits, flat_x), tf.shape(logits)[:event_axis])

    def __call__(self, logits):
        return self._independent(FusedBernoulli(logits=logits, dtype=logits.dtype))


class GaussianLikelihood(Likelihood):
    """Gaussian with a learned per-pixel variance: the decoder's mean and log-variance heads.

    The log-variance is softly floored at ``min_log_variance``: on images whose
    background is exactly constant the likelihood is otherwise unbounded and
    training diverges as the variance goes to zero.
    """

    params_per_channel = 2

    def __init__(self, event_ndims, min_log_variance=-9.0):
        super().__init__(event_ndims)
        self.min_log_variance = float(min_log_variance)

    def __call__(self, params):
        mean, raw_log_variance = tf.split(params, 2, axis=-1)
        floor = self.min_log_variance
        log_variance = floor + tf.nn.softplus(raw_log_variance - floor)
        return self._independent(tfd.Normal(mean, tf.exp(0.5 * log_variance)))


class FixedGaussianLikelihood(Likelihood):
    """Gaussian with a fixed, shared standard deviation ``scale`` (squared error, scaled)."""

    def __init__(self, event_ndims, scale=1.0):
        super().__init__(event_ndims)
        if not scale > 0:
            raise ValueError(f"gaussian_fixed needs scale > 0, got {scale!r}")
        self.scale = float(scale)

    def __call__(self, mean):
        return self._independent(tfd.Normal(mean, tf.cast(self.scale, mean.dtype)))


class LogisticMixtureLikelihood(Likelihood):
    """A discretized mixture of ``components`` logistics per pixel, over 8-bit images (x = v / 255): an exact
    discrete probability, so -log2 p(x) is a code length (``vae_zoo.models.logistic_mixture``; PixelCNN++)."""

    support = (0.0, 1.0)

    def __init__(self, event_ndims, components=5):
        super().__init__(event_ndims)
        if event_ndims != 3:
            raise ValueError("logistic_mixture models images (height, width, channels)")
        if not int(components) >= 1:
            raise ValueError(f"logistic_mixture needs components >= 1, got {components!r}")
        self.components = int(components)

    def param_channels(self, data_channels):
        return logistic_mixture.parameter_count(self.components, data_channels)

    def __call__(self, params):
        channels = self.channels_of(params.shape[-1])
        return logistic_mixture.DiscretizedLogisticMixture(params, channels, self.event_ndims)

    def plain_log_prob(self, params, x):
        return self(params).unfused_log_prob(x)

    def channels_of(self, parameters):
        for channels in range(1, 9):
            if logistic_mixture.parameter_count(self.components, channels) == parameters:
                return channels
        raise ValueError(f"{parameters} parameters per position fit no image of a mixture of {self.components} logistics")


LIKELIHOODS = {
    "bernoulli": BernoulliLikelihood,
    "gaussian": GaussianLikelihood,
    "gaussian_fixed": FixedGaussianLikelihood,
    "logistic_mixture": LogisticMixtureLikelihood,
}


def make_likelihood(spec, event_ndims):
    """Resolve a likelihood spec (name or dict) for data with ``event_ndims`` dimensions."""
    return resolve(LIKELIHOODS, "likelihood", spec, event_ndims)


# --------------------------------------------------------------------------- priors


class DiagonalGaussianMixture(tfd.MixtureSameFamily):
    """A mixture of K diagonal Gaussians whose log-density is two matrix products instead of a (points, K, D) tensor.

    sum_d (x_d - m_kd)^2 / s_kd^2 expands into x^2 . (1/s^2) - 2 x . (m/s^2) + m^2 . (1/s^2): matmuls of the
    points against the K components. TFP's MixtureSameFamily broadcasts every point against every component
    instead; for the VampPrior (100 points, 500 components, 40 dimensions) its log-density and gradient took 9.3 ms
    a step against 0.8 ms here (one thread, XLA). Points and means are first shifted by the mean of the means,
    which leaves the value unchanged and keeps the expanded squares, whose difference is taken, small.
    """

    def _log_prob(self, x):
        normal = self.components_distribution.distribution
        loc, scale = normal.loc, normal.scale
        dims = tf.shape(loc)[-1]
        points = tf.reshape(x, [-1, dims])
        centre = tf.reduce_mean(loc, axis=0)
        points, loc = points - centre, loc - centre
        precision = tf.math.reciprocal(tf.square(scale))
        squared_distance = (
            tf.matmul(tf.square(points), precision, transpose_b=True)
            - 2.0 * tf.matmul(points, loc * precision, transpose_b=True)
            + tf.reduce_sum(tf.square(loc) * precision, axis=-1)
        )
        # Rounding can leave a distance a hair below zero where a point sits on a component's mean.
        squared_distance = tf.maximum(squared_distance, 0.0)
        log_normaliser = tf.reduce_sum(tf.math.log(scale), axis=-1) + 0.5 * tf.cast(dims, x.dtype) * math.log(2 * math.pi)
        log_weights = tf.math.log_softmax(self.mixture_distribution.logits)
        log_density = tf.reduce_logsumexp(log_weights - log_normaliser - 0.5 * squared_distance, axis=-1)
        return tf.reshape(log_density, tf.shape(x)[:-1])


def diagonal_gaussian_mixture(logits, loc, scale):
    """The mixture sum_k softmax(logits)_k N(loc_k, diag(scale_k^2)) over (K, D) ``loc`` and ``scale``."""
    return DiagonalGaussianMixture(
        mixture_distribution=tfd.Categorical(logits=logits),
        components_distribution=tfd.Independent(tfd.Normal(loc, scale), reinterpreted_batch_ndims=1),
    )


class Prior(keras.layers.Layer):
    """A prior p(z) over ``latent_dim`` dimensions; a layer so that it may own weights.

    ``distribution(model)`` receives the model so that priors defined through the
    encoder (the VampPrior) can use it without holding a reference to it.
    """

    # Whether p(z) factorizes over latent dimensions (needed for per-dimension KL).
    factorized = False
    # Values per draw that log p(z) holds in evaluation, where that outweighs the decoder's (the IS-NLL sizes its
    # batches by it); 0: too few to count.
    evaluation_values_per_draw = 0

    def __init__(self, latent_dim, data_shape=None, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = int(latent_dim)

    def distribution(self, model=None):
        raise NotImplementedError


class StandardNormalPrior(Prior):
    """N(0, I), the seed's prior."""

    factorized = True

    def distribution(self, model=None):
        zeros = tf.zeros([self.latent_dim], self.compute_dtype)
        return tfd.Independent(tfd.Normal(zeros, tf.ones_like(zeros)), reinterpreted_batch_ndims=1)


class MixturePrior(Prior):
    """A learnable mixture of ``components`` diagonal Gaussians (means, scales and weights trained)."""

    def __init__(self, latent_dim, components=10, **kwargs):
        super().__init__(latent_dim, **kwargs)
        self.components = int(components)
        self.means = self.add_weight(
            name="means",
            shape=(self.components, self.latent_dim),
            initializer=keras.initializers.RandomNormal(stddev=1.0, seed=0),
        )
        self.log_scales = self.add_weight(
            name="log_scales", shape=(self.components, self.latent_dim), initializer="zeros"
        )
        self.logits = self.add_weight(name="logits", shape=(self.components,), initializer="zeros")

    def distribution(self, model=None):
        return diagonal_gaussian_mixture(self.logits, self.means, tf.exp(self.log_scales))


class VampPrior(Prior):
    """The VampPrior (Tomczak & Welling, 2018): p(z) = 1/K sum_k q(z | u_k) over K learned pseudo-inputs.

    The pseudo-inputs live in data space (through a sigmoid, so in [0, 1]) and
    go through the model's own encoder, so prior and posterior are learned together.
    In a hierarchy the prior is on the top latent, and its components are that
    latent's posterior at the pseudo-inputs (``model.top_posterior``), as in the
    VampPrior paper's two-level model.
    """

    def __init__(self, latent_dim, data_shape=None, components=50, **kwargs):
        super().__init__(latent_dim, **kwargs)
        if data_shape is None:
            raise ValueError("the VampPrior needs the model's data_shape")
        self.components = int(components)
        self.pseudo_inputs = self.add_weight(
            name="pseudo_inputs",
            shape=(self.components, *data_shape),
            initializer=keras.initializers.RandomNormal(mean=-1.0, stddev=0.5, seed=0),
        )

    def distribution(self, model=None):
        if model is None:
            raise ValueError("the VampPrior is defined through a model's encoder: call model.prior()")
        posterior = model.top_posterior(tf.sigmoid(self.pseudo_inputs)).distribution
        return diagonal_gaussian_mixture(tf.zeros([self.components], posterior.dtype), posterior.loc, posterior.scale)


PRIORS = {
    "normal": StandardNormalPrior,
    "mixture": MixturePrior,
    "vamp": VampPrior,
}


def make_prior(spec, latent_dim, data_shape=None):
    """Resolve a prior spec (name or dict) into a prior layer over ``latent_dim`` dimensions."""
    name = spec if isinstance(spec, str) else spec.get("name") if isinstance(spec, dict) else None
    # Priors compute in float32 whatever the mixed-precision policy: log-densities need the range.
    return resolve(PRIORS, "prior", spec, latent_dim, data_shape=data_shape, name=f"{name}_prior", dtype="float32")


# --------------------------------------------------------------------------- divergences


def diagonal_gaussian(mean, log_variance):
    """q(z|x) = N(mean, exp(log_variance)) with independent dimensions (the seed's encoder)."""
    return tfd.Independent(tfd.Normal(mean, tf.exp(0.5 * log_variance)), reinterpreted_batch_ndims=1)


def stateless_seed(seed):
    """A [2] int32 stateless seed from an int or a [2] tensor."""
    if isinstance(seed, int):
        return tf.constant([seed, 0], tf.int32)
    return tf.cast(seed, tf.int32)


def reparameterized_sample(q, sample_shape=(), seed=None):
    """z = mean + stddev * eps with eps ~ N(0, I): the reparameterization trick, for a diagonal Gaussian q.

    Written out rather than ``q.sample()``: TFP turns every unseeded draw into a
    salted stateless one, which costs about a quarter of a training step of the
    seed's VAE on a CPU (measured beside tools/bench_train.py). Gradients flow to
    the mean and the scale exactly as through TFP's sampler. With ``seed`` the
    draw is reproducible.
    """
    mean, stddev = q.mean(), q.stddev()
    return mean + stddev * standard_noise(mean, sample_shape, seed)


def reparameterized_draw(q, sample_shape=(), seed=None):
    """(z, log q(z|x)) for a diagonal Gaussian q with vector events, z drawn as ``reparameterized_sample`` draws it.

    log q comes from the noise, sum(-log stddev - log(2 pi) / 2 - eps^2 / 2), not from ``q.log_prob(z)``: for a
    very narrow posterior (an adversarial autoencoder's stddev reaches 1e-10) float32 cannot hold mean + stddev *
    eps apart from the mean, and an ulp between two computations of the mean is thousands of stddevs, so
    q.log_prob(z) was off by up to millions of nats: the AAE's IS-NLL on Fashion-MNIST came out as 216 nats (std.
    error 168) where it is 447.
    """
    mean, stddev = q.mean(), q.stddev()
    noise = standard_noise(mean, sample_shape, seed)
    log_q = tf.reduce_sum(-tf.math.log(stddev) - 0.5 * math.log(2.0 * math.pi) - 0.5 * tf.square(noise), axis=-1)
    return mean + stddev * noise, log_q


def standard_noise(mean, sample_shape=(), seed=None):
    """N(0, 1) noise of shape ``sample_shape + mean.shape``: fresh without a seed, else stateless and the same however
    the batch is split over replicas (``replica_normal``)."""
    sample_shape = tf.reshape(tf.cast(sample_shape, tf.int32), [-1])
    shape = tf.concat([sample_shape, tf.shape(mean)], axis=0)
    if seed is None:
        return tf.random.normal(shape, dtype=mean.dtype)
    return replica_normal(shape, seed, batch_axis=int(sample_shape.shape[0]), dtype=mean.dtype)


# Philox, named. Under XLA on a CPU the default ("auto_select") draws the same numbers through a path about
# 20 times slower (190 ns against 9 ns a number): it cost a third of the IS-NLL evaluation. Same numbers: the
# seed VAE's recipe trains to the same weights digest either way.
NOISE_ALGORITHM = "philox"


@tf.function(jit_compile=True)
def philox_normal(shape, seed, dtype=tf.float32):
    """Stateless N(0, 1) noise, always drawn by XLA: TensorFlow's own kernel turns the same Philox bits into other
    numbers, so a function compiled without XLA (the IS-NLL on a CPU, a conv recipe) would otherwise draw
    differently from the same function compiled with it, and its figures would depend on how it was compiled."""
    return tf.random.stateless_normal(shape, seed=seed, dtype=dtype, alg=NOISE_ALGORITHM)


def replica_normal(shape, seed, batch_axis=0, dtype=tf.float32):
    """Stateless N(0, 1) noise of ``shape`` whose rows are the same however the batch is split.

    Inside a replica of a ``tf.distribute`` strategy the noise is drawn for the
    global batch and this replica's rows are cut out of it, so that a run over
    several replicas draws, example for example, what one process would draw
    for the same global batch.
    """
    seed = stateless_seed(seed)
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    context = tf.distribute.get_replica_context()
    if replicas == 1 or context is None:
        return philox_normal(shape, seed, dtype)
    local = shape[batch_axis]
    global_shape = tf.tensor_scatter_nd_update(shape, [[batch_axis]], [local * replicas])
    noise = philox_normal(global_shape, seed, dtype)
    begin = tf.tensor_scatter_nd_update(tf.zeros_like(shape), [[batch_axis]], [local * context.replica_id_in_sync_group])
    return tf.slice(noise, begin, shape)


def replica_sample(distribution, n, seed=None):
    """``n`` draws from ``distribution``, the same however the batch is split over replicas (see ``replica_normal``)."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    context = tf.distribute.get_replica_context()
    if seed is None or replicas == 1 or context is None:
        return distribution.sample(n, seed=seed)
    draws = distribution.sample(n * replicas, seed=stateless_seed(seed))
    return draws[n * context.replica_id_in_sync_group:][:n]


def kl_divergence(q, p, z):
    """KL(q || p) per example: closed form where TFP has one, else a one-sample estimate at ``z``.

    ``z`` must be a sample from ``q`` (the one the reconstruction term used), so
    the Monte-Carlo estimate log q(z) - log p(z) stays unbiased.
    """
    if not isinstance(p, tfd.Distribution):  # a prior made for one batch (the exemplar prior's retrieval)
        return q.log_prob(z) - p.log_prob(z)
    try:
        return tfd.kl_divergence(q, p)
    except NotImplementedError:
        return q.log_prob(z) - p.log_prob(z)
