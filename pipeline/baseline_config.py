"""Typed settings of the baseline stage."""

from __future__ import annotations

from dataclasses import dataclass

from search_spaces import list_baselines
from train.cv_folds import parse_cv

SURVIVORS = "survivors"  # in baseline.models with --cv: the search's survivors (pipeline.survivors)


@dataclass(frozen=True)
class BaselineConfig:
    """Which baselines to train, how many seeds each, and whether to cross-validate them.

    ``cv``: None (one train/val/test split, ``data.split``), ``official`` (each official fold the
    test set once: UrbanSound8K 10-fold, ESC-50 5-fold), ``loso`` (leave one speaker out) or a
    fold count K (speaker-grouped K-fold where speakers are known, else stratified); see
    :mod:`pipeline.cv_stage`.
    """

    models: tuple[str, ...] = ("tiny", "small", "medium", "dscnn")  # search_spaces.list_baselines(), or survivors
    seeds: int = 1  # independent training runs per model (seed = run.seed + k); results report mean +- std
    cv: str | None = None  # cross-validation: official | loso | K (None: the single data.split)
    linear_reference: bool = True  # a logistic regression on pooled features beside the CNNs (train.linear_reference)

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in list_baselines() and m != SURVIVORS]
        if unknown:
            raise ValueError(
                f"unknown baseline(s) {', '.join(unknown)}; known baselines: {', '.join(list_baselines())}, or "
                f"'{SURVIVORS}' (with --cv: the search's survivors in the run folder)"
            )
        if not self.models:
            raise ValueError("baseline.models must name at least one baseline")
        if self.seeds < 1:
            raise ValueError(f"baseline.seeds must be >= 1, got {self.seeds}")
        object.__setattr__(self, "cv", parse_cv(self.cv))
        if SURVIVORS in self.models and self.cv is None:
            raise ValueError(
                f"baseline.models '{SURVIVORS}' needs --cv (official, loso or K): on the single split the survivors "
                "are trained by --mode quantization"
            )
