"""The violation a ranking charges a candidate whose constraints were not all measured.

A candidate rejected by ``precheck`` was never evaluated: its violation covers only the cheap
constraints, and a constraint on an evaluated metric (``accuracy >= 0.8``) is unknown. Counting
the unknown part as 0 would let a rejected candidate outrank every evaluated candidate that
misses the bound, however slightly the rejected one broke its cheap constraint. So the ranking
charges every unmeasured constraint the violation it would have at the metric's worst value:

* a metric that is an objective: its declared ``worst`` (``accuracy``: 0, so ``accuracy >= 0.8``
  is charged ``0.8 / 0.8 = 1``, no less than any evaluated candidate's ``accuracy`` violation);
* any other metric: ``inf`` (nothing bounds it).

Candidates with equal charged violations (e.g. two charged ``inf``) are ordered by the violation
that was measured: :class:`nas.ranking.Ranked` carries both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from nas.problem import Constraint, ObjectiveSpec
from nas.records import EvalRecord


def unmeasured(record: EvalRecord, constraints: Sequence[Constraint]) -> list[Constraint]:
    """The constraints ``record`` holds no violation for (not measured: e.g. rejected before evaluation)."""
    return [c for c in constraints if c.label not in record.violations]


def worst_case(constraint: Constraint, objectives: Sequence[ObjectiveSpec]) -> float:
    """The violation of ``constraint`` at its metric's worst value (``inf`` when the metric has no declared box)."""
    for o in objectives:
        if o.name == constraint.metric:
            return constraint.violation(o.worst)
    return math.inf


def charged_violation(
    record: EvalRecord, objectives: Sequence[ObjectiveSpec], constraints: Sequence[Constraint]
) -> float:
    """``record.violation`` plus the worst case of every constraint it was not measured on.

    A failed candidate (violation ``inf``) stays ``inf``; an evaluated one is charged exactly its
    violation.
    """
    if record.status == "failed" or math.isnan(record.violation):
        return math.inf
    extra = [worst_case(c, objectives) for c in unmeasured(record, constraints)]
    return record.violation + sum(extra)
