import json

import pytest
from model_test_case import run_standard_checks

import vae_zoo
from vae_zoo.models.base import to_json
from vae_zoo.registry import hyperparameter_defaults


@pytest.mark.parametrize("name", vae_zoo.list_models())
def test_every_registered_model_passes_the_standard_checks(name, tmp_path):
    run_standard_checks(name, tmp_path)


@pytest.mark.parametrize("name", vae_zoo.list_models())
def test_every_model_has_a_description_and_json_defaults(name):
    assert vae_zoo.describe(name), f"{name} needs a one-line docstring"
    cls = vae_zoo.get_model_class(name)
    defaults = hyperparameter_defaults(cls)
    # The tuner searches these for every variant (beta wherever there is a KL or commitment term).
    assert {"data_shape", "latent_dim"} <= set(defaults)
    # Its network: an encoder spec, or (the hierarchical VAE's residual paths) a width.
    assert {"encoder", "width"} & set(defaults)
    assert ("beta" in defaults) == ("elbo" in cls.capabilities)
    as_json = to_json(defaults)
    assert json.loads(json.dumps(as_json)) == as_json, "defaults must be plain JSON values (they are the config)"


def test_list_models_filters_with_wildcards():
    assert "vae" in vae_zoo.list_models()
    assert vae_zoo.list_models("va*") == [n for n in vae_zoo.list_models() if n.startswith("va")]
    assert vae_zoo.list_models("no_such_*") == []


def test_create_model_passes_kwargs():
    model = vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=3)
    assert model.latent_dim == 3
    assert model.get_config()["latent_dim"] == 3


def test_registered_models_load_without_custom_objects(tmp_path):
    import keras

    model = vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=2, encoder={"name": "mlp", "hidden_sizes": [8]})
    model.save(tmp_path / "m.keras")
    assert type(keras.saving.load_model(tmp_path / "m.keras")) is type(model)
