"""Evaluation and applications: likelihood, latent diagnostics, anomalies, semi-supervised, disentanglement."""

import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from test_math import SIGMA, D, exact_log_likelihood, ppca_model

import vae_zoo
from vae_zoo import cli
from vae_zoo.data import shapes
from vae_zoo.evaluation import disentanglement
from vae_zoo.evaluation import metrics as evaluation
from vae_zoo.evaluation.sklearn import LatentTransformer
from vae_zoo.training import callbacks


@pytest.fixture(scope="module")
def digits():
    return vae_zoo.data.load("digits", binarize="static", batch_size=64, labels=True)


@pytest.fixture(scope="module")
def trained(digits):
    keras.utils.set_random_seed(0)
    model = vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=4, encoder={"name": "mlp", "hidden_sizes": [128]})
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(digits.train, epochs=25, verbose=0)
    return model


def test_importance_sampled_likelihood_converges_to_the_exact_ppca_value(rng):
    model, kernel, bias = ppca_model(rng, orthogonal=False)
    # A reasonable but inexact proposal: the true posterior mean, with 1.5 times the diagonal
    # of the true posterior covariance (which is not diagonal), so q != p(z|x).
    m_inv = np.linalg.inv(kernel @ kernel.T + SIGMA**2 * np.eye(len(kernel)))
    mean_kernel = kernel.T @ m_inv
    encoder_kernel = np.concatenate([mean_kernel, np.zeros_like(mean_kernel)], axis=1)
    encoder_bias = np.concatenate([-bias @ mean_kernel, np.log(1.5 * SIGMA**2 * np.diag(m_inv))])
    model.encoder.get_layer("encoder_out").set_weights([encoder_kernel.astype(np.float32), encoder_bias.astype(np.float32)])
    x = (rng.normal(size=(6, D)) * 2).astype(np.float32)
    exact = exact_log_likelihood(x, kernel, bias)
    errors = {k: np.abs(evaluation.log_likelihood(model, x, k=k, chunk=1000, seed=1) - exact).mean() for k in (1, 10, 5000)}
    assert errors[5000] < 0.05, errors  # within 0.05 nats of the closed form
    assert errors[5000] < errors[10] < errors[1], errors
    # The graph version (used by the exported signature) agrees with the compiled one.
    graph = evaluation.importance_log_likelihood(model, x, k=5000, chunk=700, seed=tf.constant([1, 0]))
    assert np.abs(graph.numpy() - exact).mean() < 0.05


def test_elbo_is_below_the_importance_sampled_likelihood(trained, digits):
    images = digits.take("test")[0][:100]
    log_p = evaluation.log_likelihood(trained, images, k=500, seed=0)
    elbo = trained.elbo(images, num_samples=100).numpy()
    # E[IS_k] >= ELBO for every example; single-example estimates are noisy, their mean is not.
    gap = log_p - elbo
    assert gap.mean() > 4 * gap.std() / np.sqrt(len(gap)), (gap.mean(), gap.std())


def test_latent_diagnostics(trained, digits):
    from vae_zoo.evaluation import latents

    images = digits.take("test")[0]
    active, variances = latents.active_units(trained, images)
    assert 1 <= active <= 4 and variances.shape == (4,)
    per_dim = latents.kl_per_dimension(trained, images)
    assert per_dim.shape == (4,) and np.all(per_dim >= 0)
    information = evaluation.mutual_information(trained, images)
    assert 0.5 < information <= np.log(len(images)) + 1e-6
    # A collapsed encoder (q(z|x) = p(z) for all x) carries no information about x.
    collapsed = vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=4, encoder={"name": "mlp", "hidden_sizes": [8]})
    layer = collapsed.encoder.get_layer("encoder_out")
    layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    assert abs(evaluation.mutual_information(collapsed, images)) < 0.05


def test_anomaly_scores_separate_noise_from_digits(trained, digits):
    normal = digits.take("test")[0][:100]
    noise = (np.random.default_rng(0).random((100, 8, 8, 1)) < 0.5).astype(np.float32)
    auroc = evaluation.anomaly_auroc(trained, normal, noise, k=50)
    assert set(auroc) == {"reconstruction_error", "negative_elbo", "negative_log_likelihood"}
    assert all(value > 0.9 for value in auroc.values()), auroc


def test_semi_supervised_latents_beat_chance(trained, digits):
    result = evaluation.semi_supervised(trained, digits, labels_per_class=(10,), repeats=2)
    assert 0.4 < result["10_per_class"]["latent_accuracy"] <= 1.0
    assert 0.4 < result["10_per_class"]["pixels_accuracy"] <= 1.0


def test_latent_transformer_drops_into_a_scikit_learn_pipeline(trained, digits):
    (train_x, train_y), (test_x, test_y) = digits.take("train"), digits.take("test")
    pipeline = make_pipeline(LatentTransformer(trained), LogisticRegression(max_iter=2000))
    pipeline.fit(train_x.reshape(len(train_x), -1), train_y)
    assert pipeline.score(test_x.reshape(len(test_x), -1), test_y) > 0.5
    np.testing.assert_allclose(LatentTransformer(trained).transform(test_x[:5]), trained.transform(test_x[:5]), rtol=1e-5)


def test_disentanglement_metrics_know_good_from_bad():
    images, factors = shapes.generate()
    assert images.shape == (6144, 32, 32) and factors.shape == (6144, 5)
    assert np.array_equal(shapes.index_of(factors), np.arange(len(factors)))
    rng = np.random.default_rng(0)
    # A perfectly disentangled code: each dimension is one factor (plus a little noise).
    perfect = factors + rng.normal(scale=0.05, size=factors.shape)
    assert disentanglement.mutual_information_gap(perfect, factors) > 0.9
    assert disentanglement.mutual_information_gap(rng.normal(size=(len(factors), 5)), factors) < 0.05
    # Mixing the factors by a dense rotation destroys the axis alignment that MIG rewards.
    mixed = perfect @ np.linalg.qr(rng.normal(size=(5, 5)))[0]
    assert disentanglement.mutual_information_gap(mixed, factors) < 0.5

    row_of = {image.tobytes(): i for i, image in enumerate(images)}
    encode_perfect = lambda batch: perfect[[row_of[image.tobytes()] for image in batch]]
    score = disentanglement.beta_vae_score(encode_perfect, images, factors, shapes.FACTOR_SIZES, shapes.index_of, train_points=200, test_points=100)
    assert score > 0.95
    encode_noise = lambda batch: rng.normal(size=(len(batch), 5))
    assert disentanglement.beta_vae_score(encode_noise, images, factors, shapes.FACTOR_SIZES, shapes.index_of, train_points=200, test_points=100) < 0.45


def test_image_logger_writes_reconstructions_and_samples_to_tensorboard(tmp_path, trained, digits):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = callbacks.ImageLogger(tmp_path, validation_images=digits.take("validation")[0], every=1, examples=8)
    logger.set_model(trained)
    logger.on_epoch_end(0)
    events = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    events.Reload()
    assert {"reconstructions", "samples"} <= set(events.Tags()["tensors"])


def test_evaluate_report_writes_every_applicable_part(tmp_path, trained, capsys):
    folder = vae_zoo.save(trained, tmp_path / "model", card={"recipe": {"data": {"name": "digits", "binarize": "static"}}})
    out = tmp_path / "report"
    assert cli.main(["evaluate", str(folder), "--out", str(out), "--k", "50", "--limit", "150"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["split"] == "test" and report["seed"] == 0 and report["examples"] == 150
    parts = report["parts"]
    assert parts["nll"]["k"] == 50 and parts["nll"]["nll"] < -parts["scores"]["elbo"] + 1.0
    assert "skipped" in parts["anomaly"] and "exclude_classes" in parts["anomaly"]["skipped"]
    assert "skipped" in parts["disentanglement"]
    for name in ("reconstructions.png", "samples.png", "interpolation.png", "latent_tsne.png", "latent_pca.png"):
        assert (out / name).stat().st_size > 1000, name
    assert cli.main(["evaluate", str(folder), "--out", str(out), "--only", "nl"]) == 2
    assert "unknown report part 'nl'. Did you mean 'nll'" in capsys.readouterr().err


def test_anomaly_part_uses_the_held_out_class(tmp_path):
    data = vae_zoo.data.load("digits", binarize="static", exclude_classes=[0], batch_size=64)
    assert 0 not in data.take("train")[1]
    keras.utils.set_random_seed(0)
    model = vae_zoo.create_model("vae", data_shape=(8, 8, 1), latent_dim=4, encoder={"name": "mlp", "hidden_sizes": [64]})
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(data.train, epochs=10, verbose=0)
    from vae_zoo.evaluation import report

    result = report.evaluate(model, {"name": "digits", "binarize": "static", "exclude_classes": [0]}, tmp_path, only=["anomaly"], anomaly_k=20)
    anomaly = result["parts"]["anomaly"]
    assert anomaly["held_out_classes"] == [0] and anomaly["anomalous_examples"] > 10
    assert set(anomaly["auroc"]) == {"reconstruction_error", "negative_elbo", "negative_log_likelihood"}
    assert all(0.0 <= v <= 1.0 for v in anomaly["auroc"].values())


def test_semi_supervised_binarizes_training_images_like_the_test_split(trained):
    from unittest import mock

    data = vae_zoo.data.load("digits", binarize="dynamic", labels=True)
    assert len(np.unique(data.take("train")[0])) > 2 and set(np.unique(data.take("test")[0])) <= {0.0, 1.0}
    from sklearn.pipeline import Pipeline

    seen = []
    original = Pipeline.fit

    def record(self, features, labels):
        seen.append(np.unique(features).size)
        return original(self, features, labels)

    with mock.patch.object(Pipeline, "fit", record):
        evaluation.semi_supervised(trained, data, labels_per_class=(10,), repeats=1)
    # The pixel classifier (the second fit) was trained on binary pixels, like the test images.
    assert seen[1] <= 2


# --------------------------------------------------------------------------- out-of-distribution detection


def test_ood_detection_metrics_have_known_answers():
    from vae_zoo.evaluation import ood

    perfect = ood.detection_metrics(np.arange(100.0), np.arange(100.0) + 1000)
    assert perfect == {"auroc": 1.0, "auprc": 1.0, "fpr_at_95_tpr": 0.0}
    reversed_ = ood.detection_metrics(np.arange(100.0) + 1000, np.arange(100.0))
    assert reversed_["auroc"] == 0.0 and reversed_["fpr_at_95_tpr"] == 1.0
    same = ood.detection_metrics(np.ones(50), np.ones(50))
    assert same["auroc"] == 0.5


def test_complexity_estimates_grow_with_the_image_content():
    from vae_zoo.evaluation import ood

    blank = np.zeros((1, 28, 28, 1), np.float32)
    noisy = (np.random.default_rng(0).random((1, 28, 28, 1)) < 0.5).astype(np.float32)
    assert ood.png_bits(blank)[0] < ood.png_bits(noisy)[0]
    assert ood.bz2_bits(blank)[0] < ood.bz2_bits(noisy)[0]


def test_evaluate_reports_ood_scores_for_another_data_set(tmp_path, capsys):
    from vae_zoo import cli
    from vae_zoo.data import images

    assert cli.main(["evaluate", "vae.mnist_mini", "--only", "ood", "--ood-data", "shapes", "--out", str(tmp_path / "x")]) == 2
    assert "shape" in capsys.readouterr().err
    if not Path(os.environ.get("VAE_ZOO_FASHION_MNIST_DIR", images.DEBIAN_FASHION_MNIST)).is_dir():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist; .ci/run does)")
    assert cli.main(["evaluate", "vae.mnist_mini", "--only", "ood", "--ood-data", "fashion_mnist", "--limit", "60",
                     "--anomaly-k", "8", "--regret-steps", "50", "--out", str(tmp_path / "r")]) == 0
    part = json.loads(capsys.readouterr().out)["parts"]["ood"]
    assert {"negative_log_likelihood", "input_complexity_png", "input_complexity_bz2", "input_complexity_jxl",
            "typicality", "likelihood_regret", "dose"} <= set(part["scores"])
    assert part["regret"]["steps"] == 50
    assert all(0.0 <= s["auroc"] <= 1.0 for s in part["scores"].values())
    assert (tmp_path / "r" / "ood_scores.png").is_file()


def test_jpeg_xl_code_lengths_are_those_of_files_that_decode_to_the_image():
    """The input-complexity compressor: each length is a lossless JPEG XL file's, which gives back the pixels."""
    import io

    from PIL import Image

    from vae_zoo.evaluation import ood

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, size=(3, 28, 28, 1)).astype(np.float32) / 255.0
    flat = np.zeros((1, 28, 28, 1), np.float32)
    bits = ood.jxl_bits(np.concatenate([grey, flat]))
    assert np.all(bits[:3] > 8 * 28 * 28 * 0.9) and bits[3] < 0.1 * bits[0]  # noise is incompressible, flat is not
    buffer = io.BytesIO()
    Image.fromarray((grey[0, ..., 0] * 255).round().astype(np.uint8)).save(buffer, format="JXL", lossless=True)
    assert 8 * buffer.tell() == bits[0]
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(buffer.getvalue()))), (grey[0, ..., 0] * 255).round().astype(np.uint8))


def test_the_ood_set_takes_its_own_options_from_the_command_line(tmp_path, capsys):
    """--ood-option KEY=VALUE: emoji turned grey and resized to the 28x28 of vae.mnist_mini; bad pairs are named."""
    from test_emoji_data import fake_npz

    fake_npz(tmp_path / "e.npz", count=200)
    command = ["evaluate", "vae.mnist_mini", "--only", "ood", "--ood-data", "emoji", "--limit", "40", "--anomaly-k", "4",
               "--regret-steps", "0", "--out", str(tmp_path / "r")]
    assert cli.main(command + ["--ood-option", f"path={tmp_path / 'e.npz'}"]) == 2
    assert "shape" in capsys.readouterr().err  # 64x64x3 emoji do not fit a 28x28x1 model
    assert cli.main(command + ["--ood-option", "mode"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert cli.main(command + [f"--ood-option=path={tmp_path / 'e.npz'}", "--ood-option", "mode=grey",
                               "--ood-option", "size=28", "--ood-option", "background=black"]) == 0
    part = json.loads(capsys.readouterr().out)["parts"]["ood"]
    assert part["out_spec"] == {"name": "emoji", "path": str(tmp_path / "e.npz"), "mode": "grey", "size": 28,
                                "background": "black"}
    assert "dose" in part["scores"] and part["out_examples"] > 0


def test_dose_densities_are_gaussian_kernel_estimates_and_rank_improbable_statistics_higher():
    """DoSE's known answers: each fitted density is the Gaussian KDE of the standardized statistic (computed here
    directly, Scott's bandwidth n^(-1/5)), the score is minus their sum, and statistics from another distribution
    (four standard deviations away) score higher than held-out ones from the fitted one."""
    from scipy.special import logsumexp

    from vae_zoo.evaluation.dose import DensityOfStates

    rng = np.random.default_rng(0)
    fitted = {"a": rng.normal(5.0, 2.0, 400), "b": rng.gamma(3.0, 10.0, 400)}
    states = DensityOfStates().fit(fitted)
    probe = {"a": np.array([5.0, 9.0, -3.0]), "b": np.array([30.0, 5.0, 200.0])}
    found = states.log_densities(probe)
    for name, values in fitted.items():
        centre, spread = values.mean(), values.std()
        h = len(values) ** (-1.0 / 5.0)
        z, points = (probe[name] - centre) / spread, (values - centre) / spread
        direct = logsumexp(-0.5 * ((z[:, None] - points[None, :]) / h) ** 2, axis=1) - np.log(len(values) * h * np.sqrt(2 * np.pi))
        np.testing.assert_allclose(found[name], direct, rtol=1e-6)
    np.testing.assert_allclose(states.score(probe), -(found["a"] + found["b"]))
    held_out = {"a": rng.normal(5.0, 2.0, 300), "b": rng.gamma(3.0, 10.0, 300)}
    shifted = {"a": rng.normal(13.0, 2.0, 300), "b": rng.gamma(3.0, 10.0, 300)}
    from vae_zoo.evaluation.ood import detection_metrics
    assert detection_metrics(states.score(held_out), states.score(shifted))["auroc"] > 0.9
    with pytest.raises(ValueError, match="missing"):
        states.score({"a": np.zeros(2)})
    with pytest.raises(ValueError, match="finite"):
        DensityOfStates().fit({"a": np.array([1.0, np.nan, 2.0])})


def test_dose_statistics_add_up_to_the_elbo_and_tell_noise_from_digits(trained, digits):
    """The statistics of k draws: reconstruction + cross-entropy - entropy is the mean -log weight (-ELBO), and
    the IS estimate of -log p(x) from the same draws lies below it; DoSE fitted on validation digits flags noise."""
    from vae_zoo.evaluation import dose
    from vae_zoo.evaluation.ood import detection_metrics

    images = digits.take("test")[0][:50]
    found = dose.statistics(trained, images, draws=64, seed=3)
    assert set(found) == set(dose.STATISTICS) and all(v.shape == (50,) for v in found.values())
    negative_elbo = found["reconstruction"] + found["cross_entropy"] - found["entropy"]
    reference = -trained.elbo(images, num_samples=200).numpy()
    assert np.abs(negative_elbo - reference).mean() < 0.1 * np.abs(reference).mean()
    assert np.all(found["negative_log_likelihood"] <= negative_elbo + 1e-6)
    states = dose.DensityOfStates().fit(dose.statistics(trained, digits.take("validation")[0][:150], seed=1))
    noise = (np.random.default_rng(0).random(images.shape) < 0.5).astype(np.float32)
    assert detection_metrics(states.score(found), states.score(dose.statistics(trained, noise, seed=2)))["auroc"] > 0.95


def test_importance_sampling_sizes_its_calls_by_the_decoder_activations():
    """A conv decoder of 64x128 spectrograms holds far more per draw than its output; the IS-NLL takes fewer
    draws per compiled call for it (it once asked for 9 GB) and the MNIST MLP keeps its 100 x 500 draws."""
    mlp = vae_zoo.create_model("vae", data_shape=(28, 28, 1), latent_dim=4)
    assert evaluation.decoder_values_per_draw(mlp) * 100 * 500 <= evaluation.MAX_DECODER_VALUES
    conv = vae_zoo.create_model("vae", data_shape=(64, 128, 1), latent_dim=4, likelihood="gaussian",
                                encoder={"name": "conv", "filters": [8, 16]})
    assert evaluation.decoder_values_per_draw(conv) > 64 * 128 * 2
    x = np.random.default_rng(0).random((3, 64, 128, 1)).astype(np.float32)
    log_p = evaluation.log_likelihood(conv, x, k=20, seed=0)
    assert log_p.shape == (3,) and np.isfinite(log_p).all()
