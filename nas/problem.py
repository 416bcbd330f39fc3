"""What the search needs from the outside: the problem interface, objectives and constraints.

The search loop knows nothing of datasets, trainers or devices. It is handed a
:class:`SearchProblem`: integer genomes with per-gene bounds, a canonical key per candidate,
named objectives (with the fixed normalisation used for hypervolume), constraints on named
metrics, an optional cheap ``precheck`` and the expensive ``evaluate``.

Example (what the integrator writes for the audio search; names outside ``nas`` are illustrative)::

    class AudioProblem(SearchProblem):
        def __init__(self, space_name: str, features_dir: str, device: str, epochs: int):
            # plain data only: the object is pickled to worker processes
            self.space_name, self.features_dir, self.device, self.epochs = space_name, features_dir, device, epochs
            self.gene_bounds = create_search_space(space_name).gene_bounds
            self.objectives = [
                ObjectiveSpec("accuracy", "max", best=1.0, worst=0.0),
                ObjectiveSpec(f"latency_ms_{device}", "min", best=0.0, worst=50.0),
                ObjectiveSpec("size_kb", "min", best=0.0, worst=512.0),
            ]
            self.constraints = [Constraint.at_most("size_kb", 256), Constraint.at_most(f"latency_ms_{device}", 20)]

        def canonical(self, genome):        # zero the genes of inactive blocks
            space = create_search_space(self.space_name)
            return space.encode(space.decode(genome))

        def key(self, genome):              # the ArchSpec string
            return str(create_search_space(self.space_name).decode(genome))

        def precheck(self, genome):         # cheap: profile + latency table, no training
            spec = create_search_space(self.space_name).decode(genome)
            return {"size_kb": profile(spec).size_kb, f"latency_ms_{self.device}": predict(spec, self.device)}

        def evaluate(self, genome):         # expensive: runs in a worker process
            spec = create_search_space(self.space_name).decode(genome)
            seed = seed_from_string(str(spec))
            result = short_training(spec, self.features_dir, epochs=self.epochs, seed=seed)
            return {"accuracy": result.accuracy, "macro_f1": result.macro_f1, "seed": seed}

        def describe(self):                 # settings that change results: checked on resume
            return {"space": self.space_name, "device": self.device, "epochs": self.epochs}
"""

from __future__ import annotations

import abc
import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Genome = list[int]

ORDINAL = "ordinal"  # the choices have an order (widths, depths, kernels): small steps along it are meaningful
CATEGORICAL = "categorical"  # unordered choices (block type, SE on/off): only a reset to another choice is
GENE_KINDS = (ORDINAL, CATEGORICAL)

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class ObjectiveSpec:
    """One objective with the fixed box used to normalise it for hypervolume.

    The normalised loss of a value ``f`` is ``z = (f - best) / (worst - best)``: 0 at ``best``,
    1 at ``worst`` for both directions. Hypervolume is measured in ``z`` space against the
    reference point ``(1, ..., 1)``, i.e. the ``worst`` values, so it is the fraction of the
    box ``[best, worst]`` dominated by the feasible front (a number in ``[0, 1]``).

    Attributes:
        name: Metric name, with its unit (``latency_ms_rpi4``, ``size_kb``, ``accuracy``).
        direction: ``"max"`` or ``"min"``.
        best: An ideal value no candidate beats (accuracy 1.0, latency 0.0); values beyond it are clipped.
        worst: The reference value: candidates at or beyond it add no hypervolume.
    """

    name: str
    direction: str
    best: float
    worst: float

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"objective name {self.name!r} must be an identifier (letters, digits, _)")
        if self.direction not in ("max", "min"):
            raise ValueError(f"objective {self.name}: direction must be 'max' or 'min', got {self.direction!r}")
        if not (math.isfinite(self.best) and math.isfinite(self.worst)):
            raise ValueError(f"objective {self.name}: best and worst must be finite numbers")
        better = self.best > self.worst if self.direction == "max" else self.best < self.worst
        if not better:
            relation = ">" if self.direction == "max" else "<"
            raise ValueError(
                f"objective {self.name} ({self.direction}): need best {relation} worst, got best={self.best}, "
                f"worst={self.worst}"
            )

    @property
    def sign(self) -> float:
        """``-1`` for maximised objectives, ``+1`` for minimised ones (values times sign are minimised)."""
        return -1.0 if self.direction == "max" else 1.0


@dataclass(frozen=True)
class Constraint:
    """A bound on a named metric, e.g. ``size_kb <= 256`` or ``accuracy >= 0.8``.

    The metric may be an objective or any other number returned by ``precheck``/``evaluate``.
    Its violation is ``max(0, value - bound) / scale`` for ``<=`` (``max(0, bound - value) / scale``
    for ``>=``); ``scale`` defaults to ``|bound|`` (1 when the bound is 0), so violations of
    constraints in different units add up as relative amounts. A NaN or missing value violates
    by ``inf``.

    Attributes:
        metric: Name of the metric the bound applies to.
        op: ``"<="`` or ``">="``.
        bound: The limit, in the metric's unit.
        scale: Optional divisor for the violation amount.
    """

    metric: str
    op: str
    bound: float
    scale: float | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.metric):
            raise ValueError(f"constraint metric {self.metric!r} must be an identifier (letters, digits, _)")
        if self.op not in ("<=", ">="):
            raise ValueError(f"constraint on {self.metric}: op must be '<=' or '>=', got {self.op!r}")
        if not math.isfinite(self.bound):
            raise ValueError(f"constraint on {self.metric}: bound must be a finite number, got {self.bound}")
        if self.scale is not None and not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"constraint on {self.metric}: scale must be a positive number, got {self.scale}")

    @classmethod
    def at_most(cls, metric: str, bound: float) -> Constraint:
        """``metric <= bound`` (e.g. ``Constraint.at_most("latency_ms_rpi4", 20)``)."""
        return cls(metric, "<=", float(bound))

    @classmethod
    def at_least(cls, metric: str, bound: float) -> Constraint:
        """``metric >= bound`` (e.g. ``Constraint.at_least("accuracy", 0.8)``)."""
        return cls(metric, ">=", float(bound))

    @property
    def label(self) -> str:
        """Readable form, e.g. ``size_kb<=256``."""
        return f"{self.metric}{self.op}{self.bound:g}"

    def violation(self, value: float | None) -> float:
        """The scaled amount by which ``value`` breaks the bound (0 when satisfied, inf when NaN/missing)."""
        if value is None or math.isnan(value):
            return math.inf
        excess = value - self.bound if self.op == "<=" else self.bound - value
        scale = self.scale if self.scale is not None else (abs(self.bound) or 1.0)
        return max(0.0, excess) / scale


class SearchProblem(abc.ABC):
    """The interface between the search loop and the thing being searched.

    Subclass it and set ``gene_bounds``, ``objectives`` and ``constraints`` (attributes or
    properties), implement :meth:`evaluate`, and override the other methods where useful.
    ``gene_kinds`` says, per gene, whether its choices are ``"ordinal"`` or ``"categorical"``
    (default ``None``: every gene ordinal); ordinal-aware variation operators
    (:mod:`nas.operators`) take small steps along ordinal genes only. ``cost_metric`` names a
    metric of :meth:`precheck` that grows with the run time of :meth:`evaluate` (default ``None``:
    proposal order); each batch is then dispatched most expensive first, so a generation's slowest
    candidate does not start last while the other workers wait idle for it. The order changes when
    results arrive, never what they are.

    Contract:
        * A genome is ``list[int]``; gene ``i`` lies in ``0..gene_bounds[i]`` (inclusive).
        * :meth:`key` is canonical: genomes with the same key are the same candidate, evaluated once.
        * :meth:`precheck` and :meth:`evaluate` are deterministic functions of the canonical genome
          (derive training seeds from the key, e.g. ``common.hashing.seed_from_string``).
        * For the ``loky`` and ``dask`` backends the object is pickled and sent to worker processes
          with every task: keep it plain and light (paths and settings, not arrays or open files);
          load heavy data lazily inside :meth:`evaluate` and cache it in a module-level global.
        * ``evaluate`` may use any random generator; when it runs in the search process
          (``backend="inline"``) the global ``random``/numpy/torch states are saved and restored
          around it, so it never shifts the search's random stream.
    """

    gene_bounds: Sequence[int]
    objectives: Sequence[ObjectiveSpec]
    constraints: Sequence[Constraint] = ()
    gene_kinds: Sequence[str] | None = None
    fidelities: Sequence[str] = ()  # lower fidelities, cheapest first, described (e.g. "1 epoch"); see evaluate_low
    cost_metric: str | None = None  # a precheck metric that grows with evaluate's run time (e.g. macs_m); see below

    def canonical(self, genome: Sequence[int]) -> Genome:
        """The canonical genome of a candidate (e.g. genes of inactive blocks set to 0).

        Args:
            genome: A genome within ``gene_bounds``.

        Returns:
            A genome within bounds; ``canonical(canonical(g)) == canonical(g)``.
        """
        return [int(g) for g in genome]

    def key(self, genome: Sequence[int]) -> str:
        """The canonical string identifying a candidate (default: ``g`` + dash-joined canonical genes)."""
        return "g" + "-".join(str(g) for g in self.canonical(genome))

    def precheck(self, genome: Genome) -> Mapping[str, float] | None:
        """Cheap metrics computed before any training (size, table latency), or ``None``.

        Runs in the search process. If a constraint on one of the returned metrics is violated,
        the candidate is recorded infeasible and :meth:`evaluate` is never called for it.

        Args:
            genome: The canonical genome.
        """
        return None

    @abc.abstractmethod
    def evaluate(self, genome: Genome) -> Mapping[str, Any]:
        """The expensive evaluation (e.g. a short training), run in a worker.

        Args:
            genome: The canonical genome (plain ``list[int]``).

        Returns:
            A flat mapping. Every objective and constraint metric not already given by
            :meth:`precheck` must be a real number (NaN marks a failed measurement and makes the
            candidate infeasible). Other entries (``seed``, ``latency_source``, ...) are kept as
            provenance in the journal; they must be JSON-serialisable. A dataclass is accepted
            and converted with ``dataclasses.asdict``.

        Raises:
            common.errors.UserError: A problem the user must fix (missing dataset...): stops the search.
            Exception: Anything else counts as a failed attempt; it is retried and, after
                ``SearchConfig.retries`` retries, recorded as a failed (infeasible) candidate.
        """

    def evaluate_low(self, genome: Genome, rung: int) -> Mapping[str, Any]:
        """A cheaper evaluation at lower fidelity ``rung`` (``fidelities[rung]``), for multi-fidelity search.

        Same contract as :meth:`evaluate` (every objective and constrained metric, deterministic);
        with ``SearchConfig.promote`` set, every new candidate of a generation is evaluated at
        rung 0 first, and only the best share goes on to the next rung and finally to
        :meth:`evaluate` (see :mod:`nas.fidelity`).

        Args:
            genome: The canonical genome.
            rung: Index into :attr:`fidelities`.
        """
        raise NotImplementedError(f"{type(self).__name__} declares fidelities but has no evaluate_low")

    def metric_descriptions(self) -> Mapping[str, str]:
        """What each metric means (units, how it was obtained), for the column legend ``nas/columns.json``.

        Metrics named here that are neither objectives nor constrained are added to ``pareto.csv``
        as extra columns (e.g. parameter count and MACs beside accuracy and latency).
        """
        return {}

    def describe(self) -> Mapping[str, Any]:
        """Plain-data settings of the problem that change results (dataset, epochs, devices).

        Stored with the run and compared on resume: a change is refused, naming the field.
        """
        return {}


def gene_kinds(problem: SearchProblem) -> list[str]:
    """The kind of every gene (``problem.gene_kinds``, or every gene ordinal when it is ``None``)."""
    kinds = problem.gene_kinds
    return [ORDINAL] * len(problem.gene_bounds) if kinds is None else [str(k) for k in kinds]


def problem_signature(problem: SearchProblem) -> dict[str, Any]:
    """The plain-data description of ``problem`` that must not change between a run and its resume."""
    signature = {
        "gene_bounds": [int(b) for b in problem.gene_bounds],
        "gene_kinds": gene_kinds(problem),
        "objectives": [dataclasses.asdict(o) for o in problem.objectives],
        "constraints": [dataclasses.asdict(c) for c in problem.constraints],
        "describe": dict(problem.describe()),
    }
    if problem.fidelities:  # only then: single-fidelity signatures stay as they were
        signature["fidelities"] = [str(f) for f in problem.fidelities]
    return signature


def validate_problem(problem: SearchProblem) -> None:
    """Check the static parts of ``problem`` (bounds, objectives, constraints).

    Raises:
        ValueError: Naming what is wrong.
    """
    bounds = list(problem.gene_bounds)
    if not bounds:
        raise ValueError("problem.gene_bounds is empty: a genome needs at least one gene")
    for i, b in enumerate(bounds):
        if not isinstance(b, int) or isinstance(b, bool) or b < 0:
            raise ValueError(f"problem.gene_bounds[{i}] must be an int >= 0 (inclusive upper bound), got {b!r}")
    kinds = problem.gene_kinds
    if kinds is not None:
        if isinstance(kinds, str) or len(kinds) != len(bounds):
            raise ValueError(f"problem.gene_kinds must name one kind per gene ({len(bounds)}), got {kinds!r}")
        for i, kind in enumerate(kinds):
            if kind not in GENE_KINDS:
                raise ValueError(f"problem.gene_kinds[{i}] must be one of {', '.join(GENE_KINDS)}, got {kind!r}")
    cost = problem.cost_metric
    if cost is not None and not (isinstance(cost, str) and _NAME.match(cost)):
        raise ValueError(f"problem.cost_metric must be None or a metric name (an identifier), got {cost!r}")
    objectives = list(problem.objectives)
    if not objectives:
        raise ValueError("problem.objectives is empty: the search needs at least one objective")
    names = [o.name for o in objectives]
    if len(set(names)) != len(names):
        raise ValueError(f"problem.objectives has duplicate names: {names}")
    for c in problem.constraints:
        if not isinstance(c, Constraint):
            raise ValueError(f"problem.constraints must hold Constraint objects, got {c!r}")
