"""Lossless compression with a VAE: bits-back coding with ANS (Townsend, Bird and Barber, ICLR 2019).

For each image x, with the ANS stack as the message:

1. pop z under q(z|x)   (the bits-back step: it takes bits off the stack)
2. push x under p(x|z)  (``vae_zoo.compression.pixels``: binary images under a Bernoulli, 8-bit grey or colour
                         images under the discretized logistic mixture, channel by channel)
3. push z under p(z)

so each image adds -log p(x|z) - log p(z) + log q(z|x) bits: the negative
ELBO, up to the discretization of z (``buckets``). Decoding runs the steps
backwards: pop z under p(z), pop x under p(x|z), push z under q(z|x), which
puts back the bits step 1 took. ``constriction`` is the coder.

Images go in batches, each popped, pushed and popped as one call per step;
the decoder repeats the same batches, so every network output it computes
is computed on the same inputs in the same shapes as when encoding.

Initial bits: step 1 of the first batch needs bits on the stack before any
image has put some there. The stack starts with ``seed_words`` words from a
PCG64 generator seeded by the file's content digest (so compressing the same
data twice gives the same bytes); they are part of the file, counted in every
size the report states, and amortized over the data set. A batch is as large
as the stack can pay for (at most 24 bits per latent symbol, constriction's
precision), so the first batches are small and the batch sizes go in the
file's header.
"""

import struct

import constriction
import numpy as np
import tensorflow as tf

from vae_zoo.compression import tiling
from vae_zoo.compression.buckets import PriorBuckets
from vae_zoo.compression.pixels import BernoulliPixels, LevelPixels
from vae_zoo.errors import InputError
from vae_zoo.models.distributions import BernoulliLikelihood, LogisticMixtureLikelihood, StandardNormalPrior

PRECISION_BITS = 24  # constriction's default model precision: no symbol costs more than 24 bits
MARGIN_BITS = 64
_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)


def why_not_codable(model):
    """None if bits-back coding applies to ``model``, otherwise the reason, as a sentence."""
    name = model.registered_name
    if not (model.can("gaussian_posterior") and model.can("elbo")):
        return f"{name} has no Gaussian posterior q(z|x) to take bits back from"
    if model.can("hierarchical"):
        return f"{name} has a hierarchy of latents; bits-back coding here handles one Gaussian layer"
    if model.can("labels"):
        return f"{name} is conditional on labels, which a compressed file does not carry"
    if not isinstance(model.likelihood, (BernoulliLikelihood, LogisticMixtureLikelihood)):
        return (f"{name} has a {type(model.likelihood).__name__}; lossless coding needs a discrete likelihood "
                "(Bernoulli for binary images, logistic_mixture for 8-bit ones)")
    if not isinstance(model.prior_layer, StandardNormalPrior):
        return f"{name} has a {type(model.prior_layer).__name__}; bits-back coding here needs the N(0, I) prior"
    return None


def pixel_coder(model):
    """How ``model``'s likelihood codes pixels: ``BernoulliPixels`` or ``LevelPixels``."""
    if isinstance(model.likelihood, LogisticMixtureLikelihood):
        return LevelPixels(model.likelihood.components, model.data_shape[-1])
    return BernoulliPixels()


class BitsBackCodec:
    """Bits-back ANS coding of images with a VAE with an N(0, I) prior: binary images under a Bernoulli
    likelihood, 8-bit ones under a discretized logistic mixture."""

    def __init__(self, model, latent_bits=10, max_batch=128, seed_words=None):
        reason = why_not_codable(model)
        if reason:
            raise InputError(f"cannot compress losslessly: {reason}")
        self.model = model
        self.pixels = pixel_coder(model)
        self.buckets = PriorBuckets(latent_bits)
        self.latent_dim = int(model.latent_dim)
        # Buckets of equal prior mass: under p(z) each costs latent_bits (up to the coder's rounding).
        self.prior_model = constriction.stream.model.Uniform(self.buckets.count)
        self.max_batch = int(max_batch)
        self.batch_cost_bits = PRECISION_BITS * self.latent_dim  # the most one image's step 1 can take
        self.seed_words = int(seed_words) if seed_words else -(-(2 * self.batch_cost_bits + MARGIN_BITS) // 32)

    # ------------------------------------------------------------------ the networks, in float64 for the coder

    def posterior(self, images):
        q = self.model.encode(tf.convert_to_tensor(images, tf.float32))
        return q.mean().numpy().reshape(-1), q.stddev().numpy().reshape(-1)

    def decoder_output(self, latent_indices, count):
        """The likelihood's parameters at the buckets' centres: Bernoulli logits, or the mixture's parameters."""
        z = self.buckets.values(latent_indices).reshape(count, self.latent_dim)
        likelihood = self.model.decode(tf.convert_to_tensor(z))
        if isinstance(self.pixels, LevelPixels):
            return likelihood.params.numpy()
        return likelihood.distribution.logits_parameter().numpy()

    # ------------------------------------------------------------------ coding

    def initial_words(self, salt):
        rng = np.random.Generator(np.random.PCG64(int.from_bytes(salt[:8], "little")))
        return rng.integers(0, 2**32, size=self.seed_words, dtype=np.uint32)

    def encode(self, images, salt=b"\0" * 8, valid=None):
        """(words, options) for images (count, *data_shape): binary (0 and 1) or 8-bit, as the likelihood codes.
        ``valid`` (count, 2): tiles whose pixels beyond those rows and columns are padding, left uncoded."""
        pixels = self.pixels.symbols(images)
        coder = constriction.stream.stack.AnsCoder(self.initial_words(salt))
        batches, start = [], 0
        while start < len(pixels):
            affordable = (coder.num_valid_bits() - MARGIN_BITS) // self.batch_cost_bits
            size = int(min(self.max_batch, len(pixels) - start, affordable))
            if size < 1:
                raise InputError("the bits-back stack ran short of bits; compress with more seed_words")
            batch = pixels[start:start + size]
            mean, stddev = self.posterior(self.pixels.network_input(batch))
            z = coder.decode(_CATEGORICAL, self.buckets.posterior_masses(mean, stddev))
            self.pixels.push(coder, self.decoder_output(z, size), batch, tile_mask(valid, start, size, batch.shape))
            coder.encode_reverse(z, self.prior_model)
            batches.append(size)
            start += size
        return coder.get_compressed(), self.pack_options(batches)

    def decode(self, words, options, count, salt=b"\0" * 8, valid=None):
        """The images (count, *data_shape) as int32 symbols (0/1, or levels 0-255), from ``encode``'s words and options."""
        batches = self.unpack_options(options)
        coder = open_stack(words, batches, count)
        decoded, end = [], count
        for size in reversed(batches):
            end -= size
            shape = (size, *self.model.data_shape)
            z = coder.decode(self.prior_model, size * self.latent_dim)
            pixels = self.pixels.pop(coder, self.decoder_output(z, size), shape, tile_mask(valid, end, size, shape))
            if valid is not None:
                pixels = tiling.fill_padding(pixels, valid[end:end + size])
            mean, stddev = self.posterior(self.pixels.network_input(pixels))
            coder.encode_reverse(z, _CATEGORICAL, self.buckets.posterior_masses(mean, stddev))
            decoded.append(pixels)
        check_initial_words(coder, self.initial_words(salt))
        return np.concatenate(decoded[::-1]) if decoded else np.zeros((0, *self.model.data_shape), np.int32)

    # ------------------------------------------------------------------ header options

    def pack_options(self, batches):
        return pack_batches("<BHI", self.buckets.bits, self.seed_words, batches)

    def unpack_options(self, options):
        bits, seed_words, batches = unpack_batches("<BHI", options)
        if bits != self.buckets.bits or seed_words != self.seed_words:
            raise InputError(f"the file was coded with {bits}-bit latent buckets and {seed_words} initial words, "
                             f"this codec has {self.buckets.bits} and {self.seed_words}")
        return batches

    @staticmethod
    def options_settings(options):
        """(latent_bits, seed_words) from a header's options, to build the matching codec."""
        return unpack_batches("<BHI", options)[:2]


def pack_batches(head, bits, seed_words, batches):
    """A bits-back header's options: ``head`` (bucket bits, initial words, batch count), then the batch sizes."""
    return struct.pack(f"{head}{len(batches)}H", bits, seed_words, len(batches), *batches)


def unpack_batches(head, options):
    """(bucket bits, initial words, [batch sizes]) from options that ``pack_batches`` wrote."""
    try:
        bits, seed_words, n = struct.unpack_from(head, options)
        batches = struct.unpack_from(f"<{n}H", options, struct.calcsize(head))
    except struct.error:
        raise InputError("the file's bits-back options are corrupt") from None
    return bits, seed_words, list(batches)


def open_stack(words, batches, count):
    """The ANS stack of a file's words, once the header's batch sizes are checked against its image count."""
    if sum(batches) != count:
        raise InputError(f"the header's batches hold {sum(batches)} images, not {count}")
    return constriction.stream.stack.AnsCoder(np.asarray(words, np.uint32))


def tile_mask(valid, start, size, shape):
    """The pixel mask of examples ``start`` to ``start + size`` that are tiles with padding (``valid``), else None."""
    return None if valid is None else tiling.pixel_mask(shape[1:3], valid[start:start + size])


def check_initial_words(coder, initial):
    """After decoding, the stack must hold exactly the initial words it began with; anything else is a bad file."""
    if not np.array_equal(coder.get_compressed(), initial):
        raise InputError("after decoding, the stack does not hold the initial bits it began with: "
                         "the file was made with different numerics or weights")
