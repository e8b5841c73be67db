import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from model_test_case import example_inputs

import vae_zoo
from vae_zoo import cli
from vae_zoo.io import pretrained


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
    tool = Path(__file__).parent.parent / "tools" / "publish_pretrained.py"
    env_zoo = tmp_path / "zoo"
    published = subprocess.run([sys.executable, str(tool), str(tmp_path / "run"), "vae.tiny", "--zoo", str(env_zoo)],
                               capture_output=True, text=True, timeout=300)
    assert published.returncode == 0, published.stderr[-2000:]
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
