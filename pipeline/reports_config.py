"""Typed settings of ``--mode reports``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReportsConfig:
    """Which other runs to compare with (e.g. random search, other seeds), and where reports go."""

    compare: tuple[str, ...] = ()  # other run folders drawn beside this one (NSGA-II vs random, seeds)
    out_dir: str | None = None  # default: <run>/reports
