"""Activation layers for the convolutional bodies: swish with its gradient as one fused kernel.

TensorFlow's swish gradient recomputes sigmoid(x) and combines it with x and the incoming gradient in five
separate elementwise ops, each a pass over the feature map. Without XLA (the runner's choice for convolutional
models on a CPU, where XLA's convolutions are slower) that gradient took about a tenth of the hierarchical VAE's
training step at 28x28 (a profile beside tools/bench_vs_torch.py). Here the gradient is one XLA-compiled function,
so those ops fuse into one pass, whatever the caller is compiled with. The forward pass is TensorFlow's own silu,
and outside training the layer is exactly ``keras.layers.Activation("swish")``: inference graphs and exports
do not change.
"""

import keras
import tensorflow as tf

SWISH_NAMES = ("swish", "silu")


@tf.function(jit_compile=True)
def swish_gradient(x, upstream):
    """d swish(x) / dx * upstream, swish(x) = x sigmoid(x): sigmoid(x) (1 + x (1 - sigmoid(x))) * upstream."""
    s = tf.sigmoid(x)
    return upstream * (s * (1.0 + x * (1.0 - s)))


@tf.custom_gradient
def swish_with_fused_gradient(x):
    def gradient(upstream):
        return swish_gradient(x, upstream)

    return tf.nn.silu(x), gradient


@keras.saving.register_keras_serializable(package="vae_zoo")
class Swish(keras.layers.Layer):
    """x sigmoid(x); in training its gradient is one fused kernel (``swish_gradient``)."""

    def call(self, inputs, training=False):
        if training:
            return swish_with_fused_gradient(inputs)
        return tf.nn.silu(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape


def activation_layer(activation, name):
    """The layer for ``activation`` (a Keras activation's name): ``Swish`` for swish or silu, else Keras's own."""
    if activation in SWISH_NAMES:
        return Swish(name=name)
    return keras.layers.Activation(activation, name=name)
