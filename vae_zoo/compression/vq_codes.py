"""Lossy compression with a VQ-VAE: each image's grid of code indices, range-coded under the model's prior.

The file holds the codes, not the pixels: decoding gives back exactly the
codes, and the image is the decoder's mean at them, so the loss is the
VQ-VAE's reconstruction error and the rate approaches -log2 p(codes).

With the autoregressive (MADE) prior, position i is coded under
p(code_i | codes before i). Encoder and decoder compute that distribution
the same way: one pass of the prior per position, over the batch's code
grids with every position from i on set to 0 (MADE's masks make those
positions irrelevant, and feeding the decoder's own inputs on both sides
makes the probabilities bit-identical). A factorized prior needs one pass.
"""

import constriction
import numpy as np
import tensorflow as tf

from vae_zoo.errors import InputError

_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)


def why_not_codable(model):
    if not model.can("discrete_codes"):
        return f"{model.registered_name} has no discrete codes to entropy-code"
    return None


class VQCodeCodec:
    """Range coding of VQ-VAE code grids under the model's learned prior."""

    def __init__(self, model, batch=256):
        reason = why_not_codable(model)
        if reason:
            raise InputError(f"cannot compress with VQ codes: {reason}")
        self.model, self.batch = model, int(batch)
        self.grid = tuple(model.grid)
        self.positions = int(np.prod(self.grid))
        self.autoregressive = hasattr(model.prior_layer, "positions")

    def codes(self, images):
        """The code grids (count, *grid) of images, in batches."""
        return np.concatenate([self.model.encode_indices(tf.convert_to_tensor(images[i:i + self.batch], tf.float32)).numpy()
                               for i in range(0, len(images), self.batch)]).astype(np.int32)

    def reconstruct(self, codes):
        return np.concatenate([self.model.decoded_mean(codes[i:i + self.batch]).numpy()
                               for i in range(0, len(codes), self.batch)])

    def _probabilities(self, known, position):
        """p(code at ``position`` | the codes before it), (batch, codebook), from grids whose later positions are 0."""
        if self.autoregressive:
            logits = self.model.prior_layer.logits(tf.convert_to_tensor(known.reshape(-1, *self.grid)))
            logits = logits.numpy().reshape(len(known), self.positions, -1)[:, position]
        else:
            logits = np.broadcast_to(self.model.prior_layer.logits.numpy().reshape(self.positions, -1)[position],
                                     (len(known), self.model.codebook_size))
        logits = logits.astype(np.float64)
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        return weights / weights.sum(axis=1, keepdims=True)

    def encode(self, codes):
        """(words, options) for code grids (count, *grid)."""
        flat = np.asarray(codes, np.int32).reshape(len(codes), self.positions)
        encoder = constriction.stream.queue.RangeEncoder()
        for start in range(0, len(flat), self.batch):
            batch = flat[start:start + self.batch]
            known = np.zeros_like(batch)
            for position in range(self.positions):
                encoder.encode(batch[:, position], _CATEGORICAL, self._probabilities(known, position))
                known[:, position] = batch[:, position]
        return encoder.get_compressed(), b""

    def decode(self, words, options, count):
        """The code grids (count, *grid) from ``encode``'s words."""
        decoder = constriction.stream.queue.RangeDecoder(np.asarray(words, np.uint32))
        grids = []
        for start in range(0, count, self.batch):
            known = np.zeros((min(self.batch, count - start), self.positions), np.int32)
            for position in range(self.positions):
                known[:, position] = decoder.decode(_CATEGORICAL, self._probabilities(known, position))
            grids.append(known)
        flat = np.concatenate(grids) if grids else np.zeros((0, self.positions), np.int32)
        return flat.reshape(count, *self.grid)

    def information_bits(self, codes):
        """-log2 p(codes) per grid under the model's prior (TFP's log_prob, one pass): the rate to approach."""
        log_p = np.concatenate([self.model.prior().log_prob(tf.convert_to_tensor(codes[i:i + self.batch])).numpy()
                                for i in range(0, len(codes), self.batch)])
        return -log_p / np.log(2.0)
