"""A modality registered here, in the test, and nowhere else: ``vae-zoo sample`` renders a model's samples as
that modality does, with no other file changed (the modality seam of issue 31)."""

import json
from pathlib import Path

import numpy as np
import pytest

import vae_zoo
from vae_zoo import cli
from vae_zoo.data import MODALITIES, SOURCES, ArraySource, Modality, get_modality, list_modalities, register_modality, register_source
from vae_zoo.data.modalities import IMAGE_SUFFIXES


class Readings(Modality):
    """Sensor readings: one CSV row per example, and a line per sample on the terminal."""

    name = "test_readings"

    def save_samples(self, model, samples, out, spec=None, title=None):
        out = Path(out).with_suffix(".csv")
        rows = np.asarray(samples).reshape(len(samples), -1)
        np.savetxt(out, rows, delimiter=",", fmt="%.4f", header=f"{spec.name}: {title}")
        return [str(out)]

    def describe_samples(self, model, samples):
        return [f"reading {i}: mean {float(np.mean(row)):.3f}" for i, row in enumerate(np.asarray(samples))]


class Gauges(ArraySource):
    """Twelve gauges in a 3x4 panel, each a level in [0, 1] (a toy of the test's readings modality)."""

    modality = Readings.name
    num_classes = 2

    def splits(self):
        rng = np.random.default_rng(self.options["seed"])
        labels = rng.integers(0, 2, 40)
        levels = np.clip(rng.normal(0.3 + 0.4 * labels[:, None, None], 0.1, (40, 3, 4)), 0, 1).astype(np.float32)
        return {"train": (levels[:32], labels[:32]), "validation": (levels[32:36], labels[32:36]), "test": (levels[36:], labels[36:])}


@pytest.fixture
def readings():
    register_modality(Readings)
    register_source("test_gauges")(Gauges)
    yield Readings.name
    del MODALITIES[Readings.name], SOURCES["test_gauges"]


def test_the_registry_names_the_modalities_and_refuses_unknown_ones(readings):
    assert {"image", "audio", "text", readings} <= set(list_modalities())
    assert isinstance(get_modality(readings), Readings)
    with pytest.raises(vae_zoo.UnknownNameError, match="unknown modality 'imag'. Did you mean 'image'"):
        get_modality("imag")
    with pytest.raises(ValueError, match="already registered"):
        register_modality(Readings)
    assert tuple(cli.IMAGE_SUFFIXES) == IMAGE_SUFFIXES, "the CLI names the image modality's suffixes without importing it"


def test_vae_zoo_sample_renders_as_the_modality_of_the_models_data(readings, tmp_path, capsys):
    recipe = tmp_path / "gauges.yaml"
    recipe.write_text(
        "model: {name: vae, latent_dim: 2, encoder: {name: mlp, hidden_sizes: [8]}}\n"
        "data: {name: test_gauges, batch_size: 16}\n"
        "training: {epochs: 1, verbose: 0, jit_compile: false}\n"
    )
    out = tmp_path / "model"
    assert cli.main(["train", str(recipe), "--out", str(out)]) == 0
    assert json.loads((out / "card.json").read_text())["data"]["modality"] == readings
    capsys.readouterr()

    picture = tmp_path / "samples.png"
    assert cli.main(["sample", str(out), "--n", "5", "--seed", "1", "--out", str(picture)]) == 0
    printed = capsys.readouterr().out.splitlines()
    table = tmp_path / "samples.csv"
    assert [line.split(": mean ")[0] for line in printed[:5]] == [f"reading {i}" for i in range(5)]
    assert printed[5:] == [str(table)], "the terminal shows the modality's lines, then the file written"
    assert not picture.exists(), "the readings modality writes no picture"
    rows = np.loadtxt(table, delimiter=",")
    assert rows.shape == (5, 12) and np.all(np.isfinite(rows))
    assert table.read_text().startswith("# test_gauges: vae: 5 samples")
