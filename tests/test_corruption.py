"""The encoder's corrupted view in training (denoising criterion, SpecAugment masks)."""

import numpy as np
import pytest
import tensorflow as tf

import vae_zoo
from vae_zoo.models import corruption, distributions

SEED = tf.constant([4, 2])


def test_masks_zero_whole_bands_no_wider_than_asked_along_each_axis():
    x = tf.ones([64, 20, 12, 1])
    masked = corruption.corrupt(x, masks=2, width=3, seed=SEED).numpy()[..., 0]
    for example in masked:
        zero_rows = np.flatnonzero(~example.any(axis=1))
        zero_columns = np.flatnonzero(~example.any(axis=0))
        # What is zeroed is whole rows and whole columns; everything else is untouched.
        expected = np.ones_like(example)
        expected[zero_rows, :] = 0
        expected[:, zero_columns] = 0
        np.testing.assert_array_equal(example, expected)
        assert len(zero_rows) <= 2 * 3 and len(zero_columns) <= 2 * 3
    assert (masked == 0).any() and (masked == 1).any()


def test_shift_moves_each_example_along_its_first_axis_and_fills_with_the_edge():
    x = tf.reshape(tf.range(32 * 10, dtype=tf.float32), [32, 10, 1])
    shifted = corruption.corrupt(x, shift=3, seed=SEED).numpy()[..., 0]
    offsets = set()
    for original, moved in zip(x.numpy()[..., 0], shifted):
        offset = next(o for o in range(-3, 4) if np.array_equal(moved, original[np.clip(np.arange(10) - o, 0, 9)]))
        offsets.add(offset)
    assert len(offsets) > 3  # examples are shifted independently


def test_the_same_seed_corrupts_the_same_way_and_another_seed_otherwise():
    x = tf.ones([8, 16, 16, 1])
    first = corruption.corrupt(x, masks=2, width=4, shift=2, seed=SEED)
    np.testing.assert_array_equal(first, corruption.corrupt(x, masks=2, width=4, shift=2, seed=SEED))
    assert not np.array_equal(first, corruption.corrupt(x, masks=2, width=4, shift=2, seed=tf.constant([4, 3])))


def test_the_encoder_sees_the_corrupted_example_and_the_likelihood_the_clean_one(rng):
    model = vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=2, encoder={"name": "mlp", "hidden_sizes": [16]},
                                 encoder_masks=2, encoder_mask_width=3, encoder_shift=1)
    x = tf.constant((rng.random((4, 8, 8, 1)) < 0.5).astype(np.float32))
    terms = model.loss_terms(x, training=True, seed=SEED)
    q = model.encode(corruption.corrupt(x, 2, 3, 1, SEED))
    z = distributions.reparameterized_sample(q, seed=SEED)
    np.testing.assert_allclose(terms["reconstruction"], -model.decode(z).log_prob(x), rtol=1e-5)
    # Outside training nothing is corrupted.
    evaluation = model.loss_terms(x, training=False, seed=SEED)
    z = distributions.reparameterized_sample(model.encode(x), seed=SEED)
    np.testing.assert_allclose(evaluation["reconstruction"], -model.decode(z).log_prob(x), rtol=1e-4)


@pytest.mark.parametrize("name", ["iwae", "ladder_vae"])
def test_variants_with_objectives_of_their_own_refuse_encoder_masks(name):
    with pytest.raises(ValueError, match="encoder_masks"):
        vae_zoo.create_model(name, data_shape=(8, 8, 1), encoder_masks=1)


def test_a_recipe_asking_encoder_masks_of_such_a_variant_is_refused_naming_the_model():
    from vae_zoo.training import recipe_schema

    recipe = {"model": {"name": "iwae", "encoder_masks": 2}, "data": {"name": "mnist_mini"}}
    with pytest.raises(vae_zoo.RecipeError, match="model .iwae.*encoder_masks"):
        recipe_schema.validate(recipe)
