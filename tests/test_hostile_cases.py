"""Hostile inputs found by hand on 0.4.7 that hung, crashed or answered unhelpfully; each now gets one clear line.

Every test here failed before its fix: an empty split that trained forever, a 5,000-layer stack that recursed,
a folder of mixed image files, a card that is JSON but not an object, an integer learning rate, messages that
named internal files, served inputs of the wrong rank, a forged model name in a compressed file's header, and
tensorflow-datasets builders that needed modules nobody installed.
"""

import json
import os
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import vae_zoo
from vae_zoo import cli
from vae_zoo.compression import container
from vae_zoo.data import tfds_builders
from vae_zoo.io import folders
from vae_zoo.models.sizing import MAX_DEPTH
from vae_zoo.training import recipe as recipes
from vae_zoo.training import runner

RECIPE = """\
model: {name: vae, latent_dim: 2, encoder: {name: mlp, hidden_sizes: [8]}}
data: {name: digits, binarize: static, batch_size: 32%s}
optimizer: {name: adam, learning_rate: %s}
training: {epochs: 1, jit_compile: false}
"""


def run_cli(argv, capsys):
    capsys.readouterr()
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.strip()]


def one_line(code, lines, expected):
    assert code == 2, (code, lines)
    assert len(lines) == 1 and "Traceback" not in lines[0] and "internal error" not in lines[0], lines
    assert expected in lines[0], lines[0]
    return lines[0]


def write_recipe(folder, extra_data="", learning_rate="0.001"):
    path = Path(folder) / "recipe.yaml"
    path.write_text(RECIPE % (extra_data, learning_rate))
    return path


# --------------------------------------------------------------------------- 1. an empty split


def test_a_split_emptied_by_a_filter_is_refused_before_training(tmp_path, capsys):
    recipe = write_recipe(tmp_path, ", exclude_classes: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]")
    started = time.perf_counter()
    code, lines = run_cli(["train", recipe, "--out", tmp_path / "out", "--smoke"], capsys)
    line = one_line(code, lines, "the train split of data 'digits' is empty after data.exclude_classes")
    assert "nothing to train on" in line
    assert time.perf_counter() - started < 60, "refused before any training"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.yaml"], "no output, lock or work folder"


# --------------------------------------------------------------------------- 2. deep stacks


def test_a_stack_deeper_than_the_bound_is_refused_before_it_is_built(tmp_path, capsys):
    started = time.perf_counter()
    with pytest.raises(vae_zoo.ConfigError, match=rf"encoder.hidden_sizes lists 5,000 layers, over the limit of {MAX_DEPTH}"):
        vae_zoo.create_model("vae", encoder={"name": "mlp", "hidden_sizes": [400] * 5000})
    with pytest.raises(vae_zoo.ConfigError, match=f"blocks_per_stage repeats a block 10,000 times, over the limit of {MAX_DEPTH}"):
        vae_zoo.create_model("hierarchical_vae", data_shape=(8, 8, 1), blocks_per_stage=10_000)
    assert time.perf_counter() - started < 10, "no dry build of the deep stack"
    # The bound itself builds.
    assert vae_zoo.create_model("vae", data_shape=(4,), likelihood="gaussian",
                                encoder={"name": "mlp", "hidden_sizes": [2] * MAX_DEPTH}).count_params() > 0
    # From a recipe: one line naming the key.
    recipe = tmp_path / "deep.yaml"
    recipe.write_text(RECIPE.replace("hidden_sizes: [8]", "hidden_sizes: [" + ", ".join(["400"] * 5000) + "]") % ("", "0.001"))
    code, lines = run_cli(["train", recipe, "--out", tmp_path / "out"], capsys)
    one_line(code, lines, "encoder.hidden_sizes lists 5,000 layers")
    assert not (tmp_path / "out").exists()


def test_a_saved_archive_with_a_deep_config_is_refused_as_a_model_file(tmp_path):
    folder = vae_zoo.save(vae_zoo.create_model("vae", latent_dim=2, encoder={"name": "mlp", "hidden_sizes": [8]}), tmp_path / "m")
    with zipfile.ZipFile(folder / "model.keras") as source:
        entries = {name: source.read(name) for name in source.namelist()}
    config = json.loads(entries["config.json"])
    config["config"]["encoder"]["hidden_sizes"] = [400] * 5000
    entries["config.json"] = json.dumps(config).encode()
    hostile = tmp_path / "deep.keras"
    with zipfile.ZipFile(hostile, "w") as target:
        for name, payload in entries.items():
            target.writestr(name, payload)
    with pytest.raises(vae_zoo.ModelFileError, match="lists 5,000 layers"):
        vae_zoo.load(hostile)


# --------------------------------------------------------------------------- 3. folders of mixed files


@pytest.fixture
def mixed_folder(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (12, 10), dtype=np.uint8)).save(folder / f"grey{i}.png")
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(folder / f"colour{i}.png")
        Image.fromarray(rng.integers(0, 256, (12, 10, 4), dtype=np.uint8)).save(folder / f"alpha{i}.png")
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(folder / f"animation{i}.gif")
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(folder / f"photo{i}.jpg")
        Image.fromarray(rng.integers(0, 256, (12, 10), dtype=np.uint8)).save(folder / f"bitmap{i}.bmp")
    (folder / "notes.png").write_text("not an image")
    (folder / "cut.png").write_bytes((folder / "grey0.png").read_bytes()[:40])
    Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(folder / "webp.png", format="WEBP")
    return folder


@pytest.mark.parametrize("color_mode, channels", [("grayscale", 1), ("rgb", 3)])
def test_a_folder_of_mixed_image_files_trains_and_counts_what_it_skipped(mixed_folder, color_mode, channels):
    # GIFs decode to RGB only: channels=1 once ended the run with "channels must be 0 or 3 for GIF".
    with pytest.warns(RuntimeWarning, match=r"skipped 3 of 27 files .*cut.png \(not a readable image"):
        data = vae_zoo.data.load("image_folder", path=str(mixed_folder), color_mode=color_mode, batch_size=8)
    assert data.data_shape == (12, 10, channels)
    assert sum(data.count(split) for split in ("train", "validation", "test")) == 24
    images = np.concatenate([batch.numpy() for batch in data.train])
    assert images.shape == (data.count("train"), 12, 10, channels) and np.isfinite(images).all()
    # A grey GIF frame is the grey of its RGB pixels, on the 256 levels.
    assert np.allclose(images * 255, np.round(images * 255), atol=1e-4)


def test_a_folder_without_a_readable_image_is_refused_naming_a_file(tmp_path, capsys):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "a.png").write_text("not an image")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE.replace("{name: digits, binarize: static, batch_size: 32%s}", "{name: image_folder, path: %s}")
                      % (folder, "0.001"))
    code, lines = run_cli(["train", recipe, "--out", tmp_path / "out"], capsys)
    one_line(code, lines, f"none of the 1 image files in {folder} can be read; the first: {folder / 'a.png'}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "recipe.yaml"]


def test_a_run_that_fails_before_its_first_epoch_ends_leaves_nothing_behind(tmp_path, monkeypatch):
    recipe = recipes.read(write_recipe(tmp_path))

    def failing_fit(*args, **kwargs):
        raise tf.errors.InvalidArgumentError(None, None, "a file in the stream could not be decoded")

    monkeypatch.setattr(runner, "fit", failing_fit)
    with pytest.raises(tf.errors.InvalidArgumentError):
        runner.train(recipe, tmp_path / "out", verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.yaml"], "no .out.run work folder and no lock"


# --------------------------------------------------------------------------- 4. malformed cards


@pytest.mark.parametrize("card, expected", [
    ("[1, 2, 3]", "must hold a JSON object (a model card), not list [1, 2, 3]"),
    ('"a string"', "must hold a JSON object"),
    ('{"model": "vae", "parameters": true}', "field 'parameters' must be an integer, got true"),
    ('{"recipe": {"data": [1]}}', "field 'recipe.data' must be an object, got [1]"),
    ('{"metrics": 3}', "field 'metrics' must be an object, got 3"),
])
def test_a_card_that_is_json_but_not_a_card_is_a_model_file_error(tmp_path, capsys, card, expected):
    folder = vae_zoo.save(vae_zoo.create_model("vae", latent_dim=2, encoder={"name": "mlp", "hidden_sizes": [8]}), tmp_path / "m")
    (folder / "card.json").write_text(card)
    with pytest.raises(vae_zoo.ModelFileError, match=re.escape(expected)):
        vae_zoo.load(folder)
    code, lines = run_cli(["evaluate", folder], capsys)
    one_line(code, lines, expected)


# --------------------------------------------------------------------------- 5. integer floats


def test_an_integer_learning_rate_reaches_keras_as_a_float(tmp_path, capsys):
    optimizer = recipes.build_optimizer({"optimizer": {"name": "adam", "learning_rate": 1, "beta_1": 0}})
    assert float(optimizer.learning_rate) == 1.0 and optimizer.beta_1 == 0.0
    recipe = write_recipe(tmp_path, learning_rate="1")
    code, lines = run_cli(["train", recipe, "--out", tmp_path / "out", "--smoke"], capsys)
    assert code == 0 and not any("should be float" in line for line in lines), lines
    # From the command line as well; 1000 may diverge, but it is a rate, not a type error.
    code, lines = run_cli(["train", recipe, "--out", tmp_path / "big", "--smoke", "--set", "optimizer.learning_rate=1000"], capsys)
    assert not any("should be float" in line or "internal error" in line for line in lines), lines


# --------------------------------------------------------------------------- 6. messages in the user's words


def test_an_unwritable_out_folder_is_named_not_the_lock_file(tmp_path, capsys, monkeypatch):
    recipe = write_recipe(tmp_path)
    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).endswith(".lock"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(folders.os, "open", read_only)
    code, lines = run_cli(["train", recipe, "--out", tmp_path / "ro" / "x"], capsys)
    line = one_line(code, lines, f"cannot write {tmp_path / 'ro' / 'x'}: {tmp_path / 'ro'} is not a folder one can write into")
    assert ".lock" not in line and "Permission denied" in line


def test_compress_into_a_missing_folder_and_export_onto_an_existing_one(tmp_path, capsys):
    np.savez(tmp_path / "digits.npz", images=(np.random.default_rng(0).random((3, 28, 28, 1)) > 0.5).astype(np.float32))
    code, lines = run_cli(["compress", "vae.mnist_mini", tmp_path / "digits.npz", "--out", tmp_path / "missing" / "x.vzc"], capsys)
    line = one_line(code, lines, f"cannot write {tmp_path / 'missing' / 'x.vzc'}: the folder {tmp_path / 'missing'} does not exist")
    assert "partial" not in line
    (tmp_path / "exported").mkdir()
    code, lines = run_cli(["export", "vae.mnist_mini", "--out", tmp_path / "exported"], capsys)
    line = one_line(code, lines, "--overwrite")
    assert sorted(tmp_path.iterdir()) == sorted([tmp_path / "digits.npz", tmp_path / "exported"])


# --------------------------------------------------------------------------- 7. served inputs of the wrong rank


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    path = vae_zoo.export(vae_zoo.load_pretrained("vae.mnist_mini"), tmp_path_factory.mktemp("served") / "vae")
    return tf.saved_model.load(str(path))


@pytest.mark.parametrize("signature, inputs, expected", [
    ("decode", {"z": np.zeros((3, 20, 1), np.float32)}, r"vae: input z must have shape \(batch, 20\); got shape\] \[3 20 1\]"),
    ("decode", {"z": np.zeros((2, 3, 20), np.float32)}, r"vae: input z must have shape \(batch, 20\)"),
    ("encode", {"x": np.zeros((2, 28, 28), np.float32)}, r"vae: input x must have shape \(batch, 28, 28, 1\)"),
    ("sample", {"n": np.array([2, 3], np.int32), "seed": np.int32(0)}, r"sample: n must be a single number; got\] \[2\]"),
    ("sample", {"n": np.int32(2), "seed": np.array([1, 2], np.int32)}, r"seed must be a single number"),
    ("log_likelihood", {"x": np.zeros((1, 28, 28, 1), np.float32), "k": np.zeros((2, 2), np.int32), "seed": np.int32(0)},
     r"log_likelihood: k must be a single number"),
])
def test_served_inputs_of_the_wrong_shape_are_named(served, signature, inputs, expected):
    with pytest.raises(tf.errors.InvalidArgumentError, match=expected):
        served.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})


def test_served_inputs_of_the_right_shape_still_work(served):
    assert served.signatures["decode"](z=tf.zeros([2, 20]))["mean"].shape == (2, 28, 28, 1)
    assert served.signatures["sample"](n=tf.constant(3), seed=tf.constant(1))["samples"].shape == (3, 28, 28, 1)


# --------------------------------------------------------------------------- 8. a forged name in a header


def test_decompress_never_opens_a_path_named_in_a_header(tmp_path, capsys, monkeypatch):
    images = (np.random.default_rng(1).random((4, 28, 28, 1)) > 0.5).astype(np.float32)
    np.savez(tmp_path / "x.npz", images=images)
    genuine = tmp_path / "x.vzc"
    assert run_cli(["compress", "vae.mnist_mini", tmp_path / "x.npz", "--out", genuine], capsys)[0] == 0
    header, words = container.unpack(genuine.read_bytes())
    assert header.model == "vae.mnist_mini"
    forged = tmp_path / "forged.vzc"
    header.model = "../../../../etc/passwd"
    forged.write_bytes(container.pack(header, words))  # a valid file: the checksum is recomputed
    opened = []
    real_load = vae_zoo.load
    monkeypatch.setattr(vae_zoo, "load", lambda path, *a, **k: opened.append(str(path)) or real_load(path, *a, **k))
    code, lines = run_cli(["decompress", forged, "--out", tmp_path / "back"], capsys)
    one_line(code, lines, "compressed with '../../../../etc/passwd', which is not a pretrained model; pass --model")
    assert opened == [] and not (tmp_path / "back").exists()
    # With --model the user names the folder, and the file decodes.
    code, lines = run_cli(["decompress", forged, "--model", "vae.mnist_mini", "--out", tmp_path / "back"], capsys)
    assert code == 0, lines
    assert np.array_equal(np.load(tmp_path / "back" / "images.npz")["images"], images)


def test_a_file_compressed_with_a_folder_records_its_name_not_its_path(tmp_path, capsys):
    folder = vae_zoo.save(vae_zoo.load_pretrained("vae.mnist_mini"), tmp_path / "models" / "mine")
    np.savez(tmp_path / "x.npz", images=np.zeros((2, 28, 28, 1), np.float32))
    assert run_cli(["compress", folder, tmp_path / "x.npz", "--out", tmp_path / "x.vzc"], capsys)[0] == 0
    header, _ = container.unpack((tmp_path / "x.vzc").read_bytes())
    assert header.model == "mine"


# --------------------------------------------------------------------------- 11. tensorflow-datasets builders


@pytest.mark.parametrize("name", sorted(tfds_builders.TFDS_BUILDERS))
def test_every_tfds_builder_the_zoo_falls_back_to_is_ready_to_download(name, tmp_path):
    # Nothing is downloaded: the builder, its code path (needs importlib_resources), its features and its URLs.
    for module in tfds_builders.TFDS_BUILDERS[name]:
        __import__(module)
    builder = tfds_builders.builder(name, data_dir=str(tmp_path))
    assert builder.code_path is not None and Path(str(builder.code_path)).name.endswith(".py")
    assert builder.info.features is not None
    assert builder.url_infos, f"{name} lists no download URLs"


def test_a_tfds_name_outside_the_table_is_refused():
    with pytest.raises(KeyError, match="add it to TFDS_BUILDERS"):
        tfds_builders.builder("celeb_a")
