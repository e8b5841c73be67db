import numpy as np
import pytest
from model_test_case import ModelTestCase, example_batch


class TestVAE(ModelTestCase):
    model_name = "vae"
    model_kwargs = {"latent_dim": 3, "encoder": {"name": "mlp", "hidden_sizes": [32]}}

    def test_seed_architecture_is_the_default(self):
        import vae_zoo

        model = vae_zoo.create_model("vae")
        dense = [layer.units for layer in model.encoder.layers if hasattr(layer, "units")]
        assert dense == [400, 400, 40]  # 784-400-400 then mean and log-variance of 20 latents
        assert [layer.units for layer in model.decoder.layers if hasattr(layer, "units")] == [400, 400, 784]

    def test_beta_is_a_variable_that_weights_the_kl(self):
        model = self.make_model(beta=1.0)
        x = example_batch()
        terms = model.loss_terms(x)
        np.testing.assert_allclose(terms["loss"], terms["reconstruction"] + terms["kl"], rtol=1e-5)
        model.kl_weight.assign(4.0)
        terms = model.loss_terms(x)
        np.testing.assert_allclose(terms["loss"], terms["reconstruction"] + 4.0 * terms["kl"], rtol=1e-5)
        np.testing.assert_allclose(terms["elbo"], -(terms["reconstruction"] + terms["kl"]), rtol=1e-5)


class TestConvVAE(ModelTestCase):
    model_name = "vae"
    model_kwargs = {"encoder": {"name": "conv", "filters": [8, 16]}, "latent_dim": 2}


class TestGaussianVAEWithBatchNorm(ModelTestCase):
    model_name = "vae"
    model_kwargs = {"likelihood": "gaussian", "encoder": {"name": "mlp", "hidden_sizes": [16, 16], "batch_norm": True}, "latent_dim": 2}


class TestFixedGaussianMixturePriorVAE(ModelTestCase):
    model_name = "vae"
    model_kwargs = {
        "likelihood": {"name": "gaussian_fixed", "scale": 0.2},
        "prior": {"name": "mixture", "components": 3},
        "encoder": {"name": "mlp", "hidden_sizes": [16]},
        "latent_dim": 2,
    }

    def test_mixture_prior_is_learned(self):
        model = self.make_model()
        names = [v.name for v in model.trainable_variables]
        assert {"means", "log_scales", "logits"} <= set(names)


def test_conv_network_rejects_sizes_it_cannot_halve():
    import vae_zoo

    with pytest.raises(ValueError, match="divisible by 4"):
        vae_zoo.create_model("vae", data_shape=(10, 10, 1), encoder={"name": "conv", "filters": [8, 8]})
