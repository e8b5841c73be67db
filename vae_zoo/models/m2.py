"""M2, the semi-supervised VAE of Kingma, Rezende, Mohamed and Welling ("Semi-supervised learning with deep
generative models", NeurIPS 2014).

Generative model: y ~ Cat(1/K), z ~ N(0, I), x ~ p(x | y, z). Inference: a classifier q(y | x) and
q(z | x, y). A labelled example (x, y) has the bound

    log p(x, y) >= E_q(z|x,y)[log p(x|y,z)] + log p(y) - KL(q(z|x,y) || p(z)) = -L(x, y)       (their eq. 6)

and an unlabelled one, summing over the classes under the classifier,

    log p(x) >= sum_y q(y|x) (-L(x, y)) + H(q(y|x)) = -U(x)                                    (their eq. 7)

Training minimises L over the labelled examples plus alpha times the classifier's cross-entropy on them, and U
over the unlabelled ones (their eq. 9). Labels of -1 mark the unlabelled examples of a batch, so that one batch
mixes both (``data: {labels: true, labels_per_class: N, labelled_per_batch: M}``).
"""

import math

import tensorflow as tf

from vae_zoo import networks
from vae_zoo.errors import InputError
from vae_zoo.models import distributions
from vae_zoo.models.cvae import ConditionalVAE
from vae_zoo.models.vae import VAE
from vae_zoo.registry import register

UNKNOWN = -1  # the label of an unlabelled example


def m2_objective(log_q_y, class_elbos, labels, alpha):
    """Per-example M2 loss and its parts from the classifier's log-probabilities ``log_q_y`` (batch, K), each
    class's bound ``class_elbos`` (batch, K) on log p(x, y) (= -L(x, y)) and ``labels`` (batch,), -1 where unknown.

    Returns a dict of per-example tensors: ``loss`` (L + alpha * cross-entropy where the label is known, U where
    it is not), ``elbo`` (-U: the bound on log p(x) whatever the label), ``labelled_elbo`` (-L(x, y) at the known
    label, -U elsewhere) and ``cross_entropy`` (-log q(y|x) at the known label, 0 elsewhere).
    """
    q_y = tf.exp(log_q_y)
    entropy = -tf.reduce_sum(q_y * log_q_y, axis=-1)
    unlabelled_elbo = tf.reduce_sum(q_y * class_elbos, axis=-1) + entropy  # -U(x)
    labels = tf.cast(labels, tf.int32)
    known = labels >= 0
    index = tf.maximum(labels, 0)
    at_label = tf.gather(class_elbos, index, axis=-1, batch_dims=1)  # -L(x, y)
    cross_entropy = -tf.gather(log_q_y, index, axis=-1, batch_dims=1)
    zero = tf.zeros_like(cross_entropy)
    return {
        "loss": tf.where(known, -at_label + alpha * cross_entropy, -unlabelled_elbo),
        "elbo": unlabelled_elbo,
        "labelled_elbo": tf.where(known, at_label, unlabelled_elbo),
        "cross_entropy": tf.where(known, cross_entropy, zero),
    }


@register("m2")
class M2(ConditionalVAE):
    """The semi-supervised VAE M2 (Kingma et al., 2014): a classifier q(y|x), q(z|x,y) and p(x|y,z).

    Args:
        num_classes: K, the number of classes.
        classifier: the network spec of q(y|x) (``vae_zoo.networks``; default an MLP with one hidden layer of 500,
            as in the paper).
        alpha: the weight of the classifier's cross-entropy on the labelled examples, relative to their bound
            (the paper's alpha = 0.1 N is for sums over the whole data set; per example, as here, the weight the
            labelled examples get in a batch is what matters: tune it on validation error).
        kwargs: as for ``cvae`` (encoder, decoder, likelihood, latent_dim, beta...).

    Inputs: ``x`` alone (every label unknown) or ``(x, labels)`` with -1 for unknown labels. ``predict_labels``
    and ``class_probabilities`` classify; ``sample(n, labels=...)`` generates given classes.
    Metrics add ``cross_entropy`` and ``classification_error`` (over the examples whose label is known).
    """

    capabilities = (VAE.capabilities - {"gaussian_posterior"}) | {"classify"}
    metric_names = ("loss", "elbo", "reconstruction", "kl", "labelled_elbo", "cross_entropy", "classification_error")

    def __init__(self, num_classes=10, classifier={"name": "mlp", "hidden_sizes": [500]}, alpha=50.0, **kwargs):
        if not float(alpha) >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha!r}")
        prior = kwargs.get("prior", "normal")
        if (prior if isinstance(prior, str) else prior.get("name")) != "normal":
            raise ValueError(f"m2's p(z) is N(0, I) (the paper's), got prior {prior!r}")
        self.classifier_spec, self.alpha = classifier, float(alpha)
        super().__init__(num_classes=num_classes, **kwargs)

    def make_networks(self):
        super().make_networks()
        self.classifier = networks.make_encoder(self.classifier_spec, self.data_shape, self.num_classes, name="classifier")

    # ------------------------------------------------------------------ labels

    def split_inputs(self, inputs):
        """``(x, labels)`` or ``(x, None)``: labels are optional (-1 or None where unknown)."""
        if isinstance(inputs, (tuple, list)) and len(inputs) == 2:
            return inputs[0], inputs[1]
        return inputs, None

    def labels_or_unknown(self, x, y):
        """int32 labels, (batch,): ``y`` checked, or -1 for every example where ``y`` is None."""
        if y is None:
            return tf.fill(tf.shape(x)[:1], UNKNOWN)
        y = tf.convert_to_tensor(y)
        if y.dtype.is_floating or y.dtype == tf.bool:
            raise InputError(f"m2 expects integer class labels (-1 for unknown), got dtype {y.dtype.name}")
        if y.shape.rank != 1:
            raise InputError(f"m2 expects labels of shape (batch,), got {tuple(y.shape)}")
        if tf.executing_eagerly() and tf.size(y) > 0 and not (
                UNKNOWN <= int(tf.reduce_min(y)) and int(tf.reduce_max(y)) < self.num_classes):
            raise InputError(f"m2 labels must lie in [0, {self.num_classes}) or be -1 (unknown), got values in "
                             f"[{int(tf.reduce_min(y))}, {int(tf.reduce_max(y))}]")
        return tf.cast(y, tf.int32)

    def class_log_probabilities(self, x, training=False):
        """log q(y | x), (batch, K), in float32."""
        logits = tf.cast(self.classifier(self.check_data(x), training=training), tf.float32)
        return tf.nn.log_softmax(logits)

    def class_probabilities(self, x):
        return tf.exp(self.class_log_probabilities(x))

    def predict_labels(self, x):
        """The classifier's most probable class of each example, int32 (batch,)."""
        return tf.argmax(self.class_log_probabilities(x), axis=-1, output_type=tf.int32)

    def resolved_labels(self, x, y):
        """Known labels as they are, unknown ones (-1) replaced by the classifier's choice."""
        y = self.labels_or_unknown(x, y)
        return tf.where(y >= 0, y, self.predict_labels(x))

    # ------------------------------------------------------------------ the objective

    def loss_terms(self, x, y=None, training=False, seed=None):
        x = self.check_data(x)
        labels = self.labels_or_unknown(x, y)
        batch, k = tf.shape(x)[0], self.num_classes
        log_q_y = self.class_log_probabilities(x, training=training)
        # Every example under every class: row c * batch + i is example i with class c.
        every_x = tf.tile(x, tf.concat([[k], tf.ones([len(self.data_shape)], tf.int32)], axis=0))
        every_y = tf.repeat(tf.range(k), batch)
        q = self.encode(every_x, every_y, training=training)
        z = distributions.reparameterized_sample(q, seed=seed)
        log_likelihood = self.data_log_prob(z, every_x, every_y, training=training)
        kl = distributions.kl_divergence(q, self.prior(), z)
        log_prior_y = -math.log(k)
        # (K * batch,) -> (batch, K)
        as_table = lambda t: tf.transpose(tf.reshape(t, [k, batch]))  # noqa: E731
        class_elbos = as_table(log_likelihood - self.kl_weight * kl) + log_prior_y
        terms = m2_objective(log_q_y, class_elbos, labels, self.alpha)
        known = tf.cast(labels >= 0, tf.float32)
        weights = tf.where(labels[:, None] >= 0, tf.one_hot(tf.maximum(labels, 0), k), tf.exp(log_q_y))
        terms["reconstruction"] = -tf.reduce_sum(weights * as_table(log_likelihood), axis=-1)
        terms["kl"] = tf.reduce_sum(weights * as_table(kl), axis=-1)
        # The bound itself, whatever beta weights the KL by in the loss.
        plain = m2_objective(log_q_y, as_table(log_likelihood - kl) + log_prior_y, labels, self.alpha)
        terms["elbo"], terms["labelled_elbo"] = plain["elbo"], plain["labelled_elbo"]
        # The error among the examples whose label is known, as a per-example value whose batch mean is that error.
        wrong = tf.cast(tf.not_equal(tf.argmax(log_q_y, axis=-1, output_type=tf.int32), labels), tf.float32)
        scale = tf.cast(batch, tf.float32) / tf.maximum(tf.reduce_sum(known), 1.0)
        terms["classification_error"] = wrong * known * scale
        terms["cross_entropy"] = terms["cross_entropy"] * scale
        return terms

    def log_weight_terms(self, x, y=None, k=1, seed=None, training=False):
        """k joint draws y_i ~ q(y|x), z_i ~ q(z|x, y_i) (a known label is not used: p(x) sums over y):
        log p(x|y_i,z_i), log p(y_i) + log p(z_i) and log q(y_i|x) + log q(z_i|x,y_i); each (k, batch)."""
        x = self.check_data(x)
        batch = tf.shape(x)[0]
        log_q_y = self.class_log_probabilities(x, training=training)
        y_seed, z_seed = (None, None) if seed is None else tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        draws = (tf.random.categorical(log_q_y, k, dtype=tf.int32) if y_seed is None
                 else tf.random.stateless_categorical(log_q_y, k, y_seed, dtype=tf.int32))  # (batch, k)
        draws = tf.reshape(tf.transpose(draws), [-1])  # draw-major: row i * batch + b
        every_x = tf.tile(x, tf.concat([[k], tf.ones([len(self.data_shape)], tf.int32)], axis=0))
        q = self.encode(every_x, draws, training=training)
        z, log_q_z = distributions.reparameterized_draw(q, [1], seed=z_seed)
        z, log_q_z = z[0], log_q_z[0]
        log_likelihood = self.data_log_prob(z, every_x, draws, training=training)
        log_prior = self.prior().log_prob(z) - math.log(self.num_classes)
        log_q_drawn = tf.gather(tf.tile(log_q_y, [k, 1]), draws, axis=-1, batch_dims=1)
        shape = [k, batch]
        return (tf.reshape(log_likelihood, shape), tf.reshape(log_prior, shape),
                tf.reshape(log_q_z + log_q_drawn, shape))

    def kl_by_dimension(self, x, y=None):
        return None  # q(z|x) is a mixture over the classes: no per-dimension KL

    # ------------------------------------------------------------------ the latent space

    def encode(self, x, y=None, training=False):
        """q(z | x, y); an unknown label (None or -1) is the classifier's choice."""
        return super().encode(x, self.resolved_labels(x, y), training=training)

    def decode(self, z, y=None, training=False):
        if y is None:
            raise InputError("m2 decodes z with a class: pass labels")
        return super().decode(z, y, training=training)

    def decoded_mean(self, z, y=None):
        """E[x | z, y]; without labels E[x | z] = sum_y p(y) E[x | y, z] (y and z are independent under the prior)."""
        if y is not None:
            return super().decoded_mean(z, y)
        z = tf.convert_to_tensor(z, tf.float32)
        batch = tf.shape(z)[0]
        every_y = tf.repeat(tf.range(self.num_classes), batch)
        means = self.decode(tf.tile(z, [self.num_classes, 1]), every_y).mean()
        return tf.reduce_mean(tf.reshape(means, tf.concat([[self.num_classes, batch], tf.shape(means)[1:]], 0)), axis=0)

    def reconstruction(self, x, y=None, training=False):
        y = self.resolved_labels(x, y)
        return super().reconstruction(x, y, training=training)
