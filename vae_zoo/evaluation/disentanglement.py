"""Disentanglement metrics on data with known generating factors (the procedural shapes)."""

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import mutual_info_score


def discretize(codes, bins=20):
    """Each latent dimension cut into ``bins`` equal-width bins (as in Chen et al., 2018)."""
    return np.stack([np.digitize(c, np.histogram(c, bins)[1][1:-1]) for c in codes.T], axis=1)


def mutual_information_gap(codes, factors, bins=20):
    """MIG (Chen et al., 2018): for each factor, the gap between the two latent dimensions
    most informative about it, divided by the factor's entropy; averaged over factors. In [0, 1]."""
    binned = discretize(codes, bins)
    gaps = []
    for k in range(factors.shape[1]):
        entropy = mutual_info_score(factors[:, k], factors[:, k])
        if entropy == 0:
            continue
        information = sorted((mutual_info_score(factors[:, k], binned[:, j]) for j in range(binned.shape[1])), reverse=True)
        second = information[1] if len(information) > 1 else 0.0
        gaps.append((information[0] - second) / entropy)
    return float(np.mean(gaps))


def beta_vae_score(encode, images, factors, factor_sizes, index_of, batch=64, train_points=600, test_points=300, seed=0):
    """The beta-VAE metric (Higgins et al., 2017): accuracy of a linear classifier that predicts
    which factor was held fixed in a batch of pairs from the mean |z1 - z2| over the batch.

    ``encode`` maps images to latent means; ``index_of`` maps factor indices to rows of ``images``.
    """
    rng = np.random.default_rng(seed)
    sizes = np.asarray(factor_sizes)

    def point():
        fixed = rng.integers(len(sizes))
        first = rng.integers(0, sizes, size=(batch, len(sizes)))
        second = rng.integers(0, sizes, size=(batch, len(sizes)))
        second[:, fixed] = first[:, fixed]
        difference = np.abs(encode(images[index_of(first)]) - encode(images[index_of(second)])).mean(axis=0)
        return difference, fixed

    train = [point() for _ in range(train_points)]
    test = [point() for _ in range(test_points)]
    classifier = LogisticRegression(max_iter=5000).fit(np.stack([d for d, _ in train]), [f for _, f in train])
    return float(classifier.score(np.stack([d for d, _ in test]), [f for _, f in test]))
