"""Features: the cached feature matrix of a dataset with labels, splits and normalisation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from train.features import FeatureConfig
from train.normalization import Normalization
from train.splits import Splits


@dataclass
class Features:
    """Everything training needs, without re-decoding audio.

    Attributes:
        x: Raw features, shape (n_clips, n_bins, n_frames), usually a read-only memmap.
        y: Integer label per clip (index into ``classes``).
        classes: Class names.
        splits: Row indices of train/val/test.
        normalization: Per-band statistics from the training split.
        speakers: Speaker id per clip, or None when the dataset has none.
        paths: Audio path per clip.
        dataset: Dataset name (``synthetic`` for the built-in data).
        config: The feature settings.
        cache_key: Key of the feature cache folder.
        cache_hit: Whether the features came from an existing cache.
    """

    x: np.ndarray
    y: np.ndarray
    classes: list[str]
    splits: Splits
    normalization: Normalization
    speakers: np.ndarray | None
    paths: list[str]
    dataset: str
    config: FeatureConfig
    cache_key: str
    cache_hit: bool

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Model input shape of one clip: (1, n_bins, n_frames), or (1, n_samples) for waveforms."""
        if self.config.kind == "waveform":
            return (1, self.x.shape[2])
        return (1, *self.x.shape[1:])

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised model inputs of shape (len(rows), *input_shape) and their labels."""
        rows = np.asarray(rows)
        order = np.argsort(rows, kind="stable")
        x = np.empty((len(rows), *self.x.shape[1:]), dtype=np.float32)
        x[order] = self.x[rows[order]]  # sorted reads are faster on a memmap
        x = self.normalization.apply(x)
        return x.reshape(len(rows), *self.input_shape), self.y[rows]
