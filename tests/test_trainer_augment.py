"""SpecAugment masks stay within their bounds; mixup blends pairs; the config validates fields."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.config_io import dataclass_from_dict
from common.errors import UserError
from train.augment import mixup, spec_augment
from train.train_config import SpecAugmentConfig, TrainConfig


def _runs(mask_1d: np.ndarray) -> list[int]:
    """Lengths of the runs of True in a 1-D boolean array."""
    padded = np.concatenate([[False], mask_1d, [False]]).astype(int)
    edges = np.flatnonzero(np.diff(padded))
    return list(edges[1::2] - edges[::2])


def test_masks_are_full_bands_within_bounds():
    cfg = SpecAugmentConfig(freq_masks=2, freq_mask_bins=5, time_masks=3, time_mask_frames=7)
    x = torch.ones(64, 1, 40, 101)
    out = spec_augment(x, cfg, np.random.default_rng(0))
    assert out.shape == x.shape and torch.equal(x, torch.ones_like(x))  # input untouched
    values = set(out.unique().tolist())
    assert values <= {0.0, 1.0}
    zeros = (out[:, 0] == 0).numpy()
    for example in zeros:
        freq_rows = example.all(axis=1)  # bins masked over every frame
        time_cols = example.all(axis=0)  # frames masked over every bin
        assert freq_rows.sum() <= 2 * 5 and time_cols.sum() <= 3 * 7
        # every zero belongs to a masked bin or a masked frame: the masks are bands, not noise
        assert np.array_equal(example, freq_rows[:, None] | time_cols[None, :])
    assert 0 < zeros.mean() < 0.5


def test_mask_widths_use_the_whole_range_and_never_exceed_the_input():
    cfg = SpecAugmentConfig(freq_masks=1, freq_mask_bins=50)  # wider than the 8 bins
    out = spec_augment(torch.ones(500, 1, 8, 10), cfg, np.random.default_rng(1))
    widths = (out[:, 0, :, 0] == 0).sum(dim=1)
    assert widths.min() == 0 and widths.max() == 8


def test_off_by_default_returns_input():
    x = torch.randn(4, 1, 8, 10)
    assert not SpecAugmentConfig().enabled
    assert spec_augment(x, SpecAugmentConfig(), np.random.default_rng(0)) is x


def test_masks_are_deterministic_for_a_seed():
    cfg = SpecAugmentConfig(1, 4, 1, 4)
    a = spec_augment(torch.ones(8, 1, 16, 20), cfg, np.random.default_rng(3))
    b = spec_augment(torch.ones(8, 1, 16, 20), cfg, np.random.default_rng(3))
    assert torch.equal(a, b)


def test_mixup_blends_pairs():
    x = torch.arange(6, dtype=torch.float32).reshape(6, 1, 1, 1)
    y = torch.arange(6)
    mixed, y_other, lam = mixup(x, y, 0.4, np.random.default_rng(0))
    assert 0.0 <= lam <= 1.0
    perm = y_other  # labels equal row indices here
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[perm])
    assert sorted(perm.tolist()) == list(range(6))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("batch_size", 0),
        ("lr", 0.0),
        ("label_smoothing", 1.0),
        ("device", "tpu"),
        ("amp", "fp8"),
        ("train_subset", 0.0),
        ("train_subset", 2.5),
        ("num_threads", 0),
        ("early_stopping_patience", -1),
    ],
)
def test_config_rejects_bad_values_naming_the_field(field, value):
    with pytest.raises(ValueError, match=rf"train\.{field} "):
        TrainConfig(**{field: value})


def test_config_from_plain_data():
    cfg = dataclass_from_dict(TrainConfig, {"epochs": 3, "spec_augment": {"time_masks": 2, "time_mask_frames": 10}})
    assert cfg.epochs == 3 and cfg.spec_augment.enabled
    with pytest.raises(UserError, match="epochs must be >= 1"):
        dataclass_from_dict(TrainConfig, {"epochs": 0})
    assert TrainConfig(train_subset=0.5).subset_size(101) == 50
    assert TrainConfig(train_subset=500).subset_size(101) == 101
