"""The built-in synthetic dataset: deterministic, enough classes, varied, labelled 'synthetic'."""

from __future__ import annotations

import numpy as np
import pytest

from train.datasets import load_dataset
from train.datasets.synthetic import CLASSES, SyntheticConfig, generate_synthetic, render_clip


def test_rendering_is_deterministic_and_seed_dependent():
    cfg = SyntheticConfig()
    a, b = render_clip(cfg, 3, 7), render_clip(cfg, 3, 7)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, render_clip(SyntheticConfig(seed=1), 3, 7))
    assert a.dtype == np.float32 and len(a) == 16000 and np.abs(a).max() <= 1.0


def test_clips_vary_in_onset_loudness_and_pitch():
    cfg = SyntheticConfig()
    clips = [render_clip(cfg, 0, k) for k in range(20)]
    peaks = [np.abs(c).max() for c in clips]
    assert max(peaks) / min(peaks) > 3  # loudness varies by more than 10 dB
    spectra = [np.argmax(np.abs(np.fft.rfft(c))) for c in clips]
    assert len(set(spectra)) > 10  # pitch varies
    energy_centres = [np.average(np.arange(len(c)), weights=c.astype(np.float64) ** 2) for c in clips]
    assert np.std(energy_centres) > 1000  # onset varies (samples)


def test_generated_once_and_loaded_as_synthetic(tmp_path):
    cfg = SyntheticConfig(clips_per_class=4)
    root = generate_synthetic(cfg, tmp_path)
    mtime = (root / "metadata.csv").stat().st_mtime_ns
    assert generate_synthetic(cfg, tmp_path) == root
    assert (root / "metadata.csv").stat().st_mtime_ns == mtime  # not regenerated
    ds = load_dataset(root, "synthetic")
    assert ds.name == "synthetic" and len(ds.classes) == 10 >= 8 and len(ds.clips) == 40
    assert generate_synthetic(SyntheticConfig(clips_per_class=4, seed=9), tmp_path) != root


def test_class_count_bounds():
    assert len(CLASSES) >= 10
    with pytest.raises(ValueError, match="n_classes"):
        SyntheticConfig(n_classes=5)
