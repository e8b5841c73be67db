"""Bad input gets a clear error that names the problem, and nothing saved is lost."""

import zipfile

import keras
import numpy as np
import pytest

import vae_zoo
from vae_zoo import cli, data
from vae_zoo.training import recipe as recipes


@pytest.fixture
def small_model():
    return vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=2, encoder={"name": "mlp", "hidden_sizes": [8]})


def test_unknown_model_name_suggests_the_closest():
    with pytest.raises(vae_zoo.UnknownNameError, match=r"unknown model 'vea'\. Did you mean 'vae'"):
        vae_zoo.create_model("vea")
    with pytest.raises(KeyError):  # also an ordinary KeyError
        vae_zoo.get_model_class("nothing_like_it")


def test_unknown_constructor_argument_is_named():
    with pytest.raises(vae_zoo.UnknownNameError, match=r"model 'vae' has no argument 'latent_dims'\. Did you mean 'latent_dim'"):
        vae_zoo.create_model("vae", latent_dims=3)


def test_unknown_likelihood_prior_and_network_names():
    with pytest.raises(vae_zoo.UnknownNameError, match="unknown likelihood 'bernouli'. Did you mean 'bernoulli'"):
        vae_zoo.create_model("vae", likelihood="bernouli")
    with pytest.raises(vae_zoo.UnknownNameError, match="unknown prior 'gauss'"):
        vae_zoo.create_model("vae", prior="gauss")
    with pytest.raises(vae_zoo.UnknownNameError, match="unknown network 'cnn'"):
        vae_zoo.create_model("vae", encoder={"name": "cnn"})


def test_wrong_input_shape_names_expected_and_actual(small_model):
    with pytest.raises(vae_zoo.InputError, match=r"vae expects inputs of shape \(batch, 8, 8, 1\), got \(2, 64\)"):
        small_model(np.zeros((2, 64), np.float32))
    with pytest.raises(vae_zoo.InputError, match=r"got \(2, 7, 8, 1\)"):
        small_model.elbo(np.zeros((2, 7, 8, 1), np.float32))


def test_wrong_dtype_and_nan_inputs(small_model):
    with pytest.raises(vae_zoo.InputError, match="expects float pixels in \\[0, 1\\], got dtype uint8 \\(divide uint8 images by 255\\)"):
        small_model(np.zeros((2, 8, 8, 1), np.uint8))
    bad = np.zeros((2, 8, 8, 1), np.float32)
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(vae_zoo.InputError, match="NaN"):
        small_model.encode(bad)


def test_model_rejects_a_loss_argument(small_model):
    with pytest.raises(ValueError, match="own loss"):
        small_model.compile(loss="mse")


# ---------------------------------------------------------------- recipes


def write(path, text):
    path.write_text(text)
    return path


def test_malformed_recipes_name_their_problem(tmp_path):
    cases = {
        "model: [unclosed": "is not a valid recipe: expected ',' or ']'",
        "- just a list": "must be a mapping of sections",
        "modle: {name: vae}\ndata: {name: digits}": "unknown section 'modle'. Did you mean 'model'",
        "data: {name: digits}": "has no 'model' section",
        "model: {latent_dim: 3}\ndata: {name: digits}": "model.name must be the name of a registered model",
        "model: {name: vea}\ndata: {name: digits}": "model.name: unknown model 'vea'",
        "model: {name: vae, latent: 3}\ndata: {name: digits}": "model.latent: model 'vae' has no argument 'latent'",
        "model: {name: vae}\ndata: {name: digits, binarise: dynamic}":
            "data.binarise: data set 'digits' has no option 'binarise'. Did you mean 'binarize'",
        "model: {name: vae}\ndata: {name: digits, max_length: 5}": "data.max_length: data set 'digits' has no option 'max_length'",
        "model: {name: vae}\ndata: {name: npz}": "data.path: data set 'npz' needs a path",
        "model: {name: vae}\ndata: {name: digitz}": "data.name: unknown data set 'digitz'. Did you mean 'digits'",
        "model: {name: sentence_vae}\ndata: {name: fortunes, binarize: dynamic}": "data.binarize must be 'none'",
        "model: {name: vae}\ndata: {name: digits, binarize: sometimes}": "data.binarize must be one of 'none', 'static', 'dynamic', got 'sometimes'",
        "model: {name: vae}\ndata: {name: digits}\ntraining: {epochs: 0}": "training.epochs must be an integer >= 1",
        "model: {name: vae}\ndata: {name: digits}\ntraining: {epoch: 3}": "training.epoch: training has no argument 'epoch'. Did you mean 'epochs'",
        "model: {name: vae}\ndata: {name: digits}\ncallbacks: {name: x}": "callbacks must be a list",
    }
    for i, (text, message) in enumerate(cases.items()):
        with pytest.raises(vae_zoo.RecipeError, match=message.replace("[", "\\[").replace("(", "\\(").replace(")", "\\)")):
            recipes.read(write(tmp_path / f"r{i}.yaml", text))


def test_missing_recipe_and_bad_overrides(tmp_path):
    with pytest.raises(vae_zoo.RecipeError, match="no recipe file at"):
        recipes.read(tmp_path / "nope.yaml")
    path = write(tmp_path / "r.yaml", "model: {name: vae}\ndata: {name: digits}")
    with pytest.raises(vae_zoo.RecipeError, match="must look like section.key=value"):
        recipes.read(path, overrides=["model.latent_dim"])
    with pytest.raises(vae_zoo.RecipeError, match="unknown section 'mdoel'"):
        recipes.read(path, overrides=["mdoel.latent_dim=3"])
    with pytest.raises(vae_zoo.RecipeError, match="model.name is not a mapping"):
        recipes.read(path, overrides=["model.name.x=3"])


def test_unknown_callback_and_optimizer(tmp_path):
    with pytest.raises(vae_zoo.RecipeError, match=r"callbacks\[0\].name: unknown callback 'early_stoping'. Did you mean 'early_stopping'"):
        recipes.parse({"model": {"name": "vae"}, "data": {"name": "digits"}, "callbacks": [{"name": "early_stoping"}]})
    with pytest.raises(vae_zoo.RecipeError, match="optimizer.name: unknown optimizer 'adamm'. Did you mean 'adam'"):
        recipes.parse({"model": {"name": "vae"}, "data": {"name": "digits"}, "optimizer": {"name": "adamm"}})


# ---------------------------------------------------------------- data


def test_missing_data_directories_are_named(tmp_path):
    with pytest.raises(vae_zoo.DataError, match=f"Fashion-MNIST directory {tmp_path / 'absent'} does not exist"):
        data.load("fashion_mnist", data_dir=tmp_path / "absent")
    with pytest.raises(vae_zoo.DataError, match="lacks train-images-idx3-ubyte\\[.gz\\], train-labels-idx1-ubyte\\[.gz\\]"):
        data.load("fashion_mnist", data_dir=tmp_path)
    with pytest.raises(vae_zoo.UnknownNameError, match="unknown data set 'fashion'. Did you mean 'fashion_mnist'"):
        data.load("fashion")


def test_data_options_are_checked_against_the_sources_schema():
    with pytest.raises(vae_zoo.UnknownNameError, match="data set 'digits' has no option 'batchsize'. Did you mean 'batch_size'"):
        data.load("digits", batchsize=8)
    with pytest.raises(vae_zoo.UnknownNameError, match="data set 'digits' has no option 'max_length'"):
        data.load("digits", max_length=8)  # a text option
    with pytest.raises(vae_zoo.ConfigError, match=r"batch_size must be an integer >= 1.*got '8' \(data set 'digits'\)"):
        data.load("digits", batch_size="8")
    with pytest.raises(vae_zoo.ConfigError, match="binarize must be 'none'.*data set 'fortunes'"):
        data.load("fortunes", binarize="dynamic")
    with pytest.raises(vae_zoo.DataError, match="data set 'image_folder' needs a path"):
        data.load("image_folder")


def test_bad_user_arrays(tmp_path):
    with pytest.raises(vae_zoo.DataError, match="NaN"):
        data.from_arrays(np.full((10, 4, 4), np.nan, np.float32))
    with pytest.raises(vae_zoo.DataError, match=r"pixels in \[0, 1\]"):
        data.from_arrays(np.full((10, 4, 4), 3.0, np.float32))
    with pytest.raises(vae_zoo.DataError, match="must be uint8 or floating point, got dtype <U1"):
        data.from_arrays(np.full((10, 4, 4), "a"))
    with pytest.raises(vae_zoo.DataError, match="labels must be 10 integers"):
        data.from_arrays(np.zeros((10, 4, 4), np.uint8), labels=np.zeros(10, np.float32))
    (tmp_path / "bad.idx").write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x05")
    with pytest.raises(vae_zoo.DataError, match="truncated"):
        data.read_idx(tmp_path / "bad.idx")


# ---------------------------------------------------------------- saved models


def test_corrupt_and_foreign_model_files(tmp_path, small_model):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "model.keras").write_bytes(b"not a zip archive at all")
    with pytest.raises(vae_zoo.ModelFileError, match="not a readable .keras archive"):
        vae_zoo.load(tmp_path / "junk")

    foreign = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    foreign.save(tmp_path / "foreign.keras")
    with pytest.raises(vae_zoo.ModelFileError, match="holds a 'Sequential', not a vae_zoo model"):
        vae_zoo.load(tmp_path / "foreign.keras")

    with pytest.raises(vae_zoo.ModelFileError, match="no saved model at"):
        vae_zoo.load(tmp_path / "absent")
    with pytest.raises(vae_zoo.ModelFileError, match="has no model.keras"):
        vae_zoo.load(tmp_path)

    # A zoo archive whose weights were damaged: the error names the file.
    good = small_model
    good.save(tmp_path / "good.keras")
    with zipfile.ZipFile(tmp_path / "good.keras") as src, zipfile.ZipFile(tmp_path / "damaged.keras", "w") as dst:
        for item in src.infolist():
            payload = src.read(item)
            dst.writestr(item, payload[: len(payload) // 2] if item.filename.endswith(".h5") else payload)
    with pytest.raises(vae_zoo.ModelFileError, match="cannot load .*damaged.keras"):
        vae_zoo.load(tmp_path / "damaged.keras")


def test_saving_never_overwrites_or_loses_a_saved_model(tmp_path, small_model, monkeypatch):
    folder = vae_zoo.save(small_model, tmp_path / "m")
    card_before = (folder / "card.json").read_text()
    with pytest.raises(vae_zoo.ModelFileError, match="already exists"):
        vae_zoo.save(small_model, folder)

    def broken_save(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(small_model, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        vae_zoo.save(small_model, folder, overwrite=True)
    assert (folder / "card.json").read_text() == card_before
    assert vae_zoo.load(folder).count_params() == small_model.count_params()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"], "no staging folder may be left behind"


# ---------------------------------------------------------------- CLI


def test_cli_prints_one_line_errors(tmp_path, capsys):
    assert cli.main(["info", "vea"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("vae-zoo: error: unknown model 'vea'. Did you mean 'vae'") and "\n" not in err
    assert err.endswith("Available: " + ", ".join(vae_zoo.list_models()) + ".")
    assert cli.main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert capsys.readouterr().err.strip() == f"vae-zoo: error: no recipe file at {tmp_path / 'missing.yaml'}"
    assert cli.main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "no saved model at" in capsys.readouterr().err
