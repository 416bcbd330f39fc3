"""Pareto fronts and hypervolume on normalised objectives.

Normalisation (fixed per objective, declared in :class:`~nas.problem.ObjectiveSpec`): every
objective value ``f`` becomes a loss ``z = (f - best) / (worst - best)``, 0 at ``best`` and 1
at ``worst``, whatever the direction. Values better than ``best`` are clipped to 0, values worse
than ``worst`` add nothing; :func:`box_excess` measures both, so the search can say so (once).

Reference point: ``(1, ..., 1)`` in ``z`` space, i.e. each objective's ``worst`` value.
Hypervolume is therefore the fraction of the box ``[best, worst]`` dominated by the feasible
front: 0 for no feasible candidate (or none better than ``worst``), 1 at most. It is computed
by ``moocore.hypervolume`` (what DEAP and pymoo use). Because the reference is fixed, the
numbers are comparable across generations, seeds, strategies and runs of the same problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import moocore
import numpy as np

from nas.problem import ObjectiveSpec
from nas.records import EvalRecord

REFERENCE_Z = 1.0


def minimisation_matrix(records: Sequence[EvalRecord], objectives: Sequence[ObjectiveSpec]) -> np.ndarray:
    """Objective values times their sign (maximised ones negated): smaller is better, shape (n, m)."""
    signs = np.array([o.sign for o in objectives])
    values = np.array([r.objective_values(objectives) for r in records], dtype=float).reshape(len(records), -1)
    return values * signs


def normalised(records: Sequence[EvalRecord], objectives: Sequence[ObjectiveSpec]) -> np.ndarray:
    """The ``z`` losses of ``records`` (see the module docstring), shape (n, m), clipped at 0."""
    best = np.array([o.best for o in objectives])
    worst = np.array([o.worst for o in objectives])
    values = np.array([r.objective_values(objectives) for r in records], dtype=float).reshape(len(records), -1)
    return np.maximum((values - best) / (worst - best), 0.0)


def hypervolume(records: Sequence[EvalRecord], objectives: Sequence[ObjectiveSpec]) -> float:
    """Hypervolume of ``records`` (assumed feasible) in ``z`` space against ``(1, ..., 1)``."""
    if not records:
        return 0.0
    z = normalised(records, objectives)
    z = z[np.all(np.isfinite(z), axis=1) & np.all(z < REFERENCE_Z, axis=1)]
    if len(z) == 0:
        return 0.0
    return float(moocore.hypervolume(z, ref=np.full(z.shape[1], REFERENCE_Z)))


@dataclass(frozen=True)
class BoxExcess:
    """Values of one objective beyond one side of its declared box ``[best, worst]``.

    Attributes:
        objective: The objective's name.
        side: ``"best"`` (better than ``best``: clipped to it) or ``"worst"`` (worse than ``worst``: no hypervolume).
        count: How many values are beyond it.
        amount: The largest distance beyond it, in the objective's unit.
        share: ``amount`` as a fraction of the box width ``|worst - best|``.
    """

    objective: str
    side: str
    count: int
    amount: float
    share: float

    def describe(self, objective: ObjectiveSpec) -> str:
        """One sentence for a warning."""
        if self.side == "best":
            what = f"better than its declared best {objective.best:g}"
            effect = f"the hypervolume counts them as {objective.best:g} (clipped): declare a best none can beat"
        else:
            what = f"worse than its reference (worst) {objective.worst:g}"
            effect = "they add no hypervolume"
        return (
            f"hypervolume: {self.count} front value(s) of {self.objective} are {what}, by up to {self.amount:.4g} "
            f"({self.share:.1%} of the box); {effect}"
        )


def box_excess(records: Sequence[EvalRecord], objectives: Sequence[ObjectiveSpec]) -> list[BoxExcess]:
    """Where the finite objective values of ``records`` leave their box (see :class:`BoxExcess`)."""
    if not records:
        return []
    values = np.array([r.objective_values(objectives) for r in records], dtype=float).reshape(len(records), -1)
    found = []
    for j, o in enumerate(objectives):
        column = values[:, j][np.isfinite(values[:, j])]
        width = abs(o.worst - o.best)
        loss = (column - o.best) / (o.worst - o.best)  # 0 at best, 1 at worst
        for side, beyond, distance in (("best", loss < 0, -loss), ("worst", loss > 1, loss - 1)):
            if beyond.any():
                amount = float(distance[beyond].max()) * width
                found.append(BoxExcess(o.name, side, int(beyond.sum()), amount, amount / width))
    return found


def pareto_front(records: Sequence[EvalRecord], objectives: Sequence[ObjectiveSpec]) -> list[EvalRecord]:
    """The feasible, non-dominated records; candidates with equal objective values are all kept.

    The result is ordered by the first objective (best first), then by key, so it does not
    depend on the order of ``records``.
    """
    feasible = [r for r in records if r.feasible]
    if not feasible:
        return []
    matrix = minimisation_matrix(feasible, objectives)
    keep = moocore.is_nondominated(matrix, keep_weakly=True)
    front = [r for r, k in zip(feasible, keep, strict=True) if k]
    signs = [o.sign for o in objectives]

    def order(record: EvalRecord) -> tuple:
        values = record.objective_values(objectives)
        return (*(v * s for v, s in zip(values, signs, strict=True)), record.key)

    return sorted(front, key=order)


def reference_description(objectives: Sequence[ObjectiveSpec]) -> str:
    """The reference point in original units, e.g. ``accuracy=0;latency_ms=100``."""
    return ";".join(f"{o.name}={o.worst:g}" for o in objectives)


def normalisation_json(objectives: Sequence[ObjectiveSpec]) -> dict:
    """Normalisation and reference point as plain data (stored in the checkpoint)."""
    return {
        "normalisation": "z = (f - best) / (worst - best), clipped at 0",
        "reference_point_z": [REFERENCE_Z] * len(objectives),
        "objectives": {o.name: {"direction": o.direction, "best": o.best, "worst": o.worst} for o in objectives},
    }
