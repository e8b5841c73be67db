import math

import numpy as np
import tensorflow as tf
from model_test_case import ModelTestCase, example_batch

import vae_zoo


class TestIWAE(ModelTestCase):
    model_name = "iwae"
    model_kwargs = {"k": 3, "encoder": {"name": "mlp", "hidden_sizes": [16]}, "latent_dim": 2}


class TestConvIWAE(ModelTestCase):
    model_name = "iwae"
    model_kwargs = {"k": 2, "encoder": {"name": "conv", "filters": [8]}, "latent_dim": 2}


def twins(**kwargs):
    """A VAE and an IWAE(k=1) with the same weights."""
    common = dict(data_shape=(8, 8, 1), latent_dim=3, encoder={"name": "mlp", "hidden_sizes": [16]}, **kwargs)
    vae = vae_zoo.create_model("vae", **common)
    iwae = vae_zoo.create_model("iwae", k=1, **common)
    iwae.set_weights(vae.get_weights())
    return vae, iwae


def test_k1_bound_equals_the_vae_elbo_for_the_same_draw():
    # With a mixture prior the VAE's KL has no closed form, so both estimate the ELBO
    # from the same z: they must agree to float precision.
    vae, iwae = twins(prior={"name": "mixture", "components": 3})
    x = example_batch(batch=16)
    seed = tf.constant([4, 2])
    np.testing.assert_allclose(
        iwae.loss_terms(x, seed=seed)["iwae_bound"], vae.loss_terms(x, seed=seed)["elbo"], rtol=1e-5, atol=1e-4
    )


def test_k1_bound_equals_the_vae_elbo_in_expectation_with_a_closed_form_kl():
    vae, iwae = twins()
    x = np.repeat(example_batch(batch=2), 20_000, axis=0)
    bound = iwae.loss_terms(x)["iwae_bound"].numpy().reshape(2, -1)
    elbo = vae.loss_terms(x)["elbo"].numpy().reshape(2, -1)
    error = np.sqrt(bound.var(1) / bound.shape[1] + elbo.var(1) / elbo.shape[1])
    np.testing.assert_array_less(np.abs(bound.mean(1) - elbo.mean(1)), 4 * error + 1e-3)


def test_bound_does_not_decrease_as_k_grows():
    model = vae_zoo.create_model("iwae", data_shape=(8, 8, 1), latent_dim=3, encoder={"name": "mlp", "hidden_sizes": [16]})
    x = np.repeat(example_batch(batch=20), 50, axis=0)
    bounds = []
    for k in (1, 5, 50):
        log_weights = model.log_weights(x, k=k)
        bounds.append(float(tf.reduce_mean(tf.reduce_logsumexp(log_weights, axis=0) - math.log(k))))
    assert bounds[0] < bounds[1] < bounds[2], bounds
