"""The objectives as functions (vae_zoo.models.objectives), against answers worked out by hand, and the models
that compose them."""

import math

import numpy as np
import pytest
import tensorflow as tf
from model_test_case import SMALL_TEXT_KWARGS, example_batch, example_sentences

import vae_zoo
from vae_zoo.models import distributions, objectives
from vae_zoo.models.latent import LatentVariableModel
from vae_zoo.models.sentence_vae import LanguageModel, SentenceVAE
from vae_zoo.models.vae import VAE


def test_elbo_terms_add_beta_times_the_kl_or_the_penalty_to_the_loss():
    terms = objectives.elbo_terms(tf.constant([-10.0, -4.0]), tf.constant([1.0, 3.0]), beta=2.0)
    np.testing.assert_allclose(terms["reconstruction"], [10.0, 4.0])
    np.testing.assert_allclose(terms["kl"], [1.0, 3.0])
    np.testing.assert_allclose(terms["elbo"], [-11.0, -7.0])
    np.testing.assert_allclose(terms["loss"], [12.0, 10.0])
    penalised = objectives.elbo_terms(tf.constant([-10.0, -4.0]), tf.constant([1.0, 3.0]), beta=2.0, penalty=tf.constant([5.0, 0.0]))
    np.testing.assert_allclose(penalised["loss"], [20.0, 4.0])
    np.testing.assert_allclose(penalised["elbo"], [-11.0, -7.0])  # the ELBO never includes the penalty


def test_free_bits_clamp_each_dimension_by_its_batch_mean_and_stop_its_gradient():
    kl = tf.Variable([[0.1, 2.0, 0.9], [0.3, 1.0, 0.0]])
    with tf.GradientTape() as tape:
        penalty = objectives.free_bits(kl, 0.5)
    # Batch means 0.2 (under kappa: counts 0.5 each), 1.5 (over: its own) and 0.45 (under).
    np.testing.assert_allclose(penalty, [0.5 + 2.0 + 0.5, 0.5 + 1.0 + 0.5], rtol=1e-6)
    np.testing.assert_array_equal(tape.gradient(penalty, kl), [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])


def test_the_kl_penalty_is_the_kl_itself_without_free_bits_and_pools_the_levels_with_them():
    q1 = distributions.diagonal_gaussian(tf.constant([[2.0, 0.0]]), tf.zeros([1, 2]))
    q2 = distributions.diagonal_gaussian(tf.constant([[0.0]]), tf.zeros([1, 1]))
    p1 = distributions.diagonal_gaussian(tf.zeros([1, 2]), tf.zeros([1, 2]))
    p2 = distributions.diagonal_gaussian(tf.zeros([1, 1]), tf.zeros([1, 1]))
    kl = tf.constant([2.0])
    assert objectives.kl_penalty(kl, [(q1, p1), (q2, p2)], 0.0) is kl
    # KL per dimension: 2 (mean 2, unit variance), 0 and 0; with kappa 0.5 the two empty dimensions count 0.5.
    np.testing.assert_allclose(objectives.kl_penalty(kl, [(q1, p1), (q2, p2)], 0.5), [3.0], rtol=1e-6)
    np.testing.assert_allclose(objectives.kl_per_dimension(q1, p1), [[2.0, 0.0]], atol=1e-6)


def test_the_iwae_bound_is_the_log_mean_of_the_weights():
    weights = tf.math.log(tf.constant([[1.0, 2.0], [3.0, 2.0]]))  # k = 2 draws of 2 examples
    np.testing.assert_allclose(objectives.iwae_bound(weights), [math.log(2.0), math.log(2.0)], rtol=1e-6)
    one = tf.constant([[-3.5, -7.25]])
    np.testing.assert_allclose(objectives.iwae_bound(one), [-3.5, -7.25])  # k = 1: the single-sample ELBO
    spread = tf.constant(np.random.default_rng(0).normal(size=(50, 4)), tf.float32)
    assert np.all(objectives.iwae_bound(spread).numpy() >= tf.reduce_mean(spread, axis=0).numpy())  # Jensen
    np.testing.assert_allclose(objectives.importance_log_weights(tf.constant([-5.0]), tf.constant([-1.0]), tf.constant([-2.0])), [-4.0])


def test_an_iwae_with_one_draw_trains_on_its_elbo():
    model = vae_zoo.create_model("iwae", k=1, data_shape=(8, 8, 1), latent_dim=3, encoder={"name": "mlp", "hidden_sizes": [16]})
    terms = model.loss_terms(example_batch(), seed=tf.constant([4, 2]))
    np.testing.assert_allclose(terms["iwae_bound"], terms["elbo"], rtol=1e-6)
    np.testing.assert_allclose(terms["loss"], -terms["elbo"], rtol=1e-6)


def test_a_vaes_loss_is_composed_from_the_functions():
    model = vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=3, encoder={"name": "mlp", "hidden_sizes": [16]},
                                 beta=2.0, free_bits=0.25)
    x, seed = example_batch(), tf.constant([1, 2])
    q, p = model.encode(x), model.prior()
    z = distributions.reparameterized_sample(q, seed=seed)
    kl = distributions.kl_divergence(q, p, z)
    expected = objectives.elbo_terms(model.data_log_prob(z, x), kl, 2.0, objectives.kl_penalty(kl, [(q, p)], 0.25))
    terms = model.loss_terms(x, seed=seed)
    for name in ("loss", "elbo", "reconstruction", "kl"):
        np.testing.assert_allclose(terms[name], expected[name], rtol=1e-6)


def test_sequence_models_derive_from_the_contract_not_from_the_image_vae():
    assert not issubclass(SentenceVAE, VAE) and not issubclass(LanguageModel, VAE)
    assert issubclass(SentenceVAE, LatentVariableModel) and issubclass(VAE, LatentVariableModel)
    assert not issubclass(LanguageModel, LatentVariableModel)


def test_a_language_model_has_no_encoder_and_its_weights_are_its_likelihood():
    model = vae_zoo.create_model("language_model", **SMALL_TEXT_KWARGS)
    assert not model.can("latent") and not model.can("gaussian_posterior")
    assert not hasattr(model, "encode") and not hasattr(model, "encoder") and not hasattr(model, "prior_layer")
    with pytest.raises(vae_zoo.VaeZooError, match="lacks the 'latent' capability"):
        model.transform(example_sentences())
    x = example_sentences(batch=4, seed=1)
    exact = model.log_likelihood(x).numpy()
    np.testing.assert_array_equal(model.log_weights(x, k=3).numpy(), np.stack([exact] * 3))
    terms = model.loss_terms(x)
    np.testing.assert_array_equal(terms["kl"], 0.0)
    np.testing.assert_array_equal(terms["elbo"], exact)
