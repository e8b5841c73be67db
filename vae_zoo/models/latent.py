"""What every model with a continuous latent z shares: a prior p(z), a Gaussian q(z|x), beta and free bits.

A ``LatentVariableModel`` asks its subclass for three things: ``make_networks()`` (whatever q(z|x) and
p(x|z) need), ``encode(x, y)`` -> q(z|x) and ``data_log_prob(z, x, y)`` -> log p(x|z). From them it composes,
with the functions of ``vae_zoo.models.objectives``, the training loss and reported terms (the ELBO), the
importance weights (and so the importance-sampled log-likelihood) and the per-dimension KL. The Gaussian image
``VAE`` and the ``SentenceVAE`` both extend it; neither inherits the other's data handling.
"""

import keras
import tensorflow as tf

from vae_zoo.models import distributions, objectives
from vae_zoo.models.base import ZooModel


class LatentVariableModel(ZooModel):
    """A model with a latent z ~ p(z), an approximate posterior q(z|x) and an ELBO.

    Args:
        data_shape: the shape of one example.
        latent_dim: number of latent dimensions.
        prior: ``"normal"``, ``"mixture"`` or ``"vamp"``; a name or a dict with ``name`` and options.
        beta: initial weight of the KL term in the loss (1 is the plain ELBO). It is held in the non-trainable
            variable ``kl_weight`` so that callbacks and tuners can change it during training.
        free_bits: kappa in nats; each latent dimension's KL enters the loss as at least kappa (Kingma et al.,
            2016), so the optimizer gains nothing by pushing it lower. 0 turns it off.
    """

    capabilities = frozenset({"elbo", "sample", "gaussian_posterior", "reconstruct", "latent"})
    # Per-example quantities reported as metrics by fit() and evaluate().
    metric_names = ("loss", "elbo", "reconstruction", "kl")

    def __init__(self, data_shape=(28, 28, 1), latent_dim=20, prior="normal", beta=1.0, free_bits=0.0, **kwargs):
        super().__init__(data_shape=data_shape, **kwargs)
        self.latent_dim = int(latent_dim)
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
        if not float(beta) >= 0:
            raise ValueError(f"beta must be >= 0, got {beta!r}")
        if not float(free_bits) >= 0:
            raise ValueError(f"free_bits must be >= 0 nats, got {free_bits!r}")
        self.free_bits = float(free_bits)
        # Networks, then the prior, then beta: the order of the weights that saved models hold.
        self.make_networks()
        self.prior_layer = self.make_prior(prior)
        if self.takes_example_indices and self.can("labels"):
            raise ValueError(f"{self.registered_name} reads labels as its second input; the exemplar prior needs that "
                             "place for example indices")
        if self.free_bits and not self.prior_factorizes:
            raise ValueError(f"free_bits needs a prior that factorizes over dimensions (normal), not {prior!r}")
        self.kl_weight = self.add_weight(
            name="kl_weight", shape=(), initializer=keras.initializers.Constant(float(beta)), trainable=False,
            aggregation="only_first_replica",  # assigned inside the step (KL annealing), on every replica alike
        )
        # Every sub-network is built above, so the model owns its weights from the start.
        self.built = True

    def make_prior(self, prior):
        """The prior layer, from the ``prior`` spec."""
        return distributions.make_prior(prior, self.latent_dim, data_shape=self.data_shape)

    def prior(self):
        """The prior p(z)."""
        return self.prior_layer.distribution(self)

    @property
    def takes_example_indices(self):
        """Whether training batches come as (examples, their indices in the training split): the exemplar prior's
        leave-one-out needs them (data option ``indices: true``)."""
        return bool(getattr(self.prior_layer, "uses_example_indices", False))

    def prior_for(self, top_posterior, y=None, training=False):
        """p(z) as the loss sees it: the prior, or in training with an exemplar bank attached, each example's
        mixture over its retrieved exemplars, itself left out (``y`` holds the examples' indices)."""
        if training and getattr(self.prior_layer, "bank", None) is not None:
            return self.prior_layer.retrieval_distribution(self, top_posterior.mean(), y)
        return self.prior()

    def prior_log_prob(self, z, top_posterior):
        """log p(z) of draws z (k, batch, D) from ``top_posterior``: an exemplar prior sums over the exemplars near
        each example's posterior (to within a stated tolerance of the exact mixture), any other prior exactly."""
        if hasattr(self.prior_layer, "log_prob_near"):
            return self.prior_layer.log_prob_near(z, top_posterior)
        return self.prior().log_prob(z)

    def split_inputs(self, inputs):
        """(x, indices) pairs are what an exemplar-prior model trains on; elsewhere it takes them as x alone."""
        if self.takes_example_indices and isinstance(inputs, (tuple, list)) and len(inputs) == 2:
            return inputs[0], None
        return super().split_inputs(inputs)

    @property
    def prior_factorizes(self):
        """Whether p(z) is a product over dimensions, so that the KL splits into one term per dimension
        (a mixture or VampPrior does not)."""
        return bool(getattr(self.prior_layer, "factorized", False))

    # ------------------------------------------------------------------ the objective, composed

    def encoder_view(self, x, seed=None):
        """What the encoder sees of ``x`` in training: ``x`` itself here (the VAE may corrupt it)."""
        return x

    def loss_terms(self, x, y=None, training=False, seed=None):
        """Per-example tensors: ``loss`` (what is minimised), ``elbo``, ``reconstruction``, ``kl``.

        ``reconstruction`` is -log p(x|z) for one reparameterized sample z = mean + sigma * eps (so gradients
        flow to the encoder), ``kl`` is KL(q(z|x) || p(z)) in nats: in closed form where it has one, else
        estimated at the same z.
        """
        q = self.encode(self.encoder_view(x, seed) if training else x, y, training=training)
        z = distributions.reparameterized_sample(q, seed=seed)
        log_likelihood = self.data_log_prob(z, x, y, training=training, seed=seed)
        p = self.prior_for(q, y, training)
        kl = distributions.kl_divergence(q, p, z)
        return objectives.elbo_terms(log_likelihood, kl, self.kl_weight, objectives.kl_penalty(kl, [(q, p)], self.free_bits))

    def log_weight_terms(self, x, y=None, k=1, seed=None, training=False):
        """log p(x|z_i), log p(z_i) and log q(z_i|x) for k draws z_i ~ q(z|x); each (k, batch)."""
        q = self.encode(x, y, training=training)
        z, log_posterior = distributions.reparameterized_draw(q, [k], seed=seed)
        return self.draws_log_prob(z, self.check_data(x), y, training=training), self.prior_log_prob(z, q), log_posterior

    def draws_log_prob(self, z, x, y=None, training=False):
        """log p(x | z_i) of every example under each of its draws: z (k, batch, latent), x (batch, ...) -> (k, batch).

        Through ``data_log_prob``, with x (and y) repeated to one row a draw."""
        k = tf.shape(z)[0]
        labels = None if y is None else objectives.repeat_batch(y, k)
        log_likelihood = self.data_log_prob(objectives.flatten_samples(z), objectives.repeat_batch(x, k), labels,
                                            training=training)
        return tf.reshape(log_likelihood, tf.shape(z)[:2])

    def log_weights(self, x, y=None, k=1, seed=None):
        """log p(x, z_i) - log q(z_i | x) for k draws z_i ~ q(z|x); shape (k, batch).

        Their mean is an unbiased ELBO estimate; their log-mean-exp (``objectives.iwae_bound``) is the
        importance-weighted bound of Burda et al. (2015), which tends to log p(x).
        """
        return objectives.importance_log_weights(*self.log_weight_terms(x, y, k, seed))

    def elbo(self, inputs, num_samples=1):
        """Per-example ELBO = E_q[log p(x|z)] - KL(q||p), averaged over ``num_samples`` draws of z."""
        x, y = self.split_inputs(inputs)
        total = 0.0
        for _ in range(int(num_samples)):
            total += self.loss_terms(x, y)["elbo"]
        return total / int(num_samples)

    def kl_by_dimension(self, x, y=None):
        """Per-example KL of every latent dimension, (batch, dims), or None if p(z) does not factorize."""
        if not self.prior_factorizes:
            return None
        return objectives.kl_per_dimension(self.encode(x, y), self.prior())

    # ------------------------------------------------------------------ the latent space

    def transform(self, inputs):
        """Latent codes (the posterior mean), for dimensionality reduction."""
        x, y = self.split_inputs(inputs)
        return self.encode(x, y).mean()

    def encoded_outputs(self, x, y=None):
        """What the ``encode`` serving signature returns: the posterior's mean and standard deviation."""
        q = self.encode(x, y)
        return {"mean": q.mean(), "stddev": q.stddev()}

    def decoder_input_spec(self):
        """The latent input of the ``decode`` serving signature."""
        return tf.TensorSpec([None, self.latent_dim], tf.float32, name="z")
