"""Training callbacks that recipes can name, resolved through one lookup table.

A recipe lists callbacks as ``{name: ..., **options}``; ``make_callback`` builds
them. Variants and techniques add their callbacks to ``CALLBACKS``.
"""

import warnings

import keras
import numpy as np
import tensorflow as tf

from vae_zoo.errors import DivergenceError, RecipeError, unknown_name
from vae_zoo.evaluation import latents
from vae_zoo.evaluation.visualize import image_summary
from vae_zoo.training import schedules


class KLAnnealing(keras.callbacks.Callback):
    """Sets the model's KL weight (beta) at every training step from a schedule.

    ``schedule`` is ``sigmoid`` (the seed's), ``linear``, ``cyclical`` or
    ``constant``; the other keyword arguments are the schedule's. The step is
    the optimizer's own counter, so the schedule continues across ``fit``
    calls and after a run is restored from a checkpoint. The callback hands
    the schedule to the model, which evaluates it inside its compiled step
    (no host round trip per step, and exact when Keras runs several steps per
    call with ``steps_per_execution``).
    """

    def __init__(self, schedule="sigmoid", **options):
        super().__init__()
        function, in_graph = schedules.get(schedule), schedules.get(schedule, graph=True)
        try:
            function(0, **options)
        except TypeError as err:
            raise RecipeError(f"bad options for the {schedule!r} schedule: {err}") from None
        self.schedule = lambda step: function(step, **options)
        self.graph_schedule = lambda step: in_graph(step, **options)

    def set_model(self, model):
        super().set_model(model)
        # Keras builds the callbacks before it traces the training step, so the step sees the schedule; a step
        # traced by an earlier fit without it is dropped, so that Keras traces it again.
        if getattr(model, "kl_schedule", None) is not self.graph_schedule:
            model.kl_schedule = self.graph_schedule
            model.train_function = None


class DivergenceGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss, naming the step, the epoch and the terms.

    It raises ``DivergenceError`` from the batch end, so no epoch-end
    callback (checkpoints, the run backup, the best-model checkpoint) ever
    writes a diverged state; at every epoch end it also checks the
    validation logs and the weights. Batch logs are running means over the
    epoch, so the first batch whose loss is non-finite is the step that
    diverged (to within ``steps_per_execution``).
    """

    def __init__(self):
        super().__init__()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or np.isfinite(float(loss)):
            return
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self._fail(f"at step {step} (epoch {self.epoch + 1}, batch {batch + 1})", logs)

    def on_epoch_end(self, epoch, logs=None):
        validation = {k: v for k, v in (logs or {}).items() if k.startswith("val_")}
        if not all(np.isfinite(float(v)) for v in validation.values()):
            self._fail(f"in the validation of epoch {epoch + 1}", validation)
        bad = self.model.nonfinite_weights()
        if bad:
            raise DivergenceError(f"training diverged in epoch {epoch + 1}: {len(bad)} weight tensors became non-finite "
                                  f"(first: {bad[0]})")

    @staticmethod
    def _fail(where, logs):
        # The loss, the ELBO and the IWAE bound are sums of the terms: name the terms.
        totals = ("loss", "elbo", "iwae_bound")
        terms = [name for name, value in logs.items()
                 if not np.isfinite(float(value)) and name.removeprefix("val_") not in totals]
        named = ", ".join(terms) if terms else "the loss"
        raise DivergenceError(f"training diverged {where}: {named} went non-finite; lower the learning rate or beta, "
                              "or check the data")


class PosteriorCollapseMonitor(keras.callbacks.Callback):
    """Watches for posterior collapse at the end of every epoch.

    It adds ``active_units`` (Burda et al.'s covariance criterion) and
    ``kl_per_dim_min`` to the epoch's logs, writes each dimension's KL to
    TensorBoard when ``log_dir`` is given, and warns when the mean KL per
    dimension falls under ``warn_below`` nats: q(z|x) then barely depends on x.
    """

    wants_validation_data = True

    def __init__(self, validation_images=None, validation_labels=None, examples=1000, warn_below=0.01,
                 active_threshold=0.01, log_dir=None):
        super().__init__()
        if validation_images is None:
            raise RecipeError("the collapse monitor needs validation_images")
        self.images = np.asarray(validation_images[:examples])
        self.labels = None if validation_labels is None else np.asarray(validation_labels[:examples])
        self.warn_below = float(warn_below)
        self.active_threshold = float(active_threshold)
        self.writer = tf.summary.create_file_writer(str(log_dir)) if log_dir else None
        self.history = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        active, _ = latents.active_units(self.model, self.images, self.labels, self.active_threshold)
        per_dim = latents.kl_per_dimension(self.model, self.images, self.labels)
        logs["active_units"] = active
        record = {"epoch": epoch + 1, "active_units": active}
        if per_dim is not None:
            logs["kl_per_dim_min"] = float(per_dim.min())
            record["kl_per_dim"] = per_dim.tolist()
            if self.writer is not None:
                with self.writer.as_default(step=epoch):
                    for d, value in enumerate(per_dim):
                        tf.summary.scalar(f"kl_per_dim/{d:02d}", value)
                    tf.summary.scalar("active_units", active)
            if per_dim.mean() < self.warn_below:
                warnings.warn(
                    f"posterior collapse: mean KL per latent dimension is {per_dim.mean():.4f} nats "
                    f"(under {self.warn_below}) and {active} of {per_dim.size} units are active; q(z|x) "
                    "barely depends on x. Try KL annealing, free bits or a smaller beta.",
                    RuntimeWarning, stacklevel=2,
                )
        self.history.append(record)


class ImageLogger(keras.callbacks.Callback):
    """Writes reconstructions of validation images and samples from the prior to TensorBoard
    as images every ``every`` epochs, so training can be watched, not just its numbers."""

    wants_validation_data = True

    def __init__(self, log_dir, validation_images=None, validation_labels=None, every=1, examples=16, seed=0):
        super().__init__()
        if validation_images is None:
            raise RecipeError("the image logger needs validation_images")
        self.images = np.asarray(validation_images[:examples])
        self.labels = None if validation_labels is None else np.asarray(validation_labels[:examples])
        self.every, self.seed = int(every), seed
        self.writer = tf.summary.create_file_writer(str(log_dir))

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        inputs = latents.model_inputs(self.model, self.images, self.labels)
        pictures = {"reconstructions": np.concatenate([self.images, np.asarray(self.model(inputs))])}
        if self.model.can("sample"):
            pictures["samples"] = np.asarray(self.model.sample(len(self.images), seed=self.seed, labels=self.labels))
        with self.writer.as_default(step=epoch + 1):
            for name, batch in pictures.items():
                summary = image_summary(batch)
                if summary is not None:
                    tf.summary.image(name, summary)
        self.writer.flush()


class MovingAverageWeights(keras.callbacks.SwapEMAWeights):
    """With the optimizer's ``use_ema``, the moving average of the weights is the model: it is what validation
    measures, early stopping and the best checkpoint judge, the run backup saves and the run ends with.

    Keras's callback (``swap_on_epoch``) swaps the average into the model for validation and from each epoch's end
    to the next epoch's start, so it must come before every callback that reads the weights; the runner puts it
    right after the divergence guard. ``closing()`` is its partner for the end of the list.
    """

    def __init__(self):
        super().__init__(swap_on_epoch=True)

    def closing(self):
        return _AverageAtTheEnd(self)


class _AverageAtTheEnd(keras.callbacks.Callback):
    """``fit`` ends by copying the optimizer's average slot into the model. Between epochs that slot holds the raw
    weights (they are swapped out), and Keras's callback puts the average back in it only when the planned last
    epoch ends: a run that early stopping ends would finish with the raw weights. Coming after the callbacks
    that may stop training, this does the same for a stopped run."""

    def __init__(self, swapping):
        super().__init__()
        self.swapping = swapping

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training and self.swapping._ema_weights_in_model:
            self.swapping._finalize_ema_values()


class ExemplarRefresh(keras.callbacks.Callback):
    """Trains an exemplar prior (``vae_zoo.models.exemplar_prior``): attaches its exemplar images for the run and
    recomputes the cache of their posterior means at every epoch's start, so that the weights validated and saved at
    the epoch's end hold the cache they were validated with. The runner adds it to every exemplar-prior run."""

    def __init__(self, images, indices):
        super().__init__()
        self.images, self.indices = images, indices

    def on_train_begin(self, logs=None):
        self.model.prior_layer.attach(self.images, self.indices)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.prior_layer.refresh(self.model)

    def on_train_end(self, logs=None):
        self.model.prior_layer.detach()


CALLBACKS = {
    "image_logger": ImageLogger,
    "kl_annealing": KLAnnealing,
    "collapse_monitor": PosteriorCollapseMonitor,
    "early_stopping": keras.callbacks.EarlyStopping,
    "reduce_lr_on_plateau": keras.callbacks.ReduceLROnPlateau,
    # Keras's TerminateOnNaN stops, then lets the run save the diverged model; this raises instead.
    "terminate_on_nan": DivergenceGuard,
}


def make_callback(spec, validation_images=None, validation_labels=None):
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise RecipeError(f"a callback must be a mapping with a 'name', got {spec!r}")
    options = dict(spec)
    name = options.pop("name")
    if name not in CALLBACKS:
        raise unknown_name("callback", name, CALLBACKS)
    if getattr(CALLBACKS[name], "wants_validation_data", False):
        options.setdefault("validation_images", validation_images)
        options.setdefault("validation_labels", validation_labels)
    try:
        return CALLBACKS[name](**options)
    except (TypeError, ValueError) as err:
        raise RecipeError(f"bad options for callback {name!r}: {err}") from None
