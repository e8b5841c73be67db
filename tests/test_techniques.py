"""KL annealing, free bits and the posterior-collapse monitor."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from model_test_case import example_batch

import vae_zoo
from vae_zoo.training import callbacks, schedules
from vae_zoo.training import recipe as recipes


def test_sigmoid_schedule_is_the_seed_formula():
    for t in (0, 500, 1999, 2000, 2001, 5000, 10**6):
        expected = 3.0 / (1.0 + math.exp(-(t - 2000) / 400))
        assert schedules.sigmoid(t, beta_final=3.0, t_threshold=2000, rate=400) == pytest.approx(expected, rel=1e-12)
    assert schedules.sigmoid(2000, beta_final=3.0, t_threshold=2000, rate=400) == 1.5


def test_linear_and_cyclical_schedules():
    assert [schedules.linear(t, beta_final=2.0, warmup_steps=4) for t in (0, 1, 4, 9)] == [0.0, 0.5, 2.0, 2.0]
    values = [schedules.cyclical(t, beta_final=1.0, cycle_steps=4, ramp_fraction=0.5) for t in range(8)]
    assert values == [0.0, 0.5, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0]
    with pytest.raises(vae_zoo.UnknownNameError, match="unknown schedule 'sigmod'. Did you mean 'sigmoid'"):
        schedules.get("sigmod")


def test_annealing_callback_sets_beta_every_step_and_it_is_logged():
    model = vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=2, encoder={"name": "mlp", "hidden_sizes": [8]})
    model.compile()
    schedule = dict(schedule="sigmoid", beta_final=2.0, t_threshold=5, rate=2)
    x = example_batch(batch=40)
    history = model.fit(x, epochs=2, batch_size=4, verbose=0, callbacks=[callbacks.KLAnnealing(**schedule)]).history
    # 10 steps per epoch: the last step of each epoch ran with beta(9) and beta(19).
    expected = [schedules.sigmoid(t, beta_final=2.0, t_threshold=5, rate=2) for t in (9, 19)]
    np.testing.assert_allclose(history["beta"], expected, rtol=1e-6)
    assert float(model.kl_weight) == pytest.approx(expected[-1], rel=1e-6)


def collapsed_model(**kwargs):
    """q(z|x) = N(0, I) = p(z) for every x: the encoder's output layer is zeroed."""
    model = vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=4, encoder={"name": "mlp", "hidden_sizes": [8]}, **kwargs)
    layer = model.encoder.get_layer("encoder_out")
    layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    return model, layer


def test_free_bits_hold_every_dimension_at_kappa_in_the_loss():
    model, layer = collapsed_model(free_bits=0.5)
    x = example_batch()
    terms = model.loss_terms(x)
    np.testing.assert_allclose(terms["kl"], 0.0, atol=1e-6)
    # Every dimension's KL is 0 < kappa: each counts as kappa, so 4 * 0.5 nats.
    np.testing.assert_allclose(terms["loss"] - terms["reconstruction"], 2.0, rtol=1e-6)
    with tf.GradientTape() as tape:
        terms = model.loss_terms(x)
        penalty = tf.reduce_mean(terms["loss"] - terms["reconstruction"])
    gradients = tape.gradient(penalty, layer.trainable_variables)
    assert all(g is None or float(tf.reduce_max(tf.abs(g))) == 0.0 for g in gradients), "dimensions under kappa get no gradient"

    # Move dimension 0's posterior mean to 2: its KL (2 nats) is above kappa and counts in full.
    kernel, bias = layer.get_weights()
    bias[0] = 2.0
    layer.set_weights([kernel, bias])
    terms = model.loss_terms(x)
    np.testing.assert_allclose(terms["kl"], 2.0, rtol=1e-5)
    np.testing.assert_allclose(terms["loss"] - terms["reconstruction"], 2.0 + 3 * 0.5, rtol=1e-5)


def test_free_bits_need_a_factorized_prior():
    with pytest.raises(ValueError, match="free_bits needs a prior that factorizes"):
        vae_zoo.create_model("vae", free_bits=0.5, prior="mixture")


def test_collapse_monitor_warns_and_logs_active_units():
    model, _ = collapsed_model()
    model.compile(optimizer=keras.optimizers.SGD(0.0))  # keep it collapsed
    x = example_batch(batch=32)
    monitor = callbacks.PosteriorCollapseMonitor(validation_images=x)
    with pytest.warns(RuntimeWarning, match="posterior collapse: mean KL per latent dimension is 0.0000 nats"):
        history = model.fit(x, epochs=1, batch_size=16, verbose=0, callbacks=[monitor]).history
    assert history["active_units"] == [0]
    assert history["kl_per_dim_min"][0] == pytest.approx(0.0, abs=1e-6)
    assert monitor.history[0]["kl_per_dim"] == pytest.approx([0.0] * 4, abs=1e-6)


def test_collapse_monitor_counts_active_units_of_an_informative_encoder():
    model, layer = collapsed_model()
    kernel, bias = layer.get_weights()
    kernel[:, :2] = 1.0  # the means of dimensions 0 and 1 now depend on x; 2 and 3 do not
    layer.set_weights([kernel, bias])
    x = example_batch(batch=64)
    monitor = callbacks.PosteriorCollapseMonitor(validation_images=x)
    monitor.set_model(model)
    logs = {}
    monitor.on_epoch_end(0, logs)
    assert logs["active_units"] == 2


def test_recipes_wire_techniques_and_give_the_monitor_validation_data():
    recipe = recipes.parse({
        "model": {"name": "vae", "free_bits": 0.25},
        "data": {"name": "digits"},
        "callbacks": [{"name": "kl_annealing", "schedule": "linear", "warmup_steps": 100}, {"name": "collapse_monitor", "examples": 50}],
    })
    data = recipes.build_data(recipe)
    annealing, monitor = recipes.build_callbacks(recipe, data=data)
    assert isinstance(annealing, callbacks.KLAnnealing) and annealing.schedule(50) == 0.5
    assert monitor.images.shape == (50, 8, 8, 1)
    with pytest.raises(vae_zoo.RecipeError, match="bad options for the 'linear' schedule"):
        callbacks.KLAnnealing(schedule="linear", warmup=3)


def test_each_schedule_in_the_graph_equals_its_python_form():
    options = {"sigmoid": {"beta_final": 3.0, "t_threshold": 200, "rate": 40}, "linear": {"beta_final": 2.0, "warmup_steps": 90},
               "cyclical": {"beta_final": 1.5, "cycle_steps": 70, "ramp_fraction": 0.4}, "constant": {"beta_final": 0.7}}
    steps = np.arange(0, 1000, 7, dtype=np.float32)
    for name, kwargs in options.items():
        expected = [schedules.get(name)(int(t), **kwargs) for t in steps]
        np.testing.assert_allclose(schedules.get(name, graph=True)(tf.constant(steps), **kwargs), expected, rtol=1e-6, atol=1e-7)


def test_annealing_follows_every_step_when_keras_runs_several_per_call():
    """beta is set inside the compiled step, so steps_per_execution does not coarsen the schedule."""
    seen = {}
    for spe in (1, 4):
        keras.utils.set_random_seed(0)
        model = vae_zoo.create_model("vae", latent_dim=2, encoder={"name": "mlp", "hidden_sizes": [8]})
        model.compile(optimizer="adam", steps_per_execution=spe)
        x = (np.random.default_rng(0).random((32, 28, 28, 1)) < 0.5).astype("float32")
        annealing = callbacks.KLAnnealing(schedule="linear", warmup_steps=10)
        model.fit(x, epochs=1, batch_size=4, shuffle=False, verbose=0, callbacks=[annealing])
        seen[spe] = (float(model.kl_weight.numpy()), [w.copy() for w in model.get_weights()])
    assert seen[1][0] == seen[4][0] == pytest.approx(0.7)  # beta of the 8th step (step index 7 of a 10-step warm-up)
    for a, b in zip(seen[1][1], seen[4][1]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_annealing_added_after_an_earlier_fit_still_sets_beta():
    model = vae_zoo.create_model("vae", latent_dim=2, encoder={"name": "mlp", "hidden_sizes": [8]}, beta=1.0)
    model.compile(optimizer="adam")
    x = (np.random.default_rng(0).random((16, 28, 28, 1)) < 0.5).astype("float32")
    model.fit(x, epochs=1, batch_size=4, verbose=0)  # traces a step without a schedule
    model.fit(x, epochs=1, batch_size=4, verbose=0, callbacks=[callbacks.KLAnnealing(schedule="linear", warmup_steps=100)])
    assert float(model.kl_weight.numpy()) == pytest.approx(0.07)  # step 7 (the 8th) of a 100-step warm-up
