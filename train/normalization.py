"""Per-band feature normalisation, with statistics from the training split only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Normalization:
    """Per-band mean and standard deviation (shape ``(n_bins,)``) of the training features."""

    mean: np.ndarray
    std: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Normalise features of shape (..., n_bins, n_frames) to zero mean, unit variance per band."""
        return ((x - self.mean[:, None]) / self.std[:, None]).astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, list[float]]:
        """Plain-data form for JSON."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> Normalization:
        """Inverse of :meth:`to_dict`."""
        return cls(np.asarray(data["mean"], dtype=np.float32), np.asarray(data["std"], dtype=np.float32))


def compute_normalization(x: np.ndarray, rows: np.ndarray, chunk: int = 1024) -> Normalization:
    """Mean and std per band over the given rows and all their frames, read in chunks.

    Args:
        x: Features of shape (n_clips, n_bins, n_frames), typically a memmap.
        rows: Row indices of the training split.
        chunk: Rows read at a time (bounds memory on large datasets).
    """
    if len(rows) == 0:
        raise ValueError("cannot compute normalisation statistics from an empty training split")
    n_bins = x.shape[1]
    total = np.zeros(n_bins, dtype=np.float64)
    total_sq = np.zeros(n_bins, dtype=np.float64)
    count = 0
    for start in range(0, len(rows), chunk):
        block = np.asarray(x[np.sort(rows[start : start + chunk])], dtype=np.float64)
        total += block.sum(axis=(0, 2))
        total_sq += np.square(block).sum(axis=(0, 2))
        count += block.shape[0] * block.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    std = np.where(std < 1e-6, 1.0, std)
    return Normalization(mean.astype(np.float32), std.astype(np.float32))
