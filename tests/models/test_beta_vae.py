import numpy as np
from model_test_case import ModelTestCase, example_batch


class TestBetaVAE(ModelTestCase):
    model_name = "beta_vae"
    model_kwargs = {"encoder": {"name": "mlp", "hidden_sizes": [16]}}

    def test_default_beta_weights_the_kl_above_one(self):
        model = self.make_model()
        assert float(model.kl_weight) == 4.0 and model.get_config()["beta"] == 4.0
        terms = model.loss_terms(example_batch())
        np.testing.assert_allclose(terms["loss"], terms["reconstruction"] + 4.0 * terms["kl"], rtol=1e-5)


class TestConvBetaVAE(ModelTestCase):
    model_name = "beta_vae"
    model_kwargs = {"encoder": {"name": "conv", "filters": [8]}, "latent_dim": 3}
