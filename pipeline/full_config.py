"""Typed settings of ``--mode full``: the whole run's time budget."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class FullConfig:
    """``--mode full``: baseline, search, quantization and reports within one wall-clock budget.

    ``max_minutes`` (``--max-minutes`` in this mode) covers the whole run: the search stops at the
    first generation boundary where the next generation plus the estimated quantization and
    reports of the current front would pass it (``nas.max_minutes`` still caps the search alone).
    The other stages are not cut short: what they do is fixed by their settings.
    """

    max_minutes: float | None = 20.0  # whole-run budget (0 or None: none)
    variant_s: float = 15.0  # estimate: export, INT8 variants and their re-measurement, seconds per model

    def __post_init__(self) -> None:
        if self.max_minutes is not None and not (math.isfinite(self.max_minutes) and self.max_minutes >= 0):
            raise ValueError(f"full.max_minutes (--max-minutes) must be >= 0 (0: no budget), got {self.max_minutes}")
        if self.max_minutes == 0:
            object.__setattr__(self, "max_minutes", None)
        if not (math.isfinite(self.variant_s) and self.variant_s >= 0):
            raise ValueError(f"full.variant_s must be >= 0 seconds, got {self.variant_s}")
