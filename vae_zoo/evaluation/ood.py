"""Out-of-distribution detection: the likelihood-based scores that fail, and fixes from the literature.

Nalisnick et al. (ICLR 2019, "Do deep generative models know what they don't know?") showed that models
trained on Fashion-MNIST give MNIST digits a *higher* likelihood than their own test data, so -log p(x) ranks
those outliers as the most typical inputs. Scores here, higher = more out-of-distribution:

* the failing baselines: reconstruction error, -ELBO, and the importance-sampled -log p(x);
* **input complexity** (Serra et al., ICLR 2020): S(x) = -log2 p(x) - L(x), the model's code length minus a
  generic compressor's, with three compressors for L(x): the bits of x saved alone as a PNG (1-bit for binary
  images, else 8-bit), bz2 (level 9) of x alone (binary images as packed bits, else bytes), and, where
  ``pillow-jxl-plugin`` is installed (the ``jxl`` extra), lossless JPEG XL at its default effort. Serra et al.
  found the strongest generic image coder best (FLIF in their tables); JPEG XL is FLIF's successor, chosen for
  that reason, not by its score on any out-of-distribution pair.
  Simple images (MNIST digits: large flat background) are cheap for every model; subtracting a generic
  code length removes that shared part and leaves what the model knows about the data;
* **typicality** (after Nalisnick et al., 2019, "Detecting out-of-distribution inputs to deep generative
  models using typicality", with batches of one): |-log p(x) - H|, where H is the mean -log p(x) on the
  in-distribution validation split: inputs that are far more likely than typical are flagged too;
* **likelihood regret** (Xiao, Yan and Amit, NeurIPS 2020; ``vae_zoo.evaluation.regret``): how much one
  input's ELBO improves when its posterior is fitted to it alone, the decoder fixed. VAE-specific: it needs a
  Gaussian q(z|x) on one latent layer and a decoder without labels;
* **DoSE** (Morningstar et al., AISTATS 2021; ``vae_zoo.evaluation.dose``): kernel densities of the model's summary
  statistics (reconstruction, cross-entropy to the prior, posterior entropy, -log p(x)) fitted on the
  in-distribution validation split; an input scores by how improbable its statistics are. It needs no
  out-of-distribution data to choose anything.

Each score gets AUROC, AUPRC (out-of-distribution as the positive class) and the false-positive rate at 95%
true-positive rate (scikit-learn), and a histogram PNG of the scores of both sets.
"""

import bz2
import io

import numpy as np
from PIL import Image

from vae_zoo.compression.baselines import jpeg_xl_available
from vae_zoo.data import is_binary
from vae_zoo.evaluation import dose as density_of_states
from vae_zoo.evaluation import metrics as evaluation
from vae_zoo.evaluation import regret

SCORE_TITLES = {
    "reconstruction_error": "reconstruction error",
    "negative_elbo": "-ELBO",
    "negative_log_likelihood": "-log p(x) (IS)",
    "input_complexity_png": "input complexity (PNG)",
    "input_complexity_bz2": "input complexity (bz2)",
    "input_complexity_jxl": "input complexity (JPEG XL)",
    "typicality": "typicality: distance of -log p(x) from H",
    "likelihood_regret": "likelihood regret",
    "dose": "DoSE: density of the model's statistics",
}


def png_bits(images):
    """Bits of each image saved alone as an optimized PNG: 1-bit for binary images, else 8-bit grey."""
    images = np.asarray(images, np.float32)
    binary = is_binary(images)
    sizes = []
    for pixels in image_planes(images, binary):
        picture = Image.fromarray(pixels).convert("1") if binary else Image.fromarray(pixels)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", optimize=True)
        sizes.append(8 * buffer.tell())
    return np.array(sizes, np.float64)


def image_planes(images, binary):
    """Each image as the uint8 array Pillow saves: one channel as (H, W), binary pixels as 0/255."""
    for image in images:
        plane = image[..., 0] if image.shape[-1] == 1 else image
        yield (plane > 0.5).astype(np.uint8) * 255 if binary else np.clip(np.rint(plane * 255), 0, 255).astype(np.uint8)


def bz2_bits(images):
    """Bits of each image compressed alone by bz2 -9: binary images as 8 pixels per byte, others as bytes."""
    images = np.asarray(images, np.float32).reshape(len(images), -1)
    binary = is_binary(images)
    raw = [np.packbits(x > 0.5).tobytes() if binary else np.clip(np.rint(x * 255), 0, 255).astype(np.uint8).tobytes() for x in images]
    return np.array([8 * len(bz2.compress(r, 9)) for r in raw], np.float64)


def jxl_bits(images):
    """Bits of each image saved alone as lossless JPEG XL (default effort): binary images as 0/255 grey."""
    if not jpeg_xl_available():  # importing the plugin is what registers JXL with Pillow
        raise ImportError("JPEG XL needs pillow-jxl-plugin: pip install 'vae-zoo[jxl]'")
    images = np.asarray(images, np.float32)
    sizes = []
    for pixels in image_planes(images, is_binary(images)):
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JXL", lossless=True)
        sizes.append(8 * buffer.tell())
    return np.array(sizes, np.float64)


def scores(model, images, labels=None, k=100, seed=0, typical_nll=None, regret_steps=regret.STEPS):
    """{score name: per-example array}, higher = more out-of-distribution. ``regret_steps``: the likelihood
    regret's fitting steps per batch of inputs (0 leaves out this, the slowest score)."""
    found = evaluation.anomaly_scores(model, images, labels, k=k, seed=seed)
    if regret_steps and regret.applicable(model) is None:
        found["likelihood_regret"] = regret.likelihood_regret(model, images, steps=regret_steps, seed=seed)[0]
    if "negative_log_likelihood" in found:
        nll = found["negative_log_likelihood"]
        bits = nll / np.log(2.0)
        found["input_complexity_png"] = bits - png_bits(images)
        found["input_complexity_bz2"] = bits - bz2_bits(images)
        if jpeg_xl_available():
            found["input_complexity_jxl"] = bits - jxl_bits(images)
        if typical_nll is not None:
            found["typicality"] = np.abs(nll - typical_nll)
    return found


def detection_metrics(inside, outside):
    """AUROC, AUPRC and FPR at 95% TPR of telling ``outside`` (positive) from ``inside`` by a score."""
    # Lazy: scikit-learn is slow to import, and only the detection metrics need it.
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    truth = np.concatenate([np.zeros(len(inside)), np.ones(len(outside))])
    values = np.concatenate([inside, outside])
    false_positive, true_positive, _ = roc_curve(truth, values)
    return {"auroc": float(roc_auc_score(truth, values)), "auprc": float(average_precision_score(truth, values)),
            "fpr_at_95_tpr": float(false_positive[np.searchsorted(true_positive, 0.95)])}


def histogram_png(inside, outside, path, in_name, out_name):
    # Lazy: matplotlib's pyplot is slow to import, and only this histogram needs it.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy, as above

    names = [n for n in SCORE_TITLES if n in inside]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for axis, name in zip(axes[0], names):
        both = np.concatenate([inside[name], outside[name]])
        bins = np.linspace(np.percentile(both, 0.5), np.percentile(both, 99.5), 50)
        axis.hist(inside[name], bins=bins, alpha=0.6, label=f"{in_name} (in)", density=True)
        axis.hist(outside[name], bins=bins, alpha=0.6, label=f"{out_name} (out)", density=True)
        axis.set_title(SCORE_TITLES[name], fontsize=10)
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def evaluate_ood(model, inside, outside, typical, k=100, seed=0, histogram=None, names=("in", "out"),
                 regret_steps=None):
    """The OOD table for in-distribution test ``inside``, ``outside`` examples and the in-distribution
    validation examples ``typical`` (for H); each an (images, labels) pair. ``regret_steps`` None: ``regret.STEPS``."""
    regret_steps = regret.STEPS if regret_steps is None else regret_steps
    # H needs only the likelihood of the validation split, not the other scores.
    h = float(-np.mean(evaluation.log_likelihood(model, *typical, k=k, seed=seed + 2))) if model.can("elbo") else None
    inside_scores = scores(model, *inside, k=k, seed=seed, typical_nll=h, regret_steps=regret_steps)
    outside_scores = scores(model, *outside, k=k, seed=seed + 1, typical_nll=h, regret_steps=regret_steps)
    if model.can("elbo"):
        # Fitted on the validation split, as H is: the test pair chooses nothing.
        states = density_of_states.DensityOfStates().fit(density_of_states.statistics(model, *typical, seed=seed + 2))
        inside_scores["dose"] = states.score(density_of_states.statistics(model, *inside, seed=seed))
        outside_scores["dose"] = states.score(density_of_states.statistics(model, *outside, seed=seed + 1))
    table = {name: {**detection_metrics(inside_scores[name], outside_scores[name]),
                    "mean_in": float(np.mean(inside_scores[name])), "mean_out": float(np.mean(outside_scores[name]))}
             for name in inside_scores}
    result = {"scores": table, "typical_nll": h, "in_examples": len(inside[0]), "out_examples": len(outside[0]), "k": k,
              "regret": ({"steps": regret_steps, "learning_rate": regret.LEARNING_RATE} if "likelihood_regret" in table
                         else regret.applicable(model) or "not asked (regret_steps 0)"),
              "method": "higher score = out of distribution; AUROC/AUPRC with the out-of-distribution set positive"}
    if histogram is not None:
        result["files"] = [histogram_png(inside_scores, outside_scores, histogram, *names)]
    return result
