"""Listening to an audio model, and probing what its latents know.

``listen`` writes WAV files (phase by Griffin-Lim) next to spectrogram PNGs: the original test recordings as
the features hold them, their reconstructions, prior samples, and a path between two encoded recordings.
``probes`` fits a logistic regression (scikit-learn) on the training split's latent means and scores it on the
test split, for the digit and for the speaker, against the same probe on the raw spectrogram and on MFCCs.
"""

from pathlib import Path

import numpy as np

from vae_zoo.data import audio
from vae_zoo.data.audio import spectrogram_png, write_wavs
from vae_zoo.evaluation import latents


def listen(model, features, labels, out_dir, n=8, seed=0, kind=audio.LOG_MAGNITUDE):
    """WAVs and PNGs of originals, reconstructions, prior samples and an interpolation, in ``out_dir``."""
    out_dir = Path(out_dir)
    features, labels = np.asarray(features[:n], np.float32), None if labels is None else np.asarray(labels[:n])
    written = {"originals": write_wavs(features, out_dir / "wav", "original", kind)}
    frames, bins = kind.shape[:2]
    spectrogram_png(features, out_dir / "originals.png", f"test recordings (the {kind.name} features, {frames} frames x {bins} bins)")
    if model.can("labels"):
        reconstructions = model.reconstruction(features, labels).numpy()
    else:
        reconstructions = model.reconstruction(features).numpy()
    written["reconstructions"] = write_wavs(reconstructions, out_dir / "wav", "reconstruction", kind)
    spectrogram_png(reconstructions, out_dir / "reconstructions.png", f"{model.registered_name}: reconstructions (means)")
    if model.can("sample"):
        sample_labels = np.arange(n) % 10 if model.can("labels") else None
        samples = model.sample(n, seed=seed, labels=sample_labels).numpy()
        written["samples"] = write_wavs(samples, out_dir / "wav", "sample", kind)
        spectrogram_png(samples, out_dir / "samples.png", f"{model.registered_name}: prior samples (means)"
                        + (", digits 0, 1, 2, ... in order" if sample_labels is not None else ""))
    if model.can("gaussian_posterior") and not model.can("labels"):
        codes = latents.posterior_means(model, features[:2])
        path = np.stack([(1 - t) * codes[0] + t * codes[1] for t in np.linspace(0, 1, n)]).astype(np.float32)
        between = model.decoded_mean(path).numpy()
        written["interpolation"] = write_wavs(between, out_dir / "wav", "interpolation", kind)
        spectrogram_png(between, out_dir / "interpolation.png", "from the first test recording to the second")
    return written


def _probe_accuracy(train_x, train_y, test_x, test_y, seed=0):
    # Lazy: scikit-learn is slow to import, and only the probes need it.
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline  # lazy, as above
    from sklearn.preprocessing import StandardScaler  # lazy, as above

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, random_state=seed))
    probe.fit(train_x.reshape(len(train_x), -1), train_y)
    return float(probe.score(test_x.reshape(len(test_x), -1), test_y))


def probes(model, splits, seed=0, kind=audio.LOG_MAGNITUDE):
    """Test accuracy of logistic-regression probes for the digit and the speaker, on the model's latent means
    and, as baselines, on the raw spectrogram features (the model's) and on MFCCs (13 per frame), FSDD's usual split.

    ``splits``: {split: (features, digits, speakers, waveforms)}, what a spoken-digit source's ``recordings()`` gives.
    """
    (train_f, train_digit, train_speaker, train_wave) = splits["train"]
    (test_f, test_digit, test_speaker, test_wave) = splits["test"]
    inputs = {
        f"latent means ({model.latent_dim})": (latents.posterior_means(model, train_f, train_digit if model.can("labels") else None),
                                               latents.posterior_means(model, test_f, test_digit if model.can("labels") else None)),
        f"spectrogram ({np.prod(kind.shape)})" if kind is audio.LOG_MAGNITUDE else f"{kind.name} ({np.prod(kind.shape)})": (train_f, test_f),
        f"MFCC ({audio.FRAMES} x 13)": (audio.mfcc(train_wave), audio.mfcc(test_wave)),
    }
    table = {name: {"digit": _probe_accuracy(tr, train_digit, te, test_digit, seed),
                    "speaker": _probe_accuracy(tr, train_speaker, te, test_speaker, seed)} for name, (tr, te) in inputs.items()}
    return {"accuracy": table, "train": len(train_f), "test": len(test_f),
            "method": "logistic regression (standardized inputs) fit on the training split, accuracy on the test split "
                      "(takes 0-4 of each speaker and digit)"}
