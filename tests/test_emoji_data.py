"""The emoji source: a fixed split by short name, exact 8-bit levels after compositing, the attribution carried
along; and 8-bit data in general, kept on the 256 levels through the pipelines."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vae_zoo
from vae_zoo import cli, data
from vae_zoo.data import emoji, images
from vae_zoo.errors import ConfigError, DataError
from vae_zoo.evaluation import report
from vae_zoo.training import recipe as recipes
from vae_zoo.training import runner

SHARED = emoji.TEAM_COPY
needs_shared = pytest.mark.skipif(not SHARED.is_file(), reason="the team's emoji64.npz is not beside this checkout")


def fake_npz(path, count=40, seed=0):
    """A small emoji .npz: random RGBA, short names shared by pairs (an emoji in its two styles)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, 64, 64, 4), dtype=np.uint8)
    images[:, :8, :8, 3] = 0  # a transparent corner
    names = np.array([f"emoji_{i // 2}" for i in range(count)])
    np.savez(path, images=images, category=rng.integers(0, 10, count).astype(np.int8), style=(np.arange(count) % 2).astype(np.int8),
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


def test_grey_and_resized_emoji_are_pillows_luminance_and_lanczos_resize(tmp_path):
    """mode grey and size: what an OOD pair with a 28x28 grey model needs; each image is Pillow's 'L' of the
    composite, resized with Lanczos, still on the 256 levels."""
    fake_npz(tmp_path / "e.npz")
    rgb = data.load("emoji", path=tmp_path / "e.npz", background="black").take("test")[0]
    grey = data.load("emoji", path=tmp_path / "e.npz", background="black", mode="grey", size=28)
    assert grey.spec.shape == (28, 28, 1) and grey.spec.levels == 256
    x = grey.take("test")[0]
    assert len(x) == len(rgb)
    for image, colour in zip(x, rgb):
        picture = Image.fromarray(np.round(colour * 255).astype(np.uint8)).convert("L").resize((28, 28), Image.Resampling.LANCZOS)
        np.testing.assert_array_equal(np.round(image[..., 0] * 255), np.asarray(picture))
    same_size = data.load("emoji", path=tmp_path / "e.npz", mode="grey").take("test")[0]
    assert same_size.shape[1:] == (64, 64, 1)
    with pytest.raises(ConfigError, match="size"):
        data.load("emoji", path=tmp_path / "e.npz", size=4)


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
    assert bundle.spec.levels == 256


def test_both_unpacked_packages_give_both_styles_with_their_pixels(tmp_path):
    # `tar xzf` of both packages into one folder merges them into package/: one emoji.json, img/google and img/twitter.
    package = tmp_path / "package"
    for folder, level in (("google", 10), ("twitter", 200)):
        (package / "img" / folder / "64").mkdir(parents=True)
        for i in range(10):
            pixels = np.full((64, 64, 4), 255, np.uint8)
            pixels[..., 0] = level + i
            Image.fromarray(pixels, "RGBA").save(package / "img" / folder / "64" / f"{i:04x}.png")
    (package / "img" / "apple" / "64").mkdir(parents=True)  # a style the source does not read
    Image.fromarray(np.zeros((64, 64, 4), np.uint8), "RGBA").save(package / "img" / "apple" / "64" / "0000.png")
    entries = [{"short_name": f"e{i}", "category": emoji.CATEGORIES[i], "image": f"{i:04x}.png"} for i in range(10)]
    (package / "emoji.json").write_text(json.dumps(entries))
    bundle = data.load("emoji", path=tmp_path, labels=True)
    for split in data.SPLITS:
        x, labels = bundle.take(split)
        styles = bundle.source.example_styles(split)
        assert len(styles) == len(x)
        # Noto's reds are 10 + category, Twemoji's 200 + category: each example carries its own style and label.
        np.testing.assert_array_equal(np.round(x[:, 0, 0, 0] * 255), np.where(styles == 0, 10, 200) + labels)
    assert sum(bundle.count(s) for s in data.SPLITS) == 20
    only_twemoji = data.load("emoji", path=tmp_path, style="twemoji")
    assert sum(only_twemoji.count(s) for s in data.SPLITS) == 10
    assert all(set(only_twemoji.source.example_styles(s)) <= {1} for s in data.SPLITS)


def test_example_styles_follow_limit_and_excluded_classes(tmp_path):
    fake_npz(tmp_path / "e.npz", count=200)
    full = data.load("emoji", path=tmp_path / "e.npz", labels=True, mode="rgba")
    x, labels = full.take("train")
    styles = full.source.example_styles("train")
    assert len(styles) == len(x) and set(styles) == {0, 1}
    trimmed = data.load("emoji", path=tmp_path / "e.npz", labels=True, mode="rgba", exclude_classes=[3], limit=20)
    _, kept_labels = trimmed.take("train")
    kept = labels != 3
    np.testing.assert_array_equal(kept_labels, labels[kept][:20])
    np.testing.assert_array_equal(trimmed.source.example_styles("train"), styles[kept][:20])


def test_emoji_data_without_a_file_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_ZOO_EMOJI", str(tmp_path / "nowhere"))
    with pytest.raises(DataError, match="npm pack emoji-datasource-google@16.0.0"):
        data.load("emoji")
    with pytest.raises(DataError, match="lacks style"):
        np.savez(tmp_path / "old.npz", images=np.zeros((2, 64, 64, 4), np.uint8), category=[0, 1], short_name=["a", "b"])
        data.load("emoji", path=tmp_path / "old.npz")


def test_info_describes_the_emoji_source_and_its_attribution(capsys):
    assert cli.main(["info", "--data", "emoji"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("emoji: 7,572 colour emoji") and "modality: image" in out
    assert "attribution: Emoji images: Noto Emoji by Google" in out and "CC BY 4.0" in out
    for option in ("path", "mode", "background", "style"):
        assert f"\n  {option} = " in out


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
    noto, twemoji = (data.load("emoji", style=style) for style in emoji.STYLES)
    assert [noto.count(s) + twemoji.count(s) for s in data.SPLITS] == [6098, 684, 790]
    assert noto.count("train") == twemoji.count("train") == 3049  # every emoji is drawn in both styles


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


# The 256 float32 values k / 255 that 8-bit data must take, exactly (as numpy and TensorFlow both divide).
EIGHT_BIT = np.arange(256).astype(np.float32) / np.float32(255)


def assert_exact_levels(x):
    """Every value of ``x`` is one of the float32 k / 255, bit for bit, and within 1e-6 of k / 255."""
    x = np.asarray(x)
    assert x.dtype == np.float32
    assert np.isin(x, EIGHT_BIT).all()
    k = np.round(x.astype(np.float64) * 255)
    np.testing.assert_allclose(x.astype(np.float64), k / 255, rtol=0, atol=1e-7)


def test_the_256_levels_are_distinct_in_float32():
    assert len(np.unique(EIGHT_BIT)) == 256
    np.testing.assert_array_equal(np.round(EIGHT_BIT.astype(np.float64) * 255), np.arange(256))


GREY_SOURCES = ["mnist_mini", pytest.param("fashion_mnist", marks=pytest.mark.skipif(
    not Path(images.DEBIAN_FASHION_MNIST).is_dir(), reason="Debian's dataset-fashion-mnist is not installed"))]


@pytest.mark.parametrize("source", GREY_SOURCES)
def test_grey_sources_load_all_256_levels_exactly(source):
    bundle = data.load(source)
    assert bundle.spec.levels == 256
    x, _ = bundle.take("train")
    assert_exact_levels(x)
    # Real 8-bit photographs of digits and clothes use every level, and each stays distinguishable.
    np.testing.assert_array_equal(np.unique(x), EIGHT_BIT)


@pytest.mark.parametrize("source", ["mnist_mini", "digits"])
def test_grey_sources_keep_their_256_levels_through_the_pipelines(source):
    bundle = data.load(source, batch_size=64, labels=True)
    train, _ = next(iter(bundle.train))  # shuffled and batched
    assert_exact_levels(train)
    assert_exact_levels(next(iter(bundle.validation))[0])
    assert_exact_levels(next(iter(bundle.training_stream(first_epoch=3)))[0])  # the resumable stream
    assert len(np.unique(train)) > 10


def test_levels_say_how_the_data_are_quantized():
    rng = np.random.default_rng(0)
    assert data.from_arrays(rng.integers(0, 256, (20, 4, 4), dtype=np.uint8)).spec.levels == 256
    assert data.from_arrays(rng.random((20, 4, 4)).astype(np.float32)).spec.levels is None
    assert data.load("mnist_mini", binarize="static", limit=10).spec.levels == 2
    assert data.load("mnist_mini", binarize="dynamic", limit=10).spec.levels == 2
    assert data.load("digits", limit=10).spec.levels == 256


def colour_pngs(folder, count=12, size=256):
    """``count`` RGB PNGs whose first pixel's red names the file; the rest small random content."""
    rng = np.random.default_rng(2)
    written = {}
    for i in range(count):
        pixels = np.zeros((size, size, 3), np.uint8)
        pixels[:16, :16] = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        pixels[0, 0, 0] = 20 * i
        Image.fromarray(pixels).save(folder / f"{i}.png")
        written[20 * i] = pixels
    return written


def test_a_folder_of_256x256_colour_pngs_streams_from_disk(tmp_path):
    written = colour_pngs(tmp_path)
    bundle = data.load("image_folder", path=tmp_path, color_mode="rgb", batch_size=4, validation_split=0.25, test_split=0.25)
    assert all(isinstance(bundle._splits[s], data.Stream) for s in data.SPLITS)  # read file by file, never held whole
    assert bundle.spec.shape == (256, 256, 3) and bundle.spec.levels == 256
    batch = np.asarray(next(iter(bundle.train)))
    assert batch.shape == (4, 256, 256, 3)
    assert_exact_levels(batch)
    seen = 0
    for split in data.SPLITS:
        for x in bundle.take(split)[0]:  # every example is its file's bytes / 255, exactly
            np.testing.assert_array_equal(x, written[int(round(x[0, 0, 0] * 255))] / np.float32(255))
            seen += 1
    assert seen == 12


def test_a_resized_image_folder_stays_on_the_256_levels(tmp_path):
    colour_pngs(tmp_path, count=4, size=48)
    bundle = data.load("image_folder", path=tmp_path, color_mode="rgb", image_size=[20, 30], validation_split=0.25,
                       test_split=0.25, labels=True)
    x, _ = bundle.take("train")
    assert x.shape == (2, 20, 30, 3)
    assert_exact_levels(x)
    assert data.load("image_folder", path=tmp_path, binarize="static", validation_split=0.25, test_split=0.25).spec.levels == 2
