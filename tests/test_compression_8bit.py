"""Lossless coding of 8-bit grey and colour images under the discretized logistic mixture: the coded
probabilities against the likelihood's, byte-exact round trips, and the file size against the -ELBO."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import vae_zoo
from vae_zoo import data as data_module
from vae_zoo.compression import files, report
from vae_zoo.compression.bits_back import BitsBackCodec
from vae_zoo.compression.pixels import LevelPixels, bin_probabilities
from vae_zoo.io.saving import weights_digest
from vae_zoo.models.logistic_mixture import (MIN_LOG_SCALE, DiscretizedLogisticMixture, bin_log_probability,
                                             parameter_count)


def test_bin_probabilities_are_the_likelihoods_bins_and_sum_to_one():
    rng = np.random.default_rng(0)
    means = rng.normal(size=(50,)) * 1.5
    log_scales = rng.uniform(-9.0, 3.0, size=(50,))
    table = bin_probabilities(means, log_scales)
    assert table.shape == (50, 256)
    np.testing.assert_allclose(table.sum(axis=1), 1.0, atol=1e-12)
    levels = np.arange(256)
    x = tf.constant((2.0 * levels / 255.0 - 1.0)[None, :], tf.float32)
    # The likelihood bounds the log-scales below at MIN_LOG_SCALE before its bins; the table does the same.
    bounded = np.maximum(log_scales, MIN_LOG_SCALE)
    reference = np.exp(bin_log_probability(x, tf.constant(means[:, None], tf.float32),
                                           tf.constant(bounded[:, None], tf.float32)).numpy())
    np.testing.assert_allclose(table, reference, rtol=2e-3, atol=1e-6)


@pytest.mark.parametrize("channels", [1, 3])
def test_the_channels_coded_in_turn_multiply_to_the_pixels_joint_probability(channels):
    """p(r) p(g | r) p(b | r, g), each a categorical over 256 levels with the component weights updated by the
    channels before it, is the mixture's p(r, g, b): what the likelihood scores."""
    rng = np.random.default_rng(channels)
    components = 4
    params = (rng.normal(size=(200, parameter_count(components, channels))) * 1.5).astype(np.float32)
    levels = rng.integers(0, 256, size=(200, channels)).astype(np.int32)
    coder = LevelPixels(components, channels)
    parts = coder._split(params)
    log_coded = np.zeros(200)
    for channel in range(channels):
        table = coder._channel_probabilities(parts, levels, channel)
        np.testing.assert_allclose(table.sum(axis=1), 1.0, atol=1e-10)
        log_coded += np.log(table[np.arange(200), levels[:, channel]])
    mixture = DiscretizedLogisticMixture(params[:, None, None, :], channels)
    log_joint = mixture.pixel_log_prob(levels[:, None, None, :].astype(np.float32) / 255.0).numpy()[:, 0, 0]
    np.testing.assert_allclose(log_coded, log_joint, rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def eight_bit():
    """A small MLP VAE with the logistic mixture, trained briefly on the bundled digits' 256 grey levels."""
    keras.utils.set_random_seed(0)
    data = data_module.load("mnist_mini", batch_size=100, limit=2000)
    model = vae_zoo.create_model("vae", data_shape=(28, 28, 1), latent_dim=8, likelihood={"name": "logistic_mixture", "components": 3},
                                 encoder={"name": "mlp", "hidden_sizes": [128]})
    model.compile(optimizer=keras.optimizers.Adam(2e-3))
    model.fit(data.train, epochs=3, verbose=0)
    return model, data.take("test")[0][:120]


def test_8bit_digits_round_trip_byte_for_byte_within_3_percent_of_the_elbo(eight_bit):
    model, images = eight_bit
    digest = weights_digest(model)
    raw, summary = files.compress(model, images, "m", digest)
    assert summary["method"] == "bits_back_8bit"
    decoded = files.decompress(raw, model, digest)["images"]
    assert decoded.dtype == images.dtype and np.array_equal(decoded, images)
    levels = np.rint(images * 255).astype(np.uint8)  # the same pixels as uint8: back as uint8
    back = files.decompress(files.compress(model, levels, "m", digest)[0], model, digest)["images"]
    assert back.dtype == np.uint8 and np.array_equal(back, levels)
    # The stated bound: the whole file, header and initial bits included, within 3% of the -ELBO over the set.
    elbo_bits = report.negative_elbo_bits(model, images, k=16) * len(images)
    assert 8 * len(raw) < 1.03 * elbo_bits, (8 * len(raw), elbo_bits)
    assert 8 * (summary["payload_bytes"] - summary["initial_bytes"]) > 0.97 * elbo_bits  # no free lunch either
    table = report.lossless(model, images, "m", digest)
    assert table["gap_to_elbo"] < 0.03 and "PNG" in table["rows"]


def through_png_folder(pixels, folder):
    """``pixels`` (n, H, W, 3) saved as PNGs in ``folder`` and read back as ``vae-zoo compress`` reads a folder."""
    from PIL import Image

    from vae_zoo.compression import inputs

    for i, image in enumerate(pixels):
        Image.fromarray(image).save(folder / f"{i}.png")
    return inputs.read_images(str(folder), channels=3, levels=True)[0]


def colour_mlp_vae(shape):
    """A small untrained MLP VAE with the logistic mixture on ``shape`` (coding is exact whatever its weights)."""
    model = vae_zoo.create_model("vae", data_shape=shape, latent_dim=4, likelihood="logistic_mixture",
                                 encoder={"name": "mlp", "hidden_sizes": [32]})
    model(np.zeros((1, *shape), np.float32))
    return model


def test_odd_sized_colour_images_round_trip_through_a_folder_of_pngs(tmp_path):
    """RGB, 13x11: an MLP VAE on that shape codes a folder of PNGs, and the same pixels come back."""
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, size=(4, 13, 11, 3), dtype=np.uint8)
    pixels[:, :6] = pixels[:, :1]  # some structure: repeated rows
    images = through_png_folder(pixels, tmp_path)
    model = colour_mlp_vae((13, 11, 3))
    assert images.dtype == np.uint8 and np.array_equal(images, pixels)
    digest = weights_digest(model)
    back = files.decompress(files.compress(model, images, "m", digest)[0], model, digest)["images"]
    assert np.array_equal(back, pixels)


def test_images_that_are_not_8bit_are_refused_before_coding(eight_bit):
    model, images = eight_bit
    digest = weights_digest(model)
    with pytest.raises(vae_zoo.InputError, match="8-bit images"):
        files.compress(model, images[:3] + 0.001, "m", digest)
    with pytest.raises(vae_zoo.InputError, match="8-bit images"):
        files.compress(model, np.full((2, 28, 28, 1), 300, np.int32), "m", digest)
    codec = BitsBackCodec(model)
    assert isinstance(codec.pixels, LevelPixels) and codec.pixels.channels == 1


# --------------------------------------------------------------------------- a hierarchy of latent groups


@pytest.fixture(scope="module")
def hierarchical():
    """The published 8-bit hierarchical VAE (Fashion-MNIST) and 40 of the bundled digits' 8-bit test images."""
    model = vae_zoo.load_pretrained("hierarchical_vae.fashion_mnist_8bit")
    return model, data_module.load("mnist_mini").take("test")[0][:40]


def test_group_buckets_have_equal_mass_under_each_groups_own_prior():
    from scipy import special

    from vae_zoo.compression.hierarchy import HierarchicalBitsBackCodec

    model = vae_zoo.create_model("hierarchical_vae", data_shape=(8, 8, 1), width=8, latent_channels=2,
                                 max_latent_resolution=8)
    codec = HierarchicalBitsBackCodec(model, latent_bits=6)
    prior = (np.array([0.5, -2.0]), np.log(np.array([0.3, 2.0]) ** 2))
    centres = codec.bucket_centres(np.array([[0, 63]]), (prior[0][None], prior[1][None]))
    masses = codec.posterior_masses(prior, prior)  # q = p: every bucket holds 1/64
    np.testing.assert_allclose(masses, 1.0 / 64, rtol=1e-9)
    # The centres are the prior's quantiles (i + 1/2) / 64.
    np.testing.assert_allclose(special.ndtr((centres[0] - prior[0]) / np.exp(0.5 * prior[1])), [0.5 / 64, 63.5 / 64], rtol=1e-5)


def test_a_hierarchy_of_groups_round_trips_byte_for_byte_near_its_elbo(hierarchical):
    model, images = hierarchical
    digest = weights_digest(model)
    raw, summary = files.compress(model, images, "hierarchical_vae.fashion_mnist_8bit", digest)
    assert summary["method"] == "bits_back_hierarchy"
    decoded = files.decompress(raw, model, digest)["images"]
    assert decoded.dtype == images.dtype and np.array_equal(decoded, images)
    elbo_bits = report.negative_elbo_bits(model, images, k=8) * len(images)
    payload_bits = 8 * (summary["payload_bytes"] - summary["initial_bytes"])
    assert abs(payload_bits / elbo_bits - 1) < 0.03, (payload_bits, elbo_bits)
    # The initial bits are the first image's posterior pops: at most bits per latent dimension, with a margin.
    latent_dims = sum(int(np.prod(s)) for s in model.group_shapes)
    assert 0 < 8 * summary["initial_bytes"] <= 10 * latent_dims + 256


def test_a_damaged_hierarchical_file_is_refused(hierarchical):
    model, images = hierarchical
    digest = weights_digest(model)
    raw = bytearray(files.compress(model, images[:3], "m", digest)[0])
    raw[-5] ^= 0x10
    with pytest.raises(files.CompressedFileError):
        files.decompress(bytes(raw), model, digest)


# --------------------------------------------------------------------------- images of any size, in tiles


@pytest.mark.parametrize("shape", [(1, 28, 28, 1), (2, 29, 57, 3), (1, 5, 3, 1)])
def test_tiles_put_back_together_give_the_image_and_pad_by_repeating_its_edges(shape):
    from vae_zoo.compression import tiling

    images = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    tile = (28, 28, shape[-1])
    tiles = tiling.to_tiles(images, tile)
    rows, columns = tiling.grid(shape[1:], tile)
    assert tiles.shape == (shape[0] * rows * columns, *tile)
    np.testing.assert_array_equal(tiling.from_tiles(tiles, shape[1:]), images)
    # The first image's last tile: its padded columns repeat the image's last column.
    last = tiles[rows * columns - 1]
    if shape[2] % 28:
        np.testing.assert_array_equal(last[:, -1], last[:, shape[2] % 28 - 1])


def test_an_odd_sized_colour_png_larger_than_the_model_round_trips_in_tiles(tmp_path):
    """RGB 37x29 PNGs under a model of 16x16x3: 3 x 2 tiles each, the header holds 37x29x3, the same pixels come back."""
    from vae_zoo.compression import container

    rng = np.random.default_rng(6)
    pixels = rng.integers(0, 256, size=(2, 37, 29, 3), dtype=np.uint8)
    pixels[:, 10:20] = pixels[:, 10:11]
    images = through_png_folder(pixels, tmp_path)
    model = colour_mlp_vae((16, 16, 3))
    digest = weights_digest(model)
    raw, summary = files.compress(model, images, "m", digest)
    assert summary["tiles_per_image"] == 6 and summary["examples"] == 2
    assert container.unpack(raw)[0].shape == (37, 29, 3)
    assert summary["bits_per_dim"] == 8 * len(raw) / pixels.size  # the image's own pixels, not the padding
    back = files.decompress(raw, model, digest)["images"]
    assert back.dtype == np.uint8 and np.array_equal(back, pixels)
    with pytest.raises(vae_zoo.InputError, match="3 channel"):
        files.compress(model, pixels[..., :1], "m", digest)


def test_a_larger_grey_image_round_trips_through_the_hierarchy_in_tiles(hierarchical):
    model, images = hierarchical
    mosaic = np.concatenate([np.concatenate(list(images[row * 2:row * 2 + 2]), axis=1) for row in range(2)])[None]
    picture = mosaic[:, :50, :45]  # 50x45: tiles cut through digits, the last ones padded
    digest = weights_digest(model)
    raw, summary = files.compress(model, picture, "m", digest)
    assert summary["tiles_per_image"] == 4
    assert np.array_equal(files.decompress(raw, model, digest)["images"], picture)


def test_padding_is_rebuilt_from_the_tiles_own_pixels_and_costs_no_bits(hierarchical):
    from vae_zoo.compression import tiling

    model, images = hierarchical
    picture = np.concatenate([images[:1], images[1:2]], axis=2)[:, :, :29]  # 28x29: a second tile of one column
    tiles = tiling.to_tiles(picture, model.data_shape)
    valid = tiling.valid_sizes(picture.shape[1:], model.data_shape)
    assert valid.tolist() == [[28, 28], [28, 1]]
    blanked = tiles * tiling.pixel_mask((28, 28), valid)[..., None]
    np.testing.assert_array_equal(tiling.fill_padding(blanked, valid), tiles)
    digest = weights_digest(model)
    one = files.compress(model, picture[:, :, :28], "m", digest)[1]["payload_bytes"]
    two = files.compress(model, picture, "m", digest)[1]
    # The second tile codes 28 pixels, not 784: far less than a whole tile's worth (bits-back of its latents aside).
    assert two["payload_bytes"] - one < 0.5 * one
