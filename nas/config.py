"""The search settings: one frozen, validated dataclass, and which of its fields a resume must keep."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from nas.operators import DEFAULT_VARIATION, ETA_RANGE, VARIATIONS

STRATEGIES = ("nsga2", "random")
BACKENDS = ("inline", "loky", "dask")

# Fields that change which candidates are proposed: a resume with other values is refused.
# ``generations`` is absent on purpose: raising it extends a run. ``jobs``, ``backend``,
# ``scheduler``, ``threads_per_worker``, ``connect_timeout_s`` and ``retries`` only decide how
# evaluations are executed (``retries`` matters only for flaky evaluations).
SEARCH_RELEVANT_FIELDS = (
    "population",
    "strategy",
    "seed",
    "cx_prob",
    "cx_indpb",
    "mut_prob",
    "mut_indpb",
    "novelty_retries",
    "feasible_retries",
    "variation",
    "sbx_eta",
    "pm_eta",
    "step_max",
    "promote",  # recorded only when set (multi-fidelity): single-fidelity settings stay as they were
)


@dataclass(frozen=True)
class SearchConfig:
    """Settings of one search. Invalid values raise ``ValueError`` naming the field.

    The evaluation budget is ``population * (generations + 1)`` proposed candidates: generation 0
    is the random initial population, then ``generations`` generations of offspring. The random
    strategy proposes the same number of random candidates per generation.
    """

    population: int = 32  # individuals per generation (nsga2: a multiple of 4, >= 4)
    generations: int = 20  # generations after the initial one; raise it on resume to extend a run
    strategy: str = "nsga2"  # "nsga2" (constrained NSGA-II) or "random" (the baseline)
    seed: int = 0  # seed of the search's random stream (python ``random``, via DEAP operators)
    variation: str = DEFAULT_VARIATION  # crossover + mutation operators: see ``nas.operators.VARIATIONS``
    cx_prob: float = 1.0  # probability that a pair of parents is recombined (1.0, as pymoo: measured best with sbx)
    cx_indpb: float = 0.5  # per-gene swap probability of uniform crossover (every categorical gene, all for "uniform")
    mut_prob: float = 1.0  # probability that a child is mutated
    mut_indpb: float | None = None  # per-gene mutation probability; None means 1 / number of genes
    sbx_eta: float = 3.0  # "sbx": distribution index of SBX on ordinal genes (larger: children nearer their parents)
    pm_eta: float = 3.0  # "sbx": distribution index of polynomial mutation on ordinal genes (larger: smaller steps)
    step_max: int = 2  # "step": largest step (in choices) of the bounded step mutation on ordinal genes
    novelty_retries: int = 8  # extra variations tried to make a child whose key is new (bounded)
    feasible_retries: int = 8  # extra draws for a candidate the precheck rejects (0: keep it, recorded infeasible)
    retries: int = 2  # extra attempts for a candidate whose evaluation raised or whose worker died
    jobs: int = 1  # evaluations in flight (loky: worker processes)
    backend: str = "loky"  # "inline" (in this process), "loky" (worker processes) or "dask"
    scheduler: str | None = None  # dask scheduler address, e.g. "tcp://10.0.0.5:8786"
    threads_per_worker: int | None = None  # loky: thread cap per worker; None means max(1, cpus // jobs)
    connect_timeout_s: float = 10.0  # dask: how long to wait for the scheduler
    promote: float | None = None  # multi-fidelity: share of each rung's candidates promoted (None: one fidelity)

    def __post_init__(self) -> None:
        self._check_ints()
        for name in ("cx_prob", "cx_indpb", "mut_prob"):
            _check_probability(name, getattr(self, name))
        if self.mut_indpb is not None:
            _check_probability("mut_indpb", self.mut_indpb)
        if self.variation not in VARIATIONS:
            known = ", ".join(f"{name} ({text})" for name, text in VARIATIONS.items())
            raise ValueError(f"variation must be one of: {known}; got {self.variation!r}")
        for name in ("sbx_eta", "pm_eta"):
            _check_eta(name, getattr(self, name))
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {self.strategy!r}")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {self.backend!r}")
        if self.strategy == "nsga2" and self.population % 4 != 0:
            raise ValueError(
                f"population must be a multiple of 4 for strategy 'nsga2', got {self.population}: the binary "
                "tournament (DCD) draws parents in groups of 4 from two shuffles of the population, so that "
                "every individual competes exactly twice"
            )
        if self.backend == "inline" and self.jobs > 1:
            raise ValueError(
                f"jobs={self.jobs} needs backend 'loky' or 'dask'; backend 'inline' evaluates one at a time"
            )
        if self.backend == "dask" and not self.scheduler:
            raise ValueError("scheduler must be set for backend 'dask' (e.g. 'tcp://10.0.0.5:8786')")
        if self.promote is not None and (
            isinstance(self.promote, bool) or not isinstance(self.promote, int | float) or not 0 < self.promote <= 1
        ):
            raise ValueError(
                f"promote must be the share of a rung's candidates promoted to the next, in (0, 1] (e.g. 0.34), "
                f"or None for one fidelity; got {self.promote!r}"
            )
        if self.connect_timeout_s <= 0:
            raise ValueError(f"connect_timeout_s must be > 0, got {self.connect_timeout_s}")

    def _check_ints(self) -> None:
        minimum = {
            "population": 4,
            "generations": 0,
            "novelty_retries": 0,
            "feasible_retries": 0,
            "retries": 0,
            "jobs": 1,
            "step_max": 1,
        }
        for name, low in minimum.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.threads_per_worker is not None and (
            not isinstance(self.threads_per_worker, int) or self.threads_per_worker < 1
        ):
            raise ValueError(f"threads_per_worker must be an integer >= 1 or None, got {self.threads_per_worker!r}")

    def relevant(self) -> dict[str, Any]:
        """The search-relevant fields (see ``SEARCH_RELEVANT_FIELDS``) as a plain dict.

        ``promote`` only when set and ``feasible_retries`` only when not 0: the settings (and
        checkpoint hash) of searches made before those fields existed stay as they were, so such a
        search resumes with ``feasible_retries: 0``.
        """
        fields = {name: getattr(self, name) for name in SEARCH_RELEVANT_FIELDS}
        if fields["promote"] is None:
            del fields["promote"]
        if fields["feasible_retries"] == 0:
            del fields["feasible_retries"]
        return fields

    def to_dict(self) -> dict[str, Any]:
        """All fields as a plain dict."""
        return dataclasses.asdict(self)


def _check_eta(name: str, value: float) -> None:
    low, high = ETA_RANGE
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{name} must be a distribution index in [{low:g}, {high:g}], got {value!r}")


def _check_probability(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
