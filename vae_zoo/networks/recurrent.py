"""Recurrent bodies for token sequences: an encoder that reads a sentence and an autoregressive decoder.

A spec names the cell and its size, ``{"name": "lstm", "units": 256}`` or ``"gru"``. Sequences are padded token
ids (``<pad>`` = 0) that start with ``<bos>`` and end with ``<eos>``.

* ``SequenceEncoder``: embedding, one recurrent layer, and a dense head on the state at each sentence's last
  token (``<eos>``), gathered by length, so padding never reaches the code (and no mask is needed under XLA).
* ``SequenceDecoder``: p(x_t | x_<t, z). Teacher-forced over a whole sentence for the likelihood, or one step
  at a time for decoding (greedy, sampled, beam search; ``vae_zoo.models.decoding``). z sets the initial state
  and is fed with every input token (Bowman et al., 2016, fed it only to the initial state; feeding it at
  every step as well makes it harder for the decoder to ignore). A decoder built with ``latent_dim=0`` sees
  no z: a plain recurrent language model.
"""

import keras
import tensorflow as tf

from vae_zoo.registry import resolve


class RecurrentSpec:
    """A recurrent layer's kind and size, from a spec."""

    layer_class = None

    def __init__(self, units=256):
        self.units = int(units)
        if self.units < 1:
            raise ValueError(f"units must be a positive integer, got {units!r}")

    def layer(self, name):
        return self.layer_class(self.units, return_sequences=True, return_state=True, name=name)

    def initial_state(self, h):
        """The layer's state list from a hidden state ``h``."""
        raise NotImplementedError


class LSTMSpec(RecurrentSpec):
    layer_class = keras.layers.LSTM

    def initial_state(self, h):
        return [h, tf.zeros_like(h)]


class GRUSpec(RecurrentSpec):
    layer_class = keras.layers.GRU

    def initial_state(self, h):
        return [h]


RECURRENT = {"lstm": LSTMSpec, "gru": GRUSpec}


def recurrent_spec(spec):
    return resolve(RECURRENT, "recurrent network", spec)


def last_token_states(sequence_states, tokens):
    """The state at each sentence's last non-padding token: (batch, time, units) -> (batch, units)."""
    lengths = tf.reduce_sum(tf.cast(tokens != 0, tf.int32), axis=1)
    return tf.gather(sequence_states, tf.maximum(lengths - 1, 0), axis=1, batch_dims=1)


class SequenceEncoder(keras.layers.Layer):
    """Token ids (batch, time) -> ``output_units`` numbers per sentence."""

    def __init__(self, spec, vocabulary_size, embedding_dim, output_units, sequence_length, **kwargs):
        super().__init__(**kwargs)
        self.recurrent = recurrent_spec(spec)
        self.embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, name="embedding")
        self.rnn = self.recurrent.layer("rnn")
        self.head = keras.layers.Dense(output_units, name="head")
        self.embedding.build((None, sequence_length))
        self.rnn.build((None, sequence_length, embedding_dim))
        self.head.build((None, self.recurrent.units))
        self.built = True

    def call(self, tokens, training=False):
        states = self.rnn(self.embedding(tokens), training=training)[0]
        return self.head(last_token_states(states, tokens))


class SequenceDecoder(keras.layers.Layer):
    """p(x_t | x_<t, z) as logits over the vocabulary, teacher-forced or step by step."""

    def __init__(self, spec, vocabulary_size, embedding_dim, latent_dim, sequence_length, **kwargs):
        super().__init__(**kwargs)
        self.recurrent = recurrent_spec(spec)
        self.latent_dim = int(latent_dim)
        self.vocabulary_size = int(vocabulary_size)
        units = self.recurrent.units
        self.embedding = keras.layers.Embedding(vocabulary_size, embedding_dim, name="embedding")
        self.rnn = self.recurrent.layer("rnn")
        self.logits = keras.layers.Dense(vocabulary_size, name="logits")
        self.embedding.build((None, sequence_length))
        self.rnn.build((None, sequence_length, embedding_dim + self.latent_dim))
        self.logits.build((None, sequence_length, units))
        if self.latent_dim:
            self.initial = keras.layers.Dense(units, activation="tanh", name="initial_state")
            self.initial.build((None, self.latent_dim))
        self.built = True

    def start(self, z, batch):
        """The recurrent state before the first token: from z, or zeros without a latent."""
        if self.latent_dim:
            return self.recurrent.initial_state(self.initial(z))
        return self.recurrent.initial_state(tf.zeros([batch, self.recurrent.units], self.compute_dtype))

    def step_inputs(self, z, embedded):
        """Each input embedding, with z beside it."""
        if not self.latent_dim:
            return embedded
        steps = tf.shape(embedded)[1]
        tiled = tf.tile(tf.cast(z, embedded.dtype)[:, None, :], tf.stack([1, steps, 1]))
        return tf.concat([embedded, tiled], axis=-1)

    def call(self, z, inputs, training=False):
        """Teacher forcing: logits (batch, time, vocabulary) for the token after each of ``inputs``."""
        batch = tf.shape(inputs)[0]
        outputs = self.rnn(self.step_inputs(z, self.embedding(inputs)), initial_state=self.start(z, batch), training=training)[0]
        return self.logits(outputs)

    def step(self, z, token, state):
        """One step: (logits for the next token, the new state) after ``token`` (batch,)."""
        embedded = self.step_inputs(z, self.embedding(token[:, None]))[:, 0]
        output, state = self.rnn.cell(embedded, state)
        return self.logits(output), list(state) if isinstance(state, (list, tuple)) else [state]
