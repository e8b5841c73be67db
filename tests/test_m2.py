"""M2, the semi-supervised VAE (vae_zoo/models/m2.py), and the semi-supervised data options."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import vae_zoo
from vae_zoo.data.base import from_splits, with_gaussian_draws
from vae_zoo.errors import DataError, InputError
from vae_zoo.models.m2 import m2_objective

ALPHA = 3.0


def case(seed=0, batch=5, classes=4):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(batch, classes)).astype(np.float32)
    log_q = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    elbos = rng.normal(-100.0, 5.0, size=(batch, classes)).astype(np.float32)
    labels = np.array([2, -1, 0, -1, 3])[:batch].astype(np.int32)
    return logits, log_q, elbos, labels


def test_the_objective_is_eq_6_for_labelled_and_eq_7_for_unlabelled_examples():
    _, log_q, elbos, labels = case()
    terms = {k: v.numpy() for k, v in m2_objective(tf.constant(log_q), tf.constant(elbos), tf.constant(labels), ALPHA).items()}
    q = np.exp(log_q)
    unlabelled_bound = (q * elbos).sum(1) - (q * log_q).sum(1)
    for i, y in enumerate(labels):
        if y >= 0:
            assert terms["loss"][i] == pytest.approx(-elbos[i, y] - ALPHA * log_q[i, y], rel=1e-6)
            assert terms["cross_entropy"][i] == pytest.approx(-log_q[i, y], rel=1e-6)
            assert terms["labelled_elbo"][i] == pytest.approx(elbos[i, y], rel=1e-6)
        else:
            assert terms["loss"][i] == pytest.approx(-unlabelled_bound[i], rel=1e-6)
            assert terms["cross_entropy"][i] == 0.0
        assert terms["elbo"][i] == pytest.approx(unlabelled_bound[i], rel=1e-6)


def test_the_unlabelled_bound_is_log_p_x_when_the_classifier_is_the_true_posterior():
    # With exact class bounds e_y = log p(x, y) and q(y|x) = p(y|x), -U(x) = log sum_y p(x, y) = log p(x) (Jensen's gap 0).
    rng = np.random.default_rng(1)
    log_joint = rng.normal(-50.0, 3.0, size=(6, 10))
    log_p_x = np.log(np.exp(log_joint).sum(1))
    true_posterior = log_joint - log_p_x[:, None]
    exact = m2_objective(tf.constant(true_posterior), tf.constant(log_joint), tf.fill([6], -1), ALPHA)["elbo"].numpy()
    np.testing.assert_allclose(exact, log_p_x, rtol=1e-10)
    # Any other classifier gives a lower bound.
    other = np.log(np.full((6, 10), 0.1))
    below = m2_objective(tf.constant(other), tf.constant(log_joint), tf.fill([6], -1), ALPHA)["elbo"].numpy()
    assert np.all(below < log_p_x - 1e-3)


def test_gradients_with_and_without_labels():
    logits, _, elbos, labels = case()
    logits, elbos = tf.Variable(logits), tf.Variable(elbos)
    with tf.GradientTape() as tape:
        log_q = tf.nn.log_softmax(logits)
        loss = m2_objective(log_q, elbos, tf.constant(labels), ALPHA)["loss"]
        total = tf.reduce_sum(loss)
    d_logits, d_elbos = (g.numpy() for g in tape.gradient(total, [logits, elbos]))
    q = tf.nn.softmax(logits).numpy()
    log_q = np.log(q)
    e = elbos.numpy()
    for i, y in enumerate(labels):
        if y >= 0:
            one_hot = np.eye(q.shape[1])[y]
            # d/da of alpha * (-log softmax(a)_y) = alpha (q - onehot); the bound at y gets -1, the others nothing.
            np.testing.assert_allclose(d_logits[i], ALPHA * (q[i] - one_hot), atol=1e-5)
            np.testing.assert_allclose(d_elbos[i], -one_hot, atol=1e-6)
        else:
            # U = -sum q e + sum q log q: dU/da_j = q_j [(log q_j - e_j) - sum_y q_y (log q_y - e_y)]; dU/de = -q.
            centred = (log_q[i] - e[i]) - np.sum(q[i] * (log_q[i] - e[i]))
            np.testing.assert_allclose(d_logits[i], q[i] * centred, rtol=1e-4, atol=1e-4)
            np.testing.assert_allclose(d_elbos[i], -q[i], atol=1e-6)


def small_m2(**kwargs):
    return vae_zoo.create_model("m2", data_shape=(8, 8, 1), num_classes=3, latent_dim=2, alpha=ALPHA,
                                encoder={"name": "mlp", "hidden_sizes": [16]}, classifier={"name": "mlp", "hidden_sizes": [8]},
                                **kwargs)


def binary(batch=6, seed=0):
    return (np.random.default_rng(seed).random((batch, 8, 8, 1)) < 0.3).astype(np.float32)


def test_the_models_terms_compose_the_class_bounds_of_its_conditional_parts():
    model = small_m2()
    x = binary()
    labels = np.array([0, -1, 2, -1, 1, -1], np.int32)
    seed = tf.constant([4, 5])
    terms = model.loss_terms(x, labels, seed=seed)
    # The same bounds computed one class at a time through the conditional VAE's own ELBO, with the same draws:
    # loss_terms draws one z for each (class, example) row of the K * batch table, keyed by the one seed.
    every_x = np.concatenate([x] * 3)
    every_y = np.repeat(np.arange(3), len(x)).astype(np.int32)
    q = vae_zoo.models.cvae.ConditionalVAE.encode(model, every_x, every_y)
    z = vae_zoo.models.distributions.reparameterized_sample(q, seed=seed)
    log_likelihood = model.decode(z, every_y).log_prob(every_x).numpy()
    kl = vae_zoo.models.distributions.kl_divergence(q, model.prior(), z).numpy()
    class_elbos = (log_likelihood - kl).reshape(3, len(x)).T - np.log(3)
    expected = m2_objective(model.class_log_probabilities(x), tf.constant(class_elbos, tf.float32), labels, ALPHA)
    np.testing.assert_allclose(terms["elbo"].numpy(), expected["elbo"].numpy(), rtol=1e-5)
    np.testing.assert_allclose(terms["loss"].numpy(), expected["loss"].numpy(), rtol=1e-5)
    # The error is over the three labelled examples only.
    predicted = model.predict_labels(x).numpy()
    error = np.mean(predicted[[0, 2, 4]] != labels[[0, 2, 4]])
    assert np.mean(terms["classification_error"].numpy()) == pytest.approx(error, abs=1e-6)


def test_the_importance_sampled_likelihood_sums_over_the_classes():
    model = small_m2()
    x = binary(4)
    bound = np.mean([model.loss_terms(x, seed=tf.constant([s, 0]))["elbo"].numpy() for s in range(50)], axis=0)
    estimate = vae_zoo.evaluation.log_likelihood(model, x, k=2000, chunk=500)
    # log p(x) >= the ELBO, and the estimate with k = 2000 has closed most of the gap: above the bound.
    assert np.all(estimate > bound)
    # Labels given or not, p(x) sums over y: the same estimate.
    again = vae_zoo.evaluation.log_likelihood(model, x, k=2000, chunk=500, seed=3)
    np.testing.assert_allclose(estimate, again, atol=0.5)


def test_labels_are_optional_and_checked():
    model = small_m2()
    x = binary(3)
    assert model.loss_terms(x)["loss"].shape == (3,)  # no labels: all unlabelled
    with pytest.raises(InputError, match=r"labels must lie in \[0, 3\) or be -1"):
        model.loss_terms(x, np.array([0, 5, -1], np.int32))
    with pytest.raises(InputError, match="integer class labels"):
        model.loss_terms(x, np.array([0.0, 1.0, 2.0], np.float32))
    assert model.predict_labels(x).shape == (3,)
    np.testing.assert_allclose(model.class_probabilities(x).numpy().sum(1), 1.0, rtol=1e-6)
    mean = model.decoded_mean(tf.zeros([2, 2]))  # no label: the mean over the classes
    per_class = [model.decoded_mean(tf.zeros([2, 2]), tf.fill([2], c)).numpy() for c in range(3)]
    np.testing.assert_allclose(mean.numpy(), np.mean(per_class, axis=0), rtol=1e-6)


def test_a_saved_m2_classifies_as_before(tmp_path):
    model = small_m2()
    x = binary(4)
    vae_zoo.save(model, tmp_path / "m2")
    loaded = vae_zoo.load(tmp_path / "m2")
    np.testing.assert_allclose(loaded.class_probabilities(x).numpy(), model.class_probabilities(x).numpy(), rtol=1e-6)


def test_test_scores_give_the_classifiers_error_where_labels_come_with_the_examples():
    from vae_zoo.evaluation.metrics import score_dataset
    model = small_m2()
    x = binary(40)
    labels = np.arange(40) % 3
    wrong = 100 * np.mean(model.predict_labels(x).numpy() != labels)
    scores = score_dataset(model, tf.data.Dataset.from_tensor_slices((x, labels)).batch(16))
    assert scores["classification_error"] * 100 == pytest.approx(wrong, abs=1e-4)
    assert "classification_error" not in score_dataset(model, tf.data.Dataset.from_tensor_slices(x).batch(16))


# --------------------------------------------------------------------------- the data options


def test_labels_per_class_keeps_that_many_training_labels():
    data = vae_zoo.data.load("mnist_mini", labels=True, labels_per_class=10, seed=3)
    _, train_labels = data.take("train")
    known = train_labels[train_labels >= 0]
    assert len(known) == 100 == data.known_labels and np.all(np.bincount(known) == 10)
    assert np.all(train_labels[train_labels < 0] == -1)
    assert np.all(data.take("test")[1] >= 0) and np.all(data.take("validation")[1] >= 0)
    other = vae_zoo.data.load("mnist_mini", labels=True, labels_per_class=10, seed=4).take("train")[1]
    assert not np.array_equal(other >= 0, train_labels >= 0), "another seed draws other labelled examples"


def test_the_probes_draw_the_labelled_examples_an_m2_run_with_that_seed_keeps():
    from vae_zoo.evaluation.metrics import labelled_draw
    every = vae_zoo.data.load("mnist_mini", labels=True).take("train")[1]
    for seed in (0, 3):
        kept = vae_zoo.data.load("mnist_mini", labels=True, labels_per_class=10, seed=seed).take("train")[1]
        np.testing.assert_array_equal(labelled_draw(every, 10, seed), np.flatnonzero(kept >= 0))


def test_every_training_batch_gets_labelled_examples_drawn_again():
    data = vae_zoo.data.load("mnist_mini", labels=True, labels_per_class=5, labelled_per_batch=16, batch_size=64)
    stream = iter(data.training_stream())
    batches = [next(stream) for _ in range(3)]
    for x, y in batches:
        assert x.shape[0] == 80 and np.sum(y.numpy()[64:] >= 0) == 16
    assert not np.array_equal(batches[0][1].numpy()[64:], batches[1][1].numpy()[64:])
    # Keyed by (seed, epoch, batch): the same again from the start.
    x, y = next(iter(data.training_stream()))
    np.testing.assert_array_equal(y.numpy(), batches[0][1].numpy())


def test_bad_semi_supervised_options_are_named():
    with pytest.raises(DataError, match="labels_per_class=5000, but class"):
        vae_zoo.data.load("mnist_mini", labels=True, labels_per_class=5000)
    with pytest.raises(DataError, match="labelled_per_batch needs labels: true"):
        vae_zoo.data.load("mnist_mini", labelled_per_batch=8)
    with pytest.raises(DataError, match="does not take labels_per_class"):
        vae_zoo.data.load("fortunes", labels_per_class=3)


def test_m2_trains_with_fit_on_mixed_batches():
    data = vae_zoo.data.load("digits", labels=True, labels_per_class=5, labelled_per_batch=20, batch_size=50,
                             binarize="dynamic")
    model = vae_zoo.create_model("m2", data_shape=data.data_shape, num_classes=data.num_classes, latent_dim=4,
                                 encoder={"name": "mlp", "hidden_sizes": [32]}, classifier={"name": "mlp", "hidden_sizes": [32]})
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(data.training_stream(), steps_per_epoch=data.steps_per_epoch(), epochs=3,
                        validation_data=data.validation, verbose=0).history
    assert history["val_classification_error"][-1] < history["val_classification_error"][0]
    assert history["elbo"][-1] > history["elbo"][0]


def test_gaussian_draws_redraw_every_training_batch_around_the_stored_means():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(3, 200, 4)).astype(np.float32)
    sds = np.float32([0.5, 1.0, 2.0, 0.25]) * np.ones((3, 200, 4), np.float32)
    # Each example's label is its position, so that a shuffled batch's draws can be put back against their means.
    splits = {split: (np.concatenate([means[i], sds[i]], -1), np.arange(200))
              for i, split in enumerate(("train", "validation", "test"))}
    data = with_gaussian_draws(from_splits(splits, "toy", batch_size=200, labels=True, modality="features"))
    assert data.data_shape == (4,)
    np.testing.assert_array_equal(data.take("train")[0], means[0])  # what a probe reads: the means
    np.testing.assert_array_equal(data.take("validation")[0], means[1])
    np.testing.assert_array_equal(next(iter(data.validation))[0].numpy(), means[1])
    stream = iter(data.training_stream())
    standardized = []
    for _ in range(50):  # 50 epochs of one batch each
        x, y = next(stream)
        standardized.append((x.numpy() - means[0][y.numpy()]) / sds[0][y.numpy()])
    standardized = np.concatenate(standardized)  # 10,000 x 4 draws: mean 0 and sd 1 within 0.05 (5 standard errors)
    assert abs(standardized.mean()) < 0.05 and abs(standardized.std() - 1.0) < 0.05
    first, second = next(iter(data.train))[0].numpy(), next(iter(data.train))[0].numpy()
    assert first.shape == (200, 4) and not np.array_equal(np.sort(first, 0), np.sort(second, 0)), "drawn afresh"
    with pytest.raises(DataError, match="even last axis"):
        with_gaussian_draws(from_splits({s: (np.zeros((5, 3), np.float32), None) for s in splits}, "odd",
                                        modality="features"))


def test_latents_can_be_draws_from_the_posterior():
    model = vae_zoo.load_pretrained("vae.mnist_mini")
    data = vae_zoo.data.load("latents", model="vae.mnist_mini", draw="sample", labels=True, labels_per_class=10,
                             labelled_per_batch=10, batch_size=100)
    means = vae_zoo.data.load("latents", model="vae.mnist_mini", labels=True)
    assert data.data_shape == (model.latent_dim,) == means.data_shape
    np.testing.assert_allclose(data.take("test")[0], means.take("test")[0], atol=1e-6)
    np.testing.assert_allclose(data.take("train")[0], means.take("train")[0], atol=1e-6)
    x, y = next(iter(data.training_stream()))
    assert x.shape == (110, model.latent_dim) and np.sum(y.numpy() >= 0) >= 10
    with pytest.raises(DataError, match="Gaussian posterior"):
        vae_zoo.data.load("latents", model="vq_vae.mnist_mini", draw="sample")
