"""The Exemplar prior (Norouzi et al., NeurIPS 2020): its density against a direct computation, the retrieval
objective against the exact leave-one-out mixture, and training through the runner."""

import numpy as np
import pytest
import tensorflow as tf
from model_test_case import ModelTestCase, example_batch
from scipy.special import logsumexp

import vae_zoo
from vae_zoo.data.base import from_splits
from vae_zoo.errors import InputError, RecipeError
from vae_zoo.models.exemplar_prior import exemplar_bank
from vae_zoo.training import runner

EXEMPLARS = 12


def direct_log_density(z, means, scale):
    """log (1/N) sum_n N(z; means_n, scale^2 I), term by term in float64."""
    z, means = np.asarray(z, np.float64), np.asarray(means, np.float64)
    dims = means.shape[1]
    squared = ((z[:, None, :] - means[None]) ** 2).sum(-1) / scale**2
    log_normal = -0.5 * squared - dims * np.log(scale) - 0.5 * dims * np.log(2 * np.pi)
    return logsumexp(log_normal, axis=1) - np.log(len(means))


def attached_model(neighbours=0, model="vae", **extra):
    kwargs = {"latent_dim": 3, "encoder": {"name": "mlp", "hidden_sizes": [16]}, "data_shape": (8, 8, 1),
              "prior": {"name": "exemplar", "exemplars": EXEMPLARS, "neighbours": neighbours, "scale": 0.7}, **extra}
    built = vae_zoo.create_model(model, **kwargs)
    images = example_batch(batch=EXEMPLARS, seed=3)
    # Exemplar slot s is the training example with index 2s (every other training example is an exemplar).
    built.prior_layer.attach(images, np.arange(EXEMPLARS) * 2)
    built.prior_layer.refresh(built)
    return built, images


class TestVAEWithExemplarPrior(ModelTestCase):
    model_name = "vae"
    model_kwargs = {"latent_dim": 3, "encoder": {"name": "mlp", "hidden_sizes": [16]},
                    "prior": {"name": "exemplar", "exemplars": EXEMPLARS, "neighbours": 4}}


class TestLadderVAEWithExemplarPrior(ModelTestCase):
    model_name = "ladder_vae"
    model_kwargs = {"latent_dim": 4, "upper_latent_dims": [3], "encoder": {"name": "mlp", "hidden_sizes": [16]},
                    "ladder_hidden": [8], "prior": {"name": "exemplar", "exemplars": EXEMPLARS, "neighbours": 4}}

    def test_the_exemplars_are_the_top_latent_posterior_means(self):
        model, images = attached_model(model="ladder_vae", upper_latent_dims=[2], ladder_hidden=[8])
        assert model.prior_layer.means.shape == (EXEMPLARS, 2)
        np.testing.assert_allclose(model.prior_layer.means, model.top_posterior(images).mean(), rtol=1e-5, atol=1e-6)
        terms = model.loss_terms(example_batch(), tf.constant([0, 2, 1, -1, 4, 22]), training=True)
        assert np.all(np.isfinite(terms["loss"].numpy()))


def test_the_exact_prior_density_is_the_uniform_mixture_over_the_cached_means():
    model, _ = attached_model()
    z = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    expected = direct_log_density(z, model.prior_layer.means.numpy(), 0.7)
    np.testing.assert_allclose(model.prior().log_prob(z), expected, rtol=1e-5)


def test_retrieving_every_exemplar_is_the_exact_leave_one_out_mixture():
    model, images = attached_model(neighbours=0)
    means = model.top_posterior(images).mean().numpy()
    z = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    # Training indices 4 and 6 are exemplars 2 and 3; index 5 is no exemplar; -1 is an unknown example.
    indices = np.array([4, 5, 6, -1])
    retrieved = model.prior_layer.retrieval_distribution(model, tf.constant(z), tf.constant(indices)).log_prob(z)
    expected = [direct_log_density(z[:1], np.delete(means, 2, 0), 0.7)[0],
                direct_log_density(z[1:2], means, 0.7)[0],
                direct_log_density(z[2:3], np.delete(means, 3, 0), 0.7)[0],
                direct_log_density(z[3:], means, 0.7)[0]]
    np.testing.assert_allclose(retrieved, expected, rtol=1e-5)


def test_k_neighbours_are_the_nearest_cached_means_never_the_example_itself():
    model, images = attached_model(neighbours=3)
    means = model.prior_layer.means.numpy()
    query = means[[5]] + 1e-3  # the exemplar in slot 5 (training index 10) asks: it is its own nearest mean
    z = np.random.default_rng(2).normal(size=(1, 3)).astype(np.float32)
    distance = ((means - query) ** 2).sum(-1)
    distance[5] = np.inf
    nearest = np.argsort(distance)[:3]
    retrieved = model.prior_layer.retrieval_distribution(model, tf.constant(query), tf.constant([10])).log_prob(z)
    # The three nearest, normalised by the N - 1 exemplars of the leave-one-out mixture.
    expected = direct_log_density(z, means[nearest], 0.7) + np.log(3) - np.log(EXEMPLARS - 1)
    np.testing.assert_allclose(retrieved, expected, rtol=1e-5)


def test_the_training_prior_passes_its_gradient_to_the_encoder_through_the_exemplars():
    model, _ = attached_model(neighbours=4)
    z = tf.constant(np.random.default_rng(3).normal(size=(2, 3)), tf.float32)
    with tf.GradientTape() as tape:
        log_p = tf.reduce_sum(model.prior_layer.retrieval_distribution(model, z, tf.constant([0, 2])).log_prob(z))
    encoder_kernel = model.encoder.trainable_variables[0]
    gradients = tape.gradient(log_p, [encoder_kernel, model.prior_layer.log_scale])
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients)


def test_the_loss_uses_the_retrieval_prior_only_in_training_with_a_bank():
    model, _ = attached_model(neighbours=4)
    x, indices = example_batch(), tf.constant([0, 2, 4, 6, 8, 10])
    exact = model.prior_for(model.encode(x), indices, training=False)
    retrieved = model.prior_for(model.encode(x), indices, training=True)
    assert exact is not retrieved and type(retrieved).__name__ == "RetrievedExemplars"
    model.prior_layer.detach()
    assert model.prior_for(model.encode(x), indices, training=True).log_prob(np.zeros((1, 3), np.float32)).shape == (1,)


def test_a_wrong_number_of_exemplars_is_refused():
    model, images = attached_model()
    with pytest.raises(InputError, match="built for 12 exemplars"):
        model.prior_layer.attach(images[:5], np.arange(5))
    with pytest.raises(ValueError, match="neighbours must be in"):
        vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=2, prior={"name": "exemplar", "exemplars": 4, "neighbours": 4})


def small_data(indices=True):
    rng = np.random.default_rng(0)
    images = (rng.random((90, 8, 8, 1)) * 255).astype(np.uint8)
    splits = {split: (images[30 * i:30 * (i + 1)], np.zeros(30, int)) for i, split in enumerate(("train", "validation", "test"))}
    return from_splits(splits, binarize="dynamic", batch_size=10, indices=indices)


def test_the_indices_option_yields_training_indices_and_minus_one_elsewhere():
    data = small_data()
    seen = np.concatenate([y.numpy() for _, y in data.train])
    assert sorted(seen) == list(range(30))
    assert set(np.concatenate([y.numpy() for _, y in data.validation])) == {-1}


def test_the_bank_is_the_training_split_binarized_once():
    images, indices = exemplar_bank(small_data(), 20, seed=0)
    assert images.shape == (20, 8, 8, 1) and set(np.unique(images)) <= {0.0, 1.0}
    assert len(set(indices)) == 20 and indices.max() < 30
    with pytest.raises(InputError, match="training split has 30"):
        exemplar_bank(small_data(), 31)


def test_the_runner_trains_an_exemplar_prior_and_refreshes_its_cache():
    model = vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=2, encoder={"name": "mlp", "hidden_sizes": [8]},
                           prior={"name": "exemplar", "exemplars": 30, "neighbours": 5})
    model.compile(optimizer="adam")
    recipe = {"model": {"name": "vae"}, "data": {"name": "noise"}, "training": {"epochs": 2, "seed": 0}}
    logs = runner.fit(model, small_data(), recipe, verbose=0)
    assert len(logs) == 2 and np.isfinite(logs[-1]["val_elbo"])
    assert float(tf.reduce_max(tf.abs(model.prior_layer.means))) > 0  # the cache holds real means
    assert model.prior_layer.bank is None  # the bank is let go when training ends
    with pytest.raises(RecipeError, match="indices: true"):
        runner.fit(model, small_data(indices=False), recipe, verbose=0)


def test_the_short_sum_of_evaluation_is_never_above_the_exact_density_and_is_it_with_every_exemplar(monkeypatch):
    model, _ = attached_model()
    # Two far-apart clusters of exemplars: an example's draws near one get almost nothing from the other.
    means = np.random.default_rng(4).normal(scale=0.3, size=(EXEMPLARS, 3)) + np.repeat([[8, 0, 0], [-8, 0, 0]], 6, 0)
    model.prior_layer.means.assign(means.astype(np.float32))
    q = vae_zoo.models.distributions.diagonal_gaussian(tf.constant([[8.0, 0, 0]]), tf.fill([1, 3], -2.0))
    z = q.sample(50, seed=5)  # (50, 1, 3)
    exact = direct_log_density(z.numpy().reshape(-1, 3), means, 0.7).reshape(50, 1)
    monkeypatch.setattr(model.prior_layer, "candidates", 6)
    near = model.prior_layer.log_prob_near(z, q).numpy()
    assert np.all(near <= exact + 1e-5) and np.max(exact - near) < 1e-6
    monkeypatch.setattr(model.prior_layer, "candidates", 2)
    assert np.all(model.prior_layer.log_prob_near(z, q).numpy() < exact - 1e-3)  # too few: below, never above
    monkeypatch.setattr(model.prior_layer, "candidates", 0)
    np.testing.assert_allclose(model.prior_layer.log_prob_near(z, q), exact, rtol=1e-5)


@pytest.mark.parametrize("model_name, extra", [("vae", {}), ("ladder_vae", {"upper_latent_dims": [3], "ladder_hidden": [8]})])
def test_the_importance_weights_take_the_exemplar_prior_at_its_exact_density(model_name, extra):
    """log p(z) in the importance weights is the mixture's at the same draws (the top level's, in a ladder): with
    fewer exemplars than candidates, exactly."""
    model, _ = attached_model(model=model_name, **extra)
    model.prior_layer.detach()
    x = example_batch()
    q = model.top_posterior(x)
    z = q.sample(7, seed=2)  # (7, batch, 3)
    np.testing.assert_allclose(model.prior_log_prob(z, q), model.prior().log_prob(z), atol=2e-3)
    nll = -vae_zoo.evaluation.metrics.log_likelihood(model, x, k=64)
    assert np.all(np.isfinite(nll)) and np.all(nll > 0)
