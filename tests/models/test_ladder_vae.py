import numpy as np
import pytest
import tensorflow as tf
from model_test_case import ModelTestCase, example_batch


def assert_loss_and_importance_weights_agree(model):
    """The training loss's ELBO and one-draw importance weights estimate the same ELBO: their means agree."""
    x = np.repeat(example_batch(batch=2), 10_000, axis=0)
    elbo = model.loss_terms(x)["elbo"].numpy().reshape(2, -1)
    weights = model.log_weights(x, k=1).numpy().reshape(2, -1)
    error = np.sqrt(elbo.var(1) / elbo.shape[1] + weights.var(1) / weights.shape[1])
    np.testing.assert_array_less(np.abs(elbo.mean(1) - weights.mean(1)), 4 * error + 1e-2)


class TestLadderVAE(ModelTestCase):
    model_name = "ladder_vae"
    model_kwargs = {"latent_dim": 4, "upper_latent_dims": [3, 2], "encoder": {"name": "mlp", "hidden_sizes": [16]}, "ladder_hidden": [8]}

    def test_reports_the_kl_of_every_layer_and_they_sum_to_the_kl(self):
        model = self.make_model()
        assert model.metric_names[-3:] == ("kl_1", "kl_2", "kl_3")
        terms = model.loss_terms(example_batch())
        np.testing.assert_allclose(terms["kl_1"] + terms["kl_2"] + terms["kl_3"], terms["kl"], rtol=1e-5)
        assert all(np.all(terms[f"kl_{i}"].numpy() >= -1e-5) for i in (1, 2, 3))

    def test_importance_weights_and_loss_estimate_the_same_elbo(self):
        # loss_terms uses the closed-form KL per layer, log_weights Monte Carlo over the whole
        # hierarchy: both are unbiased for the ELBO, so their means must agree.
        assert_loss_and_importance_weights_agree(self.make_model())


class TestConvLadderVAE(ModelTestCase):
    model_name = "ladder_vae"
    model_kwargs = {"encoder": {"name": "conv", "filters": [8]}, "latent_dim": 3, "upper_latent_dims": [2]}


class TestLadderVAEWithVampPrior(ModelTestCase):
    """The two-level VampPrior model (Tomczak and Welling, 2018): the prior on the top latent is a mixture of its
    posteriors at learned pseudo-inputs."""

    model_name = "ladder_vae"
    model_kwargs = {"latent_dim": 4, "upper_latent_dims": [3], "encoder": {"name": "mlp", "hidden_sizes": [16]},
                    "ladder_hidden": [8], "prior": {"name": "vamp", "components": 5}}

    def test_the_prior_components_are_the_top_posterior_at_the_pseudo_inputs(self):
        model = self.make_model()
        model.loss_terms(example_batch())  # builds the networks
        pseudo_inputs = tf.sigmoid(model.prior_layer.pseudo_inputs)
        top = model.top_posterior(pseudo_inputs)
        components = model.prior().components_distribution
        assert top.event_shape == [3] and components.batch_shape == [5]
        np.testing.assert_allclose(components.mean(), top.mean(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(components.stddev(), top.stddev(), rtol=1e-5, atol=1e-6)
        # The top posterior is what inference uses for the top level: the same bottom-up estimate.
        x = example_batch()
        np.testing.assert_allclose(model.infer(x, use_means=True)[-1][0].mean(), model.top_posterior(x).mean(), rtol=1e-5)

    def test_importance_weights_and_loss_estimate_the_same_elbo(self):
        # With a VampPrior the top level's KL is a one-sample estimate too: both are unbiased for the ELBO.
        assert_loss_and_importance_weights_agree(self.make_model())

    def test_the_gradient_reaches_the_pseudo_inputs(self):
        model = self.make_model()
        x = example_batch()
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model.loss_terms(x)["loss"])
        gradient = tape.gradient(loss, model.prior_layer.pseudo_inputs)
        assert gradient is not None and float(tf.reduce_max(tf.abs(gradient))) > 0

    def test_free_bits_are_refused_with_a_prior_that_does_not_factorize(self):
        with pytest.raises(ValueError, match="free_bits needs a prior that factorizes"):
            self.make_model(free_bits=0.5)
        assert self.make_model().kl_by_dimension(example_batch()) is None
