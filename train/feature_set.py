"""Features: the cached feature matrix of a dataset with labels, splits and normalisation."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from common.hashing import stable_hash
from train.features import FeatureConfig
from train.normalization import Normalization
from train.splits import SPLITS, Splits


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
        cache_folder: The cache folder (None for features built in memory); its parent's parent
            is the cache root, where augmented copies are kept (:mod:`train.augment_cache`).
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
    cache_folder: Path | None = None

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

    @functools.cached_property
    def fingerprint(self) -> str:
        """A content hash of what a model is trained and scored on, independent of paths and mtimes.

        It covers the classes, every row's label and split, the train-split normalisation (which
        summarises the feature values) and the feature settings; re-staging the same files elsewhere
        keeps it, a changed split, seed, label or setting changes it. Resume checks (search,
        baselines, trainer checkpoints) and search workers compare it. Computed once per object
        (a search worker trains every candidate on the same one).
        """
        split = self.splits.name_of(len(self.y))
        return stable_hash(
            {
                "classes": self.classes,
                "labels": hashlib.sha256(np.ascontiguousarray(self.y, dtype=np.int64).tobytes()).hexdigest(),
                "splits": hashlib.sha256("\n".join(split.astype(str)).encode()).hexdigest(),
                "normalization": self.normalization.to_dict(),
                "features": dataclasses.asdict(self.config),
            },
            length=20,
        )

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalised model inputs of shape (len(rows), *input_shape) and their labels."""
        rows = np.asarray(rows)
        order = np.argsort(rows, kind="stable")
        x = np.empty((len(rows), *self.x.shape[1:]), dtype=np.float32)
        x[order] = self.x[rows[order]]  # sorted reads are faster on a memmap
        x = self.normalization.apply(x)
        return x.reshape(len(rows), *self.input_shape), self.y[rows]


def load_features(run_dir: str | Path) -> Features:
    """Rebuild the :class:`Features` of a run from its folder alone (after the features stage ran).

    Reads ``data/summary.json`` (classes, normalisation, cache folder, feature settings) and
    ``data/clips.csv`` (label, speaker and split of every row) and memory-maps the cached
    features. Worker processes use this instead of receiving the arrays.

    Raises:
        FileNotFoundError: The run folder has no features stage output, or the cache is gone.
    """
    data = Path(run_dir) / "data"
    summary = json.loads((data / "summary.json").read_text())
    clips = pd.read_csv(data / "clips.csv", dtype=str, keep_default_na=False)
    folder = Path(summary["cache_folder"])
    x = np.load(folder / "features.npy", mmap_mode="r")
    if len(x) != len(clips):
        raise FileNotFoundError(
            f"feature cache {folder} does not match {data / 'clips.csv'}; re-run the features stage"
        )
    classes = summary["classes"]
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[label] for label in clips["label"]], dtype=np.int64)
    split = clips["split"].to_numpy()
    splits = Splits(*(np.flatnonzero(split == name) for name in SPLITS), protocol=summary["split_protocol"])
    speakers = clips["speaker"].to_numpy(dtype=object) if (clips["speaker"] != "").all() else None
    return Features(
        x=x,
        y=y,
        classes=classes,
        splits=splits,
        normalization=Normalization.from_dict(summary["normalization"]),
        speakers=speakers,
        paths=clips["path"].tolist(),
        dataset=summary["dataset"],
        config=FeatureConfig.from_saved(summary["features"]),
        cache_key=summary["cache_key"],
        cache_hit=True,
        cache_folder=folder,
    )
