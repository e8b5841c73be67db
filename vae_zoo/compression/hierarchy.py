"""Bits-back coding over a hierarchy of latent groups: BB-ANS applied group by group (Townsend et al., ICLR 2019,
and HiLLoC, ICLR 2020), for the hierarchical VAE.

The hierarchical VAE infers top-down: each group's posterior q(z_g | z_<g, x) and prior p(z_g | z_<g) are
computed at the same point of the top-down pass, from the groups above. Bit-Swap's interleaving needs the
opposite, a bottom-up Markov chain q(z_1 | x), q(z_2 | z_1), ..., and does not apply; so each image is coded,
with the ANS stack as the message:

1. for g = 1 .. G (top first): pop z_g under q(z_g | z_<g, x)
2. push x under p(x | z)                         (``vae_zoo.compression.pixels``)
3. for g = G .. 1: push z_g under p(z_g | z_<g)

and decoded by the inverse: pop z_1 .. z_G under their priors, pop x, push z_G .. z_1 under their posteriors.
Every group is discretized into 2^bits buckets of equal mass under *its own prior* (the N(0, 1) buckets of
``PriorBuckets``, shifted and scaled by the prior's mean and standard deviation, which both sides know from the
groups above), so pushing a group under its prior costs exactly ``bits`` a dimension and needs no prior
probabilities, and the networks see every group at its bucket's centre, the same when encoding and decoding.

Initial bits: step 1 of the first image pops every group of it before any image has pushed anything. The stack
starts with as many words (from a generator seeded by the content's digest) as the first image's posterior pops
actually take, measured by a trial encoding, plus a margin: about the number of latent dimensions the model
leaves unused times ``bits`` (an unused dimension's posterior is its prior, and popping it takes ``bits``; the
push puts them back), stated in the file's header and counted in every size.
"""

import math

import constriction
import numpy as np
import tensorflow as tf
from scipy import special

from vae_zoo.compression import tiling
from vae_zoo.compression.bits_back import (MARGIN_BITS, check_initial_words, open_stack, pack_batches, pixel_coder,
                                           tile_mask, unpack_batches)
from vae_zoo.compression.buckets import PriorBuckets
from vae_zoo.errors import InputError
from vae_zoo.models.distributions import BernoulliLikelihood, LogisticMixtureLikelihood

_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)


OPTIONS_HEAD = "<BII"  # bucket bits, initial words (a deep hierarchy may need more than 65,535), batch count
CHUNK_DIMENSIONS = 8192  # latent dimensions whose bucket masses are tabulated at once: 8192 x 1025 float64, 67 MB


class RanShort(Exception):
    """A pop found the ANS stack (nearly) out of bits."""


def why_not_codable(model):
    """None if group-by-group bits-back applies to ``model``, otherwise the reason."""
    if not (model.can("hierarchical") and hasattr(model, "group_shapes") and hasattr(model, "top_down")):
        return (f"{model.registered_name} has a hierarchy of latents without the hierarchical VAE's top-down pass of "
                "groups; bits-back coding here handles one Gaussian layer or hierarchical_vae's groups")
    if not isinstance(model.likelihood, (BernoulliLikelihood, LogisticMixtureLikelihood)):
        return (f"{model.registered_name} has a {type(model.likelihood).__name__}; lossless coding needs a discrete "
                "likelihood (Bernoulli for binary images, logistic_mixture for 8-bit ones)")
    return None


class HierarchicalBitsBackCodec:
    """BB-ANS, group by group, for ``hierarchical_vae`` models; binary or 8-bit images as the likelihood codes."""

    def __init__(self, model, latent_bits=10, max_batch=50, seed_words=None):
        reason = why_not_codable(model)
        if reason:
            raise InputError(f"cannot compress losslessly: {reason}")
        self.model = model
        self.pixels = pixel_coder(model)
        self.buckets = PriorBuckets(latent_bits)
        self.uniform = constriction.stream.model.Uniform(self.buckets.count)
        self.group_sizes = [math.prod(shape) for shape in model.group_shapes]
        self.max_batch = int(max_batch)
        self.seed_words = None if seed_words is None else int(seed_words)

    # ------------------------------------------------------------------ the groups' buckets

    def bucket_centres(self, indices, prior):
        """The values a group's bucket indices stand for under its prior (mean, log-variance): float32, the
        prior's shape. float64 numpy from the network's float32 outputs, the same on both sides."""
        mean, log_variance = (np.asarray(t, np.float64) for t in prior)
        centres = mean + np.exp(0.5 * log_variance) * self.buckets.centres[np.asarray(indices).reshape(mean.shape)]
        return centres.astype(np.float32)

    def posterior_masses(self, prior, posterior):
        """q's mass on every bucket of the prior's grid, (dimensions, count)."""
        p_mean, p_log_variance = (np.asarray(t, np.float64).reshape(-1, 1) for t in prior)
        q_mean, q_log_variance = (np.asarray(t, np.float64).reshape(-1, 1) for t in posterior)
        edges = p_mean + np.exp(0.5 * p_log_variance) * self.buckets.edges[None, :]
        cdf = special.ndtr((edges - q_mean) / np.exp(0.5 * q_log_variance))
        return np.diff(cdf, axis=1)

    def pop_posterior(self, coder, prior, posterior):
        """Bucket indices of one group popped under q, in chunks of dimensions (a (dimensions, 2^bits) table of
        masses at once would be gigabytes); popping chunk after chunk is popping them all in one call."""
        prior, posterior = [tuple(np.asarray(t).reshape(-1) for t in pair) for pair in (prior, posterior)]
        dims = len(prior[0])
        return np.concatenate([coder.decode(_CATEGORICAL, self.posterior_masses(*self._chunk(prior, posterior, start)))
                               for start in range(0, dims, CHUNK_DIMENSIONS)])

    def push_posterior(self, coder, indices, prior, posterior):
        """The inverse of ``pop_posterior``: the chunks pushed last first."""
        prior, posterior = [tuple(np.asarray(t).reshape(-1) for t in pair) for pair in (prior, posterior)]
        indices = np.asarray(indices).reshape(-1)
        for start in reversed(range(0, len(indices), CHUNK_DIMENSIONS)):
            coder.encode_reverse(indices[start:start + CHUNK_DIMENSIONS], _CATEGORICAL,
                                 self.posterior_masses(*self._chunk(prior, posterior, start)))

    @staticmethod
    def _chunk(prior, posterior, start):
        part = slice(start, start + CHUNK_DIMENSIONS)
        return tuple(t[part] for t in prior), tuple(t[part] for t in posterior)

    # ------------------------------------------------------------------ the passes

    def _encode_batch(self, coder, symbols, mask=None):
        """Steps 1-3 for one batch of images (symbols (n, *data_shape)); the bits step 1 took. Raises ``RanShort``
        (the coder then holds a partial batch: the caller restores its copy) if a pop found the stack nearly empty,
        where constriction would silently decode zeros and the file would not decode."""
        x = tf.convert_to_tensor(self.pixels.network_input(symbols))
        chosen = []
        before = coder.num_valid_bits()

        def pop_from_posterior(g, prior, posterior):
            indices = self.pop_posterior(coder, prior, posterior)
            if coder.num_valid_bits() < MARGIN_BITS:
                raise RanShort()
            chosen.append(indices)
            return self.bucket_centres(indices, prior)

        params, _ = self.model.top_down(len(symbols), self.model.bottom_up(x), choose=pop_from_posterior)
        taken = before - coder.num_valid_bits()
        self.pixels.push(coder, params.numpy(), symbols, mask)
        for indices in reversed(chosen):
            coder.encode_reverse(indices, self.uniform)
        return taken

    def _decode_batch(self, coder, count, valid=None):
        shape = (count, *self.model.data_shape)
        chosen, priors = [], []

        def pop_from_prior(g, prior, posterior):
            indices = coder.decode(self.uniform, count * self.group_sizes[g])
            chosen.append(indices)
            priors.append(prior)
            return self.bucket_centres(indices, prior)

        params, _ = self.model.top_down(count, choose=pop_from_prior)
        symbols = self.pixels.pop(coder, params.numpy(), shape, tile_mask(valid, 0, count, shape))
        if valid is not None:  # the padding the encoder's model saw, from the pixels just popped
            symbols = tiling.fill_padding(symbols, valid)
        # The posteriors at the same groups' values, now that x is known: pushed back in the reverse of their pops.
        x = tf.convert_to_tensor(self.pixels.network_input(symbols))
        given = [tf.convert_to_tensor(self.bucket_centres(i, p)) for i, p in zip(chosen, priors)]
        posteriors = []

        def record_posterior(g, prior, posterior):
            posteriors.append((prior, posterior))
            return given[g]

        self.model.top_down(count, self.model.bottom_up(x), choose=record_posterior)
        for indices, (prior, posterior) in zip(reversed(chosen), reversed(posteriors)):
            self.push_posterior(coder, indices, prior, posterior)
        return symbols

    # ------------------------------------------------------------------ coding

    def initial_words(self, salt, words):
        rng = np.random.Generator(np.random.PCG64(int.from_bytes(salt[:8], "little")))
        return rng.integers(0, 2**32, size=words, dtype=np.uint32)

    def first_image_cost_bits(self, symbols, salt, valid=None):
        """The bits step 1 takes off the stack for the first image: measured on a stack with plenty of them."""
        coder = constriction.stream.stack.AnsCoder(self.initial_words(salt, 32 * (sum(self.group_sizes) + 64)))
        return self._encode_batch(coder, symbols[:1], tile_mask(valid, 0, 1, symbols.shape))

    def encode(self, images, salt=b"\0" * 8, valid=None):
        """(words, options) for images (count, *data_shape); ``valid`` (count, 2): tiles whose pixels beyond those
        rows and columns are padding, left uncoded."""
        symbols = self.pixels.symbols(images)
        if self.seed_words is None:
            self.seed_words = -(-(int(self.first_image_cost_bits(symbols, salt, valid)) + 2 * MARGIN_BITS) // 32)
        while True:
            try:
                return self._encode_all(symbols, salt, valid)
            except RanShort:  # the first image took more than the trial said (the stack's state differs): more words
                self.seed_words += max(2, self.seed_words // 8)

    def _encode_all(self, symbols, salt, valid=None):
        coder = constriction.stream.stack.AnsCoder(self.initial_words(salt, self.seed_words))
        sizes, start, per_image = [], 0, None
        while start < len(symbols):
            # A batch as large as the stack can pay for: each image's pushes leave more on it than its pops took
            # (its -ELBO), so the batches grow as the images accumulate.
            affordable = 1 if per_image is None else int((coder.num_valid_bits() - MARGIN_BITS) // (1.25 * per_image))
            size = max(1, min(self.max_batch, len(symbols) - start, affordable))
            while True:
                backup = coder.clone()
                try:
                    taken = self._encode_batch(coder, symbols[start:start + size],
                                               tile_mask(valid, start, size, symbols.shape))
                    break
                except RanShort:
                    coder = backup
                    if size == 1:
                        raise
                    size //= 2
            per_image = max(per_image or 0.0, taken / size)
            sizes.append(size)
            start += size
        return coder.get_compressed(), self.pack_options(sizes)

    def decode(self, words, options, count, salt=b"\0" * 8, valid=None):
        sizes = self.unpack_options(options)
        coder = open_stack(words, sizes, count)
        ends = count - np.cumsum([0, *reversed(sizes)])[:-1]  # each batch's end, last batch first
        decoded = [self._decode_batch(coder, size, None if valid is None else valid[end - size:end])
                   for size, end in zip(reversed(sizes), ends)]
        check_initial_words(coder, self.initial_words(salt, self.seed_words))
        return np.concatenate(decoded[::-1])

    # ------------------------------------------------------------------ header options

    def pack_options(self, sizes):
        return pack_batches(OPTIONS_HEAD, self.buckets.bits, self.seed_words, sizes)

    def unpack_options(self, options):
        bits, self.seed_words, sizes = unpack_batches(OPTIONS_HEAD, options)
        if bits != self.buckets.bits:
            raise InputError(f"the file was coded with {bits}-bit latent buckets, this codec has {self.buckets.bits}")
        return sizes

    @staticmethod
    def options_settings(options):
        """(latent_bits, seed_words) from a header's options, to build the matching codec."""
        return unpack_batches(OPTIONS_HEAD, options)[:2]
