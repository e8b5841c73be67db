import numpy as np
from model_test_case import ModelTestCase, example_batch


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
        model = self.make_model()
        x = np.repeat(example_batch(batch=2), 10_000, axis=0)
        elbo = model.loss_terms(x)["elbo"].numpy().reshape(2, -1)
        weights = model.log_weights(x, k=1).numpy().reshape(2, -1)
        error = np.sqrt(elbo.var(1) / elbo.shape[1] + weights.var(1) / weights.shape[1])
        np.testing.assert_array_less(np.abs(elbo.mean(1) - weights.mean(1)), 4 * error + 1e-2)


class TestConvLadderVAE(ModelTestCase):
    model_name = "ladder_vae"
    model_kwargs = {"encoder": {"name": "conv", "filters": [8]}, "latent_dim": 3, "upper_latent_dims": [2]}
