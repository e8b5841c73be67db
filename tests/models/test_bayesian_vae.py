import numpy as np
import pytest
from model_test_case import ModelTestCase, example_batch

import vae_zoo
from vae_zoo.networks.bayesian_mlp import BayesianDense


class TestBayesianVAE(ModelTestCase):
    model_name = "bayesian_vae"
    model_kwargs = {"encoder": {"name": "mlp", "hidden_sizes": [16]}, "decoder": {"name": "bayesian_mlp", "hidden_sizes": [16]},
                    "latent_dim": 2, "dataset_size": 100}

    def test_weight_kl_matches_the_gaussian_formula(self):
        model = self.make_model(decoder={"name": "bayesian_mlp", "hidden_sizes": [16], "prior_scale": 0.5})
        expected = 0.0
        for layer in model.decoder.layers:
            if isinstance(layer, BayesianDense):
                for loc, rho in ((layer.kernel_loc, layer.kernel_rho), (layer.bias_loc, layer.bias_rho)):
                    m, s = loc.numpy().astype(np.float64), np.log1p(np.exp(rho.numpy().astype(np.float64)))
                    expected += np.sum(np.log(0.5 / s) + (s**2 + m**2) / (2 * 0.5**2) - 0.5)
        np.testing.assert_allclose(float(model.weight_kl()), expected, rtol=1e-4)

    def test_loss_adds_the_weight_kl_spread_over_the_data(self):
        model = self.make_model()
        terms = model.loss_terms(example_batch(), training=True)
        np.testing.assert_allclose(
            terms["loss"], terms["reconstruction"] + terms["kl"] + terms["weight_kl"] / 100, rtol=1e-5
        )

    def test_weights_are_sampled_in_training_and_averaged_at_inference(self):
        model = self.make_model()
        z = np.zeros((1, 2), np.float32)
        np.testing.assert_array_equal(model.decode(z).mean(), model.decode(z).mean())
        assert not np.allclose(model.decode_with_weight_samples(z).mean(), model.decode_with_weight_samples(z).mean())


def test_bayesian_decoder_needs_the_bayesian_mlp_body():
    with pytest.raises(ValueError, match="needs a 'bayesian_mlp' decoder"):
        vae_zoo.create_model("bayesian_vae", decoder={"name": "mlp"})
