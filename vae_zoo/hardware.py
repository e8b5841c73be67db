"""What the machine running vae_zoo has, where a choice of how to compute depends on it."""

import tensorflow as tf


def has_accelerator():
    """Whether TensorFlow sees a GPU or a TPU (the step then runs off the host's cores)."""
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
