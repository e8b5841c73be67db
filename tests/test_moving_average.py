"""The optimizer's ``use_ema`` in the runner: the moving average is the model that is validated, kept and resumed."""

import keras
import numpy as np

from vae_zoo.training import recipe as recipes
from vae_zoo.training import runner

SPEC = {
    "model": {"name": "vae", "latent_dim": 2, "encoder": {"name": "mlp", "hidden_sizes": [16]}},
    "data": {"name": "digits", "binarize": "static", "batch_size": 64},
    "optimizer": {"name": "adam", "learning_rate": 0.01, "use_ema": True, "ema_momentum": 0.9},
    "training": {"epochs": 4, "jit_compile": False, "verbose": 0, "monitor": "val_elbo", "seed": 3},
}


def recipe(**training):
    return recipes.parse({**SPEC, "training": {**SPEC["training"], **training}})


def trained(spec, backup_dir=None):
    keras.utils.set_random_seed(3)  # the same initial weights in every call (runner.train does this too)
    data = recipes.build_data(spec)
    model = recipes.compile_model(recipes.build_model(spec, data), spec, data.steps_per_epoch())
    logs = runner.fit(model, data, spec, backup_dir=backup_dir, verbose=0)
    return model, data, logs


def validation_elbo(model, data):
    """The validation ELBO of the weights in the model now (its draws are keyed by the optimizer's step, as in fit)."""
    return model.evaluate(data.validation, verbose=0, return_dict=True)["elbo"]


def test_a_run_that_early_stopping_ends_keeps_the_average_it_validated():
    # No improvement is ever big enough: early stopping ends the run after its second epoch.
    model, data, logs = trained(recipe(early_stopping={"patience": 0, "min_delta": 1.0e9}))
    assert len(logs) == 2
    np.testing.assert_allclose(validation_elbo(model, data), logs[-1]["val_elbo"], rtol=1e-6)
    # Keras's fit alone would end this run with the raw weights, which validate differently.
    assert model.optimizer.use_ema


def test_the_planned_last_epoch_ends_with_the_average_it_validated():
    model, data, logs = trained(recipe())
    assert len(logs) == 4
    np.testing.assert_allclose(validation_elbo(model, data), logs[-1]["val_elbo"], rtol=1e-6)


def test_an_interrupted_run_resumes_with_the_raw_weights_and_ends_as_an_uninterrupted_one(tmp_path, interrupted_at_epoch):
    spec = recipe()
    straight, _, straight_logs = trained(spec)

    interrupted_at_epoch(2, lambda: trained(spec, backup_dir=tmp_path / "backup"))
    # The checkpoint was written between epochs, with the average in the model: the resumed run must swap the raw
    # weights back before it trains on, or it would go on from the average.
    resumed, _, resumed_logs = trained(spec, backup_dir=tmp_path / "backup")
    assert len(resumed_logs) == 4
    np.testing.assert_allclose([e["val_elbo"] for e in resumed_logs], [e["val_elbo"] for e in straight_logs], rtol=1e-5)
    for mine, theirs in zip(resumed.get_weights(), straight.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-5, atol=1e-6)


def test_without_use_ema_nothing_is_swapped():
    spec = recipes.parse({**SPEC, "optimizer": {"name": "adam", "learning_rate": 0.01}})
    model, data, logs = trained(spec)
    np.testing.assert_allclose(validation_elbo(model, data), logs[-1]["val_elbo"], rtol=1e-6)
    assert not model.optimizer.use_ema
