"""Waveform augmentation of training clips: speed, pitch, time shift, gain and additive noise.

Each augmented copy of a clip is made once, before feature extraction, and its features are
cached beside the clean ones (:mod:`train.augment_cache`); training then draws, per clip and
epoch, the clean features or one of the copies, so the search and training still read memmaps.
Validation and test never see a copy.

The perturbations of one copy, in order: speed (resampling: tempo and pitch together, as Kaldi's
speed perturbation), pitch shift at constant tempo (librosa's phase vocoder), the crop or pad to
the clip length, a time shift (zero-filled, not rolled), a gain, and additive noise at an SNR
drawn from a range (white noise, or a random stretch of a background recording). Every draw of
copy ``k`` of dataset row ``i`` comes from ``numpy.random.default_rng([seed, i, k])``: a copy does
not depend on which other clips are augmented or in which order.

References:
    Ko et al., "Audio augmentation for speech recognition", Interspeech 2015 (speed perturbation).
"""

from __future__ import annotations

import numpy as np

from train.audio_io import fix_length
from train.librosa_safe import librosa
from train.train_config import WaveAugmentConfig


def add_noise(
    samples: np.ndarray, snr_db: float, rng: np.random.Generator, noise: np.ndarray | None = None
) -> np.ndarray:
    """``samples`` plus noise scaled to ``snr_db`` (white, or a random stretch of ``noise``, looped if short).

    A silent clip is returned as is (no SNR is defined for it).
    """
    power = float(np.mean(np.square(samples, dtype=np.float64)))
    if power == 0.0:
        return samples
    if noise is None or not len(noise):
        added = rng.standard_normal(len(samples))
    else:
        start = int(rng.integers(len(noise)))
        added = np.resize(np.roll(noise, -start), len(samples)).astype(np.float64)
    noise_power = float(np.mean(np.square(added)))
    if noise_power == 0.0:
        return samples
    scale = np.sqrt(power / (noise_power * 10 ** (snr_db / 10)))
    return (samples + scale * added).astype(np.float32)


def time_shift(samples: np.ndarray, shift: int) -> np.ndarray:
    """Shift by ``shift`` samples (positive: later), filling with zeros; the length is kept."""
    if shift == 0:
        return samples
    out = np.zeros_like(samples)
    if abs(shift) < len(samples):
        if shift > 0:
            out[shift:] = samples[:-shift]
        else:
            out[:shift] = samples[-shift:]
    return out


def apply_gain(samples: np.ndarray, gain_db: float) -> np.ndarray:
    """``samples`` scaled by ``gain_db`` decibels."""
    return (samples * 10 ** (gain_db / 20)).astype(np.float32)


def change_speed(samples: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play ``factor`` times faster: ``len / factor`` samples, every frequency times ``factor``."""
    if factor == 1.0:
        return samples
    return librosa.resample(samples, orig_sr=sample_rate * factor, target_sr=sample_rate, res_type="soxr_hq")


def shift_pitch(samples: np.ndarray, semitones: float, sample_rate: int) -> np.ndarray:
    """Shift the pitch by ``semitones`` at constant tempo (length kept)."""
    if semitones == 0.0:
        return samples
    return librosa.effects.pitch_shift(samples, sr=sample_rate, n_steps=semitones).astype(np.float32)


def augment_clip(
    samples: np.ndarray, sample_rate: int, n_samples: int, cfg: WaveAugmentConfig, row: int, copy: int,
    background: list[np.ndarray] | None = None, crop: str = "centre",
) -> np.ndarray:  # fmt: skip
    """Copy ``copy`` of dataset row ``row``: ``n_samples`` long, perturbed as the module docstring says.

    Args:
        samples: The clip's mono samples at ``sample_rate``, before the crop or pad.
        sample_rate: Hz.
        n_samples: Length of the result (the clip length).
        cfg: The augmentation settings.
        row: The clip's dataset row (seeds its draws with ``copy`` and ``cfg.seed``).
        copy: Which copy, 0-based.
        background: Noise recordings at ``sample_rate`` (None or empty: white noise).
        crop: How a clip longer than ``n_samples`` is cropped (``features.crop``, see
            :func:`train.audio_io.fix_length`).
    """
    rng = np.random.default_rng([cfg.seed, row, copy])
    speed, semitones = rng.uniform(*cfg.speed), rng.uniform(*cfg.pitch_semitones)
    shift = int(rng.integers(-round(cfg.shift_s * sample_rate), round(cfg.shift_s * sample_rate) + 1))
    gain_db, noisy, snr_db = rng.uniform(*cfg.gain_db), rng.random() < cfg.noise_prob, rng.uniform(*cfg.snr_db)
    out = shift_pitch(change_speed(samples, speed, sample_rate), semitones, sample_rate)
    out = apply_gain(time_shift(fix_length(out, n_samples, crop, sample_rate), shift), gain_db)
    if noisy:
        noise = background[int(rng.integers(len(background)))] if background else None
        out = add_noise(out, snr_db, rng, noise)
    return np.ascontiguousarray(out, dtype=np.float32)
