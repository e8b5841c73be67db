"""The discretized logistic mixture (PixelCNN++) against known answers: probabilities that sum to 1 over the 256
levels, the edge bins, a fit to a known discrete distribution, samples that follow the probabilities."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from model_test_case import ModelTestCase

from vae_zoo.models.logistic_mixture import (DiscretizedLogisticMixture, bin_log_probability,
                                             parameter_count)

LEVELS = np.arange(256)


def random_params(rng, components, channels, positions=1, spread=2.0):
    return (rng.normal(size=(positions, parameter_count(components, channels))) * spread).astype(np.float32)


def grey_probabilities(params):
    """P(v) for v = 0..255 of one grey pixel's parameters."""
    mixture = DiscretizedLogisticMixture(np.repeat(params[None, None], 256, axis=0), channels=1)
    return np.exp(mixture.pixel_log_prob((LEVELS / 255.0).reshape(256, 1, 1).astype(np.float32)).numpy()[:, 0])


@pytest.mark.parametrize("spread", [0.5, 2.0, 8.0])
def test_the_256_grey_levels_sum_to_one(spread):
    rng = np.random.default_rng(int(spread * 10))
    for params in random_params(rng, 4, 1, positions=20, spread=spread):
        assert abs(grey_probabilities(params).sum() - 1.0) < 1e-4


def test_the_256_cubed_colours_of_an_rgb_pixel_sum_to_one():
    rng = np.random.default_rng(1)
    params = random_params(rng, 2, 3)[0]
    red, green, blue = np.meshgrid(LEVELS, LEVELS, LEVELS, indexing="ij")
    colours = (np.stack([red, green, blue], axis=-1).reshape(16, 16 * 256 * 256, 3) / 255.0).astype(np.float32)
    mixture = DiscretizedLogisticMixture(np.broadcast_to(params, (16 * 256 * 256, params.size)), channels=3)
    total = sum(np.exp(mixture.pixel_log_prob(chunk).numpy().astype(np.float64)).sum() for chunk in colours)
    assert abs(total - 1.0) < 1e-4


def logistic_cdf(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_the_edge_bins_reach_to_infinity_and_inner_bins_are_cdf_differences():
    mean, log_scale = 0.3, -2.5
    scale = np.exp(log_scale)
    for level in (0, 1, 128, 254, 255):
        x = 2.0 * level / 255.0 - 1.0
        upper = 1.0 if level == 255 else logistic_cdf((x + 1 / 255 - mean) / scale)
        lower = 0.0 if level == 0 else logistic_cdf((x - 1 / 255 - mean) / scale)
        expected = np.log(upper - lower)
        got = float(bin_log_probability(tf.constant(x, tf.float32), tf.constant(mean), tf.constant(log_scale)))
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_extreme_parameters_give_finite_log_probabilities_and_gradients():
    params = np.zeros((6, parameter_count(3, 3)), np.float32)
    params[:, 3:12] = [[-50], [50], [0], [1e3], [-1e3], [0.2]]  # means far outside [-1, 1] and at it
    params[:, 12:21] = [[-30], [20], [-7], [0], [15], [-20]]  # log-scales far below the bound and very wide
    params[:, 21:] = 30.0  # saturated channel coefficients
    x = tf.constant(np.array([[0, 0, 0], [255, 255, 255], [128, 3, 250], [0, 255, 7], [255, 0, 128], [77, 78, 79]],
                             np.float32)[:, None, None, :] / 255.0)
    variable = tf.Variable(params[:, None, None, :])
    with tf.GradientTape() as tape:
        log_p = DiscretizedLogisticMixture(variable, channels=3).log_prob(x)
    gradient = tape.gradient(log_p, variable)
    assert np.all(np.isfinite(log_p.numpy())) and np.all(log_p.numpy() <= 0)
    assert np.all(np.isfinite(gradient.numpy()))


def test_very_wide_logistics_keep_an_exact_finite_interior_bin():
    # Past a scale of about e^88 the bin's width in standardized units, 2 / (255 s), underflows in float32; the
    # interior bin's log-probability is still log(1/2) + log(1/2) + log(2 / 255) - log s, and its gradient finite.
    log_scales = np.array([20.0, 90.0, 200.0], np.float32)
    params = np.zeros((3, 1, 1, parameter_count(1, 1)), np.float32)
    params[..., 2] = log_scales[:, None, None]
    variable = tf.Variable(params)
    middle = tf.constant(np.full((3, 1, 1, 1), 128 / 255.0, np.float32))
    with tf.GradientTape() as tape:
        log_p = DiscretizedLogisticMixture(variable, channels=1).log_prob(middle)
    expected = 2 * np.log(0.5) + np.log(2 / 255) - log_scales.astype(np.float64)
    np.testing.assert_allclose(log_p.numpy(), expected, rtol=1e-6)
    assert np.all(np.isfinite(tape.gradient(log_p, variable).numpy()))


def test_float_draws_are_the_uint8_draws_over_255():
    params = np.broadcast_to(np.array([0.3, -0.2, -0.5, 0.4, -2.0, -2.8], np.float32), (50, 2, 2, 6))
    mixture = DiscretizedLogisticMixture(params, channels=1)
    levels = mixture.sample(seed=[7, 3]).numpy()
    floats = mixture.float_sample(seed=[7, 3]).numpy()
    assert floats.dtype == np.float32
    np.testing.assert_array_equal(floats, levels.astype(np.float32) / 255.0)


def test_fitting_a_known_discrete_distribution_reaches_its_entropy():
    rng = np.random.default_rng(3)
    truth = np.array([1.5, -0.5, -0.6, 0.5, -3.0, -2.5], np.float32)  # two components: logits, means, log-scales
    target = grey_probabilities(truth).astype(np.float64)
    entropy = -(target * np.log(target + 1e-300)).sum()
    levels = tf.constant((LEVELS / 255.0).reshape(256, 1, 1), tf.float32)
    start = rng.normal(size=6).astype(np.float32) * 0.1
    start[4:] = -1.0
    params = keras.Variable(start)
    optimizer = keras.optimizers.Adam(0.05)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            log_q = DiscretizedLogisticMixture(tf.repeat(params[None, None], 256, axis=0), channels=1).pixel_log_prob(levels)[:, 0]
            cross_entropy = -tf.reduce_sum(tf.constant(target, tf.float32) * log_q)
        optimizer.apply_gradients([(tape.gradient(cross_entropy, params), params)])
        return cross_entropy

    for _ in range(1500):
        cross_entropy = float(step())
    # Cross-entropy = entropy + KL: the fit drives the KL to (almost) nothing, far below a uniform's log 256.
    assert cross_entropy - entropy < 0.01, (cross_entropy, entropy)
    assert entropy < np.log(256) - 1.0


def test_samples_are_uint8_and_follow_the_probabilities():
    params = np.array([0.3, -0.2, -0.5, 0.4, -2.0, -2.8], np.float32)
    probabilities = grey_probabilities(params)
    mixture = DiscretizedLogisticMixture(np.broadcast_to(params, (20000, 1, 1, 6)), channels=1)
    draws = mixture.sample(seed=tf.constant([4, 2]))
    assert draws.dtype == tf.uint8 and tuple(draws.shape) == (20000, 1, 1, 1)
    histogram = np.bincount(draws.numpy().ravel(), minlength=256) / 20000
    assert 0.5 * np.abs(histogram - probabilities).sum() < 0.05


def test_rgb_samples_follow_the_channel_dependence():
    # One component, narrow logistics, green = red's value through a coefficient of tanh(20) ~ 1, mean 0 otherwise.
    params = np.zeros(parameter_count(1, 3), np.float32)
    params[1:4] = [0.5, 0.0, 0.0]
    params[4:7] = -6.0
    params[7] = 20.0  # a(green, red)
    draws = DiscretizedLogisticMixture(np.broadcast_to(params, (500, 1, 1, params.size)), channels=3).sample(seed=[1, 1])
    red, green = draws.numpy()[..., 0].astype(int), draws.numpy()[..., 1].astype(int)
    assert np.abs(green - red).max() <= 2 and abs(red.mean() - 191) < 3


def test_the_mean_is_the_expected_level_within_half_a_level():
    params = np.array([0.3, -0.2, -0.5, 0.4, -2.0, -2.8], np.float32)
    probabilities = grey_probabilities(params)
    expected = (probabilities * LEVELS).sum() / 255.0
    mean = DiscretizedLogisticMixture(params[None, None, None], channels=1).mean().numpy().item()
    assert abs(mean - expected) < 0.5 / 255


def test_a_wrong_number_of_parameters_is_named():
    with pytest.raises(ValueError, match="multiple of 10 parameters"):
        DiscretizedLogisticMixture(np.zeros((1, 2, 2, 15), np.float32), channels=3)


class TestVAEWithLogisticMixture(ModelTestCase):
    model_name = "vae"
    model_kwargs = {"data_shape": (8, 8, 3), "latent_dim": 3, "encoder": {"name": "conv", "filters": [8]},
                    "likelihood": {"name": "logistic_mixture", "components": 2}}


def test_the_fused_log_prob_equals_the_unfused_one_in_value_and_gradient():
    """log_prob runs as one XLA function (the speed of training without XLA); the export's unfused_log_prob is the
    same computation in TensorFlow's own ops. Extreme parameters included: the edge bins, the series branch."""
    rng = np.random.default_rng(3)
    params = rng.normal(size=(4, 5, 6, parameter_count(3, 3))).astype(np.float32) * 3.0
    params[0, 0, 0, 9:18] = [-30, 20, -7, 0, 15, -20, 40, -40, 1]  # log-scales far below the bound and very wide
    x = tf.constant(rng.integers(0, 256, size=(4, 5, 6, 3)).astype(np.float32) / 255.0)
    variable = tf.Variable(params)
    values, gradients = [], []
    for method in ("log_prob", "unfused_log_prob"):
        with tf.GradientTape() as tape:
            log_p = getattr(DiscretizedLogisticMixture(variable, channels=3), method)(x)
        values.append(log_p.numpy())
        gradients.append(tape.gradient(log_p, variable).numpy())
    assert values[0].shape == (4,) and np.all(np.isfinite(values[0]))
    np.testing.assert_allclose(values[0], values[1], rtol=1e-5)
    np.testing.assert_allclose(gradients[0], gradients[1], rtol=1e-4, atol=1e-5)
