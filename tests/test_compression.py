"""Compression: known-answer tests of the coding, bit-exact round trips, and clear refusals of bad files."""

import json

import constriction
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import special

import vae_zoo
from vae_zoo import cli
from vae_zoo import data as data_module
from vae_zoo.compression import baselines, container, files, vq_codes
from vae_zoo.compression.buckets import PriorBuckets
from vae_zoo.compression.container import CompressedFileError
from vae_zoo.io.saving import weights_digest

CATEGORICAL = constriction.stream.model.Categorical(perfect=False)


@pytest.fixture(scope="module")
def vae():
    return vae_zoo.load_pretrained("vae.mnist_mini")


@pytest.fixture(scope="module")
def digits():
    """The bundled digits' test split, binarized once as the zoo scores it, and grey."""
    binary = data_module.load("mnist_mini", binarize="dynamic").take("test")[0]
    grey = data_module.load("mnist_mini").take("test")[0]
    return binary, grey


def random_stack(rng, words=64):
    return constriction.stream.stack.AnsCoder(rng.integers(0, 2**32, size=words, dtype=np.uint32))


# --------------------------------------------------------------------------- known answers


def test_coding_known_categorical_symbols_costs_their_information_content(rng):
    probabilities = np.array([0.5, 0.25, 0.125, 0.0625, 0.0625])
    symbols = rng.choice(len(probabilities), size=5000, p=probabilities)
    information = -np.log2(probabilities[symbols]).sum()
    coder = constriction.stream.stack.AnsCoder()
    coder.encode_reverse(symbols.astype(np.int32), CATEGORICAL, np.tile(probabilities, (len(symbols), 1)))
    assert information <= coder.num_bits() <= information + 64, (coder.num_bits(), information)
    # The range coder of the lossy path, under per-symbol distributions as the VQ prior gives them.
    encoder = constriction.stream.queue.RangeEncoder()
    encoder.encode(symbols.astype(np.int32), CATEGORICAL, np.tile(probabilities, (len(symbols), 1)))
    assert information <= encoder.num_bits() <= information + 64


def test_buckets_have_equal_prior_mass_and_the_posterior_masses_sum_to_one():
    buckets = PriorBuckets(10)
    assert np.allclose(np.diff(special.ndtr(buckets.edges)), 1 / 1024, atol=1e-12)
    masses = buckets.posterior_masses(np.array([0.0, 1.5, -2.0]), np.array([1.0, 0.1, 0.02]))
    assert np.allclose(masses.sum(axis=1), 1.0)
    assert np.allclose(masses[0], 1 / 1024, atol=1e-12), "q = p puts the prior's mass on every bucket"


def test_bits_back_with_the_posterior_equal_to_the_prior_costs_nothing(rng):
    """Pop z under q = N(0, 1), push it under the prior: the stack ends where it began."""
    buckets = PriorBuckets(10)
    coder = random_stack(rng)
    before = coder.get_compressed().copy()
    masses = buckets.posterior_masses(np.zeros(200), np.ones(200))
    z = coder.decode(CATEGORICAL, masses)
    coder.encode_reverse(z, constriction.stream.model.Uniform(buckets.count))
    assert abs(coder.num_bits() - 32 * len(before)) <= 32


def test_bucketed_latent_coding_of_a_gaussian_costs_what_the_discretization_predicts(rng):
    """Net bits of pop-under-q, push-under-p: the sum of bits + log2 Q(bucket) of the buckets popped, and in
    expectation the discretized KL, which for fine buckets is the closed-form KL(q || p)."""
    mean, stddev, n = 1.0, 0.5, 4000
    buckets = PriorBuckets(10)
    masses = buckets.posterior_masses(np.full(n, mean), np.full(n, stddev))
    coder = random_stack(rng, words=4000)
    before = coder.num_bits()
    z = coder.decode(CATEGORICAL, masses)
    coder.encode_reverse(z, constriction.stream.model.Uniform(buckets.count))
    predicted = (buckets.bits + np.log2(masses[np.arange(n), z])).sum()
    assert abs((coder.num_bits() - before) - predicted) <= 64 + 0.002 * abs(predicted)
    closed_form_kl_bits = 0.5 * (stddev**2 + mean**2 - 1 - np.log(stddev**2)) / np.log(2)
    discretized_kl_bits = float((masses[0] * (np.log2(masses[0]) + buckets.bits)).sum())
    assert discretized_kl_bits == pytest.approx(closed_form_kl_bits, rel=0.01)
    # The draws are q's: their mean cost is the discretized KL, within a few standard errors.
    assert predicted / n == pytest.approx(discretized_kl_bits, abs=0.1)


# --------------------------------------------------------------------------- lossless round trips


def test_lossless_round_trip_of_a_data_set_is_bit_exact_and_near_the_elbo(vae, digits):
    binary = digits[0][:300]
    digest = weights_digest(vae)
    raw, summary = files.compress(vae, binary, "vae.mnist_mini", digest)
    decoded = files.decompress(raw, vae, digest)
    assert decoded["images"].dtype == binary.dtype and np.array_equal(decoded["images"], binary)
    assert summary["method"] == "bits_back" and summary["bytes"] == len(raw)
    from vae_zoo.compression.report import negative_elbo_bits

    payload_bits = 8 * (summary["payload_bytes"] - summary["initial_bytes"])
    elbo_bits = negative_elbo_bits(vae, binary, k=16) * len(binary)
    assert abs(payload_bits / elbo_bits - 1) < 0.02, (payload_bits, elbo_bits)


def test_lossless_round_trip_of_a_single_image_and_of_uint8_and_bool_arrays(vae, digits):
    one = digits[0][7]
    digest = weights_digest(vae)
    raw, _ = files.compress(vae, one, "vae.mnist_mini", digest)
    back = files.decompress(raw, vae, digest)["images"]
    assert back.shape == (1, 28, 28, 1) and np.array_equal(back[0], one)
    for dtype in (np.uint8, bool):
        images = digits[0][:20].astype(dtype)
        back = files.decompress(files.compress(vae, images, "vae.mnist_mini", digest)[0], vae, digest)["images"]
        assert back.dtype == images.dtype and np.array_equal(back, images)


def test_compressing_the_same_images_twice_gives_the_same_bytes(vae, digits):
    digest = weights_digest(vae)
    assert files.compress(vae, digits[0][:50], "m", digest)[0] == files.compress(vae, digits[0][:50], "m", digest)[0]


@pytest.mark.parametrize("name, options", [("vae", {}), ("beta_vae", {"beta": 4.0}), ("iwae", {}), ("bayesian_vae", {}),
                                           ("vae", {"encoder": {"name": "conv", "filters": [8, 16]}})])
def test_every_bernoulli_vae_with_a_normal_prior_round_trips(name, options, digits):
    model = vae_zoo.create_model(name, data_shape=(28, 28, 1), latent_dim=4, **options)
    model(np.zeros((1, 28, 28, 1), np.float32))
    digest = weights_digest(model)
    raw, _ = files.compress(model, digits[0][:40], name, digest)
    assert np.array_equal(files.decompress(raw, model, digest)["images"], digits[0][:40])


@pytest.mark.parametrize("name, options, why", [
    ("vae", {"likelihood": "gaussian"}, "discrete likelihood"),
    ("vae", {"prior": "vamp"}, r"N\(0, I\) prior"),
    ("cvae", {"num_classes": 10}, "conditional"),
    ("ladder_vae", {}, "hierarchy"),
    ("autoencoder", {}, "no Gaussian posterior"),
])
def test_models_that_cannot_code_losslessly_are_refused_with_the_reason(name, options, why):
    model = vae_zoo.create_model(name, data_shape=(28, 28, 1), **options)
    with pytest.raises(vae_zoo.InputError, match=why):
        files.method_for(model)


def test_grey_images_or_wrong_shapes_are_refused_before_coding(vae, digits):
    digest = weights_digest(vae)
    with pytest.raises(vae_zoo.InputError, match="binary images"):
        files.compress(vae, digits[1][:5], "m", digest)
    with pytest.raises(vae_zoo.InputError, match=r"shape \(28, 28, 1\)"):
        files.compress(vae, np.zeros((5, 784)), "m", digest)
    with pytest.raises(vae_zoo.InputError, match=r"1 channel\(s\); these have 3"):  # a larger image is coded in tiles
        files.compress(vae, np.zeros((5, 32, 32, 3)), "m", digest)
    with pytest.raises(vae_zoo.InputError, match="NaN"):
        files.compress(vae, np.full((2, 28, 28, 1), np.nan), "m", digest)


# --------------------------------------------------------------------------- damaged files and other models


@pytest.fixture(scope="module")
def small_file(vae, digits):
    return files.compress(vae, digits[0][:30], "vae.mnist_mini", weights_digest(vae))[0]


def test_another_models_weights_are_refused(small_file):
    other = vae_zoo.load_pretrained("vae.fashion_mnist")
    with pytest.raises(CompressedFileError, match="weights differ"):
        files.decompress(small_file, other, weights_digest(other))


def test_truncated_altered_or_foreign_files_are_refused_with_what_is_wrong(vae, small_file):
    digest = weights_digest(vae)
    for cut in (0, 3, 10, 40, 80, len(small_file) - 1):
        with pytest.raises(CompressedFileError, match="truncated|not a vae_zoo"):
            files.decompress(small_file[:cut], vae, digest)
    with pytest.raises(CompressedFileError, match="bytes after its payload"):
        files.decompress(small_file + b"\0", vae, digest)
    payload_start = len(small_file) - 40
    altered = bytearray(small_file)
    altered[payload_start] ^= 0x10
    with pytest.raises(CompressedFileError, match="checksum"):
        files.decompress(bytes(altered), vae, digest)
    with pytest.raises(CompressedFileError, match="not a vae_zoo compressed file"):
        files.decompress(b"\x89PNG\r\n\x1a\n" + bytes(100), vae, digest)
    header, words = container.unpack(small_file)
    wrong_content = container.pack(container.Header(**{**header.__dict__, "content_digest": bytes(16)}), words)
    with pytest.raises(CompressedFileError, match="differ from the ones compressed|initial bits"):
        files.decompress(wrong_content, vae, digest)
    newer = bytearray(small_file)
    newer[4] = container.FORMAT_VERSION + 1
    with pytest.raises(CompressedFileError, match="format version"):
        files.decompress(bytes(newer), vae, digest)


# --------------------------------------------------------------------------- lossy VQ codes


def test_vq_codes_round_trip_and_cost_minus_log2_p_codes(digits):
    model = vae_zoo.load_pretrained("vq_vae.mnist_mini")
    digest = weights_digest(model)
    grey = digits[1][:200]
    raw, summary = files.compress(model, grey, "vq_vae.mnist_mini", digest)
    decoded = files.decompress(raw, model, digest)
    codec = vq_codes.VQCodeCodec(model)
    assert np.array_equal(decoded["codes"], codec.codes(grey))
    assert decoded["reconstructions"].shape == grey.shape
    # The range coder reaches the information content: payload within 1% (plus two words) of -log2 p(codes).
    assert 8 * summary["payload_bytes"] == pytest.approx(summary["information_bits"], rel=0.01, abs=64)
    assert baselines.psnr(grey, decoded["reconstructions"]) > 15


def test_a_factorized_code_prior_round_trips_too(digits):
    model = vae_zoo.create_model("vq_vae", data_shape=(28, 28, 1), prior="categorical", codebook_size=16)
    model(np.zeros((1, 28, 28, 1), np.float32))
    digest = weights_digest(model)
    raw, _ = files.compress(model, digits[1][:20], "vq", digest)
    assert np.array_equal(files.decompress(raw, model, digest)["codes"], vq_codes.VQCodeCodec(model).codes(digits[1][:20]))


# --------------------------------------------------------------------------- the standard codecs


def test_the_standard_codecs_round_trip_and_report_sizes(digits):
    results = baselines.lossless_codecs(digits[0][:50], binary=True)
    assert set(results) == {"gzip", "bz2", "lzma", "PNG", "WebP"}
    assert all(r["bytes"] > 0 for r in results.values())
    jpeg = baselines.lossy_curve(digits[1][:20], "JPEG", (10, 90))
    assert jpeg[0]["bits_per_pixel"] < jpeg[1]["bits_per_pixel"] and jpeg[0]["psnr"] < jpeg[1]["psnr"]


# --------------------------------------------------------------------------- the command line


def test_compress_and_decompress_commands_round_trip_and_refuse_mistakes(tmp_path, capsys, digits):
    np.savez(tmp_path / "digits.npz", images=digits[0][:25])
    out = tmp_path / "digits.vzc"
    assert cli.main(["compress", "vae.mnist_mini", str(tmp_path / "digits.npz"), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["bytes"] == out.stat().st_size and summary["examples"] == 25
    assert cli.main(["decompress", str(out), "--out", str(tmp_path / "back")]) == 0
    capsys.readouterr()
    assert np.array_equal(np.load(tmp_path / "back" / "images.npz")["images"], digits[0][:25])
    assert (tmp_path / "back" / "preview.png").is_file()
    # An existing output is kept; another model's weights, a grey input or a damaged file: one line, exit 2.
    before = out.read_bytes()
    assert cli.main(["compress", "vae.mnist_mini", str(tmp_path / "digits.npz"), "--out", str(out)]) == 2
    assert out.read_bytes() == before
    assert cli.main(["decompress", str(out), "--model", "vae.fashion_mnist", "--out", str(tmp_path / "x")]) == 2
    np.savez(tmp_path / "grey.npz", images=digits[1][:5])
    assert cli.main(["compress", "vae.mnist_mini", str(tmp_path / "grey.npz"), "--out", str(tmp_path / "g.vzc")]) == 2
    (tmp_path / "cut.vzc").write_bytes(before[:-7])
    assert cli.main(["decompress", str(tmp_path / "cut.vzc"), "--out", str(tmp_path / "y")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert [line.split(":")[0] for line in errors] == ["vae-zoo"] * 4, errors
    assert "exists" in errors[0] and "weights differ" in errors[1] and "binary" in errors[2] and "truncated" in errors[3]
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists() and not (tmp_path / "g.vzc").exists()
    # --binarize makes grey images codable; a named data set split works as input.
    assert cli.main(["compress", "vae.mnist_mini", str(tmp_path / "grey.npz"), "--binarize", "threshold",
                     "--out", str(tmp_path / "g.vzc")]) == 0
    assert cli.main(["compress", "vae.mnist_mini", "mnist_mini", "--limit", "10", "--out", str(tmp_path / "d.vzc")]) == 0
    assert json.loads(capsys.readouterr().out.split("\n}\n")[1] + "\n}")["input"].startswith("mnist_mini:test")


def test_evaluate_reports_compression_beside_the_standard_codecs(tmp_path, capsys):
    assert cli.main(["evaluate", "vae.mnist_mini", "--only", "compression", "--limit", "100", "--out", str(tmp_path / "r")]) == 0
    part = json.loads(capsys.readouterr().out)["parts"]["compression"]
    rows = part["rows"]
    assert {"vae-zoo bits-back (file)", "model -ELBO", "gzip", "bz2", "lzma", "PNG", "WebP"} <= set(rows)
    assert rows["vae-zoo bits-back (file)"]["encode_images_per_second"] > 0


# --------------------------------------------------------------------------- hostile bytes


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damage_to_a_file_is_refused_never_decoded_wrongly(vae, small_file, data):
    """Random byte changes, cuts and insertions anywhere in a file: a CompressedFileError, or (a change that
    leaves the file as it was) the original images; never other images and never another exception."""
    digest = weights_digest(vae)
    raw = bytearray(small_file)
    kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
    at = data.draw(st.integers(0, len(raw) - 1))
    if kind == "flip":
        raw[at] ^= data.draw(st.integers(1, 255))
    elif kind == "cut":
        del raw[at:at + data.draw(st.integers(1, 16))]
    else:
        raw[at:at] = data.draw(st.binary(min_size=1, max_size=8))
    try:
        decoded = files.decompress(bytes(raw), vae, digest)
    except CompressedFileError:
        return
    assert bytes(raw) == small_file or np.array_equal(decoded["images"], files.decompress(small_file, vae, digest)["images"])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(raw=st.binary(max_size=400))
def test_arbitrary_bytes_are_refused_as_not_a_compressed_file(raw):
    with pytest.raises(CompressedFileError):
        container.unpack(b"VZC1" + raw if raw[:1] == b"V" else raw)
