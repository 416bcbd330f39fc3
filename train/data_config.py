"""Typed settings of the data stage: which dataset, how to split it, how much bad data to tolerate."""

from __future__ import annotations

from dataclasses import dataclass, field

from common.config_io import check_seed
from train.datasets.registry import list_datasets
from train.datasets.synthetic import SyntheticConfig

SPLIT_PROTOCOLS = ("official", "stratified", "speaker")


@dataclass(frozen=True)
class DataConfig:
    """Dataset and split settings.

    ``split`` picks the protocol: ``official`` uses the dataset's own test lists or folds
    (FSDD takes 0-4, Speech Commands lists, UrbanSound8K/ESC-50 folds) and falls back to
    ``stratified`` where there are none; ``stratified`` is a label-stratified random
    train/val/test split; ``speaker`` holds out whole speakers.
    """

    dataset: str = "synthetic"  # a registered loader name, or "auto" to detect the layout at path
    path: str | None = None  # dataset root (or CSV file); required for every real dataset
    split: str = "official"  # official | stratified | speaker
    val_fraction: float = 0.15  # share of all clips used for validation (when not official)
    test_fraction: float = 0.15  # share of all clips held out for the final test
    test_fold: int | None = None  # fold datasets: test fold (default: the last fold)
    val_fold: int | None = None  # fold datasets: validation fold (default: the one before test)
    seed: int = 0  # seed of random splits
    max_bad_fraction: float = 0.05  # fail if more than this share of files is unreadable
    allow_outside_paths: bool = False  # follow metadata paths that leave the dataset folder (../, absolute paths)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)

    def __post_init__(self) -> None:
        known = list_datasets()
        if self.dataset not in (*known, "auto"):
            raise ValueError(f"unknown dataset '{self.dataset}'; known datasets: {', '.join(known)}, auto")
        if self.split not in SPLIT_PROTOCOLS:
            raise ValueError(f"data.split must be one of {', '.join(SPLIT_PROTOCOLS)}, got '{self.split}'")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 0.5:
                raise ValueError(f"data.{name} must be in (0, 0.5), got {value}")
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            raise ValueError(f"data.max_bad_fraction must be in [0, 1], got {self.max_bad_fraction}")
        check_seed("data.seed", self.seed)
