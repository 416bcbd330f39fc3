"""One evaluated candidate as plain data: what a journal line holds, and how it is built and checked.

Journal line (JSON, one per line, keys sorted)::

    {"format_version": 1, "key": "g1-3-0", "genome": [1, 3, 0], "status": "ok",
     "metrics": {"accuracy": 0.91, "latency_ms_rpi4": 3.2, "size_kb": 41.0, "seed": 123},
     "info": {"latency_source": "table"}, "violation": 0.0, "violations": {"size_kb<=256": 0.0},
     "feasible": true, "reason": null, "generation": 4, "attempts": 1, "wall_s": 12.3,
     "provenance": {"host": "gpu-01", "pid": 4242, "backend": "loky", "finished_at": "2026-...Z"}}

With multi-fidelity search (:mod:`nas.fidelity`) a record also has ``rung``: the index of the
lower fidelity it was evaluated at (``null``: full fidelity, ``evaluate``).

``status`` is ``ok`` (evaluated), ``precheck_infeasible`` (a cheap constraint failed; never
evaluated; ``metrics`` holds the precheck values) or ``failed`` (evaluation raised or its worker
died ``retries + 1`` times; ``reason`` says why; violation ``inf``). ``wall_s`` and the
``provenance`` times are the only fields that differ between identical runs.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nas.problem import Constraint, ObjectiveSpec

FORMAT_VERSION = 1
STATUSES = ("ok", "precheck_infeasible", "failed")


class ProblemContractError(TypeError):
    """``evaluate``/``precheck`` returned something the search cannot use (a bug in the problem)."""


@dataclass
class EvalRecord:
    """The final result for one candidate key (see the module docstring for the JSON form)."""

    key: str
    genome: list[int]
    status: str
    metrics: dict[str, float]
    violation: float
    feasible: bool
    generation: int
    violations: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    attempts: int = 0
    wall_s: float = 0.0
    provenance: dict[str, Any] = field(default_factory=dict)
    rung: int | None = None  # multi-fidelity: the lower fidelity it was evaluated at (None: full, evaluate())

    def to_json(self) -> dict[str, Any]:
        """The journal-line dict (``rung`` only when set: full-fidelity lines stay as they were)."""
        data = {"format_version": FORMAT_VERSION, **dataclasses.asdict(self)}
        if data["rung"] is None:
            del data["rung"]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EvalRecord:
        """Rebuild a record from a journal line.

        Raises:
            ValueError: The line is not a record of this format.
        """
        if data.get("format_version") != FORMAT_VERSION or data.get("status") not in STATUSES:
            raise ValueError("not a journal record of format version 1")
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            record = cls(**{k: v for k, v in data.items() if k in names})
        except TypeError as exc:
            raise ValueError(f"incomplete journal record: {exc}") from None
        if not isinstance(record.key, str) or not isinstance(record.genome, list):
            raise ValueError("journal record without a string key and a genome list")
        return record

    def objective_values(self, objectives: Sequence[ObjectiveSpec]) -> tuple[float, ...]:
        """Objective values in the order of ``objectives`` (NaN where missing)."""
        return tuple(float(self.metrics.get(o.name, math.nan)) for o in objectives)


def split_outputs(outputs: Any) -> tuple[dict[str, float], dict[str, Any]]:
    """Split what ``evaluate``/``precheck`` returned into numeric metrics and other provenance.

    Raises:
        ProblemContractError: ``outputs`` is not a mapping (or dataclass) with string keys.
    """
    if dataclasses.is_dataclass(outputs) and not isinstance(outputs, type):
        outputs = dataclasses.asdict(outputs)
    if not isinstance(outputs, Mapping):
        raise ProblemContractError(f"evaluate/precheck must return a mapping of metrics, got {type(outputs).__name__}")
    metrics: dict[str, float] = {}
    info: dict[str, Any] = {}
    for name, value in outputs.items():
        if not isinstance(name, str):
            raise ProblemContractError(f"metric names must be strings, got {name!r}")
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            metrics[name] = _number(value)
        else:
            info[name] = value
    return metrics, info


def _number(value: numbers.Real) -> int | float:
    """Plain ``int`` for integers (e.g. seeds), ``float`` otherwise (numpy scalars included)."""
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def constraint_violations(metrics: Mapping[str, float], constraints: Sequence[Constraint]) -> dict[str, float]:
    """Violation amount per constraint label (see :meth:`Constraint.violation`)."""
    return {c.label: c.violation(metrics.get(c.metric)) for c in constraints}


def required_metrics(objectives: Sequence[ObjectiveSpec], constraints: Sequence[Constraint]) -> list[str]:
    """Names every complete evaluation must provide: objectives, then constrained metrics."""
    names = [o.name for o in objectives]
    return names + [c.metric for c in constraints if c.metric not in names]


def make_record(
    key: str,
    genome: list[int],
    metrics: dict[str, float],
    objectives: Sequence[ObjectiveSpec],
    constraints: Sequence[Constraint],
    **fields: Any,
) -> EvalRecord:
    """Build an ``ok`` record: checks completeness, computes violation and feasibility.

    A NaN objective or constrained metric makes the candidate infeasible with violation ``inf``.

    Raises:
        ProblemContractError: A required metric is missing.
    """
    metrics = {name: _number(value) for name, value in metrics.items()}
    missing = [name for name in required_metrics(objectives, constraints) if name not in metrics]
    if missing:
        raise ProblemContractError(
            f"candidate {key}: precheck/evaluate returned no value for {', '.join(missing)} "
            f"(returned: {', '.join(sorted(metrics)) or 'nothing'})"
        )
    violations = constraint_violations(metrics, constraints)
    total = float(sum(violations.values()))
    nan_objectives = [o.name for o in objectives if math.isnan(metrics[o.name])]
    reason = fields.pop("reason", None)
    if nan_objectives:
        total = math.inf
        reason = f"objective {', '.join(nan_objectives)} is NaN"
    record = EvalRecord(
        key=key,
        genome=genome,
        status="ok",
        metrics=metrics,
        violation=total,
        feasible=total == 0.0,
        violations=violations,
        reason=reason,
        **fields,
    )
    return normalise(record)


def failed_record(key: str, genome: list[int], reason: str, **fields: Any) -> EvalRecord:
    """A ``failed`` record: infeasible with violation ``inf`` and the reason."""
    record = EvalRecord(
        key=key, genome=genome, status="failed", metrics={}, violation=math.inf, feasible=False, reason=reason, **fields
    )
    return normalise(record)


def normalise(record: EvalRecord) -> EvalRecord:
    """Round-trip through JSON so that a record in memory equals the same record read back from disk."""
    text = json.dumps(record.to_json(), sort_keys=True, default=str)
    return EvalRecord.from_json(json.loads(text))


def cheap_violations(metrics: Mapping[str, float], constraints: Sequence[Constraint]) -> dict[str, float]:
    """Violations of the constraints whose metric ``precheck`` already provides."""
    return constraint_violations(metrics, [c for c in constraints if c.metric in metrics])


def precheck_record(
    key: str, genome: list[int], metrics: dict[str, float], constraints: Sequence[Constraint], **fields: Any
) -> EvalRecord:
    """A ``precheck_infeasible`` record: a cheap constraint failed, so the candidate is never evaluated."""
    metrics = {name: _number(value) for name, value in metrics.items()}
    violations = cheap_violations(metrics, constraints)
    broken = ", ".join(label for label, amount in violations.items() if amount > 0)
    record = EvalRecord(
        key=key,
        genome=genome,
        status="precheck_infeasible",
        metrics=metrics,
        violation=float(sum(violations.values())),
        feasible=False,
        violations=violations,
        reason=f"precheck violates {broken}",
        **fields,
    )
    return normalise(record)
