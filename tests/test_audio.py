"""Audio: spectrogram features and their inversion (known answers), the FSDD source, and an audio model
through train, evaluate and sample."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from model_test_case import serve_with_tensorflow_alone

from vae_zoo import cli
from vae_zoo.data import audio

ROOT = Path(__file__).parent.parent
needs_fsdd = pytest.mark.skipif(not os.environ.get("VAE_ZOO_FSDD"),
                                reason="the Free Spoken Digit Dataset is not here (set VAE_ZOO_FSDD to fsdd.npz)")


def sine(frequency, amplitude=0.5):
    t = np.arange(audio.CLIP_SAMPLES) / audio.SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def peak_frequency(waveform):
    middle = waveform[1000:7000]  # away from the clip's edges
    spectrum = np.abs(np.fft.rfft(middle * np.hanning(len(middle))))
    return np.fft.rfftfreq(len(middle), 1 / audio.SAMPLE_RATE)[spectrum.argmax()]


@pytest.mark.parametrize("frequency", [300.0, 440.0, 1250.0])
def test_griffin_lim_inversion_of_a_sine_wave_recovers_its_frequency(frequency):
    features = audio.waveforms_to_features(sine(frequency)[None])
    waveform = audio.features_to_waveforms(features, iterations=32)[0]
    # Within half a bin of the spectrogram (31.25 Hz wide): the features hold no finer frequency than that,
    # and the phase Griffin-Lim settles on places the tone inside the bin.
    assert abs(peak_frequency(waveform) - frequency) <= 0.5 * audio.SAMPLE_RATE / audio.FFT_LENGTH
    # The energy is where the sine's is: the spectrogram of the inversion peaks in the sine's bin.
    bins = audio.waveforms_to_features(waveform[None])[0, 10:50, :, 0].mean(axis=0)
    assert abs(bins.argmax() - frequency / (audio.SAMPLE_RATE / audio.FFT_LENGTH)) <= 1


def test_features_are_fixed_size_in_the_unit_interval_and_silence_is_zero():
    features = audio.waveforms_to_features(np.stack([sine(440.0), np.zeros(audio.CLIP_SAMPLES, np.float32)]))
    assert features.shape == (2, *audio.FEATURE_SHAPE) and features.dtype == np.float32
    assert 0.0 <= features.min() and features.max() <= 1.0
    assert features[1].max() == 0.0
    # Above the floor the scaling is exactly invertible: magnitudes come back.
    magnitude = np.abs(audio.stft(sine(440.0)[None]).numpy())[..., :audio.BINS]
    restored = audio.features_to_magnitude(features[:1])[..., :audio.BINS]
    loud = magnitude > 1e-3
    np.testing.assert_allclose(restored[loud], magnitude[loud], rtol=1e-3)


@pytest.mark.parametrize("frequency", [300.0, 1200.0])
def test_log_mel_features_peak_in_the_sine_waves_band_and_invert_to_its_frequency(frequency):
    features = audio.waveforms_to_log_mel(np.stack([sine(frequency), np.zeros(audio.CLIP_SAMPLES, np.float32)]))
    assert features.shape == (2, *audio.MEL_SHAPE) and features.min() >= 0 and features.max() <= 1
    assert features[0].max() == 1.0 and np.all(features[1] == 0), "relative to each recording's peak; silence is 0"
    band = int(np.argmax(features[0, 10:50, :, 0].mean(axis=0)))
    centres = np.argmax(audio.mel_matrix().numpy(), axis=0) * audio.SAMPLE_RATE / audio.FFT_LENGTH
    assert abs(centres[band] - frequency) < 0.1 * frequency
    waveform = audio.features_to_waveforms(features[:1], iterations=32, kind=audio.LOG_MEL)[0]
    spectrum = np.abs(np.fft.rfft(waveform))
    assert abs(np.argmax(spectrum) * audio.SAMPLE_RATE / len(waveform) - frequency) < 0.1 * frequency
    assert abs(np.abs(waveform).max() - 0.5) < 1e-3


def test_log_mel_clips_start_just_before_their_onset():
    late = np.concatenate([np.zeros(2048, np.float32), sine(500.0)[:-2048]])
    features = audio.waveforms_to_log_mel(np.stack([sine(500.0), late]))[..., 0]
    onsets = [int(np.argmax(f.max(axis=1) >= 1 - audio.ONSET_DB / audio.MEL_RANGE_DB)) for f in features]
    assert onsets == [0, audio.ONSET_LEAD], "a sound from the start stays; a late one moves to 2 frames in"
    np.testing.assert_allclose(features[1, audio.ONSET_LEAD + 2:40], features[0, 2:40 - audio.ONSET_LEAD], atol=0.02)
    assert np.all(features[1, -8:] == 0), "silence fills the end"


def test_recordings_are_padded_or_cropped_to_the_clip():
    short, long = audio.fixed_length(np.full(100, 16384, np.int16)), audio.fixed_length(np.ones(20000, np.int16))
    assert short.shape == long.shape == (audio.CLIP_SAMPLES,)
    assert short[:100].tolist() == [0.5] * 100 and not short[100:].any()


def test_mfccs_have_one_row_per_frame():
    assert audio.mfcc(sine(440.0)[None]).shape == (1, audio.FRAMES, 13)


def test_a_missing_fsdd_file_is_a_clear_error(tmp_path):
    from vae_zoo.errors import DataError

    with pytest.raises(DataError, match="not at"):
        audio.read_fsdd(tmp_path / "nothing.npz")
    np.savez(tmp_path / "fsdd.npz", audio=np.zeros(10, np.int16))
    with pytest.raises(DataError, match="not the FSDD bundle"):
        audio.read_fsdd(tmp_path)


@needs_fsdd
def test_the_fsdd_source_has_the_usual_split_by_take():
    everything = audio.read_fsdd()
    masks = audio.fsdd_split_masks(everything["take"])
    assert {split: int(mask.sum()) for split, mask in masks.items()} == {"train": 2400, "validation": 300, "test": 300}
    assert set(everything["take"][masks["test"]]) == {0, 1, 2, 3, 4}
    from vae_zoo import data as data_module

    data = data_module.load("fsdd", labels=True)
    assert data.spec.modality == "audio" and data.data_shape == audio.FEATURE_SHAPE and data.num_classes == 10
    mel = data_module.load("fsdd_mel", labels=True)
    assert mel.spec.modality == "audio" and mel.data_shape == audio.MEL_SHAPE
    assert np.array_equal(mel.take("test", 300)[1], data.take("test", 300)[1]), "the same recordings in the same order"


@pytest.mark.slow
@needs_fsdd
def test_an_audio_model_trains_evaluates_and_samples_to_wav(tmp_path, capsys):
    out = tmp_path / "model"
    assert cli.main(["train", str(ROOT / "recipes/vae/fsdd.yaml"), "--smoke", "--set", "data.limit=64",
                     "--set", "training.epochs=1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["sample", str(out), "--n", "3", "--out", str(tmp_path / "s.png")]) == 0
    wavs = sorted((tmp_path / "s_wav").glob("*.wav"))
    assert len(wavs) == 3 and all(w.read_bytes()[:4] == b"RIFF" for w in wavs)
    capsys.readouterr()
    assert cli.main(["evaluate", str(out), "--only", "audio,scores", "--limit", "8", "--out", str(tmp_path / "r")]) == 0
    part = json.loads(capsys.readouterr().out)["parts"]["audio"]
    assert {"originals.png", "reconstructions.png", "samples.png", "wav/sample_00.wav"} <= set(part["files"])
    accuracy = part["probes"]["accuracy"]
    assert set(accuracy) == {"latent means (16)", "spectrogram (8192)", "MFCC (64 x 13)"}
    assert accuracy["MFCC (64 x 13)"]["digit"] > 0.8, "MFCCs of real speech tell the digits apart"
    capsys.readouterr()

    # The export serves spectrograms with TensorFlow alone; the search runs over the same recipe.
    assert cli.main(["export", str(out), "--out", str(tmp_path / "export")]) == 0
    served = serve_with_tensorflow_alone(tmp_path / "export", (
        "s = m.signatures['sample'](n=tf.constant(2), seed=tf.constant(1))['samples']\n"
        "out['shape'] = s.shape.as_list()\n"
        "out['r'] = m.signatures['serving_default'](x=s)['reconstruction'].shape.as_list()"))
    assert served["shape"] == served["r"] == [2, 64, 128, 1]
    assert cli.main(["tune", str(ROOT / "recipes/vae/fsdd.yaml"), "--smoke", "--set", "data.limit=64", "--set", "search.max_trials=1",
                     "--out", str(tmp_path / "search")]) == 0
    rows = json.loads((tmp_path / "search" / "trials.json").read_text())
    assert len(rows) == 1 and rows[0]["status"] == "COMPLETED" and {"beta", "latent_dim", "learning_rate"} <= set(rows[0])


def test_a_folder_of_wav_files_loads_as_audio_data_with_classes_from_subfolders(tmp_path):
    from vae_zoo import data as data_module

    for label, frequency in (("high", 1500.0), ("low", 300.0)):
        (tmp_path / label).mkdir()
        for i in range(20):
            # 16 kHz stereo: resampled to 8 kHz and averaged to mono on the way in.
            tone = np.stack([sine(frequency * (1 + 0.01 * i))] * 2, axis=1)
            tone = np.repeat(tone, 2, axis=0)[: 2 * audio.CLIP_SAMPLES]
            (tmp_path / label / f"{i}.wav").write_bytes(__import__("tensorflow").audio.encode_wav(tone, 16000).numpy())
    data = data_module.load("wav_folder", path=str(tmp_path), labels=True)
    assert data.spec.modality == "audio" and data.data_shape == audio.FEATURE_SHAPE
    x, y = data.take("train")
    assert sum(data.count(s) for s in ("train", "validation", "test")) == 40 and set(y) == {0, 1}
    # The low tone's energy sits in the low bins, the high tone's higher up.
    peak_bins = x[:, 10:50, :, 0].mean(axis=1).argmax(axis=1)
    assert (peak_bins[y == 1] < 20).all() and (peak_bins[y == 0] > 40).all()
