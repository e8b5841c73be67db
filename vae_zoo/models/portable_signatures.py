"""Signatures that every TensorFlow runtime can serve: deterministic, noise as an input, plain ops only.

The full export's signatures draw their own noise (random ops with seeds) and
check their inputs with ``Assert`` ops; TFLite's builtin op set and ONNX have
neither. These take the noise as an input and report bad inputs in a ``valid``
output instead (one bool per example: finite, and inside the likelihood's
support), computed with comparisons and a reduction that every runtime has:

    serving_default(x)     -> reconstruction, valid
    encode(x)              -> the model's encoding (mean, stddev / code / codes), valid
    decode(z)              -> mean
    sample(noise)          -> samples        (noise ~ N(0, I): models with a standard normal prior)
    elbo(x, noise)         -> elbo, valid    (z = mean + stddev * noise; Gaussian q(z|x), N(0, I) prior)

An example whose ``valid`` is false is replaced by zeros before the networks
see it, so its outputs are those of a blank input, the same in every runtime. Conditional models take ``labels`` after x (or z, or noise).
"""

import numpy as np
import tensorflow as tf

from vae_zoo.models.distributions import StandardNormalPrior


def valid_examples(model, x):
    """One bool per example: every value finite and inside the likelihood's support."""
    ok = (x == x) & (tf.abs(x) < np.inf)  # x == x is false for NaN; no IsNan/IsFinite op needed
    support = getattr(getattr(model, "likelihood", None), "support", None)
    if support is not None:
        ok &= (x >= support[0]) & (x <= support[1])
    flat = tf.reshape(tf.cast(ok, tf.float32), [tf.shape(x)[0], -1])
    return tf.reduce_min(flat, axis=1) > 0.5


def cleaned(model, x):
    """(x with every invalid example replaced by zeros, the valid flags): the networks never see NaN,
    so every runtime computes the same, defined outputs (a NaN code distance once crashed TFLite's gather).

    The rows are picked by a Gather from [a zero row, x's rows], with integer indices: a gather copies values and
    every converter keeps it. ``tf.where`` did not survive: tf2onnx lowers it to ``cond * x + (1 - cond) * 0``,
    and 0 * NaN is NaN, so ONNX gave NaN in every output of an invalid row."""
    valid = valid_examples(model, x)
    count = tf.shape(x)[0]
    rows = tf.reshape(x, [count, -1])
    table = tf.concat([tf.zeros_like(rows[:1]), rows], axis=0)
    index = tf.range(1, count + 1) * tf.cast(valid, tf.int32)  # row i + 1 if valid, else the zero row
    return tf.reshape(tf.gather(table, index), tf.shape(x)), valid


def has_standard_normal_prior(model):
    return isinstance(getattr(model, "prior_layer", None), StandardNormalPrior)


def portable_signatures(model):
    """(name, function, input specs) for each portable signature that applies to ``model``."""
    x_spec, *label_specs = model.input_specs()
    z_spec = model.decoder_input_spec()
    conditional = model.can("labels")

    def labelled(fn):
        return fn if conditional else (lambda first, *rest: fn(first, None, *rest))

    def serving_default(x, labels):
        x, valid = cleaned(model, x)
        return {"reconstruction": model.reconstruction(x, labels), "valid": valid}

    def encode(x, labels):
        x, valid = cleaned(model, x)
        return {**model.encoded_outputs(x, labels), "valid": valid}

    def decode(z, labels):
        return {"mean": model.decoded_mean(z, labels)}

    signatures = [
        ("serving_default", labelled(serving_default), [x_spec, *label_specs]),
        ("encode", labelled(encode), [x_spec, *label_specs]),
        ("decode", labelled(decode), [z_spec, *label_specs]),
    ]
    # One Gaussian noise vector: not for a hierarchy of latent layers.
    if model.can("sample") and has_standard_normal_prior(model) and not model.can("hierarchical"):
        noise_spec = tf.TensorSpec(z_spec.shape, tf.float32, name="noise")

        def sample(noise, labels):
            return {"samples": model.decoded_mean(noise, labels)}

        signatures.append(("sample", labelled(sample), [noise_spec, *label_specs]))
        if model.can("elbo") and model.can("gaussian_posterior"):

            def elbo(x, labels, noise):
                x, valid = cleaned(model, x)
                q = model.encode(x, labels)
                mean, stddev = q.mean(), q.stddev()
                z = mean + stddev * noise
                params = tf.cast(model.decoder(model.decoder_inputs(z, labels)), tf.float32)
                reconstruction = model.likelihood.plain_log_prob(params, x)
                # KL(N(mean, stddev^2) || N(0, I)) in closed form, as the model's own ELBO computes it.
                kl = 0.5 * tf.reduce_sum(tf.square(mean) + tf.square(stddev) - 1.0 - 2.0 * tf.math.log(stddev), axis=-1)
                return {"elbo": reconstruction - kl, "valid": valid}

            signatures.append(("elbo", labelled(elbo), [x_spec, *label_specs, noise_spec]))
    return signatures
