"""The built-in default data: a deterministic synthetic sound-event dataset generated in code.

Ten classes of short events (tones, chirps, harmonic buzzes, vibrato, tremolo, noise bursts,
click trains, plucks, double beeps, sirens) with overlapping pitch ranges, random duration,
onset and loudness, mixed into pink-ish background noise at a random SNR. Some pairs are
confusable on purpose (beep vs. shallow tremolo or vibrato, harmonic vs. pluck, chirps with a
small sweep), so a tiny model does not reach 100% after one epoch.

The clips are written once as 16-bit WAVs plus a ``metadata.csv`` into a cache folder keyed by
the generator's settings, and then read through the same path as any real dataset. The folder is
built under a temporary ``.tmp-*`` name; those left by a killed run are removed by the next one
once they are an hour old (:mod:`train.tmp_dirs`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from common.atomic import make_temp_folder
from common.config_io import check_seed
from common.hashing import stable_hash
from train.datasets.base import AudioDataset, Clip
from train.datasets.registry import register_dataset
from train.tmp_dirs import TMP_PREFIX, remove_stale_tmp_dirs

GENERATOR_VERSION = 1
_MARKER = "synthetic.json"


@dataclass(frozen=True)
class SyntheticConfig:
    """Settings of the synthetic dataset (all of them enter its cache key)."""

    n_classes: int = 10  # 8-10 classes, taken in order from the class list
    clips_per_class: int = 60  # total clips = n_classes * clips_per_class
    sample_rate: int = 16000  # Hz
    clip_seconds: float = 1.0  # length of every file
    min_snr_db: float = -3.0  # background noise level range (signal-to-noise ratio)
    max_snr_db: float = 20.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 8 <= self.n_classes <= len(CLASSES):
            raise ValueError(f"synthetic.n_classes must be in 8..{len(CLASSES)}, got {self.n_classes}")
        if self.clips_per_class < 3:
            raise ValueError(f"synthetic.clips_per_class must be >= 3, got {self.clips_per_class}")
        if self.min_snr_db > self.max_snr_db:
            raise ValueError("synthetic.min_snr_db must not exceed synthetic.max_snr_db")
        check_seed("data.synthetic.seed", self.seed)


def _envelope(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    ramp = max(1, int(sr * rng.uniform(0.005, 0.02)))
    env = np.ones(n)
    ramp = min(ramp, n // 2)
    env[:ramp] = np.linspace(0.0, 1.0, ramp)
    env[n - ramp :] = np.linspace(1.0, 0.0, ramp)
    return env


def _sine_phase(freq: np.ndarray, sr: int) -> np.ndarray:
    return 2 * np.pi * np.cumsum(freq) / sr


def _beep(t, sr, rng):
    return np.sin(2 * np.pi * rng.uniform(300, 3000) * t)


def _chirp(direction: int) -> Callable:
    def make(t, sr, rng):
        f0 = rng.uniform(300, 2000)
        f1 = f0 * rng.uniform(1.3, 3.0) ** direction
        return np.sin(_sine_phase(np.linspace(f0, f1, len(t)), sr))

    return make


def _harmonics(f0: float, t: np.ndarray, n: int, rng) -> np.ndarray:
    out = np.zeros_like(t)
    for k in range(1, n + 1):
        if f0 * k < 7500:
            out += rng.uniform(0.5, 1.0) / k * np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi))
    return out


def _harmonic(t, sr, rng):
    return _harmonics(rng.uniform(100, 600), t, 8, rng)


def _pluck(t, sr, rng):
    return _harmonics(rng.uniform(100, 600), t, 8, rng) * np.exp(-t * rng.uniform(6, 20))


def _vibrato(t, sr, rng):
    f0 = rng.uniform(300, 3000)
    depth = rng.uniform(0.01, 0.06)
    freq = f0 * (1 + depth * np.sin(2 * np.pi * rng.uniform(4, 9) * t))
    return np.sin(_sine_phase(freq, sr))


def _tremolo(t, sr, rng):
    depth = rng.uniform(0.3, 1.0)
    am = 1 - depth * 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(5, 15) * t))
    return am * np.sin(2 * np.pi * rng.uniform(300, 3000) * t)


def _noise_burst(t, sr, rng):
    noise = rng.standard_normal(len(t))
    spectrum = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(len(t), 1 / sr)
    centre, width = rng.uniform(500, 4000), rng.uniform(200, 1500)
    spectrum[np.abs(freqs - centre) > width / 2] = 0
    return np.fft.irfft(spectrum, n=len(t))


def _click_train(t, sr, rng):
    out = np.zeros_like(t)
    period = max(1, int(sr / rng.uniform(10, 60)))
    out[::period] = 1.0
    kernel = np.exp(-np.arange(int(sr * 0.003)) / (sr * 0.0008))
    return np.convolve(out, kernel)[: len(t)]


def _double_beep(t, sr, rng):
    tone = np.sin(2 * np.pi * rng.uniform(300, 3000) * t)
    gate = np.zeros_like(t)
    third = len(t) // 3
    gate[:third] = 1.0
    gate[2 * third :] = 1.0
    return tone * gate


def _siren(t, sr, rng):
    f0 = rng.uniform(400, 1500)
    freq = f0 * (1 + 0.25 * np.sin(2 * np.pi * rng.uniform(1.5, 4) * t))
    return np.sin(_sine_phase(freq, sr))


CLASSES: dict[str, Callable] = {
    "beep": _beep,
    "chirp_up": _chirp(+1),
    "chirp_down": _chirp(-1),
    "harmonic": _harmonic,
    "vibrato": _vibrato,
    "tremolo": _tremolo,
    "noise_burst": _noise_burst,
    "click_train": _click_train,
    "pluck": _pluck,
    "double_beep": _double_beep,
    "siren": _siren,
}


def _pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1.0))
    noise = np.fft.irfft(spectrum, n=n)
    return noise / (np.std(noise) + 1e-12)


def render_clip(cfg: SyntheticConfig, class_index: int, clip_index: int) -> np.ndarray:
    """Render one clip as float32 samples in [-1, 1]; the same arguments give the same samples."""
    rng = np.random.default_rng([cfg.seed, class_index, clip_index])
    sr = cfg.sample_rate
    n_total = round(cfg.clip_seconds * sr)
    n_event = int(sr * rng.uniform(0.15, min(0.8, cfg.clip_seconds)))
    t = np.arange(n_event) / sr
    event = list(CLASSES.values())[class_index](t, sr, rng)
    event = event * _envelope(n_event, sr, rng)
    event /= np.sqrt(np.mean(event**2)) + 1e-12
    onset = int(rng.integers(0, n_total - n_event + 1))
    signal = np.zeros(n_total)
    signal[onset : onset + n_event] = event
    snr_db = rng.uniform(cfg.min_snr_db, cfg.max_snr_db)
    event_power = np.mean(event**2)
    noise = _pink_noise(n_total, rng) * np.sqrt(event_power / 10 ** (snr_db / 10))
    mix = signal + noise
    gain = 10 ** (rng.uniform(-30, -6) / 20) / (np.max(np.abs(mix)) + 1e-12)
    return (mix * gain).astype(np.float32)


def synthetic_root(cfg: SyntheticConfig, cache_dir: Path) -> Path:
    """The cache folder that holds (or will hold) the dataset for ``cfg``."""
    key = stable_hash({"version": GENERATOR_VERSION, **dataclasses.asdict(cfg)})
    return Path(cache_dir) / "synthetic" / key


def generate_synthetic(cfg: SyntheticConfig, cache_dir: Path) -> Path:
    """Write the dataset for ``cfg`` under ``cache_dir`` unless it is already there.

    The files are written into a temporary folder that is renamed into place at the end, so an
    interrupted generation leaves nothing half-written in place; a temporary folder left by a killed
    generation is removed by a later call once nothing in it changed for an hour.

    Returns:
        The dataset root (holding ``metadata.csv``, the WAVs and ``synthetic.json``).
    """
    root = synthetic_root(cfg, cache_dir)
    remove_stale_tmp_dirs(root.parent)  # left by killed runs; never a young one another run may be writing
    if (root / _MARKER).is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_folder(root.parent, TMP_PREFIX)
    try:
        rows = ["file_path,label"]
        names = list(CLASSES)[: cfg.n_classes]
        for ci, name in enumerate(names):
            (tmp / name).mkdir()
            for k in range(cfg.clips_per_class):
                rel = f"{name}/{name}_{k:04d}.wav"
                sf.write(tmp / rel, render_clip(cfg, ci, k), cfg.sample_rate, subtype="PCM_16")
                rows.append(f"{rel},{name}")
        (tmp / "metadata.csv").write_text("\n".join(rows) + "\n")
        meta = {"generator_version": GENERATOR_VERSION, "config": dataclasses.asdict(cfg)}
        (tmp / _MARKER).write_text(json.dumps(meta, indent=2, sort_keys=True))
        try:
            os.replace(tmp, root)
        except OSError:  # another process finished first: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root


@register_dataset(
    "synthetic",
    detect=lambda root: (root / _MARKER).is_file(),
    expected="a folder made by generate_synthetic (synthetic.json, metadata.csv, <class>/*.wav)",
)
def load_synthetic(root: Path) -> AudioDataset:
    """Load a generated synthetic dataset (a plain CSV manifest under the hood)."""
    from train.datasets.csv_list import load_csv

    loaded = load_csv(root / "metadata.csv")
    clips = [Clip(c.path, c.label) for c in loaded.clips]
    return AudioDataset("synthetic", root, clips, loaded.missing)
