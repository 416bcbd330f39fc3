"""Multi-fidelity evaluation: successive halving inside each generation.

With ``SearchConfig.promote`` set and a problem that declares lower ``fidelities`` (say
``("1 epoch",)`` below a 4-epoch proxy), the new candidates of a generation are evaluated in rungs:

1. every one at rung 0 (:meth:`SearchProblem.evaluate_low`), each result journaled in
   ``nas/rung0.jsonl`` the moment it arrives;
2. the best ``promote`` share of them (at least one), ranked as survival ranks (constrained
   non-dominated sorting, then crowding distance) on their rung-0 results, go on to the next rung,
   and finally to the full evaluation (:meth:`SearchProblem.evaluate`);
3. a candidate that is not promoted is recorded with the result it has: its final journal line is
   its lower-fidelity record, marked with ``rung``, and the search ranks it with that (honestly
   labelled in ``pareto.csv``'s ``fidelity`` column and counted in ``history.csv``'s
   ``low_fidelity``).

Promotion is a pure function of a generation's rung results, so a resume replays the same
decisions from the rung journals and evaluates only what is missing (Archai's successive halving
and Hyperband's rungs are the model, with the rungs of one generation instead of a bracket).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from nas.nsga2 import ranked
from nas.problem import Constraint, ObjectiveSpec, SearchProblem
from nas.ranking import survival
from nas.records import EvalRecord


class AtRung(SearchProblem):
    """``problem`` evaluated at lower fidelity ``rung``: what a backend runs for a rung task (plain, picklable)."""

    def __init__(self, problem: SearchProblem, rung: int) -> None:
        """Wrap ``problem``; :meth:`evaluate` calls its ``evaluate_low(genome, rung)``."""
        self.problem, self.rung = problem, rung
        self.gene_bounds, self.gene_kinds = problem.gene_bounds, problem.gene_kinds
        self.objectives, self.constraints = problem.objectives, problem.constraints

    def evaluate(self, genome: list[int]) -> Mapping[str, Any]:
        """The wrapped problem's evaluation at this rung."""
        return self.problem.evaluate_low(genome, self.rung)


def promotion_count(n: int, share: float) -> int:
    """How many of ``n`` candidates a rung promotes: ``ceil(share * n)``, at least one when there are any."""
    return 0 if n <= 0 else min(n, max(1, math.ceil(share * n - 1e-9)))


def promoted(
    records: Sequence[EvalRecord],
    objectives: Sequence[ObjectiveSpec],
    constraints: Sequence[Constraint],
    share: float,
) -> set[str]:
    """Keys of the best ``share`` of a rung's ``records``, as survival ranks them (ties: the earlier record)."""
    items = [ranked(r, objectives, constraints) for r in records]
    chosen, _ = survival(items, promotion_count(len(records), share))
    return {records[i].key for i in chosen}


def fidelity_label(record: EvalRecord, fidelities: Sequence[str]) -> str:
    """What a record's metrics were measured at: ``full``, or the lower fidelity's description."""
    if record.rung is None:
        return "full"
    return fidelities[record.rung] if 0 <= record.rung < len(fidelities) else f"rung {record.rung}"
