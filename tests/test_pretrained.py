import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from model_test_case import example_inputs

import vae_zoo
from vae_zoo import cli
from vae_zoo.errors import ConfigError, DataError, RecipeError
from vae_zoo.evaluation import card_check
from vae_zoo.io import pretrained, saving
from vae_zoo.publishing import as_trained, publish, recipe_for


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_ZOO_PRETRAINED_DIR", str(tmp_path / "zoo"))
    model = vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=2, encoder={"name": "mlp", "hidden_sizes": [8]})
    model.compile()
    model.fit(np.zeros((4, 8, 8, 1), np.float32), epochs=1, verbose=0)
    vae_zoo.save(model, tmp_path / "run", card={"metrics": {"test": {"elbo": -12.5}}})
    return tmp_path, model


def test_publish_then_load_by_name(zoo, capsys):
    tmp_path, model = zoo
    env_zoo = tmp_path / "zoo"
    assert cli.main(["publish", str(tmp_path / "run"), "vae.tiny", "--zoo", str(env_zoo)]) == 0
    assert json.loads(capsys.readouterr().out)["published"] == str(env_zoo / "vae.tiny")
    assert "vae.tiny" in vae_zoo.list_pretrained()
    assert vae_zoo.list_pretrained("*.tiny") == ["vae.tiny"]
    loaded = vae_zoo.load_pretrained("vae.tiny")
    x = np.random.default_rng(0).random((3, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-5)
    assert vae_zoo.pretrained_card("vae.tiny")["pretrained_name"] == "vae.tiny"
    # Without optimizer state the published file is smaller than the trained run's.
    assert (env_zoo / "vae.tiny" / "model.keras").stat().st_size < (tmp_path / "run" / "model.keras").stat().st_size
    assert cli.main(["list", "--pretrained"]) == 0
    assert "vae.tiny  test ELBO -12.50" in capsys.readouterr().out
    assert cli.main(["sample", "vae.tiny", "--n", "4", "--out", str(tmp_path / "s.png")]) == 0


def test_publish_refuses_a_name_of_another_architecture_in_one_line(zoo, capsys):
    tmp_path, _ = zoo
    assert cli.main(["publish", str(tmp_path / "run"), "iwae.tiny", "--zoo", str(tmp_path / "zoo")]) == cli.EXIT_USAGE
    assert capsys.readouterr().err == "vae-zoo: error: the name must be vae.<tag>, got 'iwae.tiny'\n"
    assert not (tmp_path / "zoo" / "iwae.tiny").exists()


def test_reproduce_says_which_recipe_it_cannot_find():
    with pytest.raises(RecipeError, match=r"vae.no_such_tag is not published and recipes/vae/no_such_tag.yaml does not exist"):
        recipe_for("vae.no_such_tag")
    with pytest.raises(ConfigError, match=r"a pretrained name is <arch>.<tag>"):
        recipe_for("vae")


def test_the_command_line_offers_the_storage_dtypes_of_the_library():
    assert cli.STORAGE_DTYPES == saving.STORAGE_DTYPES


@pytest.mark.slow
def test_one_command_reproduces_a_pretrained_model(tmp_path):
    """vae-zoo reproduce: train from the card's recipe (smoke), evaluate, publish with a test slice; here with
    the weights stored in float16, so every figure on the card must be measured on the rounded weights.
    In a process of its own, so that the run's TensorFlow is pinned to one thread from its start."""
    done = subprocess.run([sys.executable, "-m", "vae_zoo", "reproduce", "vae.mnist_mini", "--smoke", "--runs",
                           str(tmp_path / "runs"), "--zoo", str(tmp_path / "zoo"), "--weights-dtype", "float16"],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TF_NUM_INTRAOP_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "zoo" / "vae.mnist_mini"
    assert json.loads(done.stdout)["published"] == str(folder)  # the progress went to stderr
    card = pretrained.read_card(folder)
    assert card["recipe_file"] == "recipes/vae/mnist_mini.yaml" and card["training"]["epochs_run"] == 2
    assert card["report"]["parts"]["nll"]["k"] == 10 and card["training"]["hardware"]["cpus"] >= 1
    assert card["training"]["hardware"]["threads"] == 1  # the card says when a run was pinned to fewer threads
    assert card["metrics"]["test_slice"]["examples"] == 500 and np.isfinite(card["metrics"]["test_slice"]["elbo"])

    # What ships is float16 in the file, float32 once loaded, and the card, its report and its test figures
    # all describe those rounded weights (the float32 run's own figures are kept beside them).
    assert card["storage"]["weights_dtype"] == "float16"
    loaded = vae_zoo.load(folder)
    assert {w.dtype for w in loaded.weights} == {"float32"}
    assert saving.weights_digest(loaded) == card["weights_sha256"] == card["report"]["weights_sha256"]
    trained = vae_zoo.load(tmp_path / "runs" / "vae.mnist_mini-smoke")
    assert saving.weights_digest(trained) != card["weights_sha256"]
    for shipped, original in zip(loaded.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(shipped, original.astype(np.float16).astype(np.float32))
    assert card["metrics"]["test"]["elbo"] != card["metrics"]["test_before_rounding"]["elbo"]
    assert abs(card["metrics"]["test"]["elbo"] - card["metrics"]["test_before_rounding"]["elbo"]) < 0.5


def test_float16_storage_halves_the_file_and_refuses_weights_it_would_change(tmp_path):
    model = vae_zoo.create_model("vae", data_shape=(16, 16, 1), latent_dim=4, encoder={"name": "mlp", "hidden_sizes": [64]})
    model(np.zeros((1, 16, 16, 1), np.float32))
    with pytest.raises(ValueError, match="not float16 values"):
        vae_zoo.save(model, tmp_path / "unrounded", weights_dtype="float16", samples=0)
    assert not (tmp_path / "unrounded").exists()
    with pytest.raises(ValueError, match="weights_dtype must be one of"):
        vae_zoo.save(model, tmp_path / "odd", weights_dtype="int8", samples=0)

    vae_zoo.save(model, tmp_path / "full", samples=0)
    model.set_weights(saving.rounded_to(model.get_weights(), "float16"))
    vae_zoo.save(model, tmp_path / "half", weights_dtype="float16", samples=0)
    full, half = ((tmp_path / name / "model.keras").stat().st_size for name in ("full", "half"))
    assert half < 0.6 * full
    loaded = vae_zoo.load(tmp_path / "half")
    for shipped, rounded in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(shipped, rounded)
    x = np.random.default_rng(0).random((3, 16, 16, 1)).astype(np.float32)
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-6)


def test_a_report_measured_on_other_weights_is_refused_for_a_float16_model(zoo):
    tmp_path, _ = zoo
    (tmp_path / "report.json").write_text('{"model": "vae", "weights_sha256": "0123", "parts": {}}')
    with pytest.raises(ValueError, match="not measured on the weights to be published"):
        publish(tmp_path / "run", "vae.tiny", tmp_path / "zoo", tmp_path / "report.json", weights_dtype="float16")
    assert not (tmp_path / "zoo" / "vae.tiny").exists()


def test_a_recipe_file_may_differ_from_the_card_in_what_the_run_printed_only():
    card = {"model": {"name": "vae"}, "training": {"epochs": 3, "verbose": 2}}
    assert as_trained({"model": {"name": "vae"}, "training": {"epochs": 3}}) == as_trained(card)
    assert as_trained({"model": {"name": "vae"}, "training": {"epochs": 4, "verbose": 2}}) != as_trained(card)
    assert as_trained({"model": {"name": "iwae"}, "training": {"epochs": 3, "verbose": 2}}) != as_trained(card)


def test_the_shipped_zoo_stays_within_its_size_budget():
    """saved_models/ travels in every clone (not in the wheel, which fetches models by name): at most 30 MB a model and
    160 MB in all (150 MB until the Exemplar VAE, whose 50,000 exemplar means are 8 MB of its 12.6). New models are
    published into artifacts/, out of git (docs/pretrained.md)."""
    zoo = Path(__file__).parent.parent / "saved_models"
    sizes = {folder.name: sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
             for folder in zoo.iterdir() if folder.is_dir()}
    assert all(size <= 30e6 for size in sizes.values()), sizes
    assert sum(sizes.values()) <= 160e6, sizes


def test_unknown_pretrained_name_suggests(zoo):
    with pytest.raises(vae_zoo.UnknownNameError, match="unknown pretrained model 'vae.tinny'"):
        vae_zoo.load_pretrained("vae.tinny")


@pytest.mark.parametrize("name", pretrained.list_pretrained())
def test_every_shipped_pretrained_model_loads_and_runs(name):
    model = vae_zoo.load_pretrained(name)
    card = vae_zoo.pretrained_card(name)
    assert card["model"] == model.registered_name and card["parameters"] == model.count_params()
    x = example_inputs(model, batch=2)
    inputs = (x, np.array([1, 7])) if model.can("labels") else x
    assert np.all(np.isfinite(model(inputs)))
    if model.can("sample"):
        assert np.all(np.isfinite(model.sample(2, seed=1)))


# The three slowest to score (a deep hierarchy and two recurrent text models) are re-measured in the slow tier.
SLOW_TO_SCORE = ("hierarchical_vae.fashion_mnist_8bit", "language_model.fortunes", "sentence_vae.fortunes")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_TO_SCORE else n
                                  for n in pretrained.list_pretrained()])
def test_every_shipped_card_figure_is_measured_again_on_its_test_slice(name):
    """The card's test scores over the first 500 test examples, measured at publication on the weights that
    ship, come out again here: the card describes the file beside it."""
    model = vae_zoo.load_pretrained(name)
    card = vae_zoo.pretrained_card(name)
    recorded = card["metrics"].get("test_slice")
    assert recorded, f"{name}'s card has no test slice: publish it with vae-zoo publish"
    try:
        measured = card_check.slice_scores(model, card, examples=recorded["examples"], seed=recorded["seed"])
    except DataError as err:
        pytest.skip(f"{name}'s data cannot be read here: {err}")
    assert measured["examples"] == recorded["examples"]
    for figure in ("elbo", "reconstruction_nll", "kl"):
        if figure in recorded:
            assert measured[figure] == pytest.approx(recorded[figure], rel=1e-4, abs=0.02), figure
    # The slice is a sample of the split the card's headline figure averages over.
    headline = "elbo" if "elbo" in recorded else "reconstruction_nll"
    assert abs(measured[headline] - card["metrics"]["test"][headline]) < 0.15 * abs(card["metrics"]["test"][headline]) + 1
