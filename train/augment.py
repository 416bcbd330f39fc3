"""Batch augmentation for training: SpecAugment masking and mixup.

Random draws come from a ``numpy.random.Generator`` owned by the trainer (seeded from the
training seed, saved in checkpoints), never from a global random module, and are made on the
CPU so that results do not depend on the device. Only the masks are built on the batch's device.

References:
    Park et al., "SpecAugment: A Simple Data Augmentation Method for Automatic Speech
    Recognition", Interspeech 2019. Zhang et al., "mixup: Beyond Empirical Risk Minimization",
    ICLR 2018.
"""

from __future__ import annotations

import numpy as np
import torch

from train.train_config import SpecAugmentConfig


def _band_mask(
    n_rows: int, size: int, count: int, max_width: int, rng: np.random.Generator, device: torch.device
) -> torch.Tensor:
    """Boolean (n_rows, size) mask: per row, ``count`` bands of width 0..max_width inside 0..size."""
    max_width = min(max_width, size)
    widths = rng.integers(0, max_width + 1, size=(n_rows, count))
    starts = np.floor(rng.random((n_rows, count)) * (size - widths + 1)).astype(np.int64)
    starts_t = torch.from_numpy(starts).to(device)[:, :, None]
    ends_t = starts_t + torch.from_numpy(widths).to(device)[:, :, None]
    pos = torch.arange(size, device=device)[None, None, :]
    return ((pos >= starts_t) & (pos < ends_t)).any(dim=1)


def spec_augment(x: torch.Tensor, cfg: SpecAugmentConfig, rng: np.random.Generator) -> torch.Tensor:
    """Mask random frequency bands and time spans of each example (training only).

    Args:
        x: Normalised batch of shape (batch, channels, n_bins, n_frames).
        cfg: Mask counts and largest widths.
        rng: Source of the mask positions.

    Returns:
        A new tensor with masked cells set to 0 (the per-band mean); ``x`` itself when masking is off.
    """
    if not cfg.enabled:
        return x
    if x.ndim != 4:
        raise ValueError(f"SpecAugment needs (batch, channels, n_bins, n_frames) batches, got shape {tuple(x.shape)}")
    batch, _, n_bins, n_frames = x.shape
    keep = torch.ones((batch, n_bins, n_frames), dtype=torch.bool, device=x.device)
    if cfg.freq_masks > 0 and cfg.freq_mask_bins > 0:
        keep &= ~_band_mask(batch, n_bins, cfg.freq_masks, cfg.freq_mask_bins, rng, x.device)[:, :, None]
    if cfg.time_masks > 0 and cfg.time_mask_frames > 0:
        keep &= ~_band_mask(batch, n_frames, cfg.time_masks, cfg.time_mask_frames, rng, x.device)[:, None, :]
    return x * keep[:, None].to(x.dtype)


def mixup(
    x: torch.Tensor, y: torch.Tensor, alpha: float, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Blend each example with another one of the same batch.

    Args:
        x: Input batch (batch, ...).
        y: Integer labels (batch,).
        alpha: Beta(alpha, alpha) parameter of the blend weight; must be > 0.
        rng: Source of the blend weight and the pairing.

    Returns:
        ``(mixed_x, y_other, lam)``: the loss is ``lam * loss(y) + (1 - lam) * loss(y_other)``.
    """
    lam = float(rng.beta(alpha, alpha))
    perm = torch.from_numpy(rng.permutation(x.shape[0])).to(x.device)
    return lam * x + (1.0 - lam) * x[perm], y[perm], lam
