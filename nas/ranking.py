"""Constrained NSGA-II ranking: constraint-domination, fronts, crowding, survival and tournaments.

Constraint-domination (Deb 2000, "An efficient constraint handling method for genetic
algorithms"): a feasible candidate beats an infeasible one; of two infeasible candidates the
one with the lower total violation wins (a candidate whose constraints were not all measured is
charged their worst case, see :mod:`nas.violation`; equal charges are ordered by the measured
part); of two feasible ones Pareto dominance decides, then crowding distance. DEAP's
``selNSGA2`` knows no constraints, so survival is written here, with
``deap.tools.sortNondominated`` sorting the feasible part.

Everything works on :class:`Ranked` items whose ``values`` are in minimisation form (maximised
objectives negated). Ties are broken by position, so the result is a pure function of the
input order; only :func:`tournament_dcd` draws random numbers (from the global ``random``
module, which the search swaps to its own stream around these calls).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from deap import base, tools


@dataclass(frozen=True)
class Ranked:
    """What ranking needs to know about a candidate.

    Attributes:
        values: Objective values in minimisation form (ignored when infeasible).
        violation: Total constraint violation (charged, see :mod:`nas.violation`); 0 means feasible,
            NaN counts as ``inf``.
        measured: The part of ``violation`` that was measured, ordering equal violations (``None``: all of it).
    """

    values: tuple[float, ...]
    violation: float
    measured: float | None = None

    @property
    def feasible(self) -> bool:
        """Zero violation and no NaN objective."""
        return self.violation == 0.0 and not any(math.isnan(v) for v in self.values)

    @property
    def badness(self) -> tuple[float, float]:
        """``(violation, measured violation)``, the order of infeasible candidates (smaller is better).

        A NaN violation, or a zero violation with a NaN objective, counts as ``inf`` (worst).
        """
        if math.isnan(self.violation) or (self.violation == 0.0 and not self.feasible):
            return (math.inf, math.inf)
        measured = self.violation if self.measured is None or math.isnan(self.measured) else self.measured
        return (self.violation, measured)


def pareto_dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is no worse than ``b`` everywhere and better somewhere (minimisation)."""
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(x < y for x, y in zip(a, b, strict=True))


def constrained_dominates(a: Ranked, b: Ranked) -> bool:
    """Deb's constraint-domination of ``a`` over ``b``."""
    if a.feasible != b.feasible:
        return a.feasible
    if not a.feasible:
        return a.badness < b.badness
    return pareto_dominates(a.values, b.values)


@lru_cache(maxsize=16)
def _fitness_class(n_objectives: int) -> type:
    return type(f"MinFitness{n_objectives}", (base.Fitness,), {"weights": (-1.0,) * n_objectives})


class _Point:
    """A minimal DEAP individual: only ``fitness`` and the index it came from."""

    __slots__ = ("fitness", "index")

    def __init__(self, values: tuple[float, ...], index: int) -> None:
        self.fitness = _fitness_class(len(values))(values)
        self.index = index


def constrained_fronts(items: Sequence[Ranked]) -> list[list[int]]:
    """Partition item indices into fronts, best first.

    Feasible items come first, in Pareto fronts (``tools.sortNondominated``); then infeasible
    items grouped by equal violation, lowest first. Within a front indices keep input order.
    """
    feasible = [i for i, item in enumerate(items) if item.feasible]
    fronts: list[list[int]] = []
    if feasible:
        points = [_Point(items[i].values, i) for i in feasible]
        for front in tools.sortNondominated(points, len(points)):
            fronts.append(sorted(p.index for p in front))
    infeasible = sorted((i for i, item in enumerate(items) if not item.feasible), key=lambda i: (items[i].badness, i))
    last_badness = None
    for i in infeasible:
        if items[i].badness == last_badness:
            fronts[-1].append(i)
        else:
            fronts.append([i])
            last_badness = items[i].badness
    return fronts


def crowding_distance(points: Sequence[Sequence[float]]) -> list[float]:
    """NSGA-II crowding distance of each point within one front.

    Boundary points of each objective get ``inf``; an objective whose range is zero or not
    finite adds nothing to interior points. Ties in an objective are ordered by position.
    """
    n = len(points)
    distance = [0.0] * n
    if n <= 2:
        return [math.inf] * n
    for m in range(len(points[0])):
        order = sorted(range(n), key=lambda i: (points[i][m], i))
        low, high = points[order[0]][m], points[order[-1]][m]
        distance[order[0]] = distance[order[-1]] = math.inf
        span = high - low
        if span == 0 or not math.isfinite(span):
            continue
        for prev, cur, nxt in zip(order, order[1:], order[2:], strict=False):
            distance[cur] += (points[nxt][m] - points[prev][m]) / span
    return distance


def thin_by_crowding(points: Sequence[Sequence[float]], k: int) -> list[int]:
    """Indices of ``k`` points of one front that keep it covered: drop the most crowded one at a time.

    The point with the smallest crowding distance (recomputed after every removal; the later
    point on ties) is removed until ``k`` remain, so the extremes of every objective stay (they
    have infinite distance) and the kept points spread along the front. Each objective's gaps
    are divided by its range on the front, so the objectives' units do not matter.

    Args:
        points: Objective vectors of the front's members.
        k: How many to keep (all, if there are no more than ``k``).

    Returns:
        The kept indices, in their original order.
    """
    kept = list(range(len(points)))
    while len(kept) > max(k, 0):
        distance = crowding_distance([points[i] for i in kept])
        worst = min(range(len(kept)), key=lambda j: (distance[j], -j))
        kept.pop(worst)
    return kept


def survival(items: Sequence[Ranked], k: int) -> tuple[list[int], list[float]]:
    """Pick ``k`` survivors by constrained rank, then crowding (NSGA-II environmental selection).

    Args:
        items: The merged pool (parents then offspring).
        k: How many survive.

    Returns:
        The chosen indices (best first) and the crowding distance of every item, computed on its
        whole front before truncation (infeasible items get 0).
    """
    crowding = [0.0] * len(items)
    chosen: list[int] = []
    for front in constrained_fronts(items):
        if items[front[0]].feasible:
            for i, d in zip(front, crowding_distance([items[i].values for i in front]), strict=True):
                crowding[i] = d
        if len(chosen) + len(front) <= k:
            chosen.extend(front)
        else:
            ranked = sorted(front, key=lambda i: (-crowding[i], i))
            chosen.extend(ranked[: k - len(chosen)])
        if len(chosen) >= k:
            break
    return chosen, crowding


def _tournament(a: int, b: int, items: Sequence[Ranked], crowding: Sequence[float]) -> int:
    if constrained_dominates(items[a], items[b]):
        return a
    if constrained_dominates(items[b], items[a]):
        return b
    if items[a].feasible and items[b].feasible and crowding[a] != crowding[b]:
        return a if crowding[a] > crowding[b] else b
    return a if random.random() <= 0.5 else b


def tournament_dcd(items: Sequence[Ranked], crowding: Sequence[float], k: int) -> list[int]:
    """Binary tournament on constraint-domination, then crowding (DEAP's ``selTournamentDCD``, constrained).

    Two random permutations of the population are cut into groups of 4; each group yields two
    winners, so every individual competes exactly twice.

    Args:
        items: The current population.
        crowding: Crowding distance per item (from :func:`survival`).
        k: Number of parents to pick; a multiple of 4, at most ``len(items)``.

    Returns:
        Indices of the picked parents.
    """
    if k > len(items) or k % 4 != 0:
        raise ValueError(f"tournament_dcd needs k <= len(items) and k % 4 == 0, got k={k}, len={len(items)}")
    first = random.sample(range(len(items)), len(items))
    second = random.sample(range(len(items)), len(items))
    chosen: list[int] = []
    for i in range(0, k, 4):
        for perm in (first, second):
            chosen.append(_tournament(perm[i], perm[i + 1], items, crowding))
            chosen.append(_tournament(perm[i + 2], perm[i + 3], items, crowding))
    return chosen
