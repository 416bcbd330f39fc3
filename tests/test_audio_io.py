"""Robust audio reading: stereo, odd rates, and every kind of bad file."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from audio_trees import write_wav

from train.audio_io import BadAudioError, fix_length, read_audio


def test_stereo_is_averaged_to_mono(tmp_path):
    path = tmp_path / "st.wav"
    left = np.linspace(-0.5, 0.5, 1600, dtype=np.float32)
    sf.write(path, np.stack([left, np.zeros_like(left)], axis=1), 16000, subtype="FLOAT")
    x = read_audio(path, 16000)
    assert x.ndim == 1 and np.allclose(x, left / 2, atol=1e-6)


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_odd_sample_rates_are_resampled(tmp_path, sr):
    x = read_audio(write_wav(tmp_path / "a.wav", 440, sr=sr, seconds=0.5), 16000)
    assert abs(len(x) - 8000) <= 1
    spectrum = np.abs(np.fft.rfft(x))
    assert abs(np.argmax(spectrum) * 16000 / len(x) - 440) < 5  # the tone survives resampling


def test_flac_reads(tmp_path):
    path = tmp_path / "a.flac"
    sf.write(path, np.zeros(800, np.float32) + 0.1, 16000)
    assert len(read_audio(path, 16000)) == 800


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("this is not audio"), "not readable as audio"),
        (lambda p: p.write_bytes(open_ok(p)[:44]), "truncated WAV: data chunk declares 16000 bytes, file holds 0"),
        (lambda p: sf.write(p, np.zeros(0, np.float32), 16000), "no samples"),
        (lambda p: p.write_bytes(open_ok(p)[: len(open_ok(p)) // 2]), "truncated WAV"),
        (lambda p: None, "file not found"),
    ],
    ids=["empty", "non-audio", "header-only", "zero-frames", "truncated", "missing"],
)
def test_bad_files_raise_with_reason(tmp_path, make, reason):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(BadAudioError, match=reason):
        read_audio(path, 16000)


def open_ok(path):
    ok = path.parent / "ok_source.wav"
    if not ok.exists():
        write_wav(ok, 440, seconds=0.5)
    return ok.read_bytes()


def test_nan_samples_are_bad(tmp_path):
    path = tmp_path / "nan.wav"
    x = np.zeros(1000, np.float32)
    x[10], x[20] = np.nan, np.inf
    sf.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(BadAudioError, match="2 NaN/inf"):
        read_audio(path, 16000)


def test_fix_length_centres():
    x = np.arange(10, dtype=np.float32)
    assert fix_length(x, 6).tolist() == [2, 3, 4, 5, 6, 7]
    padded = fix_length(x, 14)
    assert padded.tolist() == [0, 0, *range(10), 0, 0]
    assert fix_length(x, 10) is x


def _one_shot(sample_rate=16000, silence_s=1.3, sound_s=0.3, total_s=2.0):
    """Silence, then a decaying noise burst (a one-shot sound's attack at ``silence_s``), then silence."""
    rng = np.random.default_rng(0)
    x = np.zeros(round(total_s * sample_rate), np.float32)
    start, n = round(silence_s * sample_rate), round(sound_s * sample_rate)
    x[start : start + n] = rng.normal(0, 0.5, n) * np.exp(-np.arange(n) / (0.05 * sample_rate))
    return x, start  # the samples, and where the attack is


def test_fix_length_start_keeps_the_beginning():
    x = np.arange(10, dtype=np.float32)
    assert fix_length(x, 6, "start").tolist() == [0, 1, 2, 3, 4, 5]
    assert fix_length(x, 14, "start").tolist() == [0, 0, *range(10), 0, 0]  # shorter clips pad evenly, as centre


def test_fix_length_onset_keeps_the_attack_of_a_one_shot_sound():
    sr = 16000
    x, _ = _one_shot(sr)
    onset = fix_length(x, sr // 2, "onset", sr)
    centre = fix_length(x, sr // 2, "centre", sr)
    energy = np.sum(x**2)
    assert np.sum(onset**2) > 0.99 * energy  # the burst is all there
    assert np.sum(centre**2) < 0.01 * energy  # centre keeps 0.75..1.25 s: the burst is cut off
    lead = int(np.flatnonzero(np.abs(onset) > 0)[0])
    assert 0 < lead <= round(0.02 * sr) + 512  # the pre-roll (20 ms) and at most one onset frame before the attack


def test_fix_length_onset_without_an_onset_keeps_the_start():
    x = np.zeros(2000, np.float32)
    assert np.array_equal(fix_length(x, 500, "onset", 16000), x[:500])
    with pytest.raises(ValueError, match="sample_rate"):
        fix_length(np.ones(2000, np.float32), 500, "onset")
