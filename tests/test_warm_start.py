"""``training.initial_weights``: a run that starts from a saved or pretrained model's weights."""

import json
import shutil

import keras_tuner as kt
import numpy as np
import pytest

from vae_zoo.errors import RecipeError
from vae_zoo.io import saving
from vae_zoo.io.pretrained import pretrained_folder
from vae_zoo.training import recipe as recipes
from vae_zoo.training import runner, tuning
from vae_zoo.training.warm_start import load_initial_weights, source_folder

SPEC = {
    "model": {"name": "vae", "latent_dim": 2, "encoder": {"name": "mlp", "hidden_sizes": [16]}},
    "data": {"name": "digits", "binarize": "static", "batch_size": 64},
    "optimizer": {"name": "adam", "learning_rate": 0.01},
    "training": {"epochs": 2, "jit_compile": False, "verbose": 0, "monitor": "val_elbo", "seed": 3},
}


def recipe(model=None, optimizer=None, **training):
    return recipes.parse({**SPEC, "model": {**SPEC["model"], **(model or {})}, "optimizer": {**SPEC["optimizer"], **(optimizer or {})},
                          "training": {**SPEC["training"], **training}})


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    folder, _, _ = runner.train(recipe(), tmp_path_factory.mktemp("source") / "vae")
    return folder


def weights_of(folder):
    return saving.load(folder).get_weights()


def test_a_run_starts_from_the_source_weights_not_from_its_own_initialisation(source, tmp_path):
    # Adam moves a weight by at most about the learning rate per step, so a run at 1e-9 ends where it started.
    still = {"learning_rate": 1e-9}
    warm, _, card = runner.train(recipe(optimizer=still, epochs=1, initial_weights=str(source)), tmp_path / "warm")
    cold, _, _ = runner.train(recipe(optimizer=still, epochs=1), tmp_path / "cold")
    for mine, theirs in zip(weights_of(warm), weights_of(source)):
        np.testing.assert_allclose(mine, theirs, atol=1e-6)
    assert not all(np.allclose(mine, theirs, atol=1e-3) for mine, theirs in zip(weights_of(cold), weights_of(source)))
    started = card["training"]["started_from"]
    assert started["from"] == str(source)
    assert started["weights_sha256"] == json.loads((source / "card.json").read_text())["weights_sha256"]
    assert started["epochs_run"] == 2


def killed_before_saving(spec, out, monkeypatch):
    """Train ``spec`` into ``out`` and die after training, before the model folder is written."""
    real_save = saving.save

    def dies(*args, **kwargs):
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(saving, "save", dies)
    with pytest.raises(KeyboardInterrupt):
        runner.train(spec, out)
    monkeypatch.setattr(saving, "save", real_save)


def test_a_resumed_run_needs_its_source_no_more(source, tmp_path, monkeypatch):
    # Killed after training, before the model folder was written; then the source goes away.
    copy = tmp_path / "source"
    shutil.copytree(source, copy)
    spec = recipe(epochs=1, initial_weights=str(copy))
    killed_before_saving(spec, tmp_path / "warm", monkeypatch)
    shutil.rmtree(copy)
    with pytest.raises(RecipeError, match="initial_weights"):  # a new run does need it
        runner.train(spec, tmp_path / "other")
    _, _, card = runner.train(spec, tmp_path / "warm")
    started = card["training"]["started_from"]
    assert started["from"] == str(copy) and started["epochs_run"] == 2
    assert not (tmp_path / ".warm.run").exists(), "the finished run removed its work folder"
    assert started["weights_sha256"] == json.loads((source / "card.json").read_text())["weights_sha256"]


def test_beta_stays_the_recipes_own(source):
    spec = recipe(model={"beta": 3.0}, initial_weights=str(source))
    model = recipes.build_model(spec, recipes.build_data(spec))
    load_initial_weights(model, spec["training"]["initial_weights"])
    assert float(model.kl_weight) == 3.0
    for mine, theirs in zip(model.trainable_weights, saving.load(source).trainable_weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


@pytest.mark.parametrize("model, problem", [({"latent_dim": 3}, "architectures differ"),
                                            ({"name": "iwae"}, "is a vae, but the recipe builds a iwae")])
def test_a_source_of_another_architecture_is_refused_before_anything_is_written(source, tmp_path, model, problem):
    out = tmp_path / "refused"
    with pytest.raises(RecipeError, match=problem):
        runner.train(recipe(model=model, initial_weights=str(source)), out)
    assert not out.exists() and not (tmp_path / ".refused.run").exists()


def test_unknown_sources_and_wrong_types_name_the_key(tmp_path):
    with pytest.raises(RecipeError, match="training.initial_weights.*no_such.model"):
        runner.train(recipe(initial_weights="no_such.model"), tmp_path / "a")
    with pytest.raises(RecipeError, match="training.initial_weights.*no saved model"):
        runner.train(recipe(initial_weights=str(tmp_path / "missing" / "folder")), tmp_path / "b")
    with pytest.raises(RecipeError, match="initial_weights"):
        recipe(initial_weights=5)


def test_a_pretrained_name_resolves_to_its_folder():
    assert source_folder("vae.mnist_mini") == pretrained_folder("vae.mnist_mini")


def test_every_trial_of_a_search_starts_from_the_source(source):
    spec = recipes.parse({**recipe(initial_weights=str(source)),
                          "search": {"parameters": {"learning_rate": {"type": "float", "min": 1e-4, "max": 1e-3}}}})
    model = tuning.RecipeHyperModel(spec, recipes.build_data(spec)).build(kt.HyperParameters())
    for mine, theirs in zip(model.get_weights(), weights_of(source)):
        np.testing.assert_array_equal(mine, theirs)


def test_a_damaged_record_of_the_source_is_read_from_the_source_again(source, tmp_path, monkeypatch):
    spec = recipe(epochs=1, initial_weights=str(source))
    killed_before_saving(spec, tmp_path / "warm", monkeypatch)
    (tmp_path / ".warm.run" / runner.STARTED_FROM_FILE).write_text("{not json")
    _, _, card = runner.train(spec, tmp_path / "warm")
    assert card["training"]["started_from"]["weights_sha256"] == json.loads((source / "card.json").read_text())["weights_sha256"]


def test_a_source_with_another_prior_gives_its_networks_and_the_recipes_prior_starts_afresh(source):
    spec = recipe(model={"prior": {"name": "exemplar", "exemplars": 20, "neighbours": 4, "scale": 0.5}},
                  initial_weights=str(source))
    model = recipes.build_model(spec, recipes.build_data(spec))
    started = load_initial_weights(model, spec["training"]["initial_weights"])
    assert "another prior" in started["prior"]
    loaded = saving.load(source)
    for mine, theirs in zip(model.encoder.weights + model.decoder.weights, loaded.encoder.weights + loaded.decoder.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    assert float(model.prior_layer.scale) == pytest.approx(0.5)
