"""Density of states estimation (DoSE; Morningstar et al., AISTATS 2021) for out-of-distribution detection.

A likelihood alone fails on Fashion-MNIST against MNIST (digits get the higher likelihood), but the *way* a model
explains an input tells the two apart: how much of its code length goes to the reconstruction, to the KL, how wide
its posterior is. DoSE computes such summary statistics for every in-distribution example of a held-out split,
fits a density to each, and scores a new input by how improbable its statistics are under those densities
(its "density of states"). It needs no out-of-distribution data and no training beyond the model's.

The statistics here come from k draws z ~ q(z|x) (``log_weight_terms``, so every model with an ELBO has them,
hierarchical ones included): the expected reconstruction -E log p(x|z), the cross-entropy to the prior
-E log p(z), the posterior's entropy -E log q(z|x), and -log p(x) importance-sampled from the same draws. Each gets
a one-dimensional Gaussian kernel density estimate (scikit-learn, Scott's bandwidth) on the held-out split, and
the score is the sum of their negative log-densities: DoSE_KDE of the paper, its statistics treated as independent.
"""

import numpy as np
import tensorflow as tf

from vae_zoo.evaluation.latents import batches

STATISTICS = ("reconstruction", "cross_entropy", "entropy", "negative_log_likelihood")
DRAWS = 32  # draws of z an example: the statistics' noise is far under their spread across examples


def statistics(model, images, labels=None, draws=DRAWS, batch_size=100, seed=0):
    """{statistic: per-example array (nats)} of ``STATISTICS``, from ``draws`` joint draws z ~ q(z|x) an example."""
    if not model.can("elbo"):
        raise ValueError("DoSE's statistics need a model with an ELBO (log p(x|z), log p(z) and log q(z|x))")
    function = tf.function(lambda x, y, s: model.log_weight_terms(x, y, k=draws, seed=s))
    found = {name: [] for name in STATISTICS}
    for index, (x, y) in enumerate(batches(model, images, labels if model.can("labels") else None, batch_size)):
        y = None if y is None else tf.convert_to_tensor(y)
        log_likelihood, log_prior, log_posterior = (np.asarray(t, np.float64) for t in function(
            tf.convert_to_tensor(x), y, tf.constant([seed, index], tf.int32)))
        log_weights = log_likelihood + log_prior - log_posterior
        found["reconstruction"].append(-log_likelihood.mean(axis=0))
        found["cross_entropy"].append(-log_prior.mean(axis=0))
        found["entropy"].append(-log_posterior.mean(axis=0))
        top = log_weights.max(axis=0)
        found["negative_log_likelihood"].append(-(top + np.log(np.mean(np.exp(log_weights - top), axis=0))))
    return {name: np.concatenate(values) for name, values in found.items()}


class DensityOfStates:
    """One kernel density a statistic, fitted on in-distribution statistics; ``score`` is higher for inputs whose
    statistics are less probable (out of distribution)."""

    def __init__(self, bandwidth="scott"):
        self.bandwidth = bandwidth
        self.densities = None

    def fit(self, found):
        # Lazy: scikit-learn is slow to import, and only the OOD part needs it.
        from sklearn.neighbors import KernelDensity

        self.densities = {}
        for name, values in found.items():
            values = np.asarray(values, np.float64)
            if len(values) < 2 or not np.all(np.isfinite(values)):
                raise ValueError(f"DoSE needs at least 2 finite in-distribution values of {name!r} to fit its density")
            # Standardized, so that one bandwidth rule suits statistics of any scale.
            centre, spread = float(np.mean(values)), float(np.std(values)) or 1.0
            density = KernelDensity(bandwidth=self.bandwidth).fit(((values - centre) / spread)[:, None])
            self.densities[name] = (centre, spread, density)
        return self

    def log_densities(self, found):
        """{statistic: per-example log-density of its standardized value} under the fitted densities."""
        if self.densities is None:
            raise ValueError("fit the densities on in-distribution statistics first")
        missing = sorted(set(self.densities) - set(found))
        if missing:
            raise ValueError(f"statistics missing from the input: {', '.join(missing)}")
        return {name: self.densities[name][2].score_samples(((np.asarray(found[name], np.float64) - centre) / spread)[:, None])
                for name, (centre, spread, _) in self.densities.items()}

    def score(self, found):
        """-sum of the statistics' log-densities, per example: higher = more out of distribution."""
        return -np.sum(list(self.log_densities(found).values()), axis=0)
