"""Typed settings of the baseline stage."""

from __future__ import annotations

from dataclasses import dataclass

from search_spaces import list_baselines


@dataclass(frozen=True)
class BaselineConfig:
    """Which baselines to train and how many seeds each."""

    models: tuple[str, ...] = ("tiny", "small", "medium", "dscnn")  # names from search_spaces.list_baselines()
    seeds: int = 1  # independent training runs per model (seed = run.seed + k); results report mean +- std

    def __post_init__(self) -> None:
        unknown = [m for m in self.models if m not in list_baselines()]
        if unknown:
            raise ValueError(
                f"unknown baseline(s) {', '.join(unknown)}; known baselines: {', '.join(list_baselines())}"
            )
        if not self.models:
            raise ValueError("baseline.models must name at least one baseline")
        if self.seeds < 1:
            raise ValueError(f"baseline.seeds must be >= 1, got {self.seeds}")
