"""Ladder VAE: a hierarchy of Gaussian latents with top-down inference."""

import tensorflow as tf

from vae_zoo import networks
from vae_zoo.models import distributions, objectives
from vae_zoo.models.objectives import repeat_batch, split_seed
from vae_zoo.models.vae import VAE
from vae_zoo.networks.mlp import make_mlp
from vae_zoo.registry import register


@register("ladder_vae")
class LadderVAE(VAE):
    """Ladder VAE (Sønderby et al., 2016): stochastic layers z_1..z_L with top-down inference.

    Generative model: z_L ~ p(z_L) (N(0, I) unless ``prior`` says otherwise: a
    VampPrior here is the two-level VampPrior model of Tomczak and Welling, 2018),
    z_l ~ p(z_l | z_{l+1}) for l = L-1..1,
    x ~ p(x | z_1). Inference runs the data bottom-up through deterministic
    layers (the usual encoder for level 1, small MLPs above), then top-down:
    each q(z_l | .) merges the bottom-up estimate with the generative prior
    p(z_l | z_{l+1}) by precision weighting (their eq. 17-18), so inference and
    generation share the top-down path. ``latent_dim`` is the size of z_1,
    ``upper_latent_dims`` those of z_2..z_L. Metrics add ``kl_1``..``kl_L``.
    ``encode(x)`` is q(z_1 | x) with the upper layers at their posterior means.
    """

    # Its z has several stochastic layers: the portable export's sample(noise) and elbo(x, noise), which take
    # one Gaussian noise vector, the one-layer bits-back coder and the likelihood regret do not apply.
    capabilities = VAE.capabilities | {"hierarchical"}

    def __init__(self, latent_dim=20, upper_latent_dims=(10,), ladder_hidden=(256,), **kwargs):
        self.level_dims = [int(latent_dim), *(int(d) for d in upper_latent_dims)]
        if len(self.level_dims) < 2:
            raise ValueError("a ladder VAE needs at least one upper layer: give upper_latent_dims")
        self.metric_names = VAE.metric_names + tuple(f"kl_{i + 1}" for i in range(len(self.level_dims)))
        super().__init__(latent_dim=latent_dim, **kwargs)
        # The levels' small MLPs use the encoder body's activation.
        activation = getattr(networks.network_body(self.encoder_spec), "activation", "relu")
        dims = self.level_dims
        self.bottom_up = [make_mlp(ladder_hidden, 2 * dims[i + 1], 2 * dims[i], activation, f"bottom_up_{i + 2}") for i in range(len(dims) - 1)]
        self.top_down = [make_mlp(ladder_hidden, 2 * dims[i], dims[i + 1], activation, f"top_down_{i + 1}") for i in range(len(dims) - 1)]

    def make_prior(self, prior):
        """p(z_L), on the top latent: N(0, I), a mixture, or a VampPrior over q(z_L | pseudo-inputs)."""
        return distributions.make_prior(prior, self.level_dims[-1], data_shape=self.data_shape)

    # ------------------------------------------------------------------ the hierarchy

    def _conditional_prior(self, level, z_above, training=False):
        """p(z_level | z_{level+1}) as a diagonal Gaussian (levels counted from 0 at the bottom)."""
        mean, log_variance = tf.split(tf.cast(self.top_down[level](z_above, training=training), tf.float32), 2, axis=-1)
        return distributions.diagonal_gaussian(mean, log_variance)

    def _bottom_up(self, x, y=None, training=False):
        """The deterministic upward pass: [(mean, log-variance)] of each level's bottom-up estimate, level 1 first."""
        bottom_up = [tf.cast(self.encoder(self.encoder_inputs(x, y), training=training), tf.float32)]
        for network in self.bottom_up:
            bottom_up.append(tf.cast(network(bottom_up[-1], training=training), tf.float32))
        return [tf.split(h, 2, axis=-1) for h in bottom_up]

    def top_posterior(self, x):
        """q(z_L | x): the top level's bottom-up estimate, which nothing above refines."""
        return distributions.diagonal_gaussian(*self._bottom_up(x)[-1])

    def infer(self, x, y=None, training=False, use_means=False, seed=None):
        """Bottom-up then top-down pass. Returns [(q_l, p_l, z_l)] from level 1 (bottom) to L (top)."""
        estimates = self._bottom_up(x, y, training)
        seeds = split_seed(seed, len(self.level_dims))
        q = distributions.diagonal_gaussian(*estimates[-1])
        z = q.mean() if use_means else distributions.reparameterized_sample(q, seed=seeds[-1])
        levels = [(q, self.prior_for(q, y, training), z)]
        for level in reversed(range(len(self.level_dims) - 1)):
            p = self._conditional_prior(level, z, training)
            mean_up, log_variance_up = estimates[level]
            precision_up, precision_down = tf.exp(-log_variance_up), 1.0 / p.distribution.variance()
            variance = 1.0 / (precision_up + precision_down)
            mean = (mean_up * precision_up + p.distribution.mean() * precision_down) * variance
            q = distributions.diagonal_gaussian(mean, tf.math.log(variance))
            z = q.mean() if use_means else distributions.reparameterized_sample(q, seed=seeds[level])
            levels.append((q, p, z))
        return levels[::-1]

    # ------------------------------------------------------------------ the contract, for a hierarchy

    def encode(self, x, y=None, training=False):
        return self.infer(x, y, training=training, use_means=True)[0][0]

    def loss_terms(self, x, y=None, training=False, seed=None):
        levels = self.infer(x, y, training=training, seed=seed)
        log_likelihood = self.decode(levels[0][2], y, training=training).log_prob(x)
        kls = [distributions.kl_divergence(q, p, z) for q, p, z in levels]
        kl = tf.add_n(kls)
        # Free bits pool the dimensions of every level.
        penalty = objectives.kl_penalty(kl, [(q, p) for q, p, _ in levels], self.free_bits)
        terms = objectives.elbo_terms(log_likelihood, kl, self.kl_weight, penalty)
        terms.update({f"kl_{i + 1}": value for i, value in enumerate(kls)})
        return terms

    def log_weight_terms(self, x, y=None, k=1, seed=None, training=False):
        x = self.check_data(x)
        batch = tf.shape(x)[0]
        repeated = repeat_batch(x, k)
        levels = self.infer(repeated, None if y is None else repeat_batch(y, k), training=training, seed=seed)
        log_likelihood = self.decode(levels[0][2], training=training).log_prob(repeated)
        # The top level's prior through prior_log_prob, draws as (k, batch): an exemplar prior sums near each
        # example's top posterior (the bottom-up estimate, the same for every draw of an example).
        (top_q, _, top_z), below = levels[-1], levels[:-1]
        top_log_prior = self.prior_log_prob(tf.reshape(top_z, [k, batch, -1]), self.top_posterior(x))
        log_prior = tf.add_n([tf.reshape(top_log_prior, [-1])] + [p.log_prob(z) for _, p, z in below])
        log_posterior = tf.add_n([q.log_prob(z) for q, _, z in levels])
        return tuple(tf.reshape(t, [k, batch]) for t in (log_likelihood, log_prior, log_posterior))

    def kl_by_dimension(self, x, y=None):
        if not self.prior_factorizes:
            return None  # the top level's KL has no per-dimension form
        return tf.concat([objectives.kl_per_dimension(q, p) for q, p, _ in self.infer(x, y)], axis=-1)

    def sample(self, n, seed=None, labels=None):
        """Ancestral sampling: z_L ~ p(z_L), then down the hierarchy to x."""
        seeds = split_seed(seed, len(self.level_dims))
        z = self.prior().sample(n, seed=seeds[-1])
        for level in reversed(range(len(self.level_dims) - 1)):
            z = self._conditional_prior(level, z).sample(seed=seeds[level])
        return self.decode(z).mean()
