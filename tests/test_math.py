"""The mathematics checked against cases with known answers."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import vae_zoo
from vae_zoo.models import distributions
from vae_zoo.models.latent import LatentVariableModel

tfd = tfp.distributions


def seed_kl(mean, log_variance):
    """The seed's closed form: KL(N(mu, sigma^2) || N(0, I)) = 1/2 sum(mu^2 + sigma^2 - log sigma^2 - 1)."""
    return 0.5 * np.sum(mean**2 + np.exp(log_variance) - log_variance - 1.0, axis=-1)


def test_analytic_kl_matches_the_seed_formula_and_monte_carlo(rng):
    mean = rng.normal(size=(4, 5)).astype(np.float32)
    log_variance = rng.normal(scale=0.5, size=(4, 5)).astype(np.float32)
    q = distributions.diagonal_gaussian(mean, log_variance)
    p = distributions.make_prior("normal", 5).distribution()
    analytic = distributions.kl_divergence(q, p, q.sample()).numpy()
    np.testing.assert_allclose(analytic, seed_kl(mean, log_variance), rtol=1e-5)

    samples = q.sample(200_000, seed=1)
    log_ratio = (q.log_prob(samples) - p.log_prob(samples)).numpy()
    estimate, error = log_ratio.mean(0), log_ratio.std(0) / np.sqrt(len(log_ratio))
    assert np.all(np.abs(estimate - analytic) < 4 * error + 1e-3), (estimate, analytic, error)


def test_monte_carlo_kl_is_used_without_a_closed_form_and_is_unbiased(rng):
    mean = rng.normal(size=(3, 4)).astype(np.float32)
    log_variance = rng.normal(scale=0.5, size=(3, 4)).astype(np.float32)
    q = distributions.diagonal_gaussian(mean, log_variance)
    # A one-component mixture with zero means and unit scales is N(0, I), but TFP has no closed form for it.
    prior = distributions.make_prior({"name": "mixture", "components": 1}, 4)
    prior.means.assign(tf.zeros_like(prior.means))
    mixture = prior.distribution()
    with pytest.raises(NotImplementedError):
        tfd.kl_divergence(q, mixture)
    z = q.sample(100_000, seed=2)
    estimates = distributions.kl_divergence(q, mixture, z).numpy()
    error = estimates.std(0) / np.sqrt(len(estimates))
    assert np.all(np.abs(estimates.mean(0) - seed_kl(mean, log_variance)) < 4 * error + 1e-3)


def exact_mixture_log_density(points, logits, loc, scale):
    """log sum_k w_k N(x; loc_k, scale_k^2) in float64 from the definition, for a (N, D) array of points."""
    log_weights = logits - np.logaddexp.reduce(logits)
    z = (points[:, None, :] - loc[None]) / scale[None]
    log_components = -0.5 * np.sum(z**2, -1) - np.sum(np.log(scale), -1) - 0.5 * loc.shape[-1] * np.log(2 * np.pi)
    return np.logaddexp.reduce(log_weights + log_components, axis=-1)


def test_the_mixture_prior_density_by_matrix_products_matches_the_definition_and_tfp(rng):
    # Sharp components (scales down to e^-3, as a VampPrior's posteriors with log-variances clamped at -6) far
    # from the origin, so the expanded squares are large and their difference has to hold.
    components, dims = 30, 8
    logits = rng.normal(size=components)
    loc = rng.normal(loc=3.0, size=(components, dims))
    scale = np.exp(rng.uniform(-3.0, 0.5, size=(components, dims)))
    points = np.concatenate([loc[:5] + 0.1 * scale[:5], rng.normal(loc=3.0, size=(15, dims))])
    mixture = distributions.diagonal_gaussian_mixture(*(tf.constant(a, tf.float32) for a in (logits, loc, scale)))
    reference = tfd.MixtureSameFamily(mixture.mixture_distribution, mixture.components_distribution)

    batched = tf.constant(points.reshape(4, 5, dims), tf.float32)
    fast = mixture.log_prob(batched).numpy()
    assert fast.shape == (4, 5)
    np.testing.assert_allclose(fast.ravel(), exact_mixture_log_density(points, logits, loc, scale), rtol=1e-5, atol=2e-3)
    np.testing.assert_allclose(fast, reference.log_prob(batched).numpy(), rtol=1e-5, atol=2e-3)

    # Gradients reach the points and every parameter as TFP's do.
    variables = [tf.Variable(a, dtype=tf.float32) for a in (points, logits, loc, scale)]
    gradients = []
    for make in (distributions.diagonal_gaussian_mixture,
                 lambda *a: tfd.MixtureSameFamily(tfd.Categorical(logits=a[0]), tfd.Independent(tfd.Normal(a[1], a[2]), 1))):
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(make(*variables[1:]).log_prob(variables[0]))
        gradients.append(tape.gradient(total, variables))
    for fast_gradient, reference_gradient in zip(*gradients):
        scale_of = np.abs(reference_gradient.numpy()).max()
        np.testing.assert_allclose(fast_gradient.numpy(), reference_gradient.numpy(), atol=1e-4 * scale_of)


def test_reparameterized_samples_carry_gradients_to_mean_and_variance():
    mean = tf.Variable([[0.5, -1.0]])
    log_variance = tf.Variable([[0.2, -0.4]])
    with tf.GradientTape(persistent=True) as tape:
        q = distributions.diagonal_gaussian(mean, log_variance)
        z = distributions.reparameterized_sample(q, seed=3)
        total = tf.reduce_sum(z)
    np.testing.assert_allclose(tape.gradient(total, mean), [[1.0, 1.0]])
    # z = mean + exp(log_variance / 2) * eps, so dz/dlog_variance = (z - mean) / 2.
    np.testing.assert_allclose(tape.gradient(total, log_variance), (z - mean) / 2, rtol=1e-5)


def test_reparameterized_samples_follow_the_posterior(rng):
    mean = rng.normal(size=(3, 4)).astype(np.float32)
    log_variance = rng.normal(scale=0.5, size=(3, 4)).astype(np.float32)
    q = distributions.diagonal_gaussian(mean, log_variance)
    z = distributions.reparameterized_sample(q, [50_000]).numpy()
    assert z.shape == (50_000, 3, 4)
    np.testing.assert_allclose(z.mean(0), mean, atol=4 * np.exp(0.5 * log_variance).max() / np.sqrt(50_000))
    np.testing.assert_allclose(z.std(0), np.exp(0.5 * log_variance), rtol=0.02)
    # A stateless seed makes the draw reproducible; none makes it fresh.
    seeded = [distributions.reparameterized_sample(q, seed=tf.constant([1, 2])).numpy() for _ in range(2)]
    np.testing.assert_array_equal(*seeded)
    assert not np.array_equal(distributions.reparameterized_sample(q).numpy(), distributions.reparameterized_sample(q).numpy())


def test_fused_bernoulli_log_prob_equals_tfps(rng):
    logits = rng.normal(scale=3, size=(4, 5, 5, 1)).astype(np.float32)
    for x in ((rng.random((4, 5, 5, 1)) < 0.5).astype(np.float32), rng.random((4, 5, 5, 1)).astype(np.float32)):
        fused = distributions.FusedBernoulli(logits=logits, dtype=tf.float32).log_prob(x)
        reference = tfd.Bernoulli(logits=logits, dtype=tf.float32).log_prob(x)
        np.testing.assert_allclose(fused, reference, rtol=1e-5, atol=1e-5)


def test_bernoulli_and_gaussian_likelihoods_match_their_formulas(rng):
    logits = rng.normal(size=(2, 3, 3, 1)).astype(np.float32)
    x = (rng.random((2, 3, 3, 1)) < 0.5).astype(np.float32)
    p = 1 / (1 + np.exp(-logits))
    expected = np.sum(x * np.log(p) + (1 - x) * np.log(1 - p), axis=(1, 2, 3))
    bernoulli = distributions.make_likelihood("bernoulli", 3)(tf.constant(logits))
    np.testing.assert_allclose(bernoulli.log_prob(x), expected, rtol=1e-5)

    params = rng.normal(size=(2, 3, 3, 2)).astype(np.float32)
    mean, log_variance = params[..., :1], params[..., 1:]
    gaussian = distributions.make_likelihood({"name": "gaussian", "min_log_variance": -50.0}, 3)(tf.constant(params))
    y = rng.normal(size=(2, 3, 3, 1)).astype(np.float32)
    # With the floor far away, softplus(raw - floor) + floor equals raw to float precision.
    variance = np.exp(log_variance)
    expected = np.sum(-0.5 * (np.log(2 * np.pi * variance) + (y - mean) ** 2 / variance), axis=(1, 2, 3))
    np.testing.assert_allclose(gaussian.log_prob(y), expected, rtol=1e-4)


# ---------------------------------------------------------------- probabilistic PCA: log p(x) in closed form

D, L, SIGMA = 6, 2, 0.5


def ppca_model(rng, orthogonal):
    """A zoo VAE that is exactly PPCA: linear decoder, N(0, I) prior, fixed Gaussian noise."""
    model = vae_zoo.create_model(
        "vae", data_shape=(D,), latent_dim=L, encoder={"name": "mlp", "hidden_sizes": []},
        likelihood={"name": "gaussian_fixed", "scale": SIGMA},
    )
    kernel = rng.normal(size=(L, D))
    if orthogonal:
        # Orthogonal rows make the true posterior's covariance diagonal, so q can equal it.
        kernel = np.linalg.qr(kernel.T)[0].T * np.array([[2.0], [0.7]])
    bias = rng.normal(size=(D,))
    model.decoder.get_layer("decoder_out").set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return model, kernel, bias


def exact_log_likelihood(x, kernel, bias):
    covariance = kernel.T @ kernel + SIGMA**2 * np.eye(D)
    return tfd.MultivariateNormalTriL(bias, np.linalg.cholesky(covariance)).log_prob(x.astype(np.float64)).numpy()


def exact_posterior(x, kernel, bias):
    m = kernel @ kernel.T + SIGMA**2 * np.eye(L)
    m_inv = np.linalg.inv(m)
    return (x - bias) @ kernel.T @ m_inv, SIGMA**2 * m_inv


def test_elbo_equals_log_likelihood_at_the_exact_posterior(rng):
    model, kernel, bias = ppca_model(rng, orthogonal=True)
    m_inv = np.linalg.inv(kernel @ kernel.T + SIGMA**2 * np.eye(L))
    assert np.allclose(m_inv, np.diag(np.diag(m_inv)))
    # Encoder weights that output the exact posterior mean and log-variance.
    mean_kernel = kernel.T @ m_inv
    encoder_kernel = np.concatenate([mean_kernel, np.zeros((D, L))], axis=1)
    encoder_bias = np.concatenate([-bias @ mean_kernel, np.log(SIGMA**2 * np.diag(m_inv))])
    model.encoder.get_layer("encoder_out").set_weights([encoder_kernel.astype(np.float32), encoder_bias.astype(np.float32)])

    x = (rng.normal(size=(4, D)) * 2).astype(np.float32)
    exact = exact_log_likelihood(x, kernel, bias)
    # log p(x, z) - log q(z|x) equals log p(x) for every z drawn from the exact posterior.
    q = model.encode(x)
    for seed in range(3):
        z = q.sample(seed=seed)
        log_weight = model.decode(z).log_prob(x) + model.prior().log_prob(z) - q.log_prob(z)
        np.testing.assert_allclose(log_weight.numpy(), exact, rtol=1e-4, atol=2e-3)
    # The ELBO (reconstruction sample + closed-form KL) equals log p(x) in expectation.
    repeats = 20_000
    elbos = model.elbo(np.repeat(x, repeats, axis=0)).numpy().reshape(len(x), repeats)
    error = elbos.std(1) / np.sqrt(repeats)
    np.testing.assert_array_less(np.abs(elbos.mean(1) - exact), 4 * error + 1e-2)


def test_elbo_gap_is_the_kl_to_the_true_posterior(rng):
    model, kernel, bias = ppca_model(rng, orthogonal=False)
    x = (rng.normal(size=(3, D)) * 2).astype(np.float32)
    exact = exact_log_likelihood(x, kernel, bias)

    repeats = 20_000
    tiled = np.repeat(x, repeats, axis=0)
    elbos = model.loss_terms(tiled)["elbo"].numpy().reshape(3, repeats)
    estimate, error = elbos.mean(1), elbos.std(1) / np.sqrt(repeats)
    assert np.all(estimate < exact), "the ELBO must stay below log p(x)"

    q = model.encode(x)
    post_mean, post_cov = exact_posterior(x.astype(np.float64), kernel, bias)
    true_posterior = tfd.MultivariateNormalTriL(post_mean, np.linalg.cholesky(post_cov))
    q64 = tfd.MultivariateNormalDiag(tf.cast(q.mean(), tf.float64), tf.cast(q.stddev(), tf.float64))
    gap = tfd.kl_divergence(q64, true_posterior).numpy()
    np.testing.assert_array_less(np.abs(estimate - (exact - gap)), 4 * error + 1e-2)


def test_importance_weights_stay_exact_for_a_posterior_narrower_than_float32_can_place(rng):
    """An adversarial autoencoder's posterior stddev reaches 1e-10 around means near 1, where float32 cannot
    hold mean + stddev * eps apart from the mean. log q(z|x) must still be the density of the draw that was made:
    its mean over draws is the negative entropy, -sum(log stddev) - d/2 log(2 pi e), known in closed form."""
    model = vae_zoo.create_model("vae", data_shape=(4,), latent_dim=3, encoder={"name": "mlp", "hidden_sizes": [8]},
                                 likelihood="bernoulli")
    mean = tf.constant([[1.0, -0.7, 2.5]] * 2)
    log_variance = tf.fill([2, 3], -46.0)  # stddev 1.0e-10
    model.encode = lambda x, y=None, training=False: distributions.diagonal_gaussian(mean, log_variance)
    x = (rng.random((2, 4)) > 0.5).astype(np.float32)
    _, _, log_posterior = model.log_weight_terms(x, k=2000, seed=tf.constant([3, 4]))
    negative_entropy = 3 * (46.0 / 2) - 1.5 * np.log(2 * np.pi * np.e)
    assert log_posterior.shape == (2000, 2)
    np.testing.assert_allclose(np.mean(log_posterior), negative_entropy, atol=0.2)
    # What q.log_prob gives at the draws as float32 stores them: every z rounded onto the mean, so every draw
    # scores the mode's density, d/2 nats above the mean (and an ulp's difference between two computations of
    # the mean, as XLA may make, would be thousands of stddevs: millions of nats).
    q = distributions.diagonal_gaussian(mean, log_variance)
    z = distributions.reparameterized_sample(q, [2000], seed=tf.constant([3, 4]))
    np.testing.assert_allclose(q.log_prob(z), negative_entropy + 1.5, atol=1e-3)


def test_bernoulli_evaluation_log_prob_is_the_exact_sum_for_any_size_and_extreme_logits(rng):
    """The evaluation form (one logarithm per 16 pixels, XLA) against float64 by hand: sizes that 16 does not
    divide (padding), logits of +-100 (factors at their bounds), grey values, extra batch axes, and x that
    broadcasts over the logits' leading axes (the k draws of an IS estimate) or over axes of size 1."""
    likelihood = distributions.make_likelihood("bernoulli", 3)
    shapes = [((3, 28, 28, 1),) * 2, ((2, 3, 5, 1),) * 2, ((4, 1, 1, 1),) * 2, ((2, 3, 4, 4, 2),) * 2,
              ((5, 3, 28, 28, 1), (3, 28, 28, 1)), ((4, 2, 3, 2, 5, 1), (2, 3, 2, 5, 1)), ((2, 3, 5, 1), (1, 3, 5, 1)),
              ((2, 3, 3, 5, 1), (1, 3, 5, 1))]
    for shape, x_shape in shapes:
        logits = rng.normal(scale=6, size=shape).astype(np.float32)
        logits.reshape(-1)[:2] = [100.0, -100.0]
        x = rng.random(x_shape).astype(np.float32)
        x.reshape(-1)[2:] = np.round(x.reshape(-1)[2:])
        event_axes = tuple(range(len(shape) - 3, len(shape)))
        exact = np.sum(x * logits.astype(np.float64) - np.logaddexp(0.0, logits.astype(np.float64)), axis=event_axes)
        fast = likelihood.evaluation_log_prob(tf.constant(logits), tf.constant(x)).numpy()
        assert fast.shape == exact.shape
        np.testing.assert_allclose(fast, exact, rtol=2e-6, atol=1e-4)
        np.testing.assert_allclose(fast, likelihood(tf.constant(logits)).log_prob(x), rtol=2e-6, atol=1e-3)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_draws_score_the_same_with_x_broadcast_as_with_x_repeated(likelihood, rng):
    """The IS-NLL's likelihood of k draws per example, x broadcast over the draws, against x repeated once a draw
    through data_log_prob (as training computes it)."""
    model = vae_zoo.create_model("vae", data_shape=(6, 6, 1), latent_dim=3, likelihood=likelihood,
                                 encoder={"name": "mlp", "hidden_sizes": [16]})
    x = tf.constant((rng.random((5, 6, 6, 1)) < 0.4).astype(np.float32))
    z = tf.constant(rng.normal(size=(7, 5, 3)).astype(np.float32))
    broadcast = model.draws_log_prob(z, x).numpy()
    assert broadcast.shape == (7, 5)
    repeated = LatentVariableModel.draws_log_prob(model, z, x).numpy()  # the generic form: x repeated per draw
    np.testing.assert_allclose(broadcast, repeated, rtol=1e-5, atol=1e-4)


def test_importance_sampled_likelihood_draws_the_same_whether_or_not_xla_compiles_it(rng):
    """The IS-NLL runs without XLA on a CPU (faster matmuls) and with it on a GPU; the noise is XLA's in both, so
    the estimate is one number whichever way it was compiled (TensorFlow's own Philox kernel draws others)."""
    from vae_zoo.evaluation import metrics

    model = vae_zoo.create_model("vae", data_shape=(6, 6, 1), latent_dim=3, encoder={"name": "mlp", "hidden_sizes": [16]})
    x = (rng.random((5, 6, 6, 1)) < 0.4).astype(np.float32)
    compiled = metrics.log_likelihood(model, x, k=40, chunk=16, jit_compile=True)
    plain = metrics.log_likelihood(model, x, k=40, chunk=16, jit_compile=False)
    np.testing.assert_allclose(plain, compiled, rtol=1e-5, atol=1e-4)
    assert not np.allclose(metrics.log_likelihood(model, x, k=40, chunk=16, seed=1, jit_compile=False), plain, atol=1e-3)


def test_log_variance_range_bounds_the_posterior_like_a_hard_tanh():
    """Inside the range q(z|x) is the unbounded model's; outside, the log-variance sits at the bound and passes no
    gradient (hard tanh), as the VampPrior code base's [-6, 2]."""
    spec = {"name": "mlp", "hidden_sizes": [8]}
    free = vae_zoo.create_model("vae", data_shape=(4,), latent_dim=3, encoder=spec)
    x = tf.constant([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 1.0]])
    raw = np.log(free.encode(x).variance().numpy())
    for low, high in ((-0.05, 0.05), (float(raw.max()) + 1.0, float(raw.max()) + 2.0)):
        bounded = vae_zoo.create_model("vae", data_shape=(4,), latent_dim=3, encoder=spec, log_variance_range=[low, high])
        bounded.set_weights(free.get_weights())
        with tf.GradientTape() as tape:
            log_variance = tf.math.log(bounded.encode(x).variance())
        np.testing.assert_allclose(log_variance, np.clip(raw, low, high), atol=1e-5)
        np.testing.assert_allclose(bounded.encode(x).mean(), free.encode(x).mean())
        gradients = tape.gradient(tf.reduce_sum(log_variance), bounded.encoder.trainable_variables)
    # Every raw value lies below the second range: the bound holds them all, and no gradient passes.
    assert all(g is None or not np.any(g.numpy()) for g in gradients)
    with pytest.raises(ValueError, match="log_variance_range"):
        vae_zoo.create_model("vae", data_shape=(4,), log_variance_range=[2, -6])


def test_likelihood_regret_fits_the_exact_posterior_and_measures_the_encoders_gap(rng):
    """On PPCA with orthogonal rows the exact posterior is a diagonal Gaussian: the fitted ELBO must reach log p(x),
    and the regret must be the amortized posterior's gap, KL(q(z|x) || p(z|x)), in closed form."""
    from vae_zoo.evaluation import regret

    model, kernel, bias = ppca_model(rng, orthogonal=True)
    # Inputs drawn from the model itself, as a test set would be.
    x = (rng.normal(size=(6, L)) @ kernel + bias + SIGMA * rng.normal(size=(6, D))).astype(np.float32)
    exact = exact_log_likelihood(x, kernel, bias)
    posterior_mean, posterior_covariance = exact_posterior(x, kernel, bias)
    posterior_variance = np.diag(posterior_covariance)
    # An encoder near the exact one, but off: means shrunk, variances three times too wide.
    m_inv = np.linalg.inv(kernel @ kernel.T + SIGMA**2 * np.eye(L))
    mean_kernel = 0.7 * kernel.T @ m_inv
    encoder_kernel = np.concatenate([mean_kernel, np.zeros((D, L))], axis=1)
    encoder_bias = np.concatenate([-bias @ mean_kernel, np.log(3 * SIGMA**2 * np.diag(m_inv))])
    model.encoder.get_layer("encoder_out").set_weights([encoder_kernel.astype(np.float32), encoder_bias.astype(np.float32)])
    q = model.encode(x)
    q_mean, q_variance = q.mean().numpy().astype(np.float64), q.variance().numpy().astype(np.float64)
    gap = 0.5 * np.sum(np.log(posterior_variance / q_variance) + q_variance / posterior_variance
                       + (q_mean - posterior_mean) ** 2 / posterior_variance - 1, axis=1)
    assert np.all(gap > 0.5)

    # Two batches, the second padded: the fitter's posterior and optimizer must start afresh for each.
    regrets, fitted = regret.likelihood_regret(model, x, steps=3000, learning_rate=0.05, elbo_samples=65536,
                                               batch_size=4)
    np.testing.assert_allclose(fitted, exact, atol=0.02)
    np.testing.assert_allclose(regrets, gap, atol=0.05)  # the start ELBO's Monte Carlo error is about 0.01
    # No steps, no regret: both ELBOs are the same estimate.
    np.testing.assert_allclose(regret.likelihood_regret(model, x, steps=0)[0], 0.0, atol=1e-6)


def test_likelihood_regret_names_the_models_it_cannot_measure():
    from vae_zoo.evaluation import regret

    ladder = vae_zoo.create_model("ladder_vae", data_shape=(4,), latent_dim=2, upper_latent_dims=[2],
                                  encoder={"name": "mlp", "hidden_sizes": [4]}, ladder_hidden=[4])
    with pytest.raises(ValueError, match="likelihood regret does not apply: the model has several stochastic layers"):
        regret.likelihood_regret(ladder, np.zeros((2, 4), np.float32))
    autoencoder = vae_zoo.create_model("autoencoder", data_shape=(4,), latent_dim=2, encoder={"name": "mlp", "hidden_sizes": [4]})
    assert "Gaussian posterior" in regret.applicable(autoencoder)
