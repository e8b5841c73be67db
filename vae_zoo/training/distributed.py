"""Training under ``MultiWorkerMirroredStrategy``, where Keras 3's ``model.fit`` does not run.

``model.fit`` fails under that strategy with "Attempt to convert a value
(PerReplica...)" (keras-team/keras#20585, open). This loop does what ``fit``
does with the model's own ``train_step`` and ``test_step`` (so the loss is
scaled for the replicas exactly as there) and drives the same Keras callbacks.

Every global batch is cut into per-replica rows in order, so replica r of a
run trains on rows [r * B, (r + 1) * B) of the batch that one process would
train on whole; with the step-keyed noise of ``vae_zoo.models`` the gradients
are those of the single-process run. Each split's last, partial global batch
is dropped, so that no replica gets an empty batch.
"""

import keras
import tensorflow as tf

from vae_zoo.errors import RecipeError


def replica_rows(dataset, context, global_batch):
    """The rows of every global batch that the replicas fed by this input pipeline train on, one replica's batch at a time."""
    replicas_here = context.num_replicas_in_sync // context.num_input_pipelines
    local = global_batch // context.num_replicas_in_sync
    first = context.input_pipeline_id * replicas_here * local

    def rows(*elements):
        def cut(tensor):
            part = tensor[first:first + replicas_here * local]
            return tf.reshape(part, tf.concat([[replicas_here, local], tf.shape(part)[1:]], axis=0))

        parts = tuple(cut(t) for t in elements)
        return tf.data.Dataset.from_tensor_slices(parts if len(parts) > 1 else parts[0])

    return dataset.flat_map(rows)


def distribute(strategy, make_dataset, global_batch):
    return strategy.distribute_datasets_from_function(
        lambda context: replica_rows(make_dataset(), context, global_batch).prefetch(tf.data.AUTOTUNE))


def fit_multi_worker(model, data, epochs, first_epoch, callbacks, verbose="auto"):
    """``model.fit`` for ``MultiWorkerMirroredStrategy``: epochs ``first_epoch``..``epochs - 1``, with validation."""
    strategy = model.distribute_strategy
    global_batch = data.batch_size
    if global_batch % strategy.num_replicas_in_sync:
        raise RecipeError(f"data.batch_size {global_batch} must be a multiple of the {strategy.num_replicas_in_sync} replicas")
    steps = data.steps_per_epoch(drop_remainder=True)
    train = iter(distribute(strategy, lambda: data.training_stream(first_epoch, drop_remainder=True), global_batch))
    validation = distribute(strategy, lambda: data.validation.unbatch().batch(global_batch, drop_remainder=True), global_batch)

    # No XLA here: the step holds the replicas' collective all-reduce.
    @tf.function
    def train_step(iterator):
        strategy.run(model.train_step, args=(next(iterator),))

    @tf.function
    def test_step(batch):
        strategy.run(model.test_step, args=(batch,))

    def results(prefix=""):
        return {prefix + name: float(value) for name, value in model.step_results(training=not prefix).items()}

    callback_list = keras.callbacks.CallbackList(
        callbacks, add_history=True, add_progbar=verbose not in (0, "0"), model=model, epochs=epochs, steps=steps,
        verbose=1 if verbose == "auto" else verbose)
    model.stop_training = False
    if not model.optimizer.built:
        # Its slots must be mirrored variables: restoring a checkpoint builds it otherwise, outside the scope.
        with strategy.scope():
            model.optimizer.build(model.trainable_variables)
    callback_list.on_train_begin()
    for epoch in range(model._initial_epoch or first_epoch, epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        for step in range(steps):
            callback_list.on_train_batch_begin(step)
            train_step(train)
            callback_list.on_train_batch_end(step, results())
        logs = results()
        model.reset_metrics()
        callback_list.on_test_begin()  # as Keras's fit validates: a moving average is swapped in for it
        for batch in validation:
            test_step(batch)
        logs.update(results("val_"))
        callback_list.on_test_end()
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end()
    return model.history
