"""Corrupting what the encoder sees in training, while the likelihood still scores the clean example.

The denoising criterion for VAEs (Im, Ahn, Memisevic and Bengio, AAAI 2017): q(z|x~) is fitted to a corrupted
x~ and p(x|z) to the clean x. The corruption here is SpecAugment's (Park et al., Interspeech 2019): bands of
zeros across each of the example's first two axes (time and frequency for a spectrogram, rows and columns for an
image), and a shift along the first axis (time). On the 2,400 training recordings of FSDD it keeps the encoder
from memorising its training set, and its codes hold the spoken digit better (recipes/vae/fsdd_mel.yaml).

Every draw is stateless, keyed by the training step's seed, so a resumed run corrupts as an unbroken one does.
"""

import tensorflow as tf

# Salts that keep the corruption's draws apart from the step's other noise (the reparameterization's).
MASK_SALT, SHIFT_SALT = 7001, 7002


def _uniform_integers(shape, seed, salt, high):
    """Integers in [0, high), stateless when ``seed`` is given."""
    if seed is None:
        return tf.random.uniform(shape, 0, high, dtype=tf.int32)
    key = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int32), salt)
    return tf.random.stateless_uniform(shape, key, 0, high, dtype=tf.int32)


def band_masks(batch, size, count, width, seed, salt):
    """(batch, size) of ones with ``count`` bands of 0 to ``width`` zeros at random places in each row."""
    keep = tf.ones([batch, size])
    positions = tf.range(size)[None, :]
    for band in range(count):
        widths = _uniform_integers([batch, 1], seed, salt + 100 * band, width + 1)
        starts = _uniform_integers([batch, 1], seed, salt + 100 * band + 1, size)
        inside = (positions >= starts) & (positions < starts + widths)
        keep *= 1.0 - tf.cast(inside, keep.dtype)
    return keep


def random_shift(x, shift, seed):
    """Each example moved by up to ``shift`` places along its first axis; the edge value fills the gap."""
    batch, size = tf.shape(x)[0], x.shape[1]
    offsets = _uniform_integers([batch, 1], seed, SHIFT_SALT, 2 * shift + 1) - shift
    source = tf.clip_by_value(tf.range(size)[None, :] - offsets, 0, size - 1)
    return tf.gather(x, source, axis=1, batch_dims=1)


def corrupt(x, masks=0, width=1, shift=0, seed=None):
    """``x`` (batch, *example) with ``masks`` bands of up to ``width`` zeros across each of its first two example
    axes, and shifted by up to ``shift`` places along the first."""
    if shift:
        x = random_shift(x, int(shift), seed)
    mask_axes = range(1, min(x.shape.rank, 3)) if masks else ()
    for axis in mask_axes:
        keep = band_masks(tf.shape(x)[0], x.shape[axis], int(masks), int(width), seed, MASK_SALT + 1000 * axis)
        shape = [-1] + [x.shape[axis] if a == axis else 1 for a in range(1, x.shape.rank)]
        x = x * tf.cast(tf.reshape(keep, shape), x.dtype)
    return x
