import keras
import numpy as np
import tensorflow as tf
from model_test_case import ModelTestCase, example_batch

import vae_zoo


class TestVQVAE(ModelTestCase):
    model_name = "vq_vae"
    model_kwargs = {"encoder": {"name": "conv", "filters": [8]}, "codebook_size": 8, "latent_dim": 4}

    def test_straight_through_gradients_reach_the_encoder(self):
        model = self.make_model()
        x = example_batch()
        with tf.GradientTape() as tape:
            reconstruction = tf.reduce_mean(model.loss_terms(x)["reconstruction"])
        gradients = tape.gradient(reconstruction, model.encoder.trainable_variables)
        assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients)

    def test_codes_are_codebook_vectors(self):
        model = self.make_model()
        x = example_batch()
        indices = model.encode_indices(x).numpy()
        z_q = model.encode(x).mean().numpy()
        np.testing.assert_allclose(z_q, model.codebook.numpy()[indices])


class TestMLPVQVAE(ModelTestCase):
    model_name = "vq_vae"
    model_kwargs = {"encoder": {"name": "mlp", "hidden_sizes": [16]}, "mlp_positions": 4, "codebook_size": 8, "latent_dim": 3}


class TestEMAVQVAE(ModelTestCase):
    model_name = "vq_vae"
    model_kwargs = {"encoder": {"name": "conv", "filters": [8]}, "codebook_size": 8, "latent_dim": 4, "ema": True}

    def test_ema_codebook_is_updated_without_gradients(self):
        model = self.make_model()
        assert not model.codebook.trainable
        before = model.codebook.numpy().copy()
        model.compile()
        model.fit(example_batch(batch=32), epochs=1, batch_size=32, verbose=0)
        assert not np.allclose(before, model.codebook.numpy())


def test_codebook_usage_after_a_short_fit():
    data = vae_zoo.data.load("digits", binarize="static", batch_size=64)
    keras.utils.set_random_seed(0)
    model = vae_zoo.create_model("vq_vae", data_shape=(8, 8, 1), encoder={"name": "conv", "filters": [32]}, codebook_size=32, latent_dim=8)
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    history = model.fit(data.train, validation_data=data.validation, epochs=10, verbose=0).history
    # At least 12 of the 32 codes in effective use (perplexity; about 18 measured with dead-code
    # restarts, under 10 without), and the learned prior is no longer uniform.
    assert history["val_perplexity"][-1] >= 12, history["val_perplexity"]
    assert float(tf.math.reduce_std(model.prior_layer.logits(model.encode_indices(data.take("test")[0][:32])))) > 0.01
    assert history["val_reconstruction"][-1] < history["val_reconstruction"][0]


def test_autoregressive_prior_conditions_each_position_only_on_earlier_ones():
    model = vae_zoo.create_model("vq_vae", data_shape=(8, 8, 1), encoder={"name": "conv", "filters": [8]}, codebook_size=5, latent_dim=3)
    prior = model.prior_layer
    for position in (0, 5, 15):
        codes = np.zeros((1, 4, 4), np.int32)
        before = prior.logits(codes).numpy()
        codes.reshape(-1)[position] = 3
        changed = np.flatnonzero(np.abs(prior.logits(codes).numpy() - before).sum(-1).reshape(-1) > 0)
        assert changed.size == 0 or changed.min() > position, (position, changed)
    samples = model.prior().sample(4, seed=tf.constant([1, 2]))
    assert samples.shape == (4, 4, 4) and samples.dtype == tf.int32
    np.testing.assert_allclose(model.prior().log_prob(samples), model.prior().log_prob(samples))


def test_categorical_prior_is_still_available():
    model = vae_zoo.create_model("vq_vae", data_shape=(8, 8, 1), encoder={"name": "conv", "filters": [8]}, codebook_size=5, latent_dim=3, prior="categorical")
    assert tuple(model.sample(2, seed=1).shape) == (2, 8, 8, 1)
