"""Continuous latents made codable: 2^bits buckets of equal mass under the N(0, 1) prior per dimension.

Townsend et al. (2019, section 2.5.1) discretize each latent dimension into
buckets of equal prior mass, so that every bucket costs exactly ``bits`` under
the prior, and code a bucket under the posterior with the mass q(z|x) puts on
it. The decoder is evaluated at each bucket's centre (the prior's median
within it). All arithmetic is float64 numpy, the same on the encoding and the
decoding side.
"""

import numpy as np
from scipy import special


class PriorBuckets:
    def __init__(self, bits):
        if not 1 <= int(bits) <= 16:
            raise ValueError(f"latent bucket bits must be from 1 to 16, not {bits}")
        self.bits = int(bits)
        self.count = 2**self.bits
        # Edges at the prior's quantiles i / count (-inf and +inf at the ends), centres at (i + 1/2) / count.
        self.edges = special.ndtri(np.arange(self.count + 1) / self.count)
        self.centres = special.ndtri((np.arange(self.count) + 0.5) / self.count)

    def posterior_masses(self, mean, stddev):
        """q's mass on every bucket, (symbols, count), for diagonal Gaussian posteriors given as flat float arrays."""
        mean = np.asarray(mean, np.float64).reshape(-1, 1)
        stddev = np.asarray(stddev, np.float64).reshape(-1, 1)
        cdf = special.ndtr((self.edges[None, :] - mean) / stddev)
        return np.diff(cdf, axis=1)

    def values(self, indices):
        """The latent values (bucket centres) that the decoder sees, float32."""
        return self.centres[np.asarray(indices)].astype(np.float32)
