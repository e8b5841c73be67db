import numpy as np
from model_test_case import ModelTestCase, example_batch


class TestAAE(ModelTestCase):
    model_name = "aae"
    model_kwargs = {"encoder": {"name": "mlp", "hidden_sizes": [16]}, "latent_dim": 2, "discriminator_sizes": [8]}

    def test_two_optimizers_each_update_their_own_networks(self):
        model = self.make_model()
        model.compile()
        assert model.discriminator_optimizer is not model.optimizer
        discriminator_before = [w.numpy().copy() for w in model.discriminator.weights]
        model.fit(example_batch(), epochs=1, batch_size=6, verbose=0)
        assert int(model.optimizer.iterations) == 1 and int(model.discriminator_optimizer.iterations) == 1
        assert all(not np.allclose(a, b.numpy()) for a, b in zip(discriminator_before, model.discriminator.weights))
        autoencoder_ids = {id(v) for v in model.autoencoder_variables()}
        assert not autoencoder_ids & {id(v) for v in model.discriminator.trainable_variables}


class TestConvAAE(ModelTestCase):
    model_name = "aae"
    model_kwargs = {"encoder": {"name": "conv", "filters": [8]}, "latent_dim": 2}
