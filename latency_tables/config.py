"""Typed settings of the latency stages (table collection, validation, prediction)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from common.config_io import check_seed
from latency_tables.ort_timing import TimingConfig
from latency_tables.precision import DEFAULT_PRECISION, check_precision

_DEVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_VALIDATE_N = 10_000  # each spec is measured twice (about 0.1 s each): 10,000 is most of a day


@dataclass(frozen=True)
class LatencyConfig:
    """Which device table to use or collect, and how latencies are measured."""

    device: str | None = None  # device name = table file stem (default: the shipped table of the CI machine class)
    space: str = "mel2d"  # search space whose ops a collected table covers
    n_classes: int = 10  # classes of the heads measured in a collected table (others: class-adjusted)
    max_minutes: float = 10.0  # time budget of one collection run (it resumes where it stopped)
    calibration_models: int = 12  # whole models measured to fit the per-device linear calibration
    validate_n: int = 100  # random specs measured by --mode validate-latency
    strict: bool = False  # refuse interpolated ops in predictions instead of flagging them
    tables_dir: str | None = None  # where collection writes tables (default: the user folder, see locations)
    precision: str | None = None  # fp32 | int8: what a collected table times; elsewhere the precision asked of a table
    kit_dir: str | None = None  # device kit folder: written by --mode latency-kit, read by --mode latency-import
    seed: int = 0  # seeds the collection order, calibration and validation specs
    timing: TimingConfig = field(default_factory=TimingConfig)

    def __post_init__(self) -> None:
        if self.device is not None and not _DEVICE_NAME.match(self.device):
            raise ValueError(
                f"latency.device must be a file-name-safe name (letters, digits, '.', '_', '-'), got '{self.device}'"
            )
        if self.max_minutes <= 0:
            raise ValueError(f"latency.max_minutes must be > 0, got {self.max_minutes}")
        if self.calibration_models < 0 or self.calibration_models == 1:
            raise ValueError(f"latency.calibration_models must be 0 or >= 2, got {self.calibration_models}")
        if not 2 <= self.validate_n <= MAX_VALIDATE_N:
            raise ValueError(f"latency.validate_n (--n) must be in 2..{MAX_VALIDATE_N}, got {self.validate_n}")
        if self.n_classes < 2:
            raise ValueError(f"latency.n_classes must be >= 2, got {self.n_classes}")
        check_seed("latency.seed", self.seed)
        check_precision(self.precision)

    @property
    def collect_precision(self) -> str:
        """The precision a collection times (fp32 unless asked)."""
        return self.precision or DEFAULT_PRECISION
