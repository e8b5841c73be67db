"""A hierarchical VAE with latent groups at several resolutions (NVAE, Vahdat & Kautz 2020; VDVAE, Child 2021).

Generative model, top-down: a learned feature map at the lowest resolution; at each resolution, for each of
its latent groups, a prior p(z_g | h) from the features so far, then h <- resblock(h + proj(z_g)); upsampling
between resolutions; the likelihood's parameters from the final features. Inference shares that path
(bidirectional inference): a bottom-up residual encoder keeps its features at each resolution, and each
group's posterior q(z_g | h, bottom-up features) is computed at the same point of the top-down pass as its
prior, so the generative path is the inference path. Every group's KL is Gaussian-to-Gaussian, in closed form.

The number of resolutions follows the input: the image is halved while both sides stay even and at least
``min_resolution``; latent groups sit at the resolutions whose larger side is at most
``max_latent_resolution``. One spec thus builds a model for 28x28 (28, 14, 7) as for 256x256 (256 ... 4).
"""

import math

import keras
import tensorflow as tf

from vae_zoo.errors import CapabilityError, ConfigError
from vae_zoo.models import distributions, objectives
from vae_zoo.models.latent import LatentVariableModel
from vae_zoo.models.objectives import repeat_batch, split_seed
from vae_zoo.networks.activations import activation_layer
from vae_zoo.networks.resnet import NORMALIZATIONS, ResidualBlock
from vae_zoo.registry import register

HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)


def stage_sizes(height, width, min_resolution):
    """The (height, width) of every resolution, the input's first: halved while both sides are even and the
    halves at least ``min_resolution``."""
    sizes = [(int(height), int(width))]
    while all(side % 2 == 0 and side // 2 >= min_resolution for side in sizes[-1]):
        sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
    return sizes


def gaussian_kl(q_mean, q_log_variance, p_mean, p_log_variance):
    """KL(N(q) || N(p)) of each element, in nats."""
    return 0.5 * (p_log_variance - q_log_variance
                  + (tf.exp(q_log_variance) + tf.square(q_mean - p_mean)) * tf.exp(-p_log_variance) - 1.0)


def gaussian_log_density(z, mean, log_variance):
    return -HALF_LOG_TWO_PI - 0.5 * log_variance - 0.5 * tf.square(z - mean) * tf.exp(-log_variance)


def per_example_sum(values):
    return tf.reduce_sum(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)


@keras.saving.register_keras_serializable(package="vae_zoo")
class LatentGroup(keras.layers.Layer):
    """One latent group of the top-down path: its prior and posterior heads, the projection of z into the
    features, and a residual block after it (VDVAE's decoder block)."""

    def __init__(self, width, latent_channels, activation="swish", normalization=None, squeeze_excitation=False,
                 **kwargs):
        super().__init__(**kwargs)
        self.width, self.latent_channels = int(width), int(latent_channels)
        self.activation = activation
        self.act = activation_layer(activation, "act")
        self.prior_hidden = keras.layers.Conv2D(self.width, 3, padding="same", name="prior_hidden")
        # Near zero: every prior starts close to N(0, I) and adds little to the features, so an untrained model's
        # KL is tame (VDVAE zeroes these; a small start lets the first steps reach the hidden layer too).
        self.prior_out = keras.layers.Conv2D(2 * self.latent_channels + self.width, 1, name="prior_out",
                                             kernel_initializer=keras.initializers.VarianceScaling(1e-4))
        self.posterior_hidden = keras.layers.Conv2D(self.width, 3, padding="same", name="posterior_hidden")
        self.posterior_out = keras.layers.Conv2D(2 * self.latent_channels, 1, name="posterior_out",
                                                 kernel_initializer=keras.initializers.VarianceScaling(0.01))
        self.project = keras.layers.Conv2D(self.width, 1, name="project",
                                           kernel_initializer=keras.initializers.VarianceScaling(0.01))
        self.block = ResidualBlock(self.width, activation, normalization, squeeze_excitation, name="block")

    def build(self, input_shape):
        height_width = tuple(input_shape[1:3])
        features = (None, *height_width, self.width)
        self.prior_hidden.build(features)
        self.prior_out.build((None, *height_width, self.width))
        self.posterior_hidden.build((None, *height_width, 2 * self.width))
        self.posterior_out.build((None, *height_width, self.width))
        self.project.build((None, *height_width, self.latent_channels))
        self.block.build(features)

    def prior(self, h, training=False):
        """(mean, log-variance) of p(z | h) in float32, and the features the prior adds to h."""
        out = self.prior_out(self.act(self.prior_hidden(self.act(h, training=training)), training=training))
        # One split, not two slices: a slice's gradient writes a zero tensor of the whole output, a split's is
        # one concatenation (about 4% of a training step at 28x28 in a profile).
        statistics, features = tf.split(out, [2 * self.latent_channels, self.width], axis=-1)
        mean, log_variance = tf.split(tf.cast(statistics, tf.float32), 2, axis=-1)
        return mean, log_variance, features

    def posterior(self, h, bottom_up, training=False):
        """(mean, log-variance) of q(z | h, bottom-up features) in float32."""
        joined = keras.ops.concatenate([h, keras.ops.cast(bottom_up, h.dtype)], axis=-1)
        out = self.posterior_out(self.act(self.posterior_hidden(self.act(joined, training=training)), training=training))
        return tuple(tf.split(tf.cast(out, tf.float32), 2, axis=-1))

    def merge(self, h, z, training=False):
        """The features after z: resblock(h + proj(z))."""
        return self.block(h + self.project(keras.ops.cast(z, h.dtype)), training=training)

    def get_config(self):
        return {**super().get_config(), "width": self.width, "latent_channels": self.latent_channels,
                "activation": self.activation}


@register("hierarchical_vae")
class HierarchicalVAE(LatentVariableModel):
    """Hierarchical VAE with multi-scale latent groups and a shared top-down path (NVAE; VDVAE).

    Args:
        data_shape: (height, width, channels) of one image.
        width: feature channels of every residual block.
        latent_channels: channels of every latent group (a group at h x w holds h * w * latent_channels numbers).
        groups_per_stage: latent groups at each resolution that has latents.
        blocks_per_stage: residual blocks at each resolution of the bottom-up path (and of the top-down path
            at resolutions without latents).
        min_resolution: the smallest side the image is halved down to.
        max_latent_resolution: latent groups sit at resolutions whose larger side is at most this.
        likelihood: p(x | z): ``"logistic_mixture"`` for 8-bit images (``{"name": ..., "components": K}``),
            ``"bernoulli"`` for binary ones, or any other registered likelihood.
        activation, normalization, squeeze_excitation: of the residual blocks (``vae_zoo.networks.resnet``).
        beta: the initial KL weight. free_bits: kappa in nats for each latent group: a group whose batch-mean
            KL is under kappa counts as kappa and gets no gradient to shrink further (Kingma et al., 2016,
            free bits over groups), which keeps groups from collapsing early in training.
        prior: only ``"normal"``: every group's prior is the top-down path's, the first one's from the
            learned top features.
        latent_dim: leave it out: it follows from the groups' shapes (given, it must equal theirs).

    Its latent vector (``transform``, the ``decode`` signature) is every group's z, flattened and
    concatenated, top group first. Metrics add ``kl_1``..``kl_G``, G the number of groups, top first.
    """

    capabilities = frozenset({"elbo", "sample", "reconstruct", "latent", "hierarchical"})
    portable = False  # several latent groups, sampled inside the graph: the noise-as-input signatures do not apply

    def __init__(self, data_shape=(28, 28, 1), width=32, latent_channels=4, groups_per_stage=1, blocks_per_stage=1,
                 min_resolution=4, max_latent_resolution=32, likelihood="logistic_mixture", activation="swish",
                 normalization=None, squeeze_excitation=False, prior="normal", beta=1.0, free_bits=0.0, latent_dim=None,
                 **kwargs):
        data_shape = tuple(int(d) for d in data_shape)
        if len(data_shape) != 3:
            raise ValueError(f"the hierarchical VAE models images (height, width, channels), got data_shape={data_shape}")
        for name, value in (("width", width), ("latent_channels", latent_channels), ("groups_per_stage", groups_per_stage),
                            ("min_resolution", min_resolution), ("max_latent_resolution", max_latent_resolution)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if int(blocks_per_stage) < 0:
            raise ValueError(f"blocks_per_stage must be >= 0, got {blocks_per_stage!r}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {', '.join(map(str, NORMALIZATIONS))}, got {normalization!r}")
        self.width, self.latent_channels = int(width), int(latent_channels)
        self.groups_per_stage, self.blocks_per_stage = int(groups_per_stage), int(blocks_per_stage)
        self.block_options = (activation, normalization, bool(squeeze_excitation))
        self.likelihood_spec = likelihood
        self.sizes = stage_sizes(data_shape[0], data_shape[1], int(min_resolution))
        self.latent_sizes = [size for size in self.sizes if max(size) <= int(max_latent_resolution)]
        if not self.latent_sizes:
            raise ValueError(f"no resolution of {data_shape[:2]} (halved down to {self.sizes[-1]}) is at most "
                             f"max_latent_resolution={max_latent_resolution}: the model would have no latents")
        # Groups top first: the lowest resolution's, then up.
        self.group_shapes = [(*size, self.latent_channels) for size in reversed(self.latent_sizes)
                             for _ in range(self.groups_per_stage)]
        self.metric_names = LatentVariableModel.metric_names + tuple(f"kl_{g + 1}" for g in range(len(self.group_shapes)))
        total = sum(math.prod(shape) for shape in self.group_shapes)
        if latent_dim is not None and int(latent_dim) != total:
            raise ValueError(f"latent_dim follows from the groups ({total} numbers here); leave it out, got {latent_dim!r}")
        latent_dim = total
        super().__init__(data_shape=data_shape, latent_dim=latent_dim, prior=prior, beta=beta, free_bits=free_bits, **kwargs)

    # ------------------------------------------------------------------ networks

    def make_networks(self):
        activation, normalization, squeeze_excitation = self.block_options
        self.likelihood = distributions.make_likelihood(self.likelihood_spec, event_ndims=3)
        self.act = activation_layer(activation, "act")
        self.stem = keras.layers.Conv2D(self.width, 3, padding="same", name="stem")
        self.pool = keras.layers.AveragePooling2D(2, name="pool")
        self.upsample = keras.layers.UpSampling2D(2, name="upsample")

        def blocks(name):
            return [ResidualBlock(self.width, *self.block_options, name=f"{name}_{i}") for i in range(self.blocks_per_stage)]

        # Index s is the resolution self.sizes[s], the input's first.
        self.encoder_stages = [blocks(f"encoder_{s}") for s in range(len(self.sizes))]
        self.decoder_stages = []
        for s, size in enumerate(self.sizes):
            if size in self.latent_sizes:
                self.decoder_stages.append([LatentGroup(self.width, self.latent_channels, activation, normalization,
                                                        squeeze_excitation, name=f"group_{s}_{g}")
                                            for g in range(self.groups_per_stage)])
            else:
                self.decoder_stages.append(blocks(f"decoder_{s}"))
        self.top_features = self.add_weight(name="top_features", shape=(*self.sizes[-1], self.width),
                                            initializer=keras.initializers.RandomNormal(stddev=0.1, seed=0))
        self.output_layer = keras.layers.Conv2D(self.likelihood.param_channels(self.data_shape[-1]), 1, name="output")
        self._build_layers()

    def _build_layers(self):
        self.stem.build((None, *self.data_shape))
        for s, size in enumerate(self.sizes):
            for layer in self.encoder_stages[s] + self.decoder_stages[s]:
                layer.build((None, *size, self.width))
        self.output_layer.build((None, *self.sizes[0], self.width))

    def make_prior(self, prior):
        if prior != "normal":
            raise ConfigError(f"the hierarchical VAE's priors are its top-down path's; prior must be 'normal', got {prior!r}")
        return None

    def prior(self):
        raise CapabilityError("the hierarchical VAE's prior is conditional, p(z_g | z_above) for each group: "
                              "use sample(), log_weights() or kl_by_dimension()")

    @property
    def prior_factorizes(self):
        # Given the groups above, each group's prior is a diagonal Gaussian: the KL splits into one term per element.
        return True

    # ------------------------------------------------------------------ the two paths

    def bottom_up(self, x, training=False):
        """The encoder's features at every resolution, the input's first."""
        h = self.stem(keras.ops.cast(2.0 * x - 1.0, self.compute_dtype))
        features = []
        for s, stage in enumerate(self.encoder_stages):
            if s:
                h = self.pool(h)
            for block in stage:
                h = block(h, training=training)
            features.append(h)
        return features

    def top_down(self, batch, bottom_up=None, given=None, use_means=False, temperature=1.0, seed=None, training=False,
                 choose=None):
        """The top-down pass: (likelihood parameters in float32, one record a group, top first).

        Each group's z is, in this order of precedence: ``given[g]`` (unless None); ``choose(g, prior, posterior)``
        (a coder's choice, eager only: prior and posterior are (mean, log-variance) pairs, posterior None without
        ``bottom_up``); the posterior's mean or a draw from it (with ``bottom_up`` features: inference); the prior's
        mean or a draw from it at ``temperature`` (generation). A record holds z and, with ``bottom_up``, the group's
        KL, log p(z) and log q(z).
        """
        h = tf.tile(keras.ops.cast(self.top_features, self.compute_dtype)[None], [batch, 1, 1, 1])
        seeds = split_seed(seed, len(self.group_shapes))
        records = []
        for s in reversed(range(len(self.sizes))):
            if s < len(self.sizes) - 1:
                h = self.upsample(h)
            for layer in self.decoder_stages[s]:
                if not isinstance(layer, LatentGroup):
                    h = layer(h, training=training)
                    continue
                g = len(records)
                p_mean, p_log_variance, prior_features = layer.prior(h, training=training)
                record = {}
                if bottom_up is not None:
                    q_mean, q_log_variance = layer.posterior(h, bottom_up[s], training=training)
                    mean, log_variance = q_mean, q_log_variance
                else:
                    mean, log_variance = p_mean, p_log_variance + 2.0 * math.log(max(float(temperature), 1e-6))
                if given is not None and given[g] is not None:
                    z = given[g]
                elif choose is not None:
                    posterior = (q_mean, q_log_variance) if bottom_up is not None else None
                    z = tf.convert_to_tensor(choose(g, (p_mean, p_log_variance), posterior), tf.float32)
                elif use_means:
                    z = mean
                else:
                    noise = distributions.standard_noise(mean, seed=seeds[g])
                    z = mean + tf.exp(0.5 * log_variance) * noise
                    if bottom_up is not None:
                        # log q from the noise: exact even where the posterior is very narrow (see reparameterized_draw).
                        record["log_q"] = per_example_sum(-HALF_LOG_TWO_PI - 0.5 * log_variance - 0.5 * tf.square(noise))
                if bottom_up is not None:
                    record.update(q_mean=q_mean, q_log_variance=q_log_variance)
                    record["kl_elements"] = gaussian_kl(q_mean, q_log_variance, p_mean, p_log_variance)
                    record["log_p"] = per_example_sum(gaussian_log_density(z, p_mean, p_log_variance))
                record["z"] = z
                records.append(record)
                h = layer.merge(h + prior_features, z, training=training)
        return tf.cast(self.output_layer(self.act(h, training=training)), tf.float32), records

    def decoder_values_per_example(self):
        """About how many values one top-down pass holds for one example (every group's and block's outputs):
        what the importance-sampled likelihood sizes its chunks of draws by."""
        per_layer = 8  # a latent group's prior, posterior, projection and residual block outputs, roughly
        features = sum(h * w * self.width * per_layer * max(len(stage), 1) for (h, w), stage in zip(self.sizes, self.decoder_stages))
        return features + math.prod(self.data_shape[:2]) * self.likelihood.param_channels(self.data_shape[-1])

    def split_latent(self, z):
        """The flat latent vector (batch, latent_dim) as one (batch, h, w, c) tensor a group, top first."""
        sizes = [math.prod(shape) for shape in self.group_shapes]
        return [tf.reshape(part, [-1, *shape]) for part, shape in zip(tf.split(z, sizes, axis=-1), self.group_shapes)]

    @staticmethod
    def join_latent(groups):
        return tf.concat([tf.reshape(g, [tf.shape(g)[0], -1]) for g in groups], axis=-1)

    # ------------------------------------------------------------------ the objective

    def loss_terms(self, x, y=None, training=False, seed=None):
        x = self.check_data(x)
        params, records = self.top_down(tf.shape(x)[0], self.bottom_up(x, training), seed=seed, training=training)
        log_likelihood = self.likelihood(params).log_prob(x)
        kls = [per_example_sum(r["kl_elements"]) for r in records]
        kl = tf.add_n(kls)
        penalty = objectives.free_bits(tf.stack(kls, axis=-1), self.free_bits) if self.free_bits else kl
        terms = objectives.elbo_terms(log_likelihood, kl, self.kl_weight, penalty)
        terms.update({f"kl_{g + 1}": value for g, value in enumerate(kls)})
        return terms

    def log_weight_terms(self, x, y=None, k=1, seed=None, training=False):
        """log p(x|z), log p(z) and log q(z|x) of k joint draws of every group; each (k, batch). The bottom-up
        pass runs once and its features are repeated for the k draws."""
        x = self.check_data(x)
        batch = tf.shape(x)[0]
        features = [repeat_batch(f, k) for f in self.bottom_up(x, training)]
        params, records = self.top_down(batch * k, features, seed=seed, training=training)
        log_likelihood = self.likelihood.evaluation_log_prob(params, repeat_batch(x, k))
        log_prior = tf.add_n([r["log_p"] for r in records])
        log_posterior = tf.add_n([r["log_q"] for r in records])
        return tuple(tf.reshape(t, [k, batch]) for t in (log_likelihood, log_prior, log_posterior))

    def kl_by_dimension(self, x, y=None):
        """Per-example KL of every latent element, (batch, latent_dim), groups top first."""
        x = self.check_data(x)
        _, records = self.top_down(tf.shape(x)[0], self.bottom_up(x), use_means=True)
        return self.join_latent([r["kl_elements"] for r in records])

    def kl_by_group(self, x, y=None):
        """Per-example KL of every group, (batch, groups), top first."""
        x = self.check_data(x)
        _, records = self.top_down(tf.shape(x)[0], self.bottom_up(x), use_means=True)
        return tf.stack([per_example_sum(r["kl_elements"]) for r in records], axis=-1)

    # ------------------------------------------------------------------ the latent space

    def encode(self, x, y=None, training=False):
        """The posterior of every group at the posterior means of the groups above, as one diagonal Gaussian
        over the flat latent vector (each group's q is Gaussian given those above; jointly it is not)."""
        x = self.check_data(x)
        _, records = self.top_down(tf.shape(x)[0], self.bottom_up(x, training), use_means=True, training=training)
        return distributions.diagonal_gaussian(self.join_latent([r["q_mean"] for r in records]),
                                               self.join_latent([r["q_log_variance"] for r in records]))

    def decode(self, z, y=None, training=False):
        """p(x | z) for flat latent vectors z (every group's, top first)."""
        z = tf.cast(z, tf.float32)
        params, _ = self.top_down(tf.shape(z)[0], given=self.split_latent(z), training=training)
        return self.likelihood(params)

    def data_log_prob(self, z, x, y=None, training=False, seed=None):
        return self.decode(z, y, training=training).log_prob(x)

    def decoded_mean(self, z, y=None):
        return self.decode(z, y).mean()

    def reconstruction(self, x, y=None, training=False):
        """The mean of p(x | z) with every group at its posterior mean."""
        x = self.check_data(x)
        params, _ = self.top_down(tf.shape(x)[0], self.bottom_up(x, training), use_means=True, training=training)
        return self.likelihood(params).mean()

    def sample(self, n, seed=None, labels=None, temperature=1.0):
        """``n`` new images: every group drawn from its prior, its standard deviation scaled by ``temperature``
        (below 1 trades diversity for cleaner samples, as in NVAE and VDVAE), then the mean of p(x | z)."""
        params, _ = self.top_down(n, seed=seed, temperature=temperature)
        return self.likelihood(params).mean()

    def sample_from_top_groups(self, x, groups, n, seed=None, temperature=1.0):
        """``n`` images for each image of ``x`` (n rows of batch, as (n * batch, ...)): the top ``groups`` groups at
        their posterior means for that image, the groups below drawn from their priors. With few groups fixed the
        images share only the coarse layout; with all of them, each is the reconstruction: what each group encodes."""
        if not 0 <= int(groups) <= len(self.group_shapes):
            raise ValueError(f"groups must be between 0 and the model's {len(self.group_shapes)} groups, got {groups!r}")
        x = self.check_data(x)
        _, records = self.top_down(tf.shape(x)[0], self.bottom_up(x), use_means=True)
        given = [repeat_batch(r["z"], n) if g < groups else None for g, r in enumerate(records)]
        params, _ = self.top_down(n * tf.shape(x)[0], given=given, seed=seed, temperature=temperature)
        return self.likelihood(params).mean()
