"""The pipeline's resolved configuration: defaults, then a config file, then command-line flags."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.config_io import (
    check_known_keys,
    check_seed,
    dataclass_from_dict,
    load_config_file,
    merge_dicts,
    number_problem,
)
from common.errors import UserError
from latency_tables.config import LatencyConfig
from pipeline.stages import STAGES, all_flags, stage_sections
from train.data_config import DataConfig
from train.features import FeatureConfig
from train.train_config import TrainConfig

DEFAULT_CACHE_ENV = "EDGE_AUDIO_NAS_CACHE"


@dataclass(frozen=True)
class RunConfig:
    """Settings of the run as a whole."""

    name: str | None = None  # run folder name under runs/ (default: the dataset name)
    seed: int = 0  # seed of training and search (splits have their own, data.seed)
    jobs: int = -1  # worker processes for feature extraction, baseline runs and search evaluations (-1: all cores)
    cache_dir: str | None = None  # feature/dataset cache (default: $EDGE_AUDIO_NAS_CACHE or ~/.cache/edge-audio-nas)
    progress: bool = True  # show progress bars

    @property
    def resolved_jobs(self) -> int:
        """``jobs`` with -1 resolved to the number of cores."""
        return self.jobs if self.jobs > 0 else (os.cpu_count() or 1)

    def __post_init__(self) -> None:
        if self.jobs == 0 or self.jobs < -1:
            raise ValueError(f"run.jobs must be -1 (all cores) or a positive count, got {self.jobs}")
        check_seed("run.seed", self.seed)


CORE_SECTIONS: dict[str, type] = {
    "run": RunConfig,
    "data": DataConfig,
    "features": FeatureConfig,
    "train": TrainConfig,
    "latency": LatencyConfig,
}


class _PipelineConfigMethods:
    """Behaviour of :data:`PipelineConfig` (its fields are the sections)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, loadable again with :func:`build_config` (as ``--config config.json``)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @property
    def cache_dir(self) -> Path:
        """Where datasets and features are cached."""
        if self.run.cache_dir:  # type: ignore[attr-defined]
            return Path(self.run.cache_dir).expanduser()  # type: ignore[attr-defined]
        env = os.environ.get(DEFAULT_CACHE_ENV)
        return Path(env).expanduser() if env else Path.home() / ".cache" / "edge-audio-nas"

    @property
    def run_name(self) -> str:
        """Run folder name: ``run.name`` or the dataset name."""
        return self.run.name or self.data.dataset  # type: ignore[attr-defined]


def _sections() -> dict[str, type]:
    core = dict(CORE_SECTIONS)
    latency = core.pop("latency")
    return {**core, **stage_sections(), "latency": latency}


# One typed section per concern: run, data, features, train, then one per stage that owns one
# (registered in pipeline.stages: baseline, nas, ...), then latency; the config file uses the same
# section names.
PipelineConfig = dataclasses.make_dataclass(
    "PipelineConfig",
    [(name, cls, field(default_factory=cls)) for name, cls in _sections().items()],
    bases=(_PipelineConfigMethods,),
    frozen=True,
)
PipelineConfig.__module__ = __name__
PipelineConfig.__doc__ = "The resolved configuration: one typed section per concern and per stage that owns one."


def build_config(
    config_file: str | Path | None, overrides: dict[str, Any], base: dict[str, Any] | None = None
) -> PipelineConfig:
    """Resolve the config: dataclass defaults < ``base`` < config file < command-line overrides.

    Args:
        config_file: Optional YAML/TOML/JSON file with the sections of :data:`PipelineConfig`.
        overrides: Nested dict of values given on the command line (``None`` values are ignored).
        base: Settings under the file, e.g. an existing run folder's ``config.json``.

    Raises:
        UserError: Unknown keys, wrong types or invalid values, naming the field.
    """
    data = load_config_file(config_file) if config_file else {}
    where = f"config file {config_file}" if config_file else "config"
    check_known_keys(PipelineConfig, data)
    if base:
        check_known_keys(PipelineConfig, base)
    _check_numbers(data, where, base or {}, overrides)
    # Partial sections are laid over the full defaults, so a nested section with its own default
    # (e.g. nas.proxy, a short TrainConfig) keeps the fields the user did not set.
    merged = merge_dicts(merge_dicts(merge_dicts(PipelineConfig().to_dict(), base or {}), data), _drop_none(overrides))
    return dataclass_from_dict(PipelineConfig, merged, where=where)


def _check_numbers(data: dict[str, Any], where: str, base: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Refuse NaN, infinity or a boolean for a number in any source, naming the flag or the file and the field.

    Raises:
        UserError: E.g. ``--max-latency-ms must be a finite number, got nan (config field nas.max_latency_ms)``.
    """
    found = number_problem(PipelineConfig, _drop_none(overrides))
    if found:
        flag = _flag_names().get(found[0])
        name = flag or f"config field '{found[0]}'"
        raise UserError(f"{name} {found[1]}" + (f" (config field {found[0]})" if flag else ""))
    for source, label in ((data, where), (base, "the run folder's config.json")):
        found = number_problem(PipelineConfig, source)
        if found:
            raise UserError(f"{label}: field '{found[0]}' {found[1]}")


def _flag_names() -> dict[str, str]:
    """Config field -> the flag that sets it (``nas.max_latency_ms`` -> ``--max-latency-ms``)."""
    names = {target: f.name for f in all_flags() for target in f.targets}
    moved = {t: f"--{dest.replace('_', '-')}" for s in STAGES for dest, targets in s.flag_targets for t in targets}
    return names | moved


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            value = _drop_none(value)
            if value:
                out[key] = value
        elif value is not None:
            out[key] = value
    return out
