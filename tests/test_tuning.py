"""Hyperparameter search: the search space, results, resuming and distribution."""

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras_tuner as kt
import pytest
import yaml

import vae_zoo
from vae_zoo.training import recipe as recipes
from vae_zoo.training import tuning

SEARCH_RECIPE = {
    "model": {"name": "vae", "encoder": {"name": "mlp", "hidden_sizes": [32]}, "latent_dim": 2},
    "data": {"name": "digits", "binarize": "static", "batch_size": 128},
    "training": {"epochs": 1},
    "search": {
        "tuner": "random", "max_trials": 4, "epochs": 2, "seed": 3,
        "parameters": {
            "beta": {"type": "float", "min": 0.5, "max": 2.0},
            "latent_dim": {"type": "int", "min": 2, "max": 6},
            "learning_rate": {"type": "float", "min": 1e-3, "max": 1e-2},
            "encoder": {"type": "choice", "values": [{"name": "mlp", "hidden_sizes": [16]}, {"name": "mlp", "hidden_sizes": [32, 32]}]},
        },
    },
}


def write_recipe(tmp_path, recipe=SEARCH_RECIPE, name="search.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_search_space_samples_log_scales_and_any_model_kwarg():
    hp = kt.HyperParameters()
    recipe = recipes.parse(SEARCH_RECIPE)
    model = tuning.RecipeHyperModel(recipe, recipes.build_data(recipe)).build(hp)
    assert hp.get("beta") == pytest.approx(float(model.kl_weight))
    assert model.latent_dim == hp.get("latent_dim")
    space = {p.name: p for p in hp.space}
    assert space["beta"].sampling == "log" and space["learning_rate"].sampling == "log"
    assert json.loads(hp.get("encoder"))["hidden_sizes"] in ([16], [32, 32])
    assert model.jit_compile
    assert float(model.optimizer.learning_rate) == pytest.approx(hp.get("learning_rate"))


def test_bad_search_sections_are_named():
    cases = {
        "tuner": ("grid", "search.tuner must be one of 'random', 'bayesian', 'hyperband', got 'grid'"),
        "objective": ("ebo", "search.objective must be one of .*got 'ebo'. Did you mean 'elbo'"),
        "max_trails": (3, "search.max_trails: search has no argument 'max_trails'. Did you mean 'max_trials'"),
        "max_trials": (2.5, "search.max_trials must be an integer >= 1"),
        "parameters": ({"latent": {"type": "int", "min": 2, "max": 3}}, "unknown hyperparameter of vae 'latent'"),
    }
    for key, (value, message) in cases.items():
        with pytest.raises(vae_zoo.RecipeError, match=message):
            recipes.parse({**SEARCH_RECIPE, "search": {**SEARCH_RECIPE["search"], key: value}})
    with pytest.raises(vae_zoo.RecipeError, match="needs numbers min < max"):
        recipes.parse({**SEARCH_RECIPE, "search": {"parameters": {"beta": {"type": "float", "min": 2, "max": 1}}}})


def test_objectives_and_tuners(tmp_path):
    recipe = recipes.parse(SEARCH_RECIPE)
    data = recipes.build_data(recipe)
    for name, cls in (("random", kt.RandomSearch), ("bayesian", kt.BayesianOptimization), ("hyperband", kt.Hyperband)):
        recipe["search"]["tuner"] = name
        tuner = tuning.make_tuner(recipe, data, tmp_path, overwrite=True)
        assert isinstance(tuner, cls)
        assert tuner.oracle.objective.name == "val_elbo" and tuner.oracle.objective.direction == "max"
    recipe["search"]["objective"] = "nll"
    assert tuning.make_tuner(recipe, data, tmp_path, overwrite=True).oracle.objective.direction == "min"


@pytest.mark.slow
def test_search_writes_the_table_best_recipe_plot_and_model(tmp_path, capsys):
    from vae_zoo import cli

    path = write_recipe(tmp_path)
    out = tmp_path / "search"
    assert cli.main(["tune", str(path), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "trial" in printed.splitlines()[0] and "objective" in printed.splitlines()[0]
    summary = json.loads((out / "summary.json").read_text())
    rows = json.loads((out / "trials.json").read_text())
    assert len(rows) == 4 and all(r["status"] == "COMPLETED" for r in rows)
    assert (out / "trials.csv").read_text().count("\n") == 5
    best = max(rows, key=lambda r: r["objective"])
    best_recipe = recipes.read(out / "best_recipe.yaml")
    assert best_recipe["model"]["latent_dim"] == best["latent_dim"]
    assert best_recipe["optimizer"]["learning_rate"] == pytest.approx(best["learning_rate"])
    assert best_recipe["model"]["encoder"] == json.loads(best["encoder"])
    assert "search" not in best_recipe and "vae-zoo train" in (out / "best_recipe.yaml").read_text()
    model = vae_zoo.load(out / "best_model")
    card = json.loads((out / "best_model" / "card.json").read_text())
    assert card["search"]["best_trial"] == best["trial"] and model.latent_dim == best["latent_dim"]
    assert (out / "objective.png").stat().st_size > 1000
    assert summary["best_objective"] == pytest.approx(best["objective"])


def vae_zoo_command(*args):
    return [sys.executable, "-m", "vae_zoo", *args]


def completed_trials(out):
    found = {}
    for file in Path(out, "search").glob("trial_*/trial.json"):
        text = file.read_text()
        try:
            trial = json.loads(text)
        except json.JSONDecodeError:  # keras-tuner is writing it right now: not completed yet
            continue
        if trial["status"] == "COMPLETED":
            found[trial["trial_id"]] = text
    return found


def logged_beta(out):
    """The last beta each completed trial logged, by trial id."""
    found = {}
    for file in sorted(Path(out).glob("search/trial_*/trial.json")):
        trial = json.loads(file.read_text())
        if trial["status"] == "COMPLETED":
            found[trial["trial_id"]] = trial["metrics"]["metrics"]["beta"]["observations"][-1]["value"][0]
    return found


@pytest.mark.slow
def test_a_killed_search_resumes_without_repeating_finished_trials(tmp_path):
    recipe = json.loads(json.dumps(SEARCH_RECIPE))
    recipe["search"].update(max_trials=5, epochs=4)
    # The recipe's callbacks run in every trial: this annealing holds beta far under the searched 0.5..2.
    recipe["callbacks"] = [{"name": "kl_annealing", "schedule": "linear", "beta_final": 1.0, "warmup_steps": 10000}]
    path = write_recipe(tmp_path, recipe)
    out = tmp_path / "search"
    process = subprocess.Popen(vae_zoo_command("tune", str(path), "--out", str(out)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while len(completed_trials(out)) < 2 and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = completed_trials(out)
    assert 2 <= len(before) < 5, "the search must be killed midway"

    resumed = subprocess.run(vae_zoo_command("tune", str(path), "--out", str(out)), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = completed_trials(out)
    assert len(after) == 5
    for trial_id, text in before.items():
        assert after[trial_id] == text, f"finished trial {trial_id} was run again"
    summary = json.loads((out / "summary.json").read_text())
    assert not set(summary["trials_run_here"]) & set(before), "the resumed run repeated a finished trial"
    betas = logged_beta(out)
    assert len(betas) == 5 and all(0 < beta < 0.05 for beta in betas.values()), f"KL annealing missing from a trial: {betas}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_distributed_search_shares_trials_between_workers(tmp_path):
    path = write_recipe(tmp_path)
    out = tmp_path / "search"
    oracle = f"127.0.0.1:{free_port()}"
    chief = subprocess.Popen(vae_zoo_command("tune", str(path), "--out", str(out), "--chief", "--oracle", oracle),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(8)  # let the chief's oracle start listening
    workers = [subprocess.Popen(vae_zoo_command("tune", str(path), "--out", str(out), "--worker", name, "--oracle", oracle),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for name in ("a", "b")]
    results = [w.communicate(timeout=600) for w in workers]
    chief_out, chief_err = chief.communicate(timeout=300)
    assert chief.returncode == 0, chief_err[-2000:]
    ran = []
    for worker, (stdout, stderr) in zip(workers, results):
        assert worker.returncode == 0, stderr[-2000:]
        report = json.loads(stdout[stdout.index("{"):])
        assert report["trials_run"], f"worker {report['role']} ran no trial"
        ran += report["trials_run"]
    rows = json.loads((out / "trials.json").read_text())
    assert sorted(ran) == sorted(r["trial"] for r in rows) and len(set(ran)) == len(ran) == 4
    assert all(r["status"] == "COMPLETED" and r["objective"] is not None for r in rows)
