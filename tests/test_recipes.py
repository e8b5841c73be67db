import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

import vae_zoo
from vae_zoo import cli
from vae_zoo.training import recipe as recipes

RECIPES = sorted((Path(__file__).parent.parent / "recipes").rglob("*.yaml"))


def test_recipes_exist():
    assert any(p.parent.name == "vae" and p.name == "mnist_mini.yaml" for p in RECIPES)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_recipe_is_valid_and_builds(path):
    recipe = recipes.read(path, smoke=True)
    assert recipe["model"]["name"] in vae_zoo.list_models()
    header = path.read_text().splitlines()[:12]
    assert any("vae-zoo train" in line for line in header), "the header must give the command"
    assert any("Expected" in line for line in header), "the header must give the expected figure"
    model = recipes.build_model(recipe, stand_in_data(recipe["data"], recipe["model"].get("data_shape")))
    recipes.compile_model(model, recipe)


def stand_in_data(section, stated_shape=None):
    """What build_model reads of a data set (name, example shape, classes, spec), without reading the data."""
    from vae_zoo.data import DataSpec, audio, get_source
    from vae_zoo.data.text import SPECIALS

    name, vocabulary = section["name"], None
    source = get_source(name)
    options = {option: declared.default for option, declared in source.schema().items()} | section
    if "max_length" in options:  # token data: sentences of max_length tokens between <bos> and <eos>
        shape = (options["max_length"] + 2,)
        vocabulary = (*SPECIALS, *(f"w{i}" for i in range(96)))
    elif source.features:
        shape = audio.features_named(source.features).shape
    elif stated_shape:  # a recipe that states its images' shape (emoji: 64x64x3)
        shape = tuple(stated_shape)
    else:
        shape = (8, 8, 1) if name == "digits" else (28, 28, 1)
    spec = DataSpec(name, source.modality, shape, num_classes=10, vocabulary=vocabulary, features=source.features)
    return SimpleNamespace(name=name, data_shape=shape, num_classes=10, spec=spec)


def test_overrides_and_smoke(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("model: {name: vae, latent_dim: 4}\ndata: {name: digits}\ntraining: {epochs: 30}\nsmoke: {training.epochs: 2}\n")
    recipe = recipes.read(path, overrides=["model.latent_dim=7", "model.encoder.name=mlp", "model.encoder.hidden_sizes=[5, 6]", "optimizer.learning_rate=1e-2"], smoke=True)
    assert recipe["model"]["latent_dim"] == 7
    assert recipe["model"]["encoder"] == {"name": "mlp", "hidden_sizes": [5, 6]}
    assert recipe["optimizer"]["learning_rate"] == 0.01
    assert recipe["training"]["epochs"] == 2
    assert recipe["data"]["limit"] == recipes.DEFAULT_SMOKE["data.limit"]
    # An explicit override beats the smoke settings.
    assert recipes.read(path, overrides=["training.epochs=3"], smoke=True)["training"]["epochs"] == 3


def test_data_shape_mismatch_is_reported():
    recipe = recipes.parse({"model": {"name": "vae", "data_shape": [28, 28, 1]}, "data": {"name": "digits"}})
    with pytest.raises(vae_zoo.RecipeError, match=r"model.data_shape \(28, 28, 1\) does not match the data \(8, 8, 1\)"):
        recipes.build_model(recipe, stand_in_data({"name": "digits"}))


def test_train_evaluate_sample_end_to_end_with_the_cli(tmp_path, capsys):
    recipe = tmp_path / "digits.yaml"
    recipe.write_text(
        "model: {name: vae, latent_dim: 4, encoder: {name: mlp, hidden_sizes: [64]}}\n"
        "data: {name: digits, binarize: dynamic, batch_size: 64}\n"
        "optimizer: {name: adam, learning_rate: 0.003}\n"
        "training: {epochs: 8, verbose: 0, early_stopping: {patience: 3}}\n"
    )
    out = tmp_path / "model"
    assert cli.main(["train", str(recipe), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert sorted(p.name for p in out.iterdir()) == ["card.json", "logs", "model.keras", "samples.png"]
    assert list((out / "logs").rglob("events.out.tfevents*")), "TensorBoard logs are kept with the model"
    card = json.loads((out / "card.json").read_text())
    assert card["model"] == "vae" and card["data"]["name"] == "digits"
    assert card["parameters"] == vae_zoo.load(out).count_params()
    assert card["training"]["epochs_run"] >= 1
    for key in ("tensorflow", "keras", "tensorflow_probability", "vae_zoo"):
        assert key in card["versions"]
    # Training learned something: the test ELBO beats an untrained model's by far.
    untrained = vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=4, encoder={"name": "mlp", "hidden_sizes": [64]})
    from vae_zoo import data, evaluation

    test_images = data.load("digits", binarize="dynamic").take("test")[0]
    assert summary["test"]["elbo"] > evaluation.score(untrained, test_images)["elbo"] + 10

    assert cli.main(["evaluate", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["split"] == "test" and report["examples"] == 180
    assert abs(report["elbo"] - summary["test"]["elbo"]) < 2.0  # a fresh draw of z, same model and data
    assert report["elbo"] == pytest.approx(-(report["reconstruction_nll"] + report["kl"]), rel=1e-5)

    grid = tmp_path / "grid.png"
    assert cli.main(["sample", str(out), "--n", "16", "--out", str(grid), "--seed", "1"]) == 0
    assert grid.stat().st_size > 1000

    # A second run into the same folder is refused and leaves the first model as it was.
    before = (out / "card.json").read_text()
    assert cli.main(["train", str(recipe), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / "card.json").read_text() == before


def test_cli_list_and_info(capsys):
    assert cli.main(["list"]) == 0
    assert "vae" in capsys.readouterr().out.split()
    assert cli.main(["info", "vae"]) == 0
    out = capsys.readouterr().out
    assert "latent_dim = 20" in out and 'encoder = {"name": "mlp", "hidden_sizes": [400, 400]}' in out


def test_the_same_recipe_and_seed_give_the_same_card_figures(tmp_path):
    """Data order, dynamic binarization and training noise are keyed by the seed and the step: two runs agree exactly."""
    recipe = Path(__file__).parent.parent / "recipes" / "vae" / "mnist_mini.yaml"
    cards = []
    for run in ("a", "b"):
        assert cli.main(["train", str(recipe), "--smoke", "--out", str(tmp_path / run)]) == 0
        cards.append(json.loads((tmp_path / run / "card.json").read_text()))
    assert cards[0]["metrics"] == cards[1]["metrics"]
    stated = re.search(r"Smoke check \(--smoke\): test ELBO (-?\d+\.\d+)", recipe.read_text())
    assert stated, "the recipe's header states its smoke figure"
    assert f"{cards[0]['metrics']['test']['elbo']:.2f}" == stated.group(1), "the header's smoke figure is what the command gives"
    assert cards[0]["weights_sha256"] == cards[1]["weights_sha256"]
    assert cards[0]["training"]["best_epoch"] == cards[1]["training"]["best_epoch"]
