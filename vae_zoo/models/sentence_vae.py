"""Sentence VAEs over token ids (Bowman et al., 2016), and the same decoder without z as a language model.

x is a batch of padded token ids, ``<bos> w_1 ... w_n <eos> <pad> ...`` (``vae_zoo.data.text``). The
likelihood is autoregressive and teacher-forced:

    log p(x|z) = sum over t of [x_t is not <pad>] log Categorical(x_t; logits_t(x_<t, z)),

``tfd.Masked`` over ``tfd.Categorical``, so padding never counts and a sentence's likelihood does not depend on
how far it is padded. ``TokenSequenceModel`` holds what every model over token ids shares (the vocabulary, the
checks of the ids, the teacher-forced decoder and its decodings). The sentence VAE adds a latent z to it through
``LatentVariableModel``, which composes the ELBO, beta and KL annealing, free bits, the importance-sampled NLL,
active units and mutual information; the language model is the same decoder without z (and without encoder).

Against posterior collapse (the decoder models the text alone and q(z|x) falls back onto the prior):

* word dropout (Bowman et al., 2016): in training, each input token of the decoder is replaced by ``<unk>``
  with probability ``word_dropout``, so the decoder must take what it cannot read from z;
* KL annealing and free bits, as for every VAE (recipes and ``free_bits``);
* ``posterior: batch_norm``, BN-VAE (Zhu et al., 2020, "A Batch Normalized Inference Network Keeps the KL
  Vanishing Away"): the posterior means pass through batch normalization with a fixed scale ``bn_gamma`` and a
  learned shift, so their spread over the data, and with it the expected KL, cannot fall below
  latent_dim x gamma^2 / 2 nats.
"""

import keras
import tensorflow as tf

from vae_zoo.data.text import Vocabulary
from vae_zoo.errors import DataError, InputError
from vae_zoo.models import decoding, distributions, objectives
from vae_zoo.models.base import ZooModel
from vae_zoo.models.latent import LatentVariableModel
from vae_zoo.networks.recurrent import RECURRENT, SequenceDecoder, SequenceEncoder
from vae_zoo.registry import register

tfd = distributions.tfd

DEFAULT_RNN = {"name": "lstm", "units": 256}
POSTERIORS = ("plain", "batch_norm")
UNK_ID = 1


class TokenLikelihood:
    """The masked categorical likelihood of a sentence's tokens after ``<bos>``, given the decoder's logits."""

    support = None  # token ids are checked against the vocabulary instead

    @staticmethod
    def distribution(logits, targets):
        valid = tf.not_equal(targets, decoding.PAD_ID)
        return tfd.Independent(tfd.Masked(tfd.Categorical(logits=logits), validity_mask=valid), reinterpreted_batch_ndims=1)


def word_dropout(tokens, rate, seed):
    """``tokens`` with each word (not ``<bos>``, ``<eos>`` or padding) replaced by ``<unk>`` with probability ``rate``."""
    noise = tf.random.stateless_uniform(tf.shape(tokens), seed) if seed is not None else tf.random.uniform(tf.shape(tokens))
    is_word = tokens > decoding.EOS_ID
    return tf.where(is_word & (noise < rate), tf.cast(UNK_ID, tokens.dtype), tokens)


class TokenSequenceModel(ZooModel):
    """What every model over token ids shares: the vocabulary, checked ids, an autoregressive recurrent decoder
    p(x_t | x_<t, z) (z optional), its teacher-forced likelihood and its decodings.

    p(x|z) is autoregressive, so it is not a distribution to call ``mean`` on: ``data_log_prob(z, x)`` scores
    a sentence and ``generate(z)`` decodes one.

    Args:
        data_shape: ``(sequence_length,)``: ids per sentence, ``<bos>`` and ``<eos>`` included.
        encoder: the recurrent layer, ``{"name": "lstm" or "gru", "units": 256}`` (the decoder's too by default).
        decoder: the decoder's recurrent layer; None takes the encoder's.
        vocabulary: the tokens by id (``<pad>``, ``<unk>``, ``<bos>``, ``<eos>`` first), saved with the model.
        vocabulary_size: the number of ids when no ``vocabulary`` is given (random test models).
        embedding_dim: the size of each token's embedding.
        word_dropout: the probability that the decoder reads ``<unk>`` instead of a word, in training.
        likelihood: ``"categorical"``, the only one for tokens.
    """

    modality = "text"
    input_dtype = tf.int32
    portable = False
    # Decoding, for reconstructions and the decode signature; sampling always draws from p.
    decoding_width = 1
    reconstruction_error_name = "reconstruction_token_errors"

    def __init__(self, data_shape=(32,), encoder=DEFAULT_RNN, decoder=None, vocabulary=None, vocabulary_size=None,
                 embedding_dim=128, word_dropout=0.25, likelihood="categorical", **kwargs):
        if vocabulary is not None:
            vocabulary = tuple(str(t) for t in vocabulary)
            if vocabulary_size is not None and int(vocabulary_size) != len(vocabulary):
                raise ValueError(f"vocabulary_size {vocabulary_size} disagrees with the vocabulary's {len(vocabulary)} tokens")
            vocabulary_size = len(vocabulary)
        if vocabulary_size is None or int(vocabulary_size) < 5:
            raise ValueError(f"a sentence model needs a vocabulary (or vocabulary_size >= 5), got {vocabulary_size!r}")
        if len(tuple(data_shape)) != 1 or int(data_shape[0]) < 3:
            raise ValueError(f"data_shape is (sequence_length,) with room for <bos>, a token and <eos>; got {data_shape!r}")
        if not 0.0 <= float(word_dropout) <= 1.0:
            raise ValueError(f"word_dropout is a probability, got {word_dropout!r}")
        if likelihood != "categorical":
            raise ValueError(f"{self.registered_name} models tokens with the 'categorical' likelihood, not {likelihood!r}")
        self.vocabulary = vocabulary
        self.vocabulary_size = int(vocabulary_size)
        self.embedding_dim = int(embedding_dim)
        self.word_dropout = float(word_dropout)
        self.encoder_spec = encoder
        self.decoder_spec = encoder if decoder is None else decoder
        super().__init__(data_shape=data_shape, **kwargs)

    @classmethod
    def spec_arguments(cls):
        return {**super().spec_arguments(),
                "encoder": (RECURRENT, "recurrent network", ()),
                "decoder": (RECURRENT, "recurrent network", ()),
                "likelihood": ({"categorical": TokenLikelihood}, "likelihood", ())}

    @property
    def sequence_length(self):
        return self.data_shape[0]

    def make_sequence_decoder(self, latent_dim):
        """The decoder p(x_t | x_<t, z) over a z of ``latent_dim`` dimensions (0: no z)."""
        return SequenceDecoder(self.decoder_spec, self.vocabulary_size, self.embedding_dim, latent_dim,
                               self.sequence_length, name="decoder")

    # ------------------------------------------------------------------ inputs

    def check_data(self, x):
        """Token ids as an int32 tensor (batch, sequence_length), each inside the vocabulary, or a clear error."""
        x = tf.convert_to_tensor(x)
        if not x.dtype.is_integer:
            raise InputError(f"{self.registered_name} expects integer token ids, got dtype {x.dtype.name}")
        shape = tuple(x.shape)
        if len(shape) != 2 or (shape[1] is not None and shape[1] != self.sequence_length):
            got = ", ".join("None" if s is None else str(s) for s in shape)
            raise InputError(f"{self.registered_name} expects token ids of shape (batch, {self.sequence_length}), got ({got})")
        if tf.executing_eagerly() and tf.size(x) > 0:
            low, high = int(tf.reduce_min(x)), int(tf.reduce_max(x))
            if low < 0 or high >= self.vocabulary_size:
                raise InputError(f"{self.registered_name}'s token ids run from 0 to {self.vocabulary_size - 1}; "
                                 f"the input has ids from {low} to {high}")
        return tf.cast(x, tf.int32)

    def check_fits(self, data):
        super().check_fits(data)
        given = getattr(data.spec, "vocabulary", None)
        if self.vocabulary is not None and given is not None and tuple(given) != self.vocabulary:
            raise DataError(f"data {data.name!r} has another vocabulary than {self.registered_name} was built with "
                            f"(pass the model's vocabulary to data.load)")

    # ------------------------------------------------------------------ the likelihood

    def data_log_prob(self, z, x, y=None, training=False, seed=None):
        """log p(x|z): the teacher-forced decoder's masked categorical log-probability of the tokens after <bos>
        (``z`` is None for a decoder without z)."""
        x = self.check_data(x)
        inputs = x[:, :-1]
        if training and self.word_dropout:
            salt = None if seed is None else tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int32), 1)
            inputs = word_dropout(inputs, self.word_dropout, salt)
        logits = tf.cast(self.decoder(z, inputs, training=training), tf.float32)
        return self.likelihood.distribution(logits, x[:, 1:]).log_prob(x[:, 1:])

    # ------------------------------------------------------------------ decoding

    def generate(self, z, mode="greedy", seed=None, width=5, temperature=1.0, batch=None):
        """Token ids (batch, sequence_length) decoded from latent codes ``z``: greedy, sampled, or beam search.

        A decoder without z takes ``z=None`` and the number of sentences as ``batch``."""
        if mode not in decoding.MODES:
            raise InputError(f"unknown decoding {mode!r}; choose from {', '.join(decoding.MODES)}")
        if z is not None:
            z = tf.convert_to_tensor(z, tf.float32)
            batch = tf.shape(z)[0]
        if mode == "beam":
            return decoding.beam_search(self.decoder, z, batch, self.sequence_length, width)
        return decoding.decode_stepwise(self.decoder, z, batch, self.sequence_length, mode, seed, temperature)

    def decoder_values_per_example(self):
        """Values one teacher-forced decoder pass holds per sentence (sizes the IS-NLL's compiled calls)."""
        units = self.decoder.recurrent.units
        return self.sequence_length * (self.vocabulary_size * 3 + 8 * units + self.embedding_dim + self.decoder.latent_dim)

    def reconstruction_error(self, x, reconstruction):
        """Per-example count of tokens the reconstruction gets wrong (padding after both sentences ignored)."""
        x = tf.cast(x, tf.int32)
        wrong = tf.not_equal(x, reconstruction) & ((x != decoding.PAD_ID) | (reconstruction != decoding.PAD_ID))
        return tf.reduce_sum(tf.cast(wrong, tf.float32), axis=1)

    def texts(self, ids):
        """Token ids -> strings with the model's vocabulary."""
        if self.vocabulary is None:
            raise InputError(f"{self.registered_name} was built without a vocabulary; it knows ids only")
        vocabulary = Vocabulary(self.vocabulary)
        return [vocabulary.decode(row) for row in tf.convert_to_tensor(ids).numpy()]


@register("sentence_vae")
class SentenceVAE(TokenSequenceModel, LatentVariableModel):
    """Sentence VAE: recurrent encoder, autoregressive recurrent decoder over token ids (Bowman et al., 2016).

    Args:
        data_shape, encoder, decoder, vocabulary, vocabulary_size, embedding_dim, word_dropout, likelihood:
            as for every token model (``TokenSequenceModel``).
        latent_dim: number of latent dimensions.
        posterior: ``"plain"`` or ``"batch_norm"`` (BN-VAE, Zhu et al., 2020).
        bn_gamma: the fixed scale of the batch-normalized posterior means.
        prior, beta, free_bits: as for ``vae``.
    """

    # Arguments that vae_zoo 0.4 saved when this class derived from the image VAE; they never applied to tokens.
    retired_arguments = ("log_variance_range", "encoder_masks", "encoder_mask_width", "encoder_shift")

    def __init__(self, data_shape=(32,), latent_dim=32, encoder=DEFAULT_RNN, decoder=None, vocabulary=None,
                 vocabulary_size=None, embedding_dim=128, word_dropout=0.25, posterior="plain", bn_gamma=0.6,
                 likelihood="categorical", prior="normal", beta=1.0, free_bits=0.0, **kwargs):
        if posterior not in POSTERIORS:
            raise ValueError(f"posterior must be one of {', '.join(POSTERIORS)}, got {posterior!r}")
        self.posterior = posterior
        self.bn_gamma = float(bn_gamma)
        super().__init__(data_shape=data_shape, latent_dim=latent_dim, encoder=encoder, decoder=decoder,
                         vocabulary=vocabulary, vocabulary_size=vocabulary_size, embedding_dim=embedding_dim,
                         word_dropout=word_dropout, likelihood=likelihood, prior=prior, beta=beta, free_bits=free_bits,
                         **kwargs)
        if self.posterior == "batch_norm":
            # The learned shift stays (center); the scale is fixed at gamma, outside the layer. Keras' default
            # epsilon (1e-3) would let the encoder escape the bound by shrinking its means' spread below it (the
            # KL fell to 0.03 nats in one epoch); at 1e-8 the normalized spread cannot be shrunk.
            self.mean_norm = keras.layers.BatchNormalization(center=True, scale=False, epsilon=1e-8, name="posterior_mean_norm")
            self.mean_norm.build((None, self.latent_dim))

    def make_networks(self):
        self.likelihood = TokenLikelihood()
        self.encoder = SequenceEncoder(self.encoder_spec, self.vocabulary_size, self.embedding_dim, 2 * self.latent_dim,
                                       self.sequence_length, name="encoder")
        self.decoder = self.make_sequence_decoder(self.latent_dim)

    def encode(self, x, y=None, training=False):
        h = tf.cast(self.encoder(self.check_data(x), training=training), tf.float32)
        mean, log_variance = tf.split(h, 2, axis=-1)
        if self.posterior == "batch_norm":
            mean = self.bn_gamma * tf.cast(self.mean_norm(mean, training=training), tf.float32)
        return distributions.diagonal_gaussian(mean, log_variance)

    def reconstruction(self, x, y=None, training=False):
        """The greedy decoding of the posterior mean of z."""
        return self.generate(self.encode(x, training=training).mean())

    def decoded_mean(self, z, y=None):
        """The greedy decoding of z (the mode, token by token: a sentence has no mean)."""
        return self.generate(z)

    def decoded_outputs(self, z, y=None):
        return {"tokens": self.generate(z)}

    def sample(self, n, seed=None, labels=None):
        """``n`` sentences: z ~ p(z), then each token drawn from p(x_t | x_<t, z)."""
        z = self.prior().sample(n, seed=seed)
        return self.generate(z, mode="sample", seed=token_seed(seed))


def token_seed(seed):
    """The seed of the token draws of ``sample``, apart from the draw of z (None stays None)."""
    return None if seed is None else tf.random.experimental.stateless_fold_in(distributions.stateless_seed(seed), 1)


@register("language_model")
class LanguageModel(TokenSequenceModel):
    """Recurrent language model: the sentence VAE's decoder without z, its exact likelihood as the baseline.

    It has no encoder and no latent variable: log p(x) is the teacher-forced likelihood itself, so its ELBO,
    its importance-sampled NLL (every weight is log p(x)) and its likelihood coincide, and its KL is 0. Its
    reconstruction of any sentence is the one the decoder finds likeliest (greedy), the baseline for the
    sentence VAE's token errors.

    Args:
        data_shape, encoder, decoder, vocabulary, vocabulary_size, embedding_dim, word_dropout, likelihood:
            as for every token model (``TokenSequenceModel``); ``encoder`` names the decoder's recurrent
            layer when ``decoder`` is None, as for the sentence VAE it is a baseline for.
        latent_dim, beta: accepted so that configs of the sentence VAE's shape still build; a language model
            has no z, and nothing it computes reads them.
    """

    capabilities = frozenset({"elbo", "sample", "reconstruct"})
    metric_names = ("loss", "elbo", "reconstruction", "kl")
    # Arguments that vae_zoo 0.4 saved when this class derived from the sentence VAE; they never applied.
    retired_arguments = ("prior", "free_bits", "log_variance_range", "encoder_masks", "encoder_mask_width",
                         "encoder_shift", "posterior", "bn_gamma")

    def __init__(self, data_shape=(32,), latent_dim=1, encoder=DEFAULT_RNN, decoder=None, vocabulary=None,
                 vocabulary_size=None, embedding_dim=128, word_dropout=0.0, likelihood="categorical", beta=1.0,
                 **kwargs):
        super().__init__(data_shape=data_shape, encoder=encoder, decoder=decoder, vocabulary=vocabulary,
                         vocabulary_size=vocabulary_size, embedding_dim=embedding_dim, word_dropout=word_dropout,
                         likelihood=likelihood, **kwargs)
        self.likelihood = TokenLikelihood()
        self.decoder = self.make_sequence_decoder(0)
        # The weight files of language models saved by vae_zoo 0.4 hold this beta (from when the class derived
        # from the VAE); it stays so that they load, and the training logs show it, but no loss reads it.
        self.kl_weight = self.add_weight(name="kl_weight", shape=(), initializer=keras.initializers.Constant(float(beta)),
                                         trainable=False, aggregation="only_first_replica")
        self.built = True

    def log_likelihood(self, x, training=False, seed=None):
        """log p(x) per sentence, exactly: the teacher-forced decoder's (``seed`` keys word dropout in training)."""
        return self.data_log_prob(None, x, training=training, seed=seed)

    def loss_terms(self, x, y=None, training=False, seed=None):
        log_likelihood = self.log_likelihood(x, training=training, seed=seed)
        return objectives.elbo_terms(log_likelihood, tf.zeros_like(log_likelihood))

    def log_weights(self, x, y=None, k=1, seed=None):
        """k copies of log p(x): without z, every importance weight is the exact likelihood; shape (k, batch)."""
        return tf.repeat(self.log_likelihood(x)[None], k, axis=0)

    def elbo(self, inputs, num_samples=1):
        """log p(x) per sentence: without z, the ELBO is the likelihood itself."""
        x, _ = self.split_inputs(inputs)
        return self.log_likelihood(x)

    def reconstruction(self, x, y=None, training=False):
        """The decoder's greedy sentence, one per input: without z it cannot depend on the input."""
        return self.generate(None, batch=tf.shape(self.check_data(x))[0])

    def sample(self, n, seed=None, labels=None):
        """``n`` sentences, each token drawn from p(x_t | x_<t)."""
        return self.generate(None, mode="sample", seed=token_seed(seed), batch=n)
