"""A data source registered here, in the test, and nowhere else: the library trains on it from a recipe,
evaluates, samples and exports it, with no other file changed (the data seam of issue 31)."""

import json

import numpy as np
import pytest

import vae_zoo
from vae_zoo import cli, schema
from vae_zoo.data import SOURCES, ArraySource, Option, register_source
from vae_zoo.training import recipe as recipes


class Stripes(ArraySource):
    """Procedural 8x8 stripes, horizontal or vertical, at a random phase (a toy)."""

    num_classes = 2
    options = {"examples": Option(300, schema.integer(30, 10_000), "examples in all, split 80/10/10")}

    def splits(self):
        count = self.options["examples"]
        rng = np.random.default_rng(self.options["seed"])
        labels = rng.integers(0, 2, count)
        phase = rng.integers(0, 4, count)
        rows = (np.arange(8)[None, :, None] + phase[:, None, None]) % 4 < 2
        columns = (np.arange(8)[None, None, :] + phase[:, None, None]) % 4 < 2
        images = np.where(labels[:, None, None] == 0, np.broadcast_to(rows, (count, 8, 8)),
                          np.broadcast_to(columns, (count, 8, 8))).astype(np.uint8) * 255
        train, validation = int(count * 0.8), int(count * 0.9)
        return {"train": (images[:train], labels[:train]), "validation": (images[train:validation], labels[train:validation]),
                "test": (images[validation:], labels[validation:])}


@pytest.fixture
def stripes():
    register_source("test_stripes")(Stripes)
    yield "test_stripes"
    del SOURCES["test_stripes"]


def test_a_source_registered_in_a_test_is_a_data_set_like_the_others(stripes):
    data = vae_zoo.data.load(stripes, examples=100, labels=True, batch_size=16)
    assert data.spec == vae_zoo.data.DataSpec(stripes, "image", (8, 8, 1), num_classes=2, levels=256)  # uint8 stripes
    assert {split: data.count(split) for split in vae_zoo.data.SPLITS} == {"train": 80, "validation": 10, "test": 10}
    assert stripes in vae_zoo.data.list_datasets()
    with pytest.raises(vae_zoo.UnknownNameError, match="data set 'test_stripes' has no option 'example'. Did you mean 'examples'"):
        vae_zoo.data.load(stripes, example=100)
    with pytest.raises(vae_zoo.ConfigError, match="examples must be an integer >= 30"):
        vae_zoo.data.load(stripes, examples=3)


def test_train_evaluate_sample_and_export_a_model_of_a_source_registered_in_the_test(stripes, tmp_path, capsys):
    recipe = tmp_path / "stripes.yaml"
    recipe.write_text(
        "model: {name: vae, latent_dim: 2, encoder: {name: mlp, hidden_sizes: [16]}}\n"
        f"data: {{name: {stripes}, examples: 200, binarize: static, batch_size: 32}}\n"
        "training: {epochs: 1, verbose: 0, jit_compile: false}\n"
    )
    # The recipe schema reads the source's options from the registry.
    with pytest.raises(vae_zoo.RecipeError, match="data.examples must be an integer >= 30"):
        recipes.read(recipe, overrides=["data.examples=3"])

    out = tmp_path / "model"
    assert cli.main(["train", str(recipe), "--smoke", "--out", str(out)]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["data"]["name"] == stripes and card["data"]["examples"] == {"train": 160, "validation": 20, "test": 20}
    capsys.readouterr()

    assert cli.main(["evaluate", str(out), "--only", "scores", "--out", str(tmp_path / "report")]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["data"] == stripes and np.isfinite(report["parts"]["scores"]["elbo"])

    grid = tmp_path / "grid.png"
    assert cli.main(["sample", str(out), "--n", "4", "--out", str(grid)]) == 0
    assert grid.stat().st_size > 100

    capsys.readouterr()
    assert cli.main(["export", str(out), "--out", str(tmp_path / "exported")]) == 0
    assert (tmp_path / "exported" / "saved_model.pb").is_file() or list((tmp_path / "exported").rglob("saved_model.pb"))
