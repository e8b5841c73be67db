"""A training run killed mid-epoch resumes where it stopped and ends where an uninterrupted run ends."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml

import vae_zoo

RECIPE = {
    "model": {"name": "vae", "latent_dim": 8, "encoder": {"name": "mlp", "hidden_sizes": [256, 256]}},
    "data": {"name": "mnist_mini", "binarize": "dynamic", "batch_size": 64, "limit": 4000},
    "optimizer": {"name": "adam", "learning_rate": 0.001},
    "training": {"epochs": 6, "seed": 7, "monitor": "val_elbo", "early_stopping": {"patience": 4}},
    # The annealing step must continue from the checkpoint, not restart at 0.
    "callbacks": [{"name": "kl_annealing", "schedule": "linear", "beta_final": 1.0, "warmup_steps": 300}],
}


def train_command(recipe, out):
    return [sys.executable, "-m", "vae_zoo", "train", str(recipe), "--out", str(out)]


def finished_epochs(work):
    path = work / "backup" / "training_metadata.json"
    try:
        return json.loads(path.read_text())["epoch"]
    except (OSError, ValueError):
        return 0


def kill_mid_epoch(command, work, after_epochs=2):
    """Start ``command``, let it finish ``after_epochs`` epochs, then SIGKILL it part-way through the next."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, seen = time.time() + 300, {}
    while time.time() < deadline and process.poll() is None:
        epoch = finished_epochs(work)
        seen.setdefault(epoch, time.time())
        if epoch >= after_epochs:
            break
        time.sleep(0.05)
    # Wait a third of an epoch (as long as the last one took), so that the kill lands inside the next one.
    time.sleep(max(0.05, (seen[after_epochs] - seen.get(after_epochs - 1, seen[after_epochs])) / 3))
    process.send_signal(signal.SIGKILL)
    process.wait()
    return finished_epochs(work)


@pytest.mark.slow
def test_a_killed_training_run_resumes_and_matches_an_uninterrupted_one(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    out = tmp_path / "resumed"
    work = tmp_path / ".resumed.run"

    done = kill_mid_epoch(train_command(recipe, out), work)
    assert 2 <= done < 6, f"the run must be killed midway, it had finished {done} epochs"
    assert not out.exists(), "a killed run must not leave a model folder"
    assert work.is_dir(), "a killed run keeps its work folder"

    resumed = subprocess.run(train_command(recipe, out), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"after epoch {done}" in resumed.stdout
    assert "Epoch 1/" not in resumed.stdout and f"Epoch {done + 1}/6" in resumed.stdout, "finished epochs were trained again"
    assert not work.exists(), "the work folder is removed once the model folder is in place"
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["resumed_after_epoch"] == done
    assert card["training"]["epochs_run"] == 6
    # The card's training time covers the killed sitting's finished epochs too, not only the resumed one.
    assert card["training"]["seconds"] > card["training"]["seconds_last_sitting"] > 0

    straight = subprocess.run(train_command(recipe, tmp_path / "straight"), capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr[-3000:]
    expected = json.loads((tmp_path / "straight" / "card.json").read_text())
    assert card["training"]["best_epoch"] == expected["training"]["best_epoch"]
    np.testing.assert_allclose(card["metrics"]["test"]["elbo"], expected["metrics"]["test"]["elbo"], rtol=1e-5)
    for a, b in zip(vae_zoo.load(out).weights, vae_zoo.load(tmp_path / "straight").weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, err_msg=a.path)


def test_an_interrupted_run_of_another_recipe_is_not_resumed(tmp_path):
    from vae_zoo.errors import RecipeError
    from vae_zoo.training.runner import WorkFolder

    WorkFolder(tmp_path / "out", RECIPE)
    other = {**RECIPE, "optimizer": {**RECIPE["optimizer"], "learning_rate": 0.002}}
    try:
        WorkFolder(tmp_path / "out", other)
    except RecipeError as err:
        assert "different recipe" in str(err) and "--restart" in str(err)
    else:
        raise AssertionError("a different recipe resumed another run's checkpoint")
    assert WorkFolder(tmp_path / "out", other, restart=True).path.is_dir()


def test_a_run_that_stopped_early_and_died_before_saving_resumes_without_training_again(tmp_path, monkeypatch):
    from vae_zoo.io import saving
    from vae_zoo.training import recipe as recipes
    from vae_zoo.training import runner

    recipe = recipes.parse({
        "model": {"name": "vae", "latent_dim": 2, "encoder": {"name": "mlp", "hidden_sizes": [16]}},
        "data": {"name": "digits", "binarize": "static", "batch_size": 64},
        "training": {"epochs": 30, "jit_compile": False, "verbose": 0,
                     # no improvement is ever big enough: early stopping ends the run after its second epoch
                     "early_stopping": {"patience": 0, "min_delta": 1.0e9}},
    })
    real_save = saving.save

    def dies(*args, **kwargs):
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(saving, "save", dies)
    try:
        runner.train(recipe, tmp_path / "out", verbose=0)
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(saving, "save", real_save)
    _, history, card = runner.train(recipe, tmp_path / "out", verbose=0)
    assert card["training"]["epochs_run"] == 2 and len(history["loss"]) == 2, "the resumed run trained no further epoch"
    assert vae_zoo.load(tmp_path / "out").count_params() > 0


def test_a_resumed_run_may_be_given_fewer_or_more_epochs_and_nothing_else(tmp_path, monkeypatch, interrupted_at_epoch):
    """Only the budget may change: the epochs trained so far do not depend on it. A budget equal to the epochs
    finished ends the run there and saves its best epoch, as if it had been the budget from the start."""
    from vae_zoo.errors import RecipeError
    from vae_zoo.io import saving
    from vae_zoo.training import recipe as recipes
    from vae_zoo.training import runner

    spec = {
        "model": {"name": "vae", "latent_dim": 2, "encoder": {"name": "mlp", "hidden_sizes": [16]}},
        "data": {"name": "digits", "binarize": "static", "batch_size": 64},
        "training": {"epochs": 3, "jit_compile": False, "verbose": 0, "monitor": "val_elbo"},
    }
    budget = lambda epochs: recipes.parse({**spec, "training": {**spec["training"], "epochs": epochs}})
    real_save = saving.save

    def dies(*args, **kwargs):
        raise KeyboardInterrupt("killed while saving")

    # Three epochs trained, then killed before the model folder was written.
    monkeypatch.setattr(saving, "save", dies)
    try:
        runner.train(budget(3), tmp_path / "out", verbose=0)
    except KeyboardInterrupt:
        pass
    monkeypatch.setattr(saving, "save", real_save)
    with pytest.raises(RecipeError, match="must be at least 3"):
        runner.train(budget(2), tmp_path / "out", verbose=0)
    with pytest.raises(RecipeError, match="different recipe"):
        runner.train(recipes.parse({**spec, "training": {**spec["training"], "seed": 1}}), tmp_path / "out", verbose=0)

    # Two more epochs: the history continues from the third; a smoke section added meanwhile changes nothing a
    # real run reads, so the run resumes.
    with_smoke = recipes.parse({**spec, "training": {**spec["training"], "epochs": 5}, "smoke": {"data.limit": 64}})
    _, history, card = runner.train(with_smoke, tmp_path / "out", verbose=0)
    assert len(history["loss"]) == 5 and card["training"]["epochs_run"] == 5
    assert card["training"]["resumed_after_epoch"] == 3 and card["recipe"]["training"]["epochs"] == 5

    # A run with a budget of 6, interrupted after its second epoch, cut to 2: it ends at once, with the card of a
    # run whose recipe said 2 epochs from the start.
    interrupted_at_epoch(2, lambda: runner.train(budget(6), tmp_path / "cut", verbose=0))
    _, history, card = runner.train(budget(2), tmp_path / "cut", verbose=0)
    assert len(history["loss"]) == 2 and card["training"]["epochs_run"] == 2 and card["training"]["resumed_after_epoch"] == 2
    assert card["training"]["examples_per_second_wall"] is None, "a sitting that trained nothing has no speed"
    _, _, straight = runner.train(budget(2), tmp_path / "straight", verbose=0)
    assert card["recipe"] == straight["recipe"]
    np.testing.assert_allclose(card["metrics"]["test"]["elbo"], straight["metrics"]["test"]["elbo"], rtol=1e-5)
