import pytest
from model_test_case import ModelTestCase, example_batch

from vae_zoo.errors import CapabilityError


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
        # What it does not declare it does not have: asked anyway, it names the missing capability.
        with pytest.raises(CapabilityError, match=r"autoencoder has no elbo\(\): it lacks the 'elbo' capability"):
            model.elbo(example_batch())
        with pytest.raises(CapabilityError, match=r"autoencoder has no sample\(\): it lacks the 'sample' capability"):
            model.sample(2)
        assert not hasattr(model, "log_weights")  # a CapabilityError is an AttributeError

    def test_codes_are_deterministic(self):
        model = self.make_model()
        x = example_batch()
        assert (model.transform(x).numpy() == model.transform(x).numpy()).all()
