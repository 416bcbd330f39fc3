"""Feature shapes and values: a pure tone lands in the right mel band."""

from __future__ import annotations

import numpy as np
import pytest

from train.features import FeatureConfig, compute_features
from train.librosa_safe import librosa


def _tone(freq, cfg):
    t = np.arange(cfg.n_samples) / cfg.sample_rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize(("n_mels", "frames"), [(40, 101), (64, 101)])
def test_logmel_shape_defaults(n_mels, frames):
    cfg = FeatureConfig(n_mels=n_mels)
    assert (cfg.win_length, cfg.hop_length, cfg.n_fft) == (400, 160, 512)
    out = compute_features(_tone(1000, cfg), cfg)
    assert out.shape == cfg.shape == (n_mels, frames)
    assert out.dtype == np.float32 and np.isfinite(out).all()


@pytest.mark.parametrize("freq", [250.0, 1000.0, 3000.0, 6000.0])
def test_pure_tone_lands_in_its_mel_band(freq):
    cfg = FeatureConfig(n_mels=40)
    out = compute_features(_tone(freq, cfg), cfg)
    band = int(np.argmax(out[:, 20:80].mean(axis=1)))
    centres = librosa.mel_frequencies(n_mels=cfg.n_mels + 2, fmin=cfg.fmin_hz, fmax=cfg.sample_rate / 2)[1:-1]
    assert band == int(np.argmin(np.abs(centres - freq)))
    assert out[band, 50] > out[:, 50].mean() + 20  # dB above the rest


def test_mfcc_and_waveform_kinds():
    mfcc = FeatureConfig(kind="mfcc", n_mfcc=13)
    assert compute_features(_tone(500, mfcc), mfcc).shape == (13, 101)
    wave = FeatureConfig(kind="waveform", clip_seconds=0.5)
    x = _tone(500, wave)
    out = compute_features(x, wave)
    assert out.shape == wave.shape == (1, 8000) and np.array_equal(out[0], x)


def test_other_sample_rate_and_hop():
    cfg = FeatureConfig(sample_rate=8000, hop_ms=20, win_ms=32, clip_seconds=2.0)
    assert cfg.n_fft == 256 and cfg.shape == (40, 101)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "cqt"}, "features.kind"),
        ({"hop_ms": 30}, "features.hop_ms"),
        ({"clip_seconds": 0}, "features.clip_seconds"),
        ({"kind": "mfcc", "n_mfcc": 80}, "features.n_mfcc"),
        ({"fmax_hz": 9000}, "features.fmax_hz"),
        ({"db_reference": "rms"}, "features.db_reference"),
        ({"clip_norm": "max"}, "features.clip_norm"),
        ({"clip_norm": "mean", "kind": "waveform"}, "features.clip_norm"),
    ],
)
def test_invalid_settings_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        FeatureConfig(**kwargs)


def test_peak_reference_removes_the_recording_gain():
    """dB re the clip's loudest bin: the same sound recorded 20 dB quieter gives the same features."""
    peak, absolute = FeatureConfig(), FeatureConfig(db_reference="absolute")
    loud = _tone(1000, peak)
    quiet = loud * 0.1
    assert compute_features(loud, peak).max() == pytest.approx(0.0, abs=1e-4)
    np.testing.assert_allclose(compute_features(quiet, peak), compute_features(loud, peak), atol=1e-3)
    shift = compute_features(loud, absolute) - compute_features(quiet, absolute)
    assert np.median(shift) == pytest.approx(20.0, abs=0.1)
    # the floor (top_db below the peak) is where it was re 1.0, shifted by the peak
    np.testing.assert_allclose(compute_features(loud, peak), compute_features(loud, absolute)
                               - compute_features(loud, absolute).max(), atol=1e-3)  # fmt: skip


def test_records_from_before_db_reference_read_as_absolute():
    assert FeatureConfig.from_saved({"n_mels": 32}).db_reference == "absolute"
    assert FeatureConfig.from_saved({"db_reference": "peak"}).db_reference == "peak"


def _tilted(x, cfg, db_per_khz):
    """``x`` through a fixed zero-phase filter of ``db_per_khz`` spectral tilt (a different microphone)."""
    spectrum = np.fft.rfft(x)
    gain_db = db_per_khz * np.fft.rfftfreq(len(x), 1 / cfg.sample_rate) / 1000
    return np.fft.irfft(spectrum * 10 ** (gain_db / 20), n=len(x)).astype(np.float32)


def _chirp(cfg):
    """A rising tone over faint noise: energy in every band, changing over time."""
    t = np.arange(cfg.n_samples) / cfg.sample_rate
    x = np.sin(2 * np.pi * (300 * t + 2500 * t**2)) + 0.01 * np.random.default_rng(0).standard_normal(len(t))
    return (0.5 * x).astype(np.float32)


@pytest.mark.parametrize("kind", ["logmel", "mfcc"])
def test_clip_mean_normalisation_cancels_a_fixed_channel(kind):
    """CMN: the same sound through another microphone (tilt and gain) gives the same features."""
    cfg = FeatureConfig(kind=kind, clip_norm="mean", top_db=None, db_reference="absolute")
    x = _chirp(cfg)
    other = 0.3 * _tilted(x, cfg, db_per_khz=-3.0)  # 10 dB quieter, 24 dB less at 8 kHz
    plain = FeatureConfig(top_db=None, db_reference="absolute")  # log-mel without it: 5 dB or more apart
    inner = slice(3, -3)  # the filter wraps around the clip's ends
    assert np.abs(compute_features(other, plain) - compute_features(x, plain))[:, inner].min() > 5.0
    a, b = compute_features(x, cfg), compute_features(other, cfg)
    np.testing.assert_allclose(a.mean(axis=1), 0.0, atol=1e-3)
    np.testing.assert_allclose(a[:, inner], b[:, inner], atol=1.5)  # the tilt inside a band: about 1 dB


def test_clip_meanvar_normalisation_gives_unit_variance_rows():
    cfg = FeatureConfig(clip_norm="meanvar")
    out = compute_features(_chirp(cfg), cfg)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(out.mean(axis=1), 0.0, atol=1e-4)
    varying = out.std(axis=1) > 0
    np.testing.assert_allclose(out.std(axis=1)[varying], 1.0, atol=1e-4)
    silent = FeatureConfig(clip_norm="meanvar")  # an all-zero clip: every row constant, left at 0
    assert np.array_equal(compute_features(np.zeros(cfg.n_samples, np.float32), silent), np.zeros(cfg.shape))


def test_records_without_top_db_read_as_the_former_80_db():
    assert FeatureConfig().top_db == 40.0
    assert FeatureConfig.from_saved({"n_mels": 32}).top_db == 80.0
    assert FeatureConfig.from_saved({"top_db": None}).top_db is None


def test_top_db_floors_each_clip_that_far_below_its_peak():
    cfg = FeatureConfig()
    t = np.arange(cfg.n_samples) / cfg.sample_rate
    x = (0.5 * np.sin(2 * np.pi * 1000 * t) * (t < 0.5)).astype(np.float32)  # a tone, then silence
    out = compute_features(x, cfg)
    assert out.max() == pytest.approx(0.0, abs=1e-4) and out.min() == pytest.approx(-40.0, abs=1e-4)
    assert (out[:, 70:] == -40.0).all()  # the silent half sits on the floor


def test_records_from_before_clip_norm_read_as_none():
    assert FeatureConfig.from_saved({"db_reference": "peak"}).clip_norm == "none"
    assert FeatureConfig.from_saved({"clip_norm": "mean"}).clip_norm == "mean"
