"""How long a batch of candidates will take: evaluation seconds fitted on a cost metric, replayed on the workers.

A generation's time follows the sizes of the candidates it trains, not their count: in the
built-in first run five generations took 80, 194, 129, 69 and 162 s. With a problem's
``cost_metric`` (a precheck metric that grows with the evaluation time, e.g. MACs) the search
fits ``seconds = intercept + slope * cost`` on what it has trained so far (Theil-Sen: the median
of pairwise slopes, robust to the odd slow candidate), predicts each candidate of the next
generation, and replays the batch on the workers in the order the evaluator dispatches it
(most expensive first; :func:`makespan_s`). A budget then stops before a generation of large
candidates and lets a generation of small ones run, where the slowest-of-recent-generations rule
(:func:`nas.search.next_generation_s`) errs both ways.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scipy.stats import theilslopes

MIN_POINTS = 3  # trained candidates needed before a fit is trusted
MAX_POINTS = 300  # the most recent ones a fit uses (the pairwise slopes grow with the square)
UPPER_QUANTILE = 0.8  # the predictions are scaled to this quantile of measured / predicted (the safe side)


def makespan_s(durations: Sequence[float], workers: int) -> float:
    """Seconds until the last of ``durations`` ends when each goes, in order, to the first free worker."""
    free = [0.0] * max(1, min(workers, len(durations)))  # more workers than tasks change nothing
    for duration in durations:
        i = free.index(min(free))
        free[i] += duration
    return max(free)


def costliest_first_s(durations: Sequence[float], workers: int) -> float:
    """:func:`makespan_s` with the longest first (how the evaluator orders a batch by cost)."""
    return makespan_s(sorted(durations, reverse=True), workers)


@dataclass(frozen=True)
class CostModel:
    """``seconds = intercept_s + slope_s * cost``, scaled by ``scale`` and never below ``floor_s``.

    Attributes:
        intercept_s: Seconds at zero cost (set-up, data, validation).
        slope_s: Seconds per unit of cost (>= 0).
        scale: The :data:`UPPER_QUANTILE` of measured / fitted over the fitted points, so that
            most candidates take no longer than predicted.
        floor_s: The shortest time measured (no candidate is predicted faster).
        points: How many candidates the fit used.
    """

    intercept_s: float
    slope_s: float
    scale: float
    floor_s: float
    points: int

    @classmethod
    def fit(cls, costs: Sequence[float], seconds: Sequence[float]) -> CostModel | None:
        """Fit on measured ``(cost, seconds)`` pairs; ``None`` with fewer than :data:`MIN_POINTS` usable pairs.

        Pairs with a non-finite cost or non-positive seconds are left out; of the rest, the last
        :data:`MAX_POINTS` are used.
        """
        pairs = [(float(c), float(s)) for c, s in zip(costs, seconds, strict=True) if math.isfinite(c) and s > 0]
        pairs = pairs[-MAX_POINTS:]
        if len(pairs) < MIN_POINTS:
            return None
        costs_x, seconds_y = [c for c, _ in pairs], [s for _, s in pairs]
        slope = max(0.0, float(theilslopes(seconds_y, costs_x).slope)) if len(set(costs_x)) > 1 else 0.0
        intercept = max(0.0, statistics.median(s - slope * c for c, s in pairs))
        fitted = [(s, intercept + slope * c) for c, s in pairs]
        ratios = sorted(s / f for s, f in fitted if f > 0)
        scale = ratios[min(len(ratios) - 1, int(UPPER_QUANTILE * len(ratios)))] if ratios else 1.0
        return cls(intercept, slope, max(scale, 1e-9), min(s for _, s in pairs), len(pairs))

    def predict_s(self, cost: float) -> float:
        """Expected seconds of one candidate of ``cost`` (a non-finite cost: the shortest time measured)."""
        if not math.isfinite(cost):
            return self.floor_s
        return max(self.floor_s, self.scale * (self.intercept_s + self.slope_s * cost))

    def batch_s(self, costs: Sequence[float], workers: int) -> float:
        """Seconds for a batch of candidates of ``costs`` on ``workers``, dispatched most expensive first."""
        return costliest_first_s([self.predict_s(c) for c in costs], workers) if costs else 0.0
