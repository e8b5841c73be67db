"""What a trained model is worth: scores, likelihoods, latent diagnostics, reports and pictures.

The figures themselves are in ``metrics``; ``latents``, ``disentanglement``,
``visualize``, ``report`` and ``sklearn`` build on them.
"""

from vae_zoo.evaluation.metrics import (  # noqa: F401
    anomaly_auroc,
    anomaly_scores,
    bits_per_dimension,
    importance_log_likelihood,
    log_likelihood,
    mutual_information,
    score,
    score_dataset,
    semi_supervised,
)
