"""The linear reference: logistic regression on pooled band statistics, fitted on train, chosen on validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from train.feature_set import Features
from train.features import FeatureConfig
from train.linear_reference import C_GRID, fit_linear_reference, pooled_statistics
from train.normalization import compute_normalization
from train.splits import Splits

N_CLASSES, N_BINS, N_FRAMES = 4, 8, 30


def _features(signal: float, n_per_class: int = 40, kind: str = "logmel") -> Features:
    """Noise, plus ``signal`` in two bands per class: a linear model separates it when ``signal`` is large."""
    rng = np.random.default_rng(1)
    n = n_per_class * N_CLASSES
    y = rng.permutation(np.repeat(np.arange(N_CLASSES), n_per_class)).astype(np.int64)
    x = rng.normal(size=(n, N_BINS, N_FRAMES)).astype(np.float32)
    for c in range(N_CLASSES):
        x[y == c, 2 * c : 2 * c + 2] += signal
    order = rng.permutation(n)
    splits = Splits(*(np.sort(p) for p in np.split(order, [int(0.6 * n), int(0.8 * n)])), protocol="toy")
    speakers = np.array([f"spk{i % 3}" for i in range(n)], dtype=object)
    return Features(
        x=x, y=y, classes=[f"c{c}" for c in range(N_CLASSES)], splits=splits,
        normalization=compute_normalization(x, splits.train), speakers=speakers,
        paths=[f"{i}.wav" for i in range(n)], dataset="toy", config=FeatureConfig(n_mels=N_BINS, kind=kind),
        cache_key="toy", cache_hit=True,
    )  # fmt: skip


def test_pooled_statistics_are_per_band_mean_std_and_max():
    features = _features(1.0)
    rows = features.splits.test[:5]
    stats = pooled_statistics(features, rows)
    x, _ = features.batch(rows)
    x = x[:, 0]
    assert stats.shape == (5, 3 * N_BINS)
    np.testing.assert_allclose(stats[:, :N_BINS], x.mean(axis=2), rtol=1e-6)
    np.testing.assert_allclose(stats[:, N_BINS : 2 * N_BINS], x.std(axis=2), rtol=1e-5)
    np.testing.assert_allclose(stats[:, 2 * N_BINS :], x.max(axis=2), rtol=1e-6)


def test_separable_bands_are_learnt_and_noise_is_not():
    clear = fit_linear_reference(_features(1.0))
    assert clear.test["accuracy"] == 1.0 and clear.c in C_GRID
    assert clear.params == 3 * N_BINS * N_CLASSES + N_CLASSES
    assert clear.size_kb == pytest.approx(4 * clear.params / 1024)
    assert set(clear.test["per_speaker"]) == {"spk0", "spk1", "spk2"}  # scored like the CNNs
    noise = fit_linear_reference(_features(0.0))
    assert noise.test["accuracy"] < 0.6  # chance is 0.25: nothing to learn
    assert fit_linear_reference(_features(1.0)).test == clear.test  # deterministic


def test_waveforms_and_empty_splits_are_refused():
    with pytest.raises(ValueError, match="needs spectral features"):
        fit_linear_reference(_features(1.0, kind="waveform"))
    features = _features(1.0)
    empty = dataclasses.replace(features.splits, val=np.array([], dtype=np.int64))
    with pytest.raises(ValueError, match="train, validation and test"):
        fit_linear_reference(dataclasses.replace(features, splits=empty))
