"""Decoding token sequences from an autoregressive decoder: greedy, sampled, and beam search.

Every decoder here runs a fixed number of steps (the sentence length the model was built for, so a served
model's work is bounded) and returns ids of the model's input shape: ``<bos>``, the generated tokens, ``<eos>``
and padding after it. Once a sentence has produced ``<eos>`` it is extended with ``<pad>`` only.
The decoder is a ``SequenceDecoder`` (``vae_zoo.networks.recurrent``).
"""

import tensorflow as tf

from vae_zoo.data.text import BOS, EOS, PAD, SPECIALS

PAD_ID, BOS_ID, EOS_ID = SPECIALS.index(PAD), SPECIALS.index(BOS), SPECIALS.index(EOS)
MODES = ("greedy", "sample", "beam")


def _finish(tokens, done):
    """Padding where a sentence had already ended, and ``done`` updated by the new tokens."""
    tokens = tf.where(done, tf.cast(PAD_ID, tokens.dtype), tokens)
    return tokens, done | tf.equal(tokens, EOS_ID)


def _forbid_structure(logits):
    """Logits with ``<pad>`` and ``<bos>`` ruled out: a decoder never generates them mid-sentence."""
    banned = tf.one_hot([PAD_ID, BOS_ID], tf.shape(logits)[-1], dtype=logits.dtype)
    return logits - 1e9 * tf.reduce_sum(banned, axis=0)


def decode_stepwise(decoder, z, batch, length, mode="greedy", seed=None, temperature=1.0):
    """Token ids (batch, length) decoded one token at a time: the most likely token, or a draw from p."""
    if mode not in ("greedy", "sample"):
        raise ValueError(f"decode_stepwise decodes greedy or sample, not {mode!r}")
    token = tf.fill([batch], tf.constant(BOS_ID, tf.int32))
    state = decoder.start(z, batch)
    done = tf.zeros([batch], tf.bool)
    out = [token]
    for t in range(length - 1):
        logits, state = decoder.step(z, token, state)
        logits = _forbid_structure(tf.cast(logits, tf.float32))
        if mode == "greedy":
            token = tf.argmax(logits, axis=-1, output_type=tf.int32)
        else:
            step_seed = None if seed is None else tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int32), t)
            scaled = logits / temperature
            token = (tf.random.stateless_categorical(scaled, 1, step_seed, dtype=tf.int32) if step_seed is not None
                     else tf.random.categorical(scaled, 1, dtype=tf.int32))[:, 0]
        token, done = _finish(token, done)
        out.append(token)
    return tf.stack(out, axis=1)


def beam_search(decoder, z, batch, length, width=5):
    """Token ids (batch, length): the most likely sentence among ``width`` beams kept at every step.

    A finished beam (it produced ``<eos>``) is extended with ``<pad>`` at no cost, so finished and unfinished
    sentences compete on their total log-probability.
    """
    width = int(width)
    flat = batch * width
    vocabulary = decoder.vocabulary_size
    tiled_z = None if z is None else tf.repeat(z, width, axis=0)
    state = decoder.start(tiled_z, flat)
    token = tf.fill([flat], tf.constant(BOS_ID, tf.int32))
    # Only the first beam is live at the start, so the first step does not pick the same token width times.
    scores = tf.tile(tf.concat([[0.0], tf.fill([width - 1], -1e9)], axis=0)[None], [batch, 1])
    done = tf.zeros([flat], tf.bool)
    history = tf.fill([batch, width, 1], tf.constant(BOS_ID, tf.int32))
    pad_only = tf.one_hot(PAD_ID, vocabulary, on_value=0.0, off_value=-1e9)
    for _ in range(length - 1):
        logits, state = decoder.step(tiled_z, token, state)
        log_p = tf.nn.log_softmax(_forbid_structure(tf.cast(logits, tf.float32)))
        log_p = tf.where(done[:, None], pad_only[None], log_p)
        total = tf.reshape(scores[:, :, None] + tf.reshape(log_p, [batch, width, vocabulary]), [batch, width * vocabulary])
        scores, best = tf.math.top_k(total, k=width)
        parent, token = best // vocabulary, tf.cast(best % vocabulary, tf.int32)
        rows = tf.reshape(parent + width * tf.range(batch)[:, None], [-1])
        state = [tf.gather(s, rows) for s in state]
        done = tf.gather(done, rows)
        token = tf.reshape(token, [-1])
        token, done = _finish(token, done)
        history = tf.concat([tf.gather(history, parent, batch_dims=1), tf.reshape(token, [batch, width, 1])], axis=2)
    return history[:, 0]
