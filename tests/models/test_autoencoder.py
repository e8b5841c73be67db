import pytest
from model_test_case import ModelTestCase, example_batch


class TestAutoencoder(ModelTestCase):
    model_name = "autoencoder"
    model_kwargs = {"encoder": {"name": "mlp", "hidden_sizes": [16]}, "latent_dim": 2}

    def test_it_has_no_elbo_and_cannot_generate(self):
        model = self.make_model()
        assert model.metric_names == ("loss", "reconstruction")
        assert not model.can("elbo") and not model.can("sample")
        assert "VAE" not in [klass.__name__ for klass in type(model).__mro__], "the autoencoder is not a Gaussian VAE"
        terms = model.loss_terms(example_batch())
        assert set(terms) == {"loss", "reconstruction"}
        with pytest.raises(NotImplementedError, match="no ELBO"):
            model.elbo(example_batch())
        with pytest.raises(NotImplementedError, match="cannot generate"):
            model.sample(2)

    def test_codes_are_deterministic(self):
        model = self.make_model()
        x = example_batch()
        assert (model.transform(x).numpy() == model.transform(x).numpy()).all()
