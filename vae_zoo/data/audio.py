"""Audio data: the Free Spoken Digit Dataset as fixed-size log-magnitude spectrograms, and the way back to sound.

Features (computed with ``tf.signal``): each recording, int16 at 8 kHz, is scaled to [-1, 1] and padded with
silence or cropped to ``CLIP_SAMPLES`` = 8,192 samples (1.024 s; 99% of FSDD's recordings are shorter, the rest
lose their tail). An STFT with a 256-sample Hann window (32 ms), a 128-sample hop and ``pad_end`` gives 64 frames
of 129 bins; the Nyquist bin is dropped, leaving an image of 64 time frames x 128 frequency bins. Magnitudes go
to decibels, clipped to [-100, 40] dB and mapped linearly onto [0, 1], so an audio model reads the same [0, 1]
examples as an image model (a Gaussian likelihood with learned variance suits them).

The way back: ``features_to_magnitude`` undoes the scaling, ``griffin_lim`` recovers a phase (Griffin and Lim,
1984) with ``tf.signal.stft``/``inverse_stft``, and ``write_wav`` stores 16-bit PCM.

A second representation, ``log_mel`` (source ``fsdd_mel``): the same STFT's power through 64 mel filters
(60 Hz - 4 kHz, ``tf.signal.linear_to_mel_weight_matrix``), in decibels relative to each recording's loudest
cell, clipped to the 50 dB below it and mapped onto [0, 1]: 64 frames x 64 mel bins. Each clip is then shifted
to start 2 frames (32 ms) before its first frame within 30 dB of its peak (``align_onsets``). Fewer, perceptually
spaced bands, a level that no longer depends on how loud the speaker was and a common onset leave more of the
picture to what was said.
Its way back is the mel matrix's pseudo-inverse (clipped at 0), then Griffin-Lim; the absolute level is lost, so
the waveform is scaled to a peak of 0.5.

Sources: ``fsdd`` reads ``fsdd.npz`` (the recordings concatenated, see ``read_fsdd``) from the recipe's
``data_dir`` (the file or its folder) or ``$VAE_ZOO_FSDD``; otherwise, online, tensorflow-datasets' ``spoken_digit``.
The split is the dataset's usual one: takes 0-4 of every speaker and digit are the test set, takes 5-9 validate,
takes 10-49 train (2,400 / 300 / 300). The FSDD is CC BY-SA 4.0 (Jakobovski et al.); keep its attribution.
"""

import dataclasses
import hashlib
import os
from math import gcd
from pathlib import Path

import numpy as np
import tensorflow as tf

from vae_zoo.data import tfds_builders
from vae_zoo.data.plotting import save_image_grid
from vae_zoo.data.sources import SOURCES, ArraySource, CachedSource, Option, not_binarized, path_like, register_source
from vae_zoo.errors import DataError

SAMPLE_RATE = 8000
CLIP_SAMPLES = 8192
FRAME_LENGTH, FRAME_STEP, FFT_LENGTH = 256, 128, 256
FRAMES, BINS = CLIP_SAMPLES // FRAME_STEP, FFT_LENGTH // 2
DB_FLOOR, DB_CEILING = -100.0, 40.0
FEATURE_SHAPE = (FRAMES, BINS, 1)
TEST_TAKES, VALIDATION_TAKES = range(5), range(5, 10)


def fixed_length(recording, samples=CLIP_SAMPLES):
    """int16 (or float) samples -> float32 in [-1, 1], padded with silence or cropped to ``samples``."""
    recording = np.asarray(recording)
    audio = recording.astype(np.float32) / 32768.0 if recording.dtype == np.int16 else recording.astype(np.float32)
    out = np.zeros(samples, np.float32)
    out[: min(samples, len(audio))] = audio[:samples]
    return out


def stft(waveforms):
    return tf.signal.stft(tf.convert_to_tensor(waveforms, tf.float32), FRAME_LENGTH, FRAME_STEP, FFT_LENGTH, pad_end=True)


def waveforms_to_features(waveforms):
    """(n, CLIP_SAMPLES) waveforms -> (n, 64, 128, 1) float32 features in [0, 1]."""
    magnitude = tf.abs(stft(waveforms))[..., :BINS]
    decibels = 20.0 * tf.math.log(tf.maximum(magnitude, 1e-7)) / tf.math.log(10.0)
    scaled = (tf.clip_by_value(decibels, DB_FLOOR, DB_CEILING) - DB_FLOOR) / (DB_CEILING - DB_FLOOR)
    return scaled[..., None].numpy()


def features_to_magnitude(features):
    """[0, 1] features (n, 64, 128[, 1]) -> linear STFT magnitudes (n, 64, 129), the Nyquist bin set to 0."""
    features = np.asarray(features, np.float32).reshape(-1, FRAMES, BINS)
    decibels = DB_FLOOR + np.clip(features, 0.0, 1.0) * (DB_CEILING - DB_FLOOR)
    magnitude = 10.0 ** (decibels / 20.0)
    magnitude[decibels <= DB_FLOOR + 1e-3] = 0.0  # the floor is silence, not -100 dB of noise
    return np.concatenate([magnitude, np.zeros_like(magnitude[..., :1])], axis=-1)


def griffin_lim(magnitude, iterations=64, samples=CLIP_SAMPLES, seed=0):
    """Waveforms (n, samples) whose STFT magnitude approaches ``magnitude`` (n, frames, 129): Griffin and Lim
    (1984), alternating projections between consistent spectrograms and the given magnitude, from random phase."""
    magnitude = tf.convert_to_tensor(magnitude, tf.float32)
    phase = tf.random.stateless_uniform(tf.shape(magnitude), seed=[seed, 0], maxval=2 * np.pi)
    spectrum = tf.complex(magnitude * tf.cos(phase), magnitude * tf.sin(phase))
    window = tf.signal.inverse_stft_window_fn(FRAME_STEP)
    waveform = None
    for _ in range(iterations):
        waveform = tf.signal.inverse_stft(spectrum, FRAME_LENGTH, FRAME_STEP, FFT_LENGTH, window_fn=window)[..., :samples]
        rebuilt = stft(waveform)
        spectrum = tf.complex(magnitude, 0.0) * tf.exp(tf.complex(0.0, tf.math.angle(rebuilt)))
    waveform = tf.signal.inverse_stft(spectrum, FRAME_LENGTH, FRAME_STEP, FFT_LENGTH, window_fn=window)[..., :samples]
    return waveform.numpy()


MEL_BINS, MEL_LOW_HZ = 64, 60.0
# 50 dB of range below each recording's peak: on the validation split, the digit probe on the top 8 or 16 principal
# components of the features peaks with a floor of 50-60 dB (80 dB: 0.58 / 0.80; 50 dB: 0.75 / 0.86), because
# the quiet cells below it are room noise whose texture says nothing about the digit.
MEL_RANGE_DB = 50.0
ONSET_DB, ONSET_LEAD = 30.0, 2
MEL_SHAPE = (FRAMES, MEL_BINS, 1)


def mel_matrix():
    """(129 STFT bins, 64 mel bands) weights."""
    return tf.signal.linear_to_mel_weight_matrix(MEL_BINS, FFT_LENGTH // 2 + 1, SAMPLE_RATE, MEL_LOW_HZ, SAMPLE_RATE / 2)


def waveforms_to_log_mel(waveforms):
    """(n, CLIP_SAMPLES) waveforms -> (n, 64, 64, 1) log-mel features in [0, 1], relative to each recording's peak."""
    power = tf.tensordot(tf.abs(stft(waveforms)) ** 2, mel_matrix(), 1)
    decibels = 10.0 * tf.math.log(tf.maximum(power, 1e-12)) / tf.math.log(10.0)
    relative = decibels - tf.reduce_max(decibels, axis=[1, 2], keepdims=True)
    # Below the same absolute floor as the log-magnitude features (-100 dB) is silence, even in a silent recording.
    relative = tf.where(decibels > DB_FLOOR, relative, -MEL_RANGE_DB)
    features = ((tf.maximum(relative, -MEL_RANGE_DB) + MEL_RANGE_DB) / MEL_RANGE_DB).numpy()
    return align_onsets(features)[..., None]


def align_onsets(features):
    """Each (frames, bins) clip shifted to start ``ONSET_LEAD`` frames before its first frame within
    ``ONSET_DB`` of its peak, silence appended: where a digit starts in its recording says nothing about which
    digit it is, and a model should not spend a latent dimension on it."""
    loudest = features.max(axis=2)
    onsets = np.argmax(loudest >= 1.0 - ONSET_DB / MEL_RANGE_DB, axis=1)
    starts = np.maximum(onsets - ONSET_LEAD, 0)
    frames = features.shape[1]
    index = np.minimum(np.arange(frames)[None, :] + starts[:, None], frames - 1)
    shifted = np.take_along_axis(features, index[:, :, None], axis=1)
    shifted[np.arange(frames)[None, :] + starts[:, None] >= frames] = 0.0
    return shifted


def log_mel_to_magnitude(features):
    """[0, 1] log-mel features (n, 64, 64[, 1]) -> STFT magnitudes (n, 64, 129) through the mel matrix's pseudo-inverse."""
    features = np.asarray(features, np.float32).reshape(-1, FRAMES, MEL_BINS)
    power = 10.0 ** ((np.clip(features, 0.0, 1.0) - 1.0) * MEL_RANGE_DB / 10.0)
    power[features <= 1e-3] = 0.0  # the floor is silence
    linear = np.maximum(power @ np.linalg.pinv(mel_matrix().numpy()), 0.0)
    return np.sqrt(linear).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Features:
    """A spectrogram representation: its example shape, and the ways there from waveforms and back to magnitudes."""

    name: str
    shape: tuple
    from_waveforms: object
    to_magnitude: object
    # The level a waveform is scaled to after Griffin-Lim (None: keep the level the features hold).
    peak: float = None


LOG_MAGNITUDE = Features("log_magnitude", FEATURE_SHAPE, waveforms_to_features, features_to_magnitude)
LOG_MEL = Features("log_mel", MEL_SHAPE, waveforms_to_log_mel, log_mel_to_magnitude, peak=0.5)
# The representations by name: what an audio source's ``features`` (and its ``DataSpec``'s) names.
FEATURES = {kind.name: kind for kind in (LOG_MAGNITUDE, LOG_MEL)}


def features_named(name):
    """The ``Features`` called ``name`` (log-magnitude where a spec names none)."""
    return FEATURES[name] if name else LOG_MAGNITUDE


def features_of(source):
    """The features the data source called ``source`` serves (log-magnitude for a name that is not a source)."""
    cls = SOURCES.get(source)
    return features_named(cls.features if cls else None)


def features_to_waveforms(features, iterations=64, kind=LOG_MAGNITUDE):
    waveforms = griffin_lim(kind.to_magnitude(features), iterations=iterations)
    if kind.peak is not None:
        peaks = np.maximum(np.abs(waveforms).max(axis=1, keepdims=True), 1e-9)
        waveforms = waveforms * (kind.peak / peaks)
    return waveforms


def write_wav(waveform, path, sample_rate=SAMPLE_RATE):
    """16-bit PCM WAV of a [-1, 1] waveform (peak-normalized to 0.9 if it would clip)."""
    audio = np.asarray(waveform, np.float32).reshape(-1, 1)
    peak = float(np.abs(audio).max(initial=0.0))
    if peak > 0.9:
        audio = audio * (0.9 / peak)
    Path(path).write_bytes(tf.audio.encode_wav(audio, sample_rate).numpy())
    return str(path)


def write_wavs(features, folder, prefix, kind=LOG_MAGNITUDE):
    """One WAV per spectrogram (phase by Griffin-Lim): ``folder/prefix_00.wav``, ...; the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    waveforms = features_to_waveforms(features, kind=kind)
    return [write_wav(w, folder / f"{prefix}_{i:02d}.wav") for i, w in enumerate(waveforms)]


def spectrogram_png(features, path, title):
    """Spectrograms as a grid, frequency upward and time to the right (each example transposed and flipped)."""
    shown = np.flip(np.transpose(np.asarray(features, np.float32), (0, 2, 1, 3)), axis=1)
    save_image_grid(shown, path, title=title)
    return str(path)


def mfcc(waveforms, coefficients=13, mel_bins=40):
    """MFCCs (n, frames, coefficients) from log-mel spectrograms (``tf.signal.mfccs_from_log_mel_spectrograms``)."""
    power = tf.abs(stft(waveforms)) ** 2
    mel = tf.signal.linear_to_mel_weight_matrix(mel_bins, FFT_LENGTH // 2 + 1, SAMPLE_RATE, 20.0, SAMPLE_RATE / 2)
    log_mel = tf.math.log(tf.tensordot(power, mel, 1) + 1e-6)
    return tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :coefficients].numpy()


# --------------------------------------------------------------------------- the Free Spoken Digit Dataset


def fsdd_path(data_dir=None):
    """``fsdd.npz`` from ``data_dir`` (the file or its folder) or $VAE_ZOO_FSDD; None if neither is given."""
    given = data_dir or os.environ.get("VAE_ZOO_FSDD")
    if not given:
        return None
    path = Path(given)
    path = path / "fsdd.npz" if path.is_dir() else path
    if not path.is_file():
        raise DataError(f"the Free Spoken Digit Dataset is not at {path} (give data_dir: the fsdd.npz file or its folder)")
    return path


def read_fsdd(data_dir=None):
    """Every recording, fixed-length, with its metadata: {"waveforms" (3000, 8192), "digit", "speaker", "take",
    "speaker_names"}; from ``fsdd.npz`` (``audio`` int16 concatenated, ``offsets``, ``digit``, ``speaker``,
    ``index``) or, without a path, tensorflow-datasets' ``spoken_digit`` (online)."""
    path = fsdd_path(data_dir)
    if path is None:
        return _fsdd_from_tfds()
    try:
        bundle = np.load(path, allow_pickle=False)
        audio, offsets = bundle["audio"], bundle["offsets"]
        digit, speaker, take = bundle["digit"], bundle["speaker"], bundle["index"]
        names = [str(n) for n in bundle["speaker_names"]]
    except (KeyError, ValueError, OSError) as err:
        raise DataError(f"{path} is not the FSDD bundle (audio, offsets, digit, speaker, index, speaker_names): {err}") from None
    if len(offsets) != len(digit) + 1 or offsets[-1] != len(audio):
        raise DataError(f"{path}: offsets do not match the audio ({len(offsets)} offsets, {len(audio)} samples)")
    waveforms = np.stack([fixed_length(audio[offsets[i]:offsets[i + 1]]) for i in range(len(digit))])
    return {"waveforms": waveforms, "digit": digit.astype(np.int64), "speaker": speaker.astype(np.int64),
            "take": take.astype(np.int64), "speaker_names": names}


def _fsdd_from_tfds():
    # Lazy: tensorflow-datasets takes seconds to import, and only the online fallback needs it.
    import tensorflow_datasets as tfds

    try:
        records = tfds.as_numpy(tfds_builders.load("spoken_digit", split="train"))
    except Exception as err:  # noqa: BLE001  tfds raises many types when offline
        raise DataError(f"the Free Spoken Digit Dataset: no data_dir or $VAE_ZOO_FSDD given, and tensorflow-datasets "
                        f"could not load 'spoken_digit' ({type(err).__name__}: {str(err)[:160]})") from None
    waveforms, digits, speakers, takes, names = [], [], [], [], []
    for record in records:
        # File names are "<digit>_<speaker>_<take>.wav".
        stem = Path(record["audio/filename"].decode()).stem
        digit, speaker, take = stem.split("_")
        if speaker not in names:
            names.append(speaker)
        waveforms.append(fixed_length(record["audio"].astype(np.int16)))
        digits.append(int(digit))
        speakers.append(names.index(speaker))
        takes.append(int(take))
    return {"waveforms": np.stack(waveforms), "digit": np.array(digits), "speaker": np.array(speakers),
            "take": np.array(takes), "speaker_names": names}


def fsdd_split_masks(takes):
    """{split: boolean mask} by take number: 0-4 test, 5-9 validation, the rest train."""
    test, validation = np.isin(takes, list(TEST_TAKES)), np.isin(takes, list(VALIDATION_TAKES))
    return {"train": ~(test | validation), "validation": validation, "test": test}


def fsdd_splits(data_dir=None, kind=LOG_MAGNITUDE):
    """{split: (features, digits, speakers, waveforms)}, in the recordings' order within each split."""
    everything = read_fsdd(data_dir)
    features = kind.from_waveforms(everything["waveforms"])
    return {split: (features[mask], everything["digit"][mask], everything["speaker"][mask], everything["waveforms"][mask])
            for split, mask in fsdd_split_masks(everything["take"]).items()}


# --------------------------------------------------------------------------- a user's WAV files


def read_wav(path):
    """A mono waveform at SAMPLE_RATE from a WAV file (channels averaged, resampled if needed), float32 in [-1, 1]."""
    # Lazy: scipy.signal is slow to import, and only a WAV at another sample rate needs it.
    from scipy.signal import resample_poly

    try:
        audio_tensor, rate = tf.audio.decode_wav(tf.io.read_file(str(path)))
    except tf.errors.OpError as err:
        raise DataError(f"cannot read {path} as a WAV file: {' '.join(str(err.message).split())[:200]}") from None
    waveform, rate = audio_tensor.numpy().mean(axis=1), int(rate.numpy())
    if rate != SAMPLE_RATE:
        divisor = gcd(rate, SAMPLE_RATE)
        waveform = resample_poly(waveform, SAMPLE_RATE // divisor, rate // divisor).astype(np.float32)
    return waveform


def wav_folder_splits(path):
    """{split: (features, labels)} from a folder of .wav files: subfolders name the classes (else label -1);
    split 80/10/10 by a hash of each file's path below the folder, so adding files does not move the others."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"WAV folder {root} does not exist")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    files = sorted(f for f in root.rglob("*") if f.suffix.lower() == ".wav")
    if not files:
        raise DataError(f"no .wav files found in {root}")
    labels = np.array([classes.index(f.relative_to(root).parts[0]) if classes and len(f.relative_to(root).parts) > 1 else -1
                       for f in files], np.int64)
    features = waveforms_to_features(np.stack([fixed_length(read_wav(f)) for f in files]))
    buckets = np.array([int(hashlib.sha256(str(f.relative_to(root)).encode()).hexdigest()[:8], 16) % 10 for f in files])
    masks = {"train": buckets < 8, "validation": buckets == 8, "test": buckets == 9}
    return {split: (features[mask], labels[mask]) for split, mask in masks.items()}


class SpokenDigits(CachedSource):
    """The Free Spoken Digit Dataset as spectrograms of one kind (``features``), split by take."""

    modality = "audio"
    num_classes = 10
    options = {"data_dir": Option(None, path_like, "fsdd.npz or its folder (else $VAE_ZOO_FSDD, else tfds spoken_digit online)")}

    @classmethod
    def read(cls, data_dir=None):
        return {split: (features, digits) for split, (features, digits, _, _) in fsdd_splits(data_dir, FEATURES[cls.features]).items()}

    def recordings(self):
        return fsdd_splits(self.options["data_dir"], FEATURES[self.features])


@register_source("fsdd")
class Fsdd(SpokenDigits):
    description = ("Free Spoken Digit Dataset: 3,000 recordings as 64x128 log-magnitude spectrograms "
                   "(2400/300/300 by take), data_dir or $VAE_ZOO_FSDD, else tfds spoken_digit")
    features = LOG_MAGNITUDE.name


@register_source("fsdd_mel")
class FsddMel(SpokenDigits):
    description = ("Free Spoken Digit Dataset as 64x64 log-mel spectrograms relative to each recording's "
                   "peak (2400/300/300 by take), data_dir or $VAE_ZOO_FSDD, else tfds spoken_digit")
    features = LOG_MEL.name


@register_source("wav_folder")
class WavFolder(ArraySource):
    """Your folder of .wav files as 64x128 log-magnitude spectrograms; subfolders name the classes"""

    modality = "audio"
    features = LOG_MAGNITUDE.name
    options = {
        "path": Option(None, path_like, "the folder of .wav files (subfolders, if any, name the classes)", required=True),
        "binarize": Option("none", not_binarized, "spectrograms are never binarized: only 'none'"),
    }

    def splits(self):
        return wav_folder_splits(self.options["path"])
