"""Typed settings of the search stage: budget, strategy, objectives, constraints, proxy training, engine."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any

from nas.config import SearchConfig
from train.train_config import TrainConfig

OBJECTIVES = ("accuracy", "macro_f1", "latency_ms", "size_kb", "size_kb_int8", "macs_m", "params")
LATENCY_SOURCES = ("table", "measure")
MAX_POPULATION = 10_000  # a generation is built in memory before anything is evaluated


# Fields of the engine's SearchConfig that the stage sets from other settings, so ``nas.search`` leaves them out.
STAGE_SET_FIELDS = {
    "population": "nas.population",
    "generations": "nas.generations",
    "strategy": "nas.strategy",
    "backend": "nas.backend",
    "scheduler": "nas.scheduler",
    "seed": "run.seed",
    "jobs": "run.jobs",
    "threads_per_worker": "nas.proxy.num_threads",
}


# Where the audio search's default differs from the engine's, chosen by measurement on the real problem:
# benchmarks/bench_fidelity.py (FSDD, 6 min, population 8, 2 workers, 3 seeds) gave hypervolume 0.903 +- 0.006
# with uniform variation against 0.873 +- 0.012 with sbx, ahead on every seed. sbx stays the engine's default,
# chosen on 101-level analytic problems (benchmarks/bench_engine.py); the search spaces' genes have 2 to 6 choices.
STAGE_DEFAULTS = {"variation": "uniform"}


def _search_settings_class() -> type:
    """``SearchSettings``: the fields of :class:`nas.config.SearchConfig` but :data:`STAGE_SET_FIELDS`.

    Generated from the engine's dataclass, so every engine setting (variation operators and their
    parameters, probabilities, novelty and evaluation retries, the dask connect timeout) is a
    ``nas.search.<field>`` key with the engine's default (but :data:`STAGE_DEFAULTS`) and validation,
    without a copy to keep in step.
    """
    hints = typing.get_type_hints(SearchConfig)
    fields = [
        (f.name, hints[f.name], field(default=STAGE_DEFAULTS.get(f.name, f.default)))
        for f in dataclasses.fields(SearchConfig)
        if f.name not in STAGE_SET_FIELDS
    ]

    def engine(self: Any, **stage: Any) -> SearchConfig:
        """The engine's :class:`SearchConfig`: these settings plus the ones the stage sets (``stage``).

        Raises:
            ValueError: An invalid value, named.
        """
        return SearchConfig(**dataclasses.asdict(self), **stage)

    def post_init(self: Any) -> None:
        try:
            engine(self)  # the engine's own checks; the stage-set fields are at the engine's defaults here
        except ValueError as exc:
            raise ValueError(f"nas.search: {exc}") from None

    namespace = {"engine": engine, "__post_init__": post_init}
    cls = dataclasses.make_dataclass("SearchSettings", fields, frozen=True, namespace=namespace)
    cls.__module__ = __name__
    cls.__doc__ = (
        "The engine's search settings that the stage does not set itself: ``nas.search.variation``, ``cx_prob``, "
        "``cx_indpb``, ``mut_prob``, ``mut_indpb``, ``sbx_eta``, ``pm_eta``, ``step_max``, ``novelty_retries``, "
        "``retries``, ``connect_timeout_s`` (the fields of nas.config.SearchConfig but STAGE_SET_FIELDS)."
    )
    return cls


SearchSettings = _search_settings_class()


def default_proxy() -> TrainConfig:
    """The accuracy proxy: a short training run on the train split, scored on validation.

    No label smoothing (full training's default): the proxy ranks candidates, and its recipe is
    the one its fidelity to full training was measured with.
    """
    return TrainConfig(epochs=4, warmup_epochs=0.5, label_smoothing=0.0, progress=False, device="auto", num_threads=1)


@dataclass(frozen=True)
class NasConfig:
    """What to search for and with which budget.

    ``latency_ms`` in ``objectives`` expands to one objective per device, named
    ``latency_ms_<device>`` (device names with ``-``/``.`` become ``_``). ``max_latency_ms``
    applies to every device. Constraints on size, MACs and table latency are checked before any
    training, so an infeasible candidate costs no training time.
    """

    space: str = "mel2d"  # search space
    population: int = 16  # individuals per generation (NSGA-II: a multiple of 4)
    generations: int = 6  # generations after the initial population; raise it with --resume to extend
    strategy: str = "nsga2"  # nsga2 | random (the baseline with the same budget)
    backend: str = "loky"  # loky (processes on this machine) | dask (a cluster) | inline
    scheduler: str | None = None  # dask scheduler address, e.g. tcp://10.0.0.5:8786
    objectives: tuple[str, ...] = ("accuracy", "latency_ms", "size_kb")
    devices: tuple[str, ...] = ()  # latency devices (default: latency.device, else the shipped table)
    latency_source: str = "table"  # table: predicted from the device tables | measure: timed here (ORT)
    max_size_kb: float | None = None  # constraint: fp32 weights after BatchNorm folding (KiB)
    max_size_kb_int8: float | None = None  # constraint: weights in a static INT8 ONNX file (KiB)
    max_latency_ms: float | None = 1.0  # constraint: latency on every device
    max_macs_m: float | None = None  # constraint: multiply-accumulates (millions)
    min_accuracy: float | None = None  # constraint: proxy validation accuracy
    max_minutes: float | None = 10.0  # wall-clock budget (0 or None: none); a deadline, mid-generation if need be
    proxy: TrainConfig = field(default_factory=default_proxy)
    search: SearchSettings = field(default_factory=SearchSettings)  # engine: variation operators, probabilities
    low_epochs: tuple[int, ...] = ()  # multi-fidelity (nas.search.promote): the lower rungs' proxy epochs

    def __post_init__(self) -> None:
        unknown = [o for o in self.objectives if o not in OBJECTIVES]
        if unknown:
            raise ValueError(f"unknown objective(s) {', '.join(unknown)}; objectives: {', '.join(OBJECTIVES)}")
        if len(set(self.objectives)) != len(self.objectives) or len(self.objectives) < 2:
            raise ValueError("nas.objectives must name at least two distinct objectives")
        if not {"accuracy", "macro_f1"} & set(self.objectives):
            raise ValueError("nas.objectives must include accuracy or macro_f1 (the search needs a quality objective)")
        if self.latency_source not in LATENCY_SOURCES:
            sources = ", ".join(LATENCY_SOURCES)
            raise ValueError(f"nas.latency_source must be one of {sources}, got '{self.latency_source}'")
        for name in ("max_size_kb", "max_size_kb_int8", "max_latency_ms", "max_macs_m"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"nas.{name} must be > 0, got {value}")
        if self.max_minutes is not None and not (math.isfinite(self.max_minutes) and self.max_minutes >= 0):
            raise ValueError(f"nas.max_minutes must be >= 0 (0: no budget), got {self.max_minutes}")
        if self.max_minutes == 0:
            object.__setattr__(self, "max_minutes", None)
        if not 1 <= self.population <= MAX_POPULATION:
            raise ValueError(f"nas.population must be in 1..{MAX_POPULATION} (dozens are usual), got {self.population}")
        if self.min_accuracy is not None and not 0 < self.min_accuracy < 1:
            raise ValueError(f"nas.min_accuracy must be in (0, 1), got {self.min_accuracy}")
        self._check_fidelities()

    def _check_fidelities(self) -> None:
        """``low_epochs``: increasing, each below the proxy's epochs; ``(1,)`` when only ``promote`` is set."""
        low = tuple(self.low_epochs)
        object.__setattr__(self, "low_epochs", low)
        if self.search.promote is None:
            if low:
                raise ValueError(
                    f"nas.low_epochs {list(low)} needs nas.search.promote (--promote SHARE, e.g. 0.25): the share "
                    "of each rung's candidates trained on"
                )
            return
        if not low:
            if self.proxy.epochs < 2:
                raise ValueError(
                    "nas.search.promote needs a lower fidelity below the proxy's epochs, and a 1-epoch proxy has "
                    "none: raise --proxy-epochs or leave --promote out"
                )
            object.__setattr__(self, "low_epochs", (1,))
            return
        if any(isinstance(e, bool) or not isinstance(e, int) or e < 1 for e in low) or list(low) != sorted(set(low)):
            raise ValueError(f"nas.low_epochs must be whole numbers >= 1 in increasing order, got {list(low)}")
        if low[-1] >= self.proxy.epochs:
            raise ValueError(
                f"nas.low_epochs {list(low)}: a lower rung must train fewer epochs than the full proxy "
                f"(nas.proxy.epochs {self.proxy.epochs}); otherwise it costs as much as the full evaluation"
            )
