"""Conditional VAE: encoder and decoder both see the label."""

import math

import tensorflow as tf

from vae_zoo import networks
from vae_zoo.errors import InputError
from vae_zoo.models.vae import VAE
from vae_zoo.registry import register


@register("cvae")
class ConditionalVAE(VAE):
    """Conditional VAE (Sohn et al., 2015): q(z|x, y) and p(x|z, y), for class-specific generation.

    Inputs are ``(images, labels)`` with integer labels in ``[0, num_classes)``;
    ``fit`` takes labelled data (``fit(images, labels)`` or a data set of pairs)
    and ``sample(n, labels=...)`` generates the given classes. The label enters
    the decoder beside z, and the encoder once beside the flattened image (MLP)
    or as one-hot channels at every pixel (conv, where every position needs it).
    """

    capabilities = VAE.capabilities | {"labels"}

    def __init__(self, num_classes=10, **kwargs):
        self.num_classes = int(num_classes)
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes!r}")
        prior = kwargs.get("prior", "normal")
        if (prior if isinstance(prior, str) else prior.get("name")) == "vamp":
            raise ValueError("the VampPrior is defined through an unconditional encoder; cvae does not support it")
        super().__init__(**kwargs)

    @property
    def label_as_channels(self):
        """Whether the encoder keeps the spatial layout (conv): the label then enters as channels at every position."""
        return networks.network_body(self.encoder_spec).spatial

    def encoder_input_shape(self):
        if not self.label_as_channels:
            return (math.prod(self.data_shape) + self.num_classes,)
        return (*self.data_shape[:-1], self.data_shape[-1] + self.num_classes)

    def decoder_input_dim(self):
        return self.latent_dim + self.num_classes

    def one_hot(self, y):
        y = tf.convert_to_tensor(y)
        if y.dtype.is_floating or y.dtype == tf.bool:
            raise InputError(f"cvae expects integer class labels, got dtype {y.dtype.name}")
        if y.shape.rank != 1:
            raise InputError(f"cvae expects labels of shape (batch,), got {tuple(y.shape)}")
        if tf.executing_eagerly() and (tf.size(y) > 0) and not (0 <= int(tf.reduce_min(y)) and int(tf.reduce_max(y)) < self.num_classes):
            raise InputError(f"cvae labels must lie in [0, {self.num_classes}), got values in [{int(tf.reduce_min(y))}, {int(tf.reduce_max(y))}]")
        return tf.one_hot(tf.cast(y, tf.int32), self.num_classes, dtype=self.compute_dtype)

    def _require(self, y):
        if y is None:
            raise InputError("cvae is conditional: it needs labels; fit on (images, labels)")
        return self.one_hot(y)

    def encoder_inputs(self, x, y=None):
        x = self.check_data(x)
        labels = self._require(y)
        if not self.label_as_channels:
            # Once, beside the flattened image: tiled over 784 pixels it would swamp the first layer.
            return tf.concat([tf.reshape(x, [tf.shape(x)[0], -1]), labels], axis=-1)
        # Broadcast the one-hot label over every position of the example, as extra channels.
        spatial = [1] * (len(self.data_shape) - 1)
        labels = tf.reshape(labels, [-1, *spatial, self.num_classes])
        labels = labels * tf.ones(tf.concat([tf.shape(x)[:-1], [1]], axis=0), labels.dtype)
        return tf.concat([x, labels], axis=-1)

    def decoder_inputs(self, z, y=None):
        return tf.concat([z, self._require(y)], axis=-1)

    def sample(self, n, seed=None, labels=None):
        """``n`` examples of the given classes (default: the classes in turn, 0, 1, 2, ...)."""
        if labels is None:
            labels = tf.range(n) % self.num_classes
        labels = tf.convert_to_tensor(labels)
        if labels.shape.rank != 1 or (isinstance(n, int) and labels.shape[0] != n):
            raise InputError(f"cvae.sample needs {n} labels, got shape {tuple(labels.shape)}")
        return self.decode(self.prior().sample(n, seed=seed), labels).mean()
