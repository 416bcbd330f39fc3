"""Fronts computed from the journal: every candidate as a table, the Pareto set, 2-D fronts and their steps.

The Pareto set is the search's own (:func:`nas.hypervolume.pareto_front` over all objectives, feasible
candidates only). A 2-D front is the same computation on a pair of metrics: what a plot of those
two shows as the best trade-off. It can hold points that are not in the full Pareto set and miss
points that are (a projection), so figures draw both.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nas.hypervolume import pareto_front
from nas.problem import ObjectiveSpec
from nas.records import EvalRecord

BASE_COLUMNS = ["key", "generation", "status", "feasible", "violation", "binding"]


@dataclass(frozen=True)
class Front2D:
    """A 2-D front of feasible candidates, ordered best-first along ``x``.

    Attributes:
        x: Metric on the x axis.
        y: Metric on the y axis.
        points: ``key``, ``x`` and ``y`` of each front member (stored units).
    """

    x: str
    y: str
    points: pd.DataFrame

    def steps(self, x_direction: str, extend_to: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Staircase coordinates (draw with ``drawstyle="steps-post"``): the border of the dominated region.

        Args:
            x_direction: ``min`` or ``max`` for the x metric (the points are already best-first).
            extend_to: An x value (e.g. the reference point) the last step is extended to, if it lies
                beyond the last point.
        """
        xs = self.points["x"].to_numpy(dtype=float)
        ys = self.points["y"].to_numpy(dtype=float)
        if extend_to is not None and len(xs) and math.isfinite(extend_to):
            beyond = extend_to > xs[-1] if x_direction == "min" else extend_to < xs[-1]
            if beyond:
                xs, ys = np.append(xs, extend_to), np.append(ys, ys[-1])
        return xs, ys


def binding_constraint(record: EvalRecord) -> str | None:
    """The constraint a record misses by most (relative violation), ``failed``, ``NaN objective``, or None."""
    if record.status == "failed":
        return "failed"
    if record.feasible:
        return None
    broken = {label: amount for label, amount in record.violations.items() if amount and amount > 0}
    if broken:
        return max(broken, key=lambda label: (broken[label], label))
    return "NaN objective" if math.isinf(record.violation) else None


def candidates_frame(records: Sequence[EvalRecord]) -> pd.DataFrame:
    """One row per evaluated candidate: key, generation, status, feasibility, binding constraint, every metric."""
    rows = []
    for r in records:
        row = {"key": r.key, "generation": r.generation, "status": r.status, "feasible": bool(r.feasible),
               "violation": float(r.violation), "binding": binding_constraint(r)}  # fmt: skip
        row.update({k: float(v) for k, v in r.metrics.items() if isinstance(v, (int, float))})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else BASE_COLUMNS)
    return frame


def pareto_keys(records: Sequence[EvalRecord], objectives: Sequence[ObjectiveSpec]) -> list[str]:
    """Keys of the feasible Pareto set over all objectives (best first in the first objective)."""
    if not objectives:
        return []
    usable = [r for r in records if all(math.isfinite(v) for v in r.objective_values(objectives))]
    return [r.key for r in pareto_front(usable, objectives)]


def pair_spec(name: str, direction: str) -> ObjectiveSpec:
    """An objective on ``name`` for front computation only (the box does not matter for dominance)."""
    return ObjectiveSpec(name, direction, 1.0, 0.0) if direction == "max" else ObjectiveSpec(name, direction, 0.0, 1.0)


def front_2d(records: Sequence[EvalRecord], x: ObjectiveSpec, y: ObjectiveSpec) -> Front2D:
    """The feasible non-dominated set on the pair (``x``, ``y``), best-first along ``x``.

    Candidates equal in both metrics are kept once (the first key) so the staircase has no zero-length steps.
    """
    pair = [x, y]
    usable = [r for r in records if r.feasible and all(math.isfinite(v) for v in r.objective_values(pair))]
    front = pareto_front(usable, pair)
    rows, seen = [], set()
    for r in front:
        values = r.objective_values(pair)
        if values not in seen:
            seen.add(values)
            rows.append({"key": r.key, "x": values[0], "y": values[1]})
    return Front2D(x.name, y.name, pd.DataFrame(rows, columns=["key", "x", "y"]))


def objective_pairs(objectives: Sequence[ObjectiveSpec]) -> list[tuple[ObjectiveSpec, ObjectiveSpec]]:
    """Every pair of objectives, with a maximised quality objective on y (read as "higher is better")."""
    pairs = []
    for a, b in itertools.combinations(objectives, 2):
        if a.direction == "max" and b.direction == "min":
            a, b = b, a
        pairs.append((a, b))
    return pairs
