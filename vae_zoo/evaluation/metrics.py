"""What a trained model is worth: ELBO, likelihood, latent diagnostics, anomaly detection, semi-supervised learning."""

import weakref

import keras
import numpy as np
import tensorflow as tf

from vae_zoo.data import binarize_static
from vae_zoo.data.base import keep_labels_per_class
from vae_zoo.data.modalities import bits_per_dimension, get_modality  # noqa: F401  (bits_per_dimension: public here too)
from vae_zoo.evaluation.latents import batches, model_inputs, posterior_means
from vae_zoo.hardware import has_accelerator
from vae_zoo.models.objectives import importance_log_likelihood  # noqa: F401  (public here too)


def score(model, images, labels=None, batch_size=500, seed=0):
    """Mean per-example ELBO, its two terms and the reconstruction error over ``images`` (arrays).

    The same as ``score_dataset`` over the arrays in batches of ``batch_size``.
    """
    labels = labels if model.can("labels") else None
    elements = images if labels is None else (images, labels)
    return score_dataset(model, tf.data.Dataset.from_tensor_slices(elements).batch(batch_size), seed=seed)


def score_dataset(model, dataset, seed=0):
    """Mean per-example ELBO, its two terms and the reconstruction error over a batched ``tf.data`` pipeline (and
    a classifier's error, M2's, where the pipeline yields labels).

    One z is drawn from q(z|x) per example (the single-sample ELBO); the
    reconstruction error is the squared error between x and the model's
    reconstruction (the likelihood mean at the posterior mean), summed over
    pixels, as in the seed's ||x - decoder(encoder(x))||^2 (for token models,
    ``reconstruction_token_errors``: the tokens the greedy reconstruction gets wrong). Models without an
    ELBO (the plain autoencoder) report the reconstruction terms only. The
    pipeline yields examples, or (examples, labels) for a conditional model.
    """
    names = [n for n in ("elbo", "reconstruction", "kl") if n in model.metric_names]
    # A classifier's error (M2's q(y|x)), where the pipeline brings the labels; the bound itself never sees them.
    classifies = model.can("classify") and isinstance(dataset.element_spec, tuple)

    # Stateless draws keyed by (seed, batch): the same figures in any process, whatever ran before.
    @tf.function(jit_compile=True)
    def batch_scores(x, y, labels, batch_seed):
        terms = model.loss_terms(x, y, seed=batch_seed)
        error = model.reconstruction_error(x, model(model_inputs(model, x, y)))
        scores = [tf.reduce_sum(terms[n]) for n in names] + [tf.reduce_sum(error)]
        if classifies:
            wrong = tf.not_equal(model.predict_labels(x), tf.cast(labels, tf.int32))
            scores.append(tf.reduce_sum(tf.cast(wrong, tf.float32)))
        return scores

    totals, examples = np.zeros(len(names) + 1 + classifies), 0
    for index, element in enumerate(dataset):
        x, labels = element if isinstance(element, tuple) else (element, None)
        y = labels if model.can("labels") else None
        totals += [float(t) for t in batch_scores(x, y, labels, tf.constant([int(seed), index], tf.int32))]
        examples += int(x.shape[0])
    if not examples:
        raise ValueError("score_dataset got an empty pipeline")
    means = dict(zip([*names, model.reconstruction_error_name, *(["classification_error"] if classifies else [])],
                     totals / examples))
    if "reconstruction" in means:
        means["reconstruction_nll"] = means.pop("reconstruction")
    return {**means, "examples": examples}


_COMPILED_CHUNKS = weakref.WeakKeyDictionary()


MAX_DECODER_VALUES = 120_000_000


def decoder_values_per_draw(model):
    """Values one decoder pass holds for one example: the sum of its layers' output sizes (at least the example's)."""
    if hasattr(model, "decoder_values_per_example"):
        return int(model.decoder_values_per_example())
    total = 0
    for layer in getattr(getattr(model, "decoder", None), "layers", []):
        try:
            total += int(np.prod(layer.output.shape[1:]))
        except (AttributeError, ValueError, TypeError):  # a layer without a symbolic output
            continue
    return max(total, int(np.prod(model.data_shape)))


def chunks_use_xla():
    """Whether a chunk of draws compiles as a whole with XLA: on a GPU, yes. On a CPU, no: TensorFlow's own
    (oneDNN) matmuls and convolutions run at about 0.9 of the machine's large-matmul rate at these sizes where
    XLA's reach about 0.55, and the likelihood's per-pixel part is XLA-compiled on its own anyway
    (``Likelihood.evaluation_log_prob``; tools/bench_speed.py measures both)."""
    return has_accelerator()


def log_likelihood(model, images, labels=None, k=5000, chunk=500, batch_size=100, seed=0, progress=False,
                   jit_compile=None):
    """Per-example importance-sampled log p(x) over a data set, as numpy (nats).

    Like ``importance_log_likelihood``, but every chunk of draws has a static
    size, so each chunk runs as one compiled call (k = 5000 on 10,000 images
    is tens of billions of flops; compiled chunks keep it to minutes on a CPU).
    ``jit_compile``: compile each chunk with XLA (None: ``chunks_use_xla()``).
    ``progress=True`` shows a Keras progress bar (examples done, time left).
    """
    # One compiled call decodes batch_size x chunk draws, each holding every decoder layer's output and the prior's
    # log-density against each mixture component: keep that under MAX_DECODER_VALUES (the MNIST MLP's 100 x 500 draws
    # fit), so that a conv decoder of spectrograms or a prior of 50,000 exemplars takes fewer draws per call instead
    # of exhausting memory.
    prior_values = getattr(getattr(model, "prior_layer", None), "evaluation_values_per_draw", 0)
    per_draw, k = decoder_values_per_draw(model) + prior_values, int(k)
    chunk = max(1, min(int(chunk), k, MAX_DECODER_VALUES // per_draw))
    batch_size = max(1, min(int(batch_size), MAX_DECODER_VALUES // (chunk * per_draw)))
    sizes = [chunk] * (k // chunk) + ([k % chunk] if k % chunk else [])
    # Kept per model (weakly), so later calls (the anomaly scores, a second split) reuse the compiled chunks.
    compiled = _COMPILED_CHUNKS.setdefault(model, {})
    jit_compile = chunks_use_xla() if jit_compile is None else bool(jit_compile)

    def chunk_logsumexp(size):
        if (size, jit_compile) not in compiled:
            compiled[size, jit_compile] = tf.function(
                lambda x, y, s: tf.reduce_logsumexp(model.log_weights(x, y, k=size, seed=s), axis=0),
                jit_compile=jit_compile)
        return compiled[size, jit_compile]

    results = []
    bar = keras.utils.Progbar(len(images), unit_name="example") if progress else None
    for index, (x, y) in enumerate(batches(model, images, labels if model.can("labels") else None, batch_size)):
        x = tf.convert_to_tensor(x)
        y = None if y is None else tf.convert_to_tensor(y)
        parts = [chunk_logsumexp(size)(x, y, tf.constant([seed + index, i], tf.int32)) for i, size in enumerate(sizes)]
        results.append(np.asarray(tf.reduce_logsumexp(tf.stack(parts), axis=0) - np.log(k)))
        if bar is not None:
            bar.add(int(x.shape[0]), values=[("nll", float(-np.mean(np.concatenate(results))))])
    return np.concatenate(results)


def mutual_information(model, images, labels=None, examples=1000, seed=0):
    """I(x; z) under q: E_x E_q(z|x)[log q(z|x) - log q(z)], with q(z) the aggregate posterior.

    q(z) = (1/N) sum_j q(z|x_j) is estimated with the same N examples (the
    estimator of Hoffman & Johnson, 2016, as used by He et al., 2019). The result
    is at most log N nats. None for models without a Gaussian posterior.
    """
    if not model.can("gaussian_posterior"):
        return None
    x = tf.convert_to_tensor(images[:examples])
    y = None if labels is None or not model.can("labels") else tf.convert_to_tensor(labels[:examples])
    q = model.encode(x, y)
    z = q.sample(seed=tf.constant([seed, 0]))
    log_conditional = q.log_prob(z)
    # log q(z_i | x_j) for every pair: broadcast each z_i against all N posteriors.
    pairwise = q.log_prob(z[:, None, :])
    log_aggregate = tf.reduce_logsumexp(pairwise, axis=1) - np.log(len(x))
    return float(tf.reduce_mean(log_conditional - log_aggregate))


def anomaly_scores(model, images, labels=None, k=100, elbo_samples=10, batch_size=100, seed=0):
    """Per-example anomaly scores, higher = more anomalous.

    ``reconstruction_error``: the seed's ||x - decoder(encoder(x))||^2;
    ``negative_elbo``: -ELBO, averaged over ``elbo_samples`` draws of z;
    ``negative_log_likelihood``: -log p(x), importance-sampled with ``k`` draws.
    """
    errors, elbos = [], []
    for x, y in batches(model, images, labels if model.can("labels") else None, batch_size):
        reconstruction = np.asarray(model(model_inputs(model, x, y)))
        errors.append(((x - reconstruction) ** 2).reshape(len(x), -1).sum(axis=1))
        if model.can("elbo"):
            elbos.append(np.asarray(tf.reduce_mean(model.log_weights(x, y, k=elbo_samples), axis=0)))
    scores = {"reconstruction_error": np.concatenate(errors)}
    if model.can("elbo"):
        scores["negative_elbo"] = -np.concatenate(elbos)
        scores["negative_log_likelihood"] = -log_likelihood(model, images, labels, k=k, batch_size=batch_size, seed=seed)
    return scores


def anomaly_auroc(model, normal_images, anomalous_images, normal_labels=None, anomalous_labels=None, **options):
    """AUROC of each anomaly score at telling anomalous from normal examples (0.5 is chance)."""
    # Lazy: scikit-learn is slow to import, and training and scoring, which import this module, do without it.
    from sklearn.metrics import roc_auc_score

    normal = anomaly_scores(model, normal_images, normal_labels, **options)
    anomalous = anomaly_scores(model, anomalous_images, anomalous_labels, **options)
    truth = np.concatenate([np.zeros(len(normal_images)), np.ones(len(anomalous_images))])
    return {name: float(roc_auc_score(truth, np.concatenate([normal[name], anomalous[name]]))) for name in normal}


def labelled_draw(labels, per_class, seed):
    """Indices of the ``per_class`` examples of each class that the data option ``labels_per_class`` keeps
    labelled with ``seed`` (the others it marks unknown)."""
    return np.flatnonzero(keep_labels_per_class(labels, per_class, seed) >= 0)


def semi_supervised(model, data, labels_per_class=(10, 100), repeats=5, seed=0, finetuned=True):
    """The M1 protocol (Kingma et al., 2014): a classifier on latent codes from few labels.

    For each n in ``labels_per_class``, draw n labelled training examples per
    class (``repeats`` times, draw r as the data option ``labels_per_class`` draws them with seed ``seed + r``), fit a logistic regression on their posterior means
    and, for comparison, on their raw features (the data's modality says which: pixels; for text, bag-of-words counts), and
    score both on the test split. With ``finetuned`` (where the model's encoder reads the data alone), the
    encoder's trunk with a new linear head is also trained on the same labelled examples
    (``vae_zoo.evaluation.finetune``) and scored: ``finetuned_accuracy``.
    """
    from vae_zoo.evaluation import finetune  # lazy, as below

    # Lazy: scikit-learn is slow to import, and training and scoring, which import this module, do without it.
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline  # lazy, as above
    from sklearn.preprocessing import StandardScaler  # lazy, as above

    (train_x, train_y), (test_x, test_y) = data.take("train"), data.take("test")
    if data.binarize == "dynamic":
        # The training arrays stay grey (the pipeline binarizes each batch); the test split is
        # binarized once: give the classifiers training images of the same kind.
        train_x = binarize_static(train_x, seed=seed)
    modality = get_modality(data.spec.modality)  # the baseline's features: pixels, or bag-of-words counts for text
    (raw, train_raw), (_, test_raw) = modality.raw_features(model, train_x), modality.raw_features(model, test_x)
    codes = {"latent": (posterior_means(model, train_x, train_y), posterior_means(model, test_x, test_y)), raw: (train_raw, test_raw)}
    results = {}
    for n in labels_per_class:
        scores = {name: [] for name in codes}
        for draw in range(repeats):
            # Draw r keeps the labels that the data option ``labels_per_class: n`` keeps with ``seed: seed + r``, so
            # that an M2 run given that seed learns from the same labelled examples as these classifiers.
            chosen = labelled_draw(train_y, n, seed + draw)
            for name, (train_features, test_features) in codes.items():
                sparse = not isinstance(train_features, np.ndarray)  # a sparse matrix cannot be centred
                classifier = make_pipeline(StandardScaler(with_mean=not sparse), LogisticRegression(max_iter=2000))
                classifier.fit(train_features[chosen], train_y[chosen])
                scores[name].append(classifier.score(test_features, test_y))
            if finetuned and finetune.can_finetune(model):
                tuned = finetune.finetune(model, train_x[chosen], train_y[chosen], data.num_classes, seed=seed + len(scores.get("finetuned", [])))
                scores.setdefault("finetuned", []).append(finetune.accuracy(tuned, test_x, test_y))
        results[f"{n}_per_class"] = {f"{name}_accuracy": float(np.mean(s)) for name, s in scores.items()}
        results[f"{n}_per_class"].update({f"{name}_accuracy_std": float(np.std(s)) for name, s in scores.items()})
    results["repeats"] = repeats
    return results
