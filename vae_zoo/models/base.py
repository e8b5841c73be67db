"""The model contract: what every zoo model declares, and how it meets Keras.

A zoo model is a Keras subclassed model that says what it can do instead of
being inspected for it:

* ``capabilities``: a frozenset drawn from ``CAPABILITIES`` (an ELBO, sampling,
  labels, discrete codes, ...). Export, evaluation, callbacks and the CLI ask
  ``model.can("sample")``; they never branch on a model's class.
* ``modality`` and ``input_specs()``: the kind of data and the tensors a
  model takes (images and, for conditional models, labels).
* ``serving_signatures()``: the functions an export serves, built from the
  capabilities (``vae_zoo.models.signatures``).
* ``loss_terms(x, y, training, seed)``: per-example tensors, ``loss`` (what is
  minimised) plus whatever the model reports (``metric_names``).

Training goes through ``compute_loss``, which scales the loss for the number
of replicas of a ``tf.distribute`` strategy exactly as Keras does; the step
itself is Keras's (loss scaling for mixed precision included), with the forward
pass inside ``compute_loss`` so that it runs once. Random draws in a training
step are stateless and keyed by the optimizer's step counter, so a run that is
restored from a checkpoint, or split over replicas, draws the same noise as
one that never stopped.

The config is the constructor: ``get_config()`` returns exactly the
``__init__`` keyword arguments, captured in ``__new__``.
"""

import keras
import numpy as np
import tensorflow as tf
from keras.src.losses.loss import (
    scale_loss_for_distribution,
    unscale_loss_for_distribution,
)

from vae_zoo import networks
from vae_zoo.errors import CapabilityError, DataError, InputError
from vae_zoo.models import distributions, portable_signatures, signatures
from vae_zoo.registry import bound_hyperparameters, hyperparameter_defaults
from vae_zoo.training import compilation

# What a model may declare that it can do.
CAPABILITIES = {
    "elbo": "defines an ELBO and an importance-sampled log-likelihood",
    "sample": "generates new data from a prior",
    "labels": "is conditional: takes (data, labels)",
    "discrete_codes": "encodes to integer code indices (decode takes codes)",
    "gaussian_posterior": "q(z|x) is a diagonal Gaussian (KL per dimension, mutual information)",
    "reconstruct": "encodes and decodes data",
    "hierarchical": "has several stochastic layers of latents (z_1..z_L): what handles one Gaussian layer does not apply",
    "latent": "maps data to latent codes and back (transform, the encode and decode signatures)",
    "classify": "has a classifier q(y|x): predict_labels, class_probabilities (semi-supervised models)",
}

# The methods only a model with the capability has; asked of any other model, they raise CapabilityError.
CAPABILITY_METHODS = {
    "elbo": "elbo", "log_weights": "elbo",
    "sample": "sample",
    "transform": "latent", "encoded_outputs": "latent", "decoded_mean": "latent", "decoder_input_spec": "latent",
    "predict_labels": "classify", "class_probabilities": "classify",
}


def to_json(value):
    """Tuples become lists so that a config equals its own JSON round trip."""
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


# Added to the noise seed for the draws of validation steps.
VALIDATION_SALT = 7919


def step_seed(model, salt=0):
    """A stateless [2] seed for this training step: (salt, optimizer step), identical on every replica."""
    optimizer = getattr(model, "optimizer", None)
    step = tf.cast(optimizer.iterations, tf.int32) if optimizer is not None else tf.constant(0, tf.int32)
    return tf.stack([tf.constant(int(salt), tf.int32), step])


# Network options that vae_zoo 0.1 saved as flat constructor arguments.
FLAT_NETWORK_OPTIONS = ("network", "hidden_sizes", "conv_filters", "activation", "batch_norm")


def upgrade_network_options(config):
    """A config saved with ``network``, ``hidden_sizes``, ... (vae_zoo 0.1) with an ``encoder`` spec instead."""
    if "network" not in config:
        return config
    config = dict(config)
    flat = {key: config.pop(key) for key in FLAT_NETWORK_OPTIONS if key in config}
    spec = {"name": flat.get("network", "mlp"), "hidden_sizes": flat.get("hidden_sizes", [400, 400]),
            "activation": flat.get("activation", "relu"), "batch_norm": flat.get("batch_norm", False)}
    if spec["name"] == "conv":
        spec["filters"] = flat.get("conv_filters", [32, 64])
    config["encoder"] = spec
    return config


class ZooModel(keras.Model):
    """The thin base of every zoo model.

    A subclass implements ``loss_terms(x, y, training, seed)`` (per-example ``loss`` and its ``metric_names``),
    ``reconstruction(x, y, training)`` and the methods its capabilities promise (``CAPABILITY_METHODS``: an
    ``elbo`` model has ``elbo`` and ``log_weights``, a ``latent`` one ``transform``, ``encoded_outputs``,
    ``decoded_mean`` and ``decoder_input_spec``, and so on). What a model cannot do it does not declare, and
    its callers ask ``can`` first; asked anyway, the method raises ``CapabilityError``.

    Args:
        data_shape: the shape of one example, e.g. ``(28, 28, 1)``.
    """

    capabilities = frozenset({"reconstruct"})
    modality = "image"
    # The dtype of ``x``: float pixels or features; token models take int32 ids.
    input_dtype = tf.float32
    # Whether ``portable_signatures`` (TFLite, ONNX) can serve the model.
    portable = True
    # Per-example quantities reported by fit() and evaluate(); "loss" is Keras's own tracker.
    metric_names = ("loss",)
    # Salt of the training step's stateless noise (the step counter is the other half).
    noise_seed = 0
    # Constructor arguments that earlier versions saved and this one ignores (from_config drops them).
    retired_arguments = ()

    def __new__(cls, *args, **kwargs):
        # __new__ sees exactly the arguments of the outermost constructor call, which
        # is what get_config() must return, whatever chain of super().__init__ follows.
        instance = super().__new__(cls, *args, **kwargs)
        object.__setattr__(instance, "_hyperparameters", bound_hyperparameters(cls, args, kwargs))
        return instance

    def __init__(self, data_shape=(28, 28, 1), **kwargs):
        super().__init__(**kwargs)
        self.data_shape = tuple(int(d) for d in data_shape)
        if not self.data_shape or min(self.data_shape) < 1:
            raise ValueError(f"data_shape must be a non-empty tuple of positive sizes, got {data_shape!r}")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names if name != "loss"}

    # ------------------------------------------------------------------ what the model declares

    @classmethod
    def spec_arguments(cls):
        """Constructor arguments that take a spec: name -> (table, kind, arguments the model supplies itself)."""

        return {
            "encoder": (networks.NETWORKS, "network", ()),
            "decoder": (networks.NETWORKS, "network", ()),
            "likelihood": (distributions.LIKELIHOODS, "likelihood", ("event_ndims",)),
            "prior": (distributions.PRIORS, "prior", ("latent_dim", "data_shape")),
        }

    def nonfinite_weights(self):
        """The paths of the weights that hold NaN or infinity (empty for a healthy model)."""
        return [w.path for w in self.weights if not np.all(np.isfinite(keras.ops.convert_to_numpy(w)))]

    def can(self, capability):
        """Whether the model has ``capability`` (one of ``CAPABILITIES``)."""
        if capability not in CAPABILITIES:
            raise KeyError(f"unknown capability {capability!r}; known: {', '.join(CAPABILITIES)}")
        return capability in self.capabilities

    def input_specs(self):
        """The tensors the model takes: ``x`` and, for conditional models, ``labels``."""
        specs = [tf.TensorSpec([None, *self.data_shape], self.input_dtype, name="x")]
        if self.can("labels"):
            specs.append(tf.TensorSpec([None], tf.int32, name="labels"))
        return specs

    def __getattr__(self, name):
        # Only reached when normal lookup fails: a method of a capability the model does not declare.
        capability = CAPABILITY_METHODS.get(name)
        if capability is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        raise CapabilityError(f"{type(self).registered_name} has no {name}(): it lacks the {capability!r} capability "
                              f"({CAPABILITIES[capability]})")

    def serving_signatures(self):
        """(name, function, input specs) for every serving signature that applies to this model."""
        return signatures.serving_signatures(self)

    def portable_signatures(self):
        """The deterministic signatures, noise as an input, that TFLite and ONNX can run too."""
        return portable_signatures.portable_signatures(self)

    # ------------------------------------------------------------------ inputs

    def split_inputs(self, inputs):
        """``(x, y)`` from a conditional model's inputs, ``(x, None)`` from anyone else's."""
        name = self.registered_name
        is_pair = isinstance(inputs, (tuple, list)) and len(inputs) == 2
        if self.can("labels"):
            if not is_pair:
                raise InputError(f"{name} is conditional: pass (images, labels)")
            return inputs[0], inputs[1]
        if is_pair:
            raise InputError(f"{name} is not conditional: pass images only, not (images, labels)")
        return inputs, None

    def check_fits(self, data):
        """Raise ``DataError`` unless the data set ``data`` has this model's example shape (and classes)."""
        if tuple(data.data_shape) != self.data_shape:
            raise DataError(f"data {data.name!r} has examples of shape {tuple(data.data_shape)}, but {self.registered_name} "
                            f"was built for {self.data_shape}")
        if self.can("labels") and not 0 < data.num_classes <= self.num_classes:
            raise DataError(f"data {data.name!r} has {data.num_classes} classes (labels 0-{data.num_classes - 1}), but "
                            f"{self.registered_name} was built for num_classes={self.num_classes}")

    def check_data(self, x):
        """Convert ``x`` to a float tensor of shape (batch, *data_shape), or raise a clear error."""
        x = tf.convert_to_tensor(x)
        if not x.dtype.is_floating:
            raise InputError(
                f"{self.registered_name} expects float pixels in [0, 1], got dtype {x.dtype.name}"
                + (" (divide uint8 images by 255)" if x.dtype == tf.uint8 else "")
            )
        shape = tuple(x.shape)
        if len(shape) != len(self.data_shape) + 1 or any(
            s is not None and s != d for s, d in zip(shape[1:], self.data_shape)
        ):
            got = ", ".join("None" if s is None else str(s) for s in shape)
            raise InputError(
                f"{self.registered_name} expects inputs of shape (batch, {', '.join(map(str, self.data_shape))}), got ({got})"
            )
        if tf.executing_eagerly() and not bool(tf.reduce_all(tf.math.is_finite(x))):
            raise InputError(f"{self.registered_name} got input containing NaN or infinity")
        support = getattr(getattr(self, "likelihood", None), "support", None)
        if support is not None and tf.executing_eagerly() and tf.size(x) > 0:
            low, high = float(tf.reduce_min(x)), float(tf.reduce_max(x))
            if low < support[0] or high > support[1]:
                raise InputError(f"{self.registered_name}'s likelihood is defined on [{support[0]:g}, {support[1]:g}]; "
                                 f"the input ranges over [{low:g}, {high:g}]")
        # Distributions and losses are computed in float32, whatever the layers' mixed-precision policy.
        return tf.cast(x, tf.float32)

    # ------------------------------------------------------------------ using a trained model

    def call(self, inputs, training=False):
        """The reconstruction of ``inputs``."""
        x, y = self.split_inputs(inputs)
        return self.reconstruction(x, y, training=training)

    def reconstruct(self, inputs):
        return self(inputs)

    # What ``reconstruction_error`` measures, as reports name it.
    reconstruction_error_name = "reconstruction_squared_error"

    def reconstruction_error(self, x, reconstruction):
        """Per-example distance between data and its reconstruction (the squared error)."""
        error = tf.square(tf.cast(x, tf.float32) - tf.cast(reconstruction, tf.float32))
        return tf.reduce_sum(tf.reshape(error, [tf.shape(error)[0], -1]), axis=1)

    def decoded_outputs(self, z, y=None):
        """What the ``decode`` serving signature returns."""
        return {"mean": self.decoded_mean(z, y)}

    def kl_by_dimension(self, x, y=None):
        """Per-example KL of every latent dimension, or None where the model has no factorized KL."""
        return None

    # ------------------------------------------------------------------ training with model.fit

    def compile(self, optimizer="adam", jit_compile="auto", **kwargs):
        """Like ``keras.Model.compile``, with Adam by default. The loss is the model's own. ``jit_compile="auto"``
        uses XLA where it pays on this machine for this model (``vae_zoo.training.compilation``: on a GPU, and on
        a CPU for models without convolutions)."""
        if kwargs.get("loss") is not None:
            raise ValueError(f"{self.registered_name} trains on its own loss; do not pass loss=")
        jit_compile, _ = compilation.choose_jit_compile(self, jit_compile)
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    def fit(self, x=None, y=None, *args, shuffle=None, **kwargs):
        """``keras.Model.fit``; ``shuffle`` defaults to False for a ``tf.data`` pipeline, which shuffles itself
        (Keras would otherwise warn that it ignores its default of True)."""
        if shuffle is None:
            shuffle = not isinstance(x, tf.data.Dataset)
        return super().fit(x, y, *args, shuffle=shuffle, **kwargs)

    @property
    def metrics(self):
        own = list(self.trackers.values())
        return ([self._loss_tracker] if getattr(self, "_loss_tracker", None) is not None else []) + own

    def batch_loss(self, terms, sample_weight=None):
        """The mean of the per-example ``loss`` over this replica's batch (weighted if asked)."""
        per_example = tf.cast(terms["loss"], tf.float32)
        if sample_weight is None:
            return tf.reduce_mean(per_example)
        weight = tf.cast(tf.reshape(sample_weight, tf.shape(per_example)), tf.float32)
        return tf.reduce_sum(per_example * weight) / tf.maximum(tf.reduce_sum(weight), 1e-12)

    def update_trackers(self, terms, sample_weight=None):
        for name, tracker in self.trackers.items():
            if name in terms:
                tracker.update_state(tf.cast(terms[name], tf.float32), sample_weight=sample_weight)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The forward pass of the objective and its loss, scaled for ``tf.distribute`` as Keras scales its own.

        Each replica returns its batch mean divided by the number of replicas,
        so that the gradients Keras sums over replicas are those of the global
        batch mean. Layer losses (``self.losses``) are added the same way.
        """
        # Validation draws are keyed too (by a second salt), so a run's validation figures, and the epoch
        # early stopping picks, are the same in any process, whatever ran before in it.
        seed = step_seed(self, self.noise_seed if training else self.noise_seed + VALIDATION_SALT)
        terms = self.loss_terms(x, y, training=training, seed=seed)
        self.update_trackers(terms, sample_weight)
        loss = scale_loss_for_distribution(self.batch_loss(terms, sample_weight))
        for extra in self.losses:
            loss += self._aggregate_additional_loss(extra)
        return loss

    def train_step(self, data):
        """Keras's own training step, with the forward pass inside ``compute_loss`` (so it runs once)."""
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        self.follow_kl_schedule()
        with tf.GradientTape() as tape:
            loss = self.compute_loss(x, y, sample_weight=sample_weight, training=True)
            self._loss_tracker.update_state(unscale_loss_for_distribution(loss), sample_weight=tf.shape(x)[0])
            scaled = self.optimizer.scale_loss(loss)
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))
        return self.step_results()

    def follow_kl_schedule(self):
        """beta for this step from the schedule the KLAnnealing callback set, if any (inside the compiled step)."""
        if getattr(self, "kl_schedule", None) is not None:
            step = tf.cast(self.optimizer.iterations, tf.float32)
            self.kl_weight.assign(tf.cast(self.kl_schedule(step), self.kl_weight.dtype))

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        loss = self.compute_loss(x, y, sample_weight=sample_weight, training=False)
        self._loss_tracker.update_state(unscale_loss_for_distribution(loss), sample_weight=tf.shape(x)[0])
        return self.step_results(training=False)

    def step_results(self, training=True):
        """The logged metrics; in training beta too, where the model has one, so that annealing shows in the logs."""
        results = {metric.name: metric.result() for metric in self.metrics}
        if training and hasattr(self, "kl_weight"):
            results["beta"] = tf.identity(self.kl_weight)
        return results

    # ------------------------------------------------------------------ config

    def get_config(self):
        """Exactly the constructor's keyword arguments (plus the Keras name), as JSON values."""
        params = {**hyperparameter_defaults(type(self)), **self._hyperparameters}
        return to_json({"name": self.name, **params})

    @classmethod
    def from_config(cls, config):
        config = upgrade_network_options(config)
        return cls(**{k: v for k, v in config.items() if k not in cls.retired_arguments})

    def build_from_config(self, config):
        # Built in __init__ already; nothing to do when Keras loads a .keras file.
        pass
