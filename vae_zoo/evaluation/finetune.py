"""Fine-tuning a pretrained encoder as a classifier from few labels (the seeds' "use unlabeled data to learn
representations, then fine-tune a classifier").

The encoder's trunk (every layer but the head that emits the posterior's mean and log-variance) is copied, a
linear classification head replaces that head, and the whole network trains on the labelled examples with the
cross-entropy. The pretrained model itself is left as it was.
"""

import keras
import numpy as np
import tensorflow as tf

from vae_zoo.errors import CapabilityError

# Full-batch steps of Adam on the labelled examples (at most a few thousand: 100 labels of 10 classes is 1,000).
STEPS = 300
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-4


def can_finetune(model):
    """Whether ``model`` has an encoder network that reads the data alone (not labels too) and ends in its head."""
    encoder = getattr(model, "encoder", None)
    return (isinstance(encoder, keras.Sequential) and len(encoder.layers) >= 2 and not model.can("labels")
            and model.input_dtype.is_floating  # images and features; a token model's encoder reads embeddings
            and not model.can("discrete_codes") and tuple(encoder.input_shape[1:]) == tuple(model.data_shape))


def encoder_classifier(model, num_classes, seed=0):
    """A new classifier: a copy of ``model``'s encoder trunk with its weights, and a linear head of ``num_classes``."""
    if not can_finetune(model):
        raise CapabilityError(f"{model.registered_name} has no encoder of the data alone to fine-tune")
    copy = keras.models.clone_model(model.encoder)
    copy.build((None, *model.data_shape))
    copy.set_weights(model.encoder.get_weights())
    head = keras.layers.Dense(num_classes, name="class_logits", kernel_initializer=keras.initializers.GlorotUniform(seed))
    classifier = keras.Sequential([keras.Input(model.data_shape), *copy.layers[:-1], head], name="finetuned_encoder")
    return classifier


def finetune(model, images, labels, num_classes, steps=STEPS, seed=0):
    """The fine-tuned classifier of ``model``'s encoder on the labelled ``images`` (full batches, ``steps`` of them)."""
    keras.utils.set_random_seed(int(seed))
    classifier = encoder_classifier(model, num_classes, seed)
    classifier.compile(optimizer=keras.optimizers.AdamW(LEARNING_RATE, weight_decay=WEIGHT_DECAY),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    # One epoch of ``steps`` full batches: Keras's per-epoch work once, not ``steps`` times.
    batches = tf.data.Dataset.from_tensors((np.asarray(images, np.float32), np.asarray(labels))).repeat()
    classifier.fit(batches, steps_per_epoch=int(steps), epochs=1, shuffle=False, verbose=0)
    return classifier


def accuracy(classifier, images, labels, batch_size=500):
    predictions = np.argmax(classifier.predict(np.asarray(images, np.float32), batch_size=batch_size, verbose=0), axis=-1)
    return float(np.mean(predictions == np.asarray(labels)))
