import resource

import numpy as np
import pytest
import tensorflow as tf
from model_test_case import ModelTestCase, example_batch

import vae_zoo
from vae_zoo.models.hierarchical_vae import stage_sizes
from vae_zoo.models.objectives import importance_log_likelihood

SMALL = {"width": 8, "latent_channels": 2, "likelihood": "bernoulli"}


class TestHierarchicalVAE(ModelTestCase):
    model_name = "hierarchical_vae"
    model_kwargs = SMALL

    def test_reports_the_kl_of_every_group_and_they_sum_to_the_kl(self):
        model = self.make_model(groups_per_stage=2)
        # 8x8 halves once (min_resolution 4): two resolutions, two groups each, the top (4x4) first.
        assert [shape[:2] for shape in model.group_shapes] == [(4, 4), (4, 4), (8, 8), (8, 8)]
        assert model.latent_dim == 2 * (16 + 64) * 2
        terms = model.loss_terms(example_batch(), seed=tf.constant([1, 2]))
        kls = [terms[f"kl_{g}"].numpy() for g in range(1, 5)]
        np.testing.assert_allclose(np.sum(kls, axis=0), terms["kl"], rtol=1e-5)
        assert all(np.all(kl >= -1e-6) for kl in kls)
        np.testing.assert_allclose(model.kl_by_group(example_batch()).numpy().sum(-1),
                                   model.kl_by_dimension(example_batch()).numpy().sum(-1), rtol=1e-5)

    def test_importance_weights_and_loss_estimate_the_same_elbo(self):
        # loss_terms takes each group's KL in closed form, log_weights Monte Carlo over every group: both are
        # unbiased for the ELBO, so their means over many draws agree.
        model = self.make_model()
        x = np.repeat(example_batch(batch=2), 4000, axis=0)
        elbo = model.loss_terms(x, seed=tf.constant([5, 6]))["elbo"].numpy().reshape(2, -1)
        weights = model.log_weights(x, k=1, seed=tf.constant([7, 8])).numpy().reshape(2, -1)
        error = np.sqrt(elbo.var(1) / elbo.shape[1] + weights.var(1) / weights.shape[1])
        np.testing.assert_array_less(np.abs(elbo.mean(1) - weights.mean(1)), 4 * error + 1e-2)

    def test_the_importance_sampled_nll_is_never_above_the_negative_elbo(self):
        model = self.make_model()
        x = example_batch(batch=32)
        model.compile(optimizer="adam")
        model.fit(np.repeat(x, 8, axis=0), epochs=3, batch_size=32, verbose=0)  # a posterior that is not the prior
        elbo = model.elbo(x[:8], num_samples=200).numpy()
        nll = -importance_log_likelihood(model, x[:8], k=200, chunk=100, seed=tf.constant([1, 1])).numpy()
        assert np.all(nll <= -elbo + 0.05), (nll, -elbo)
        assert np.mean(-elbo - nll) > 0

    def test_decoding_the_posterior_means_is_the_reconstruction(self):
        model = self.make_model()
        x = example_batch()
        np.testing.assert_allclose(model.decoded_mean(model.transform(x)), model.reconstruction(x), atol=1e-5)

    def test_temperature_scales_the_prior_draws(self):
        model = self.make_model()
        cold = [model.sample(4, seed=tf.constant([s, 0]), temperature=0.0).numpy() for s in (1, 2)]
        warm = [model.sample(4, seed=tf.constant([s, 0]), temperature=1.0).numpy() for s in (1, 2)]
        np.testing.assert_allclose(cold[0], cold[1], atol=1e-6)  # the prior means: no randomness left
        assert not np.allclose(warm[0], warm[1])

    def test_fixing_every_group_gives_the_reconstruction_and_too_many_groups_are_refused(self):
        model = self.make_model()
        x = example_batch(batch=2)
        fixed = model.sample_from_top_groups(x, len(model.group_shapes), n=3, seed=tf.constant([1, 2]))
        np.testing.assert_allclose(fixed, np.tile(model.reconstruction(x), [3, 1, 1, 1]), atol=1e-5)
        with pytest.raises(ValueError, match="groups must be between 0 and"):
            model.sample_from_top_groups(x, len(model.group_shapes) + 1, n=2)

    def test_only_its_own_prior(self):
        with pytest.raises(vae_zoo.errors.ConfigError, match="prior must be 'normal'"):
            self.make_model(prior="vamp")


class TestHierarchicalVAEWithLogisticMixture(ModelTestCase):
    model_name = "hierarchical_vae"
    model_kwargs = {"width": 8, "latent_channels": 2, "data_shape": (8, 8, 3), "normalization": "group",
                    "squeeze_excitation": True, "likelihood": {"name": "logistic_mixture", "components": 2}}


@pytest.mark.parametrize("side, stages", [(28, [28, 14, 7]), (32, [32, 16, 8, 4]), (64, [64, 32, 16, 8, 4]),
                                          (256, [256, 128, 64, 32, 16, 8, 4])])
def test_the_number_of_stages_follows_the_input_size(side, stages):
    assert [h for h, _ in stage_sizes(side, side, 4)] == stages


def test_one_spec_builds_at_256x256x3_and_takes_a_training_step_at_batch_2():
    model = vae_zoo.create_model("hierarchical_vae", data_shape=(256, 256, 3), width=16, latent_channels=4,
                                 max_latent_resolution=32)
    assert len(model.sizes) == 7 and [s[0] for s in model.latent_sizes] == [32, 16, 8, 4]
    x = np.random.default_rng(0).integers(0, 256, (2, 256, 256, 3)).astype(np.float32) / 255
    model.compile(optimizer="adam", jit_compile=False)
    history = model.fit(x, epochs=1, batch_size=2, verbose=0).history
    assert np.isfinite(history["loss"][0])
    print(f"256x256x3: {model.count_params()} parameters, peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
