"""Mixed precision: layers compute in bfloat16, the likelihood, KL and ELBO in float32."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from vae_zoo.training import recipe as recipes
from vae_zoo.training import runner

RECIPE = recipes.parse({
    "model": {"name": "vae", "latent_dim": 8, "encoder": {"name": "mlp", "hidden_sizes": [128, 128]}},
    "data": {"name": "digits", "binarize": "static", "batch_size": 64},
    "training": {"epochs": 8, "seed": 1, "verbose": 0},
})
# bfloat16 keeps 8 bits of mantissa: activations carry a relative error of about 0.4%.
ELBO_TOLERANCE = 0.01  # relative, on the mean ELBO of the test split


def test_a_trained_model_has_the_same_elbo_in_bfloat16(tmp_path):
    data = recipes.build_data(RECIPE)
    model = recipes.compile_model(recipes.build_model(RECIPE, data), RECIPE)
    runner.fit(model, data, RECIPE, verbose=0)
    x = tf.constant(data.take("test")[0])
    seed = tf.constant([3, 4])
    float32_elbo = float(tf.reduce_mean(model.loss_terms(x, seed=seed)["elbo"]))

    with runner.precision("mixed_bfloat16"):
        half = recipes.build_model(RECIPE, data)
    half.set_weights(model.get_weights())
    assert half.encoder.layers[1].compute_dtype == "bfloat16"
    terms = half.loss_terms(x, seed=seed)
    assert all(t.dtype == tf.float32 for t in terms.values()), "losses must be computed in float32"
    half_elbo = float(tf.reduce_mean(terms["elbo"]))
    print(f"test ELBO float32 {float32_elbo:.4f}, mixed_bfloat16 {half_elbo:.4f}")
    assert abs(half_elbo - float32_elbo) <= ELBO_TOLERANCE * abs(float32_elbo), (half_elbo, float32_elbo)
    # The model really ran in bfloat16: the difference is not zero.
    assert half_elbo != float32_elbo


HIERARCHICAL = {"name": "hierarchical_vae", "width": 8, "latent_channels": 2, "likelihood": "bernoulli"}


# float16 for the AAE and the hierarchical VAE is in the slow tier, and in tests/test_gpu.py (the GPU check).
@pytest.mark.parametrize("policy, model", [("mixed_bfloat16", "vae"), ("mixed_float16", "vae"),
                                           pytest.param("mixed_float16", "aae", marks=pytest.mark.slow),
                                           pytest.param("mixed_float16", "hierarchical_vae", marks=pytest.mark.slow)])
def test_training_runs_under_mixed_precision(policy, model):
    recipe = recipes.parse({**RECIPE, "model": HIERARCHICAL} if model == "hierarchical_vae" else RECIPE,
                           overrides=[f"training.mixed_precision={policy}", "training.epochs=3", f"model.name={model}"])
    with runner.precision(policy):
        data = recipes.build_data(recipe)
        model = recipes.compile_model(recipes.build_model(recipe, data), recipe)
        logs = runner.fit(model, data, recipe, verbose=0)
    assert model.dtype_policy.name == policy
    if policy == "mixed_float16":
        # float16 needs loss scaling, on the AAE's discriminator optimizer too.
        optimizers = [model.optimizer, getattr(model, "discriminator_optimizer", model.optimizer)]
        assert all(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in optimizers)
    losses = [epoch["loss"] for epoch in logs]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert keras.config.dtype_policy().name == "float32", "the policy is put back after the run"
