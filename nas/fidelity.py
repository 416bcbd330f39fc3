"""Multi-fidelity evaluation: successive halving inside each generation.

With ``SearchConfig.promote`` set and a problem that declares lower ``fidelities`` (say
``("1 epoch",)`` below a 4-epoch proxy), the new candidates of a generation are evaluated in rungs:

1. every one at rung 0 (:meth:`SearchProblem.evaluate_low`), each result journaled in
   ``nas/rung0.jsonl`` the moment it arrives;
2. the best ``promote`` share of them (at least one), front by front on their rung-0
   results and within a front by the objectives the rung measured (accuracy: see
   :func:`promoted`), go on to the next rung, and finally to the full evaluation
   (:meth:`SearchProblem.evaluate`);
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
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from nas.nsga2 import ranked
from nas.problem import Constraint, ObjectiveSpec, SearchProblem
from nas.ranking import constrained_fronts
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
    """How many of ``n`` candidates a rung promotes: ``ceil(share * n)``, at least one when there are any.

    It does not depend on the number of workers, so neither does the search (``--jobs`` may change
    on resume); a promoted rung smaller than the worker count leaves workers idle for its duration.
    """
    return 0 if n <= 0 else min(n, max(1, math.ceil(share * n - 1e-9)))


def promoted(
    records: Sequence[EvalRecord],
    objectives: Sequence[ObjectiveSpec],
    constraints: Sequence[Constraint],
    share: float,
    measured: Collection[str] = (),
) -> set[str]:
    """Keys of the ``share`` of a rung's ``records`` most worth the next fidelity.

    Candidates are taken front by front (constrained non-dominated sorting over every objective),
    and within a front by the objectives the rung ``measured`` (those the evaluation computes,
    such as accuracy; all objectives when none is named), best first; ties by record order. The
    cheap objectives (latency, size) are the same at every fidelity, so a candidate that sits on
    the front only as the fastest or the smallest gains nothing from more training: NSGA-II's
    crowding distance, which favours exactly those extremes, is not used here.
    """
    items = [ranked(r, objectives, constraints) for r in records]
    quality = [i for i, o in enumerate(objectives) if o.name in measured] or list(range(len(objectives)))
    k = promotion_count(len(records), share)
    chosen: list[int] = []
    for front in constrained_fronts(items):
        chosen += sorted(front, key=lambda i: (*(_nan_last(items[i].values[j]) for j in quality), i))
        if len(chosen) >= k:
            break
    return {records[i].key for i in chosen[:k]}


def _nan_last(value: float) -> float:
    return math.inf if math.isnan(value) else value


def fidelity_label(record: EvalRecord, fidelities: Sequence[str]) -> str:
    """What a record's metrics were measured at: ``full``, or the lower fidelity's description."""
    if record.rung is None:
        return "full"
    return fidelities[record.rung] if 0 <= record.rung < len(fidelities) else f"rung {record.rung}"
