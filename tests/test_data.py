import gzip

import numpy as np
from PIL import Image

from vae_zoo import data


def write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def fake_idx_directory(folder, rng, train=12, test=5):
    for prefix, count in (("train", train), ("t10k", test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, 28, 28)))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, (count,)))


def test_idx_round_trip(tmp_path, rng):
    array = rng.integers(0, 256, (3, 4, 5))
    write_idx(tmp_path / "a.gz", array)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a.gz"), array)


def test_fashion_mnist_reads_idx_files_from_data_dir_and_holds_out_the_last_training_images(tmp_path, rng, monkeypatch):
    fake_idx_directory(tmp_path, rng, train=10_012)
    raw = data.read_idx_directory(tmp_path, "test")
    bundle = data.load("fashion_mnist", data_dir=tmp_path)
    assert {split: bundle.count(split) for split in data.SPLITS} == {"train": 12, "validation": 10_000, "test": 5}
    np.testing.assert_allclose(bundle.take("validation")[0][..., 0], raw["train"][0][12:] / 255.0)
    assert bundle.data_shape == (28, 28, 1)
    monkeypatch.setenv("VAE_ZOO_FASHION_MNIST_DIR", str(tmp_path))
    assert len(data.load("fashion_mnist").take("test")[0]) == 5


def test_pointing_a_data_variable_elsewhere_reads_the_new_files_not_the_cached_ones(tmp_path, rng, monkeypatch):
    """The splits are cached per process; the cache must not outlive the variable that chose the files (it once
    handed the real Fashion-MNIST's users a 5-image fixture after a test had pointed the variable at it)."""
    small, large = tmp_path / "small", tmp_path / "large"
    for folder, test_count in ((small, 5), (large, 7)):
        folder.mkdir()
        fake_idx_directory(folder, rng, train=10_012, test=test_count)
    monkeypatch.setenv("VAE_ZOO_FASHION_MNIST_DIR", str(small))
    assert data.load("fashion_mnist").count("test") == 5
    monkeypatch.setenv("VAE_ZOO_FASHION_MNIST_DIR", str(large))
    assert data.load("fashion_mnist").count("test") == 7


def test_bundled_mnist_mini_is_real_and_split_in_fixed_parts():
    first = data.load("mnist_mini", labels=True)
    assert first.spec == data.DataSpec("mnist_mini", "image", (28, 28, 1), num_classes=10, levels=256)
    second = data.load("mnist_mini", labels=True)
    sizes = {split: first.count(split) for split in data.SPLITS}
    assert sizes == {"train": 8000, "validation": 1000, "test": 1000}
    np.testing.assert_array_equal(first.take("test")[1], second.take("test")[1])
    assert set(np.unique(first.take("train")[1])) == set(range(10))
    x, y = next(iter(first.train))
    assert x.shape == (128, 28, 28, 1) and y.shape == (128,)
    assert 0.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0


def test_binarization_modes():
    dynamic = data.load("digits", binarize="dynamic", batch_size=2000)
    epoch_1, epoch_2 = (next(iter(dynamic.train)).numpy() for _ in range(2))
    assert set(np.unique(epoch_1)) <= {0.0, 1.0}
    assert not np.array_equal(np.sort(epoch_1.ravel()), np.sort(epoch_2.ravel())) or not np.array_equal(epoch_1, epoch_2)
    # Validation is binarized once: the same every time it is read.
    v1, v2 = (next(iter(dynamic.validation)).numpy() for _ in range(2))
    np.testing.assert_array_equal(v1, v2)
    assert set(np.unique(v1)) <= {0.0, 1.0}
    static = data.load("digits", binarize="static", batch_size=2000)
    np.testing.assert_array_equal(static.take("train")[0], data.load("digits", binarize="static").take("train")[0])
    grey = data.load("digits", binarize="none")
    assert len(np.unique(grey.take("train")[0])) > 2
    # The binarized pixel is 1 with probability equal to the grey level.
    grey_mean = grey.take("train")[0].mean()
    assert abs(static.take("train")[0].mean() - grey_mean) < 0.01


def test_the_training_stream_is_pulled_between_steps_on_a_cpu_and_prefetched_with_an_accelerator(monkeypatch):
    from vae_zoo.data import base

    bundle = data.load("digits", binarize="dynamic", batch_size=64, limit=200)
    on_cpu = bundle.training_stream()
    assert on_cpu.options().autotune.enabled is False
    assert on_cpu.options().threading.private_threadpool_size == 1
    monkeypatch.setattr(base, "has_accelerator", lambda: True)
    accelerated = bundle.training_stream()
    assert accelerated.options().autotune.enabled is not False
    # How the stream is fed changes nothing in what it holds.
    for left, right in zip(on_cpu.take(5), accelerated.take(5)):
        np.testing.assert_array_equal(left.numpy(), right.numpy())


def test_limit_shrinks_every_split():
    bundle = data.load("digits", limit=50)
    assert {split: bundle.count(split) for split in data.SPLITS} == {"train": 50, "validation": 50, "test": 50}


def test_user_arrays_npz_and_image_folder(tmp_path, rng):
    images = rng.integers(0, 256, (40, 6, 6), dtype=np.uint8)
    labels = rng.integers(0, 3, (40,))
    bundle = data.from_arrays(images, labels, batch_size=8)
    assert bundle.data_shape == (6, 6, 1)
    assert sum(bundle.count(split) for split in data.SPLITS) == 40
    assert bundle.num_classes == 3
    x, y = next(iter(bundle.train))
    assert x.dtype == np.float32 and x.shape == (8, 6, 6, 1)

    np.savez(tmp_path / "d.npz", images=images, labels=labels)
    assert data.load("npz", path=tmp_path / "d.npz").data_shape == (6, 6, 1)

    for label in ("cats", "dogs"):
        (tmp_path / "folder" / label).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 256, (6, 6), dtype=np.uint8)).save(tmp_path / "folder" / label / f"{i}.png")
    folder = data.load("image_folder", path=tmp_path / "folder", labels=True, validation_split=0.2, test_split=0.2)
    assert folder.data_shape == (6, 6, 1)
    assert sorted(np.concatenate([folder.take(split)[1] for split in data.SPLITS]).tolist()) == [0] * 5 + [1] * 5


def image_folder(root, rng, per_class=12, size=(8, 8)):
    for label in ("a", "b", "c"):
        (root / label).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(root / label / f"{i}.png")
    return root


def test_an_image_folder_is_streamed_from_disk_and_resumes_by_epoch(tmp_path, rng):
    root = image_folder(tmp_path / "images", rng)
    bundle = data.load("image_folder", path=root, binarize="dynamic", batch_size=4, labels=True, validation_split=0.25, test_split=0.25)
    assert isinstance(bundle._splits["train"], data.Stream), "the folder must not be read into memory"
    assert {split: bundle.count(split) for split in data.SPLITS} == {"train": 18, "validation": 9, "test": 9}
    assert bundle.spec.modality == "image" and bundle.num_classes == 3 and bundle.data_shape == (8, 8, 1)
    x, y = next(iter(bundle.train))
    assert set(np.unique(x)) <= {0.0, 1.0} and set(np.unique(y)) <= {0, 1, 2}, "labels must survive dynamic binarization"
    declared = bundle.spec.element_spec(labels=True)
    for pipeline in (bundle.train, bundle.validation, bundle.training_stream()):
        assert [tuple(t.shape) for t in pipeline.element_spec] == [tuple(t.shape) for t in declared]
    images, labels = bundle.take("validation", 5)
    assert images.shape == (5, 8, 8, 1) and set(np.unique(images)) <= {0.0, 1.0} and labels.dtype == np.int64
    np.testing.assert_array_equal(images, bundle.take("validation", 5)[0])  # held-out splits: binarized once
    steps = bundle.steps_per_epoch()
    straight = [b[0].numpy() for b in bundle.training_stream(0).take(3 * steps)]
    resumed = [b[0].numpy() for b in bundle.training_stream(2).take(steps)]
    for a, b in zip(straight[2 * steps:], resumed):
        np.testing.assert_array_equal(a, b)
    first, second = np.concatenate(straight[:steps]), np.concatenate(straight[steps:2 * steps])
    assert not np.array_equal(first, second), "every epoch is reshuffled and rebinarized"


def test_a_model_trains_on_a_streamed_folder_through_the_runner(tmp_path, rng):
    from vae_zoo.training import recipe as recipes
    from vae_zoo.training import runner

    root = image_folder(tmp_path / "images", rng)
    recipe = recipes.parse({"model": {"name": "vae", "latent_dim": 2, "encoder": {"name": "mlp", "hidden_sizes": [16]}},
                            "data": {"name": "image_folder", "path": str(root), "binarize": "static", "batch_size": 8},
                            "training": {"epochs": 2, "verbose": 0}})
    out, history, card = runner.train(recipe, tmp_path / "model", verbose=0)
    assert card["data"]["examples"] == {"train": 28, "validation": 4, "test": 4}
    assert len(history["loss"]) == 2 and np.isfinite(card["metrics"]["test"]["elbo"])


ALL_SOURCES = {"mnist_mini", "fashion_mnist", "mnist", "cifar10", "shapes", "digits", "npz", "image_folder", "wav_folder", "fsdd",
               "fsdd_mel", "fortunes", "ptb", "text_file", "ag_news", "imdb_reviews"}


def test_every_source_is_a_registered_class_whose_option_defaults_pass_their_own_checks():
    assert ALL_SOURCES <= set(data.list_datasets())
    for name in data.list_datasets():
        source = data.get_source(name)
        assert issubclass(source, data.DataSource) and source.name == name and source.description
        schema = source.schema()
        assert {"batch_size", "labels", "limit", "seed", "binarize", "exclude_classes"} <= set(schema), name
        for option_name, option in schema.items():
            assert option.description, (name, option_name)
            if option.default is not None:
                option.check(option.default, option_name)
    assert data.get_source("npz").schema()["path"].required and "path" not in data.get_source("digits").schema()


def test_the_cli_lists_the_data_sets_and_their_options(capsys):
    from vae_zoo import cli

    assert cli.main(["list", "--data", "fsdd*"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == ["fsdd", "fsdd_mel"]
    assert cli.main(["info", "--data", "image_folder"]) == 0
    out = capsys.readouterr().out
    assert "path = required" in out and "color_mode = 'grayscale'" in out and "batch_size = 128" in out


def test_shapes_offers_its_factor_grid_and_fsdd_its_features():
    grid = data.get_source("shapes")().factor_grid()
    assert grid.examples.shape == (6144, 32, 32, 1) and grid.names[0] == "shape" and len(grid.sizes) == grid.factors.shape[1]
    assert data.get_source("digits")().factor_grid() is None
    assert (data.get_source("fsdd").features, data.get_source("fsdd_mel").features) == ("log_magnitude", "log_mel")
