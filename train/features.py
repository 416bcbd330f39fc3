"""Log-mel and MFCC features of fixed-length clips, computed with librosa."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from train.audio_io import CROPS
from train.librosa_safe import librosa

FEATURE_KINDS = ("logmel", "mfcc", "waveform")
DB_REFERENCES = ("peak", "absolute")
CLIP_NORMS = ("none", "mean", "meanvar")
# Fields whose default changed: the value a record written without the field was made with.
FORMER_DEFAULTS = {"db_reference": "absolute", "top_db": 80.0}
MAX_SAMPLE_RATE = 768_000  # the highest rate audio formats and interfaces use
MAX_FEATURE_VALUES = 1 << 24  # per clip (64 MiB of float32): 17 min of 16 kHz waveform, far beyond any clip


@dataclass(frozen=True)
class FeatureConfig:
    """How audio becomes a (n_bins, n_frames) feature matrix. Every field enters the cache key."""

    kind: str = "logmel"  # "logmel" (dB), "mfcc" (DCT of the dB log-mel) or "waveform" (raw samples)
    sample_rate: int = 16000  # Hz; audio is resampled to this
    clip_seconds: float = 1.0  # longer clips are cropped (see crop), shorter ones zero-padded evenly, to this length
    crop: str = "centre"  # part of a longer clip kept: "centre", "start" or "onset" (from its first onset)
    n_mels: int = 40  # mel bands
    n_mfcc: int = 20  # coefficients kept when kind == "mfcc"
    win_ms: float = 25.0  # analysis window
    hop_ms: float = 10.0  # hop between frames
    fmin_hz: float = 20.0
    fmax_hz: float | None = None  # None: sample_rate / 2
    top_db: float | None = 40.0  # dynamic range kept below each clip's peak (None: all); was 80 (see README)
    db_reference: str = "peak"  # dB re each clip's loudest bin ("peak": recording gain removed) or re 1.0 ("absolute")
    clip_norm: str = "none"  # per clip and band, over time: "mean" subtracts the mean (CMN), "meanvar" also scales to
    # unit variance (CMVN); applied before the dataset-level per-band normalisation of the train split

    def __post_init__(self) -> None:
        if self.kind not in FEATURE_KINDS:
            raise ValueError(f"features.kind must be one of {', '.join(FEATURE_KINDS)}, got '{self.kind}'")
        if self.crop not in CROPS:
            raise ValueError(f"features.crop must be one of {', '.join(CROPS)}, got '{self.crop}'")
        if self.db_reference not in DB_REFERENCES:
            raise ValueError(
                f"features.db_reference must be one of {', '.join(DB_REFERENCES)}, got '{self.db_reference}'"
            )
        if self.clip_norm not in CLIP_NORMS:
            raise ValueError(f"features.clip_norm must be one of {', '.join(CLIP_NORMS)}, got '{self.clip_norm}'")
        if self.clip_norm != "none" and self.kind == "waveform":
            raise ValueError(f"features.clip_norm must be 'none' for waveform features, got '{self.clip_norm}'")
        if not 1000 <= self.sample_rate <= MAX_SAMPLE_RATE:
            raise ValueError(f"features.sample_rate must be in 1000..{MAX_SAMPLE_RATE} Hz, got {self.sample_rate}")
        if self.clip_seconds <= 0:
            raise ValueError(f"features.clip_seconds must be > 0, got {self.clip_seconds}")
        if not 0 < self.hop_ms <= self.win_ms:
            raise ValueError(f"features.hop_ms must be in (0, win_ms], got {self.hop_ms}")
        if self.hop_length < 1:
            raise ValueError(f"features.hop_ms must be at least one sample ({1000 / self.sample_rate:g} ms), got "
                             f"{self.hop_ms}")  # fmt: skip
        if self.n_mels < 4:
            raise ValueError(f"features.n_mels must be >= 4, got {self.n_mels}")
        if self.kind == "mfcc" and not 1 <= self.n_mfcc <= self.n_mels:
            raise ValueError(f"features.n_mfcc must be in 1..n_mels, got {self.n_mfcc}")
        nyquist = self.sample_rate / 2
        if self.fmax_hz is not None and not self.fmin_hz < self.fmax_hz <= nyquist:
            raise ValueError(f"features.fmax_hz must be in (fmin_hz, {nyquist:g}], got {self.fmax_hz}")
        if self.kind != "waveform" and self.win_length > self.n_samples:
            clip = f"features.clip_seconds={self.clip_seconds:g}"
            raise ValueError(f"features.win_ms ({self.win_ms:g} ms) must not exceed the clip ({clip})")
        values = self.n_bins * self.n_frames
        if values > MAX_FEATURE_VALUES:
            raise ValueError(
                f"features: one clip's features would be {self.n_bins} x {self.n_frames} values, more than "
                f"{MAX_FEATURE_VALUES}; lower features.clip_seconds or n_mels, or raise hop_ms"
            )

    @classmethod
    def from_saved(cls, saved: dict) -> FeatureConfig:
        """The settings written in a run's ``summary.json`` or a model card, by any version.

        Records written before ``db_reference`` existed were computed re 1.0 ("absolute"); a record
        without ``top_db`` was made with the former default, 80 dB.
        """
        return cls(**(FORMER_DEFAULTS | saved))

    @property
    def win_length(self) -> int:
        """Window length in samples."""
        return round(self.sample_rate * self.win_ms / 1000)

    @property
    def hop_length(self) -> int:
        """Hop length in samples."""
        return round(self.sample_rate * self.hop_ms / 1000)

    @property
    def n_fft(self) -> int:
        """FFT size: the next power of two at or above the window length."""
        return 1 << (self.win_length - 1).bit_length()

    @property
    def n_samples(self) -> int:
        """Samples per clip after cropping/padding."""
        return round(self.sample_rate * self.clip_seconds)

    @property
    def n_bins(self) -> int:
        """Feature rows: mel bands, MFCC coefficients, or 1 for the raw waveform."""
        return {"mfcc": self.n_mfcc, "waveform": 1}.get(self.kind, self.n_mels)

    @property
    def n_frames(self) -> int:
        """Feature columns of a clip: centred frames, or samples for the raw waveform."""
        if self.kind == "waveform":
            return self.n_samples
        return 1 + self.n_samples // self.hop_length

    @property
    def shape(self) -> tuple[int, int]:
        """(n_bins, n_frames) of one clip's features."""
        return (self.n_bins, self.n_frames)


def compute_features(samples: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Features of one clip already at ``cfg.sample_rate`` and ``cfg.n_samples`` long.

    Args:
        samples: Mono float32 samples.
        cfg: The feature settings.

    Returns:
        float32 array of shape ``cfg.shape``: log-mel power in dB (re the clip's loudest bin, or re
        1.0 with ``db_reference="absolute"``), its MFCCs, or the samples themselves as one row; with
        ``clip_norm``, each row (band or coefficient) centred on its mean over the clip's frames
        (and, with ``meanvar``, divided by its standard deviation).
    """
    if cfg.kind == "waveform":
        return samples.astype(np.float32)[None, :]
    mel = librosa.feature.melspectrogram(
        y=samples,
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        win_length=cfg.win_length,
        hop_length=cfg.hop_length,
        n_mels=cfg.n_mels,
        fmin=cfg.fmin_hz,
        fmax=cfg.fmax_hz,
        power=2.0,
        center=True,
    )
    ref = np.max if cfg.db_reference == "peak" else 1.0
    logmel = librosa.power_to_db(mel, ref=ref, amin=1e-10, top_db=cfg.top_db)
    out = librosa.feature.mfcc(S=logmel, n_mfcc=cfg.n_mfcc) if cfg.kind == "mfcc" else logmel
    return normalize_clip(out, cfg.clip_norm).astype(np.float32)


def normalize_clip(x: np.ndarray, clip_norm: str) -> np.ndarray:
    """Per-row normalisation over time of one clip's (n_bins, n_frames) features.

    Args:
        x: One clip's log-mel (dB) or MFCC matrix.
        clip_norm: ``none`` (unchanged), ``mean`` (each row minus its mean: a fixed channel or
            spectral tilt, additive in dB, cancels) or ``meanvar`` (also divided by its standard
            deviation; a constant row, such as a silent band, stays 0).

    Returns:
        The normalised matrix, same shape.
    """
    if clip_norm == "none":
        return x
    x = x - x.mean(axis=1, keepdims=True)
    if clip_norm == "meanvar":
        std = x.std(axis=1, keepdims=True)
        x = x / np.where(std < 1e-6, 1.0, std)
    return x
