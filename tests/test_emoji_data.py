"""The emoji source: a fixed split by short name, exact 8-bit levels after compositing, the attribution carried
along; and 8-bit data in general, kept on the 256 levels through the pipelines."""

import json

import numpy as np
import pytest
from PIL import Image

import vae_zoo
from vae_zoo import data
from vae_zoo.data import emoji
from vae_zoo.errors import ConfigError, DataError
from vae_zoo.evaluation import report
from vae_zoo.training import recipe as recipes
from vae_zoo.training import runner

SHARED = emoji.TEAM_COPY
needs_shared = pytest.mark.skipif(not SHARED.is_file(), reason="the team's emoji64.npz is not beside this checkout")


def fake_npz(path, count=40, seed=0):
    """A small emoji .npz: random RGBA, short names shared by pairs (an emoji and its other style)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 64, 64, 4), dtype=np.uint8)
    images[:, :8, :8, 3] = 0  # a transparent corner
    names = np.array([f"emoji_{i // 2}" for i in range(count)])
    np.savez(path, images=images, category=rng.integers(0, 10, count).astype(np.int8),
             categories=np.array(emoji.CATEGORIES), short_name=names)
    return images, names


def test_the_split_is_by_short_name_and_fixed():
    names = [f"emoji_{i}" for i in range(2000)]
    splits = [emoji.split_of(name) for name in names]
    assert splits == [emoji.split_of(name) for name in names]  # a function of the name alone
    shares = {split: splits.count(split) / len(splits) for split in ("train", "validation", "test")}
    assert 0.07 < shares["test"] < 0.13 and 0.07 < shares["validation"] < 0.13


def test_compositing_keeps_every_value_on_the_256_levels():
    rgba = np.random.default_rng(1).integers(0, 256, (5, 8, 8, 4), dtype=np.uint8)
    for background in ((255, 255, 255), (0, 0, 0), (12, 200, 77)):
        rgb = emoji.composite(rgba, background)
        assert rgb.dtype == np.uint8
        exact = (rgba[..., :3] * (rgba[..., 3:] / 255.0) + np.array(background) * (1 - rgba[..., 3:] / 255.0))
        assert np.abs(rgb - exact).max() <= 0.5 + 1e-9
    opaque, clear = rgba.copy(), rgba.copy()
    opaque[..., 3], clear[..., 3] = 255, 0
    assert np.array_equal(emoji.composite(opaque, (0, 0, 0)), opaque[..., :3])
    assert np.all(emoji.composite(clear, (12, 200, 77)) == [12, 200, 77])


def test_a_user_npz_loads_split_by_name_with_rgb_or_rgba(tmp_path):
    images, names = fake_npz(tmp_path / "e.npz")
    bundle = data.load("emoji", path=tmp_path / "e.npz", labels=True)
    assert bundle.spec.shape == (64, 64, 3) and bundle.spec.num_classes == 10
    assert bundle.spec.attribution and "CC BY 4.0" in bundle.spec.attribution
    assert sum(bundle.count(s) for s in ("train", "validation", "test")) == len(images)
    x, _ = bundle.take("test")
    np.testing.assert_allclose(np.round(x * 255), x * 255, atol=1e-4)  # exact 8-bit levels
    rgba = data.load("emoji", path=tmp_path / "e.npz", mode="rgba")
    corner = rgba.take("train")[0][:, :8, :8]
    assert rgba.spec.shape == (64, 64, 4) and np.all(corner == 0)  # hidden colour cleared where alpha is 0
    with pytest.raises(ConfigError, match="background"):
        data.load("emoji", path=tmp_path / "e.npz", background="pink")
    with pytest.raises(DataError, match="npm pack"):
        data.load("emoji", path=tmp_path / "missing.npz")


def test_the_png_folder_of_the_npm_packages_reads_like_the_npz(tmp_path):
    package = tmp_path / "emoji-datasource-twitter"
    (package / "img" / "twitter" / "64").mkdir(parents=True)
    entries = []
    for i in range(12):
        entries.append({"short_name": f"e{i}", "category": emoji.CATEGORIES[i % 10], "image": f"{i:04x}.png",
                        "skin_variations": {"1F3FB": {"image": f"{i:04x}-1f3fb.png"}} if i % 3 == 0 else {}})
        for name in [entries[-1]["image"]] + [v["image"] for v in entries[-1]["skin_variations"].values()]:
            Image.fromarray(np.full((64, 64, 4), i * 20, np.uint8), "RGBA").save(package / "img" / "twitter" / "64" / name)
    (package / "emoji.json").write_text(json.dumps(entries))
    bundle = data.load("emoji", path=tmp_path, labels=True)
    assert sum(bundle.count(s) for s in ("train", "validation", "test")) == 12 + 4


@needs_shared
def test_no_emoji_crosses_from_train_into_test():
    with np.load(SHARED) as bundle:
        names = bundle["short_name"]
    assignment = {emoji.split_of(name) for name in names}
    assert assignment == {"train", "validation", "test"}
    by_name = {}
    for name in names:
        by_name.setdefault(name, set()).add(emoji.split_of(name))
    assert all(len(splits) == 1 for splits in by_name.values())
    counts = data.load("emoji")
    assert (counts.count("train"), counts.count("validation"), counts.count("test")) == (6098, 684, 790)


def test_the_attribution_travels_to_the_card_and_the_report(tmp_path):
    fake_npz(tmp_path / "e.npz", count=80)
    recipe = {"model": {"name": "vae", "data_shape": [64, 64, 3], "latent_dim": 2,
                        "encoder": {"name": "conv", "filters": [4, 4, 4]}, "likelihood": "logistic_mixture"},
              "data": {"name": "emoji", "path": str(tmp_path / "e.npz"), "batch_size": 8},
              "training": {"epochs": 1, "verbose": 0}}
    folder = tmp_path / "run"
    runner.train(recipes.parse(recipe), folder)
    card = json.loads((folder / "card.json").read_text())
    assert "Twemoji" in card["data"]["attribution"]
    written = report.evaluate(vae_zoo.load(folder), card["recipe"]["data"], tmp_path / "report", only=["generation"], limit=8)
    assert "Noto Emoji" in written["attribution"]


@pytest.mark.parametrize("source", ["mnist_mini", "digits"])
def test_grey_sources_keep_their_256_levels_through_the_pipelines(source):
    bundle = data.load(source, batch_size=64)
    batch = next(iter(bundle.train))
    levels = np.asarray(batch) * 255
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)
    assert len(np.unique(np.round(levels))) > 10


def test_a_folder_of_256x256_colour_pngs_streams_from_disk(tmp_path):
    rng = np.random.default_rng(2)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)).save(tmp_path / f"{i}.png")
    bundle = data.load("image_folder", path=tmp_path, color_mode="rgb", batch_size=4, validation_split=0.25, test_split=0.25)
    assert isinstance(bundle._splits["train"], data.Stream)  # read file by file, never held whole
    batch = np.asarray(next(iter(bundle.train)))
    assert batch.shape == (4, 256, 256, 3)
    np.testing.assert_allclose(batch * 255, np.round(batch * 255), atol=1e-4)
