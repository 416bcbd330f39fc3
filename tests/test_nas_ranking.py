"""Constraint-domination, fronts, crowding, survival and tournaments: table-driven edge cases."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nas.problem import Constraint, ObjectiveSpec
from nas.ranking import (
    Ranked,
    constrained_dominates,
    constrained_fronts,
    crowding_distance,
    survival,
    tournament_dcd,
)
from nas.records import ProblemContractError, make_record

INF, NAN = math.inf, math.nan


def F(*values: float) -> Ranked:
    """A feasible item (minimisation form)."""
    return Ranked(tuple(values), 0.0)


def X(violation: float, *values: float) -> Ranked:
    """An infeasible item."""
    return Ranked(tuple(values) or (NAN, NAN), violation)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (F(1, 1), F(2, 2), True),  # Pareto dominance
        (F(1, 2), F(2, 1), False),  # mutually non-dominated
        (F(1, 1), F(1, 1), False),  # ties never dominate
        (F(1, 1), F(1, 2), True),  # weak in one, strict in the other
        (F(5, 5), X(0.1, 0, 0), True),  # feasible beats infeasible whatever the values
        (X(0.1, 0, 0), F(5, 5), False),
        (X(0.1), X(0.2), True),  # lower violation wins among infeasible
        (X(0.2), X(0.1), False),
        (X(0.1), X(0.1), False),  # equal violations: a tie
        (X(0.1), X(INF), True),  # failed candidates (inf) are the worst
        (X(INF), X(INF), False),
        (X(NAN), X(1e9), False),  # NaN violation counts as inf
        (X(1e9), X(NAN), True),
        (F(NAN, 1), F(5, 5), False),  # NaN objective: infeasible, worst
        (F(5, 5), F(NAN, 1), True),
        (F(1, 1), X(0.0 + 1e-12), True),
        (F(-INF, 1), F(0, 1), True),  # inf values order naturally
        (F(INF, 0), F(0, 0), False),
    ],
)
def test_constrained_dominates(a: Ranked, b: Ranked, expected: bool) -> None:
    assert constrained_dominates(a, b) is expected


@pytest.mark.parametrize(
    ("items", "fronts"),
    [
        ([], []),
        ([F(1, 1)], [[0]]),  # single point
        ([F(1, 2), F(2, 1), F(3, 3)], [[0, 1], [2]]),
        ([F(1, 1), F(1, 1), F(2, 2)], [[0, 1], [2]]),  # duplicates share a front
        ([X(0.5), F(9, 9), X(0.1)], [[1], [2], [0]]),  # feasible first, then by violation
        ([X(0.3), X(0.3), X(0.1)], [[2], [0, 1]]),  # all infeasible; equal violations grouped
        ([X(INF), X(NAN), X(2.0)], [[2], [0, 1]]),  # inf and NaN are equally worst
        ([F(NAN, 0), F(1, 1)], [[1], [0]]),  # NaN objective ranks after feasible
        ([F(INF, 0), F(0, INF), F(1, 1)], [[0, 1, 2]]),
    ],
)
def test_constrained_fronts(items: list[Ranked], fronts: list[list[int]]) -> None:
    assert constrained_fronts(items) == fronts


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([], []),
        ([(1.0, 1.0)], [INF]),
        ([(1.0, 2.0), (2.0, 1.0)], [INF, INF]),
        ([(0.0, 2.0), (1.0, 1.0), (2.0, 0.0)], [INF, 2.0, INF]),
        ([(0.0, 4.0), (1.0, 3.0), (3.0, 1.0), (4.0, 0.0)], [INF, 1.5, 1.5, INF]),
        ([(1.0, 1.0), (1.0, 1.0), (1.0, 1.0)], [INF, 0.0, INF]),  # zero range adds nothing
        ([(0.0, INF), (1.0, 1.0), (2.0, 0.0)], [INF, 1.0, INF]),  # infinite range adds nothing
    ],
)
def test_crowding_distance(points: list[tuple[float, float]], expected: list[float]) -> None:
    assert crowding_distance(points) == pytest.approx(expected)


def test_survival_fills_fronts_then_crowding_then_violation() -> None:
    items = [F(0, 4), F(1, 3), F(2, 2), F(3, 1), F(4, 0), F(5, 5), X(0.2), X(0.1)]
    chosen, crowding = survival(items, 4)
    assert chosen[:2] == [0, 4]  # boundary points (infinite crowding) first
    assert len(chosen) == 4 and set(chosen) <= {0, 1, 2, 3, 4}
    assert crowding[6] == crowding[7] == 0.0
    chosen, _ = survival(items, 7)
    assert chosen == [0, 1, 2, 3, 4, 5, 7]  # the infeasible one with lower violation survives
    chosen, _ = survival([X(0.3), X(0.1), X(0.2), X(INF)], 2)  # all infeasible
    assert chosen == [1, 2]


def test_survival_is_deterministic_on_ties() -> None:
    items = [F(1, 1)] * 6
    assert survival(items, 3)[0] == survival(items, 3)[0] == [0, 5, 1]


def test_tournament_prefers_feasible_and_needs_multiple_of_four() -> None:
    items = [F(0, 0), X(1.0), X(2.0), X(3.0)]
    random.seed(1)
    picks = tournament_dcd(items, [INF, 0, 0, 0], 4)
    assert len(picks) == 4 and picks.count(0) == 2  # the feasible item wins both its tournaments
    assert 3 not in picks  # the worst never wins
    with pytest.raises(ValueError, match="k % 4"):
        tournament_dcd(items, [0.0] * 4, 2)


def test_tournament_uses_crowding_between_equals() -> None:
    items = [F(0, 1), F(1, 0), F(0.5, 0.5), F(0.4, 0.6)]
    crowding = [INF, INF, 0.1, 0.9]  # mutually non-dominated: the least crowded item (2) never wins
    for seed in range(10):
        random.seed(seed)
        assert 2 not in tournament_dcd(items, crowding, 4)


OBJ = [ObjectiveSpec("accuracy", "max", 1.0, 0.0), ObjectiveSpec("latency_ms", "min", 0.0, 10.0)]


@pytest.mark.parametrize(
    ("metrics", "constraints", "feasible", "violation"),
    [
        ({"accuracy": 0.9, "latency_ms": 2.0}, [], True, 0.0),
        ({"accuracy": 0.9, "latency_ms": 2.0}, [Constraint.at_most("latency_ms", 1.0)], False, 1.0),
        ({"accuracy": 0.5, "latency_ms": 2.0}, [Constraint.at_least("accuracy", 0.8)], False, 0.375),
        ({"accuracy": NAN, "latency_ms": 2.0}, [], False, INF),  # NaN objective: infeasible, worst
        ({"accuracy": 0.9, "latency_ms": 2.0, "size_kb": NAN}, [Constraint.at_most("size_kb", 8)], False, INF),
        ({"accuracy": 0.9, "latency_ms": INF}, [], True, 0.0),  # inf is a value, not an error
        ({"accuracy": 0.9, "latency_ms": 0.0}, [Constraint("latency_ms", "<=", 0.0)], True, 0.0),
    ],
)
def test_make_record_violation(metrics: dict, constraints: list, feasible: bool, violation: float) -> None:
    record = make_record("k", [0], metrics, OBJ, constraints, generation=0)
    assert record.feasible is feasible
    assert record.violation == pytest.approx(violation)


def test_make_record_requires_every_objective_and_constrained_metric() -> None:
    with pytest.raises(ProblemContractError, match="latency_ms"):
        make_record("k", [0], {"accuracy": 0.9}, OBJ, [], generation=0)
    with pytest.raises(ProblemContractError, match="size_kb"):
        make_record(
            "k", [0], {"accuracy": 0.9, "latency_ms": 1.0}, OBJ, [Constraint.at_most("size_kb", 1)], generation=0
        )


values = st.floats(min_value=-5, max_value=5, allow_nan=False) | st.sampled_from([INF, -INF])
violations = st.sampled_from([0.0, 0.0, 0.0, 0.5, 1.0, INF, NAN])
ranked_items = st.lists(st.builds(lambda a, b, v: Ranked((a, b), v), values, values, violations), max_size=14)


@settings(max_examples=150, deadline=None)
@given(items=ranked_items, k=st.integers(min_value=0, max_value=14))
def test_fronts_and_survival_respect_constraint_domination(items: list[Ranked], k: int) -> None:
    fronts = constrained_fronts(items)
    assert sorted(i for front in fronts for i in front) == list(range(len(items)))
    rank = {i: r for r, front in enumerate(fronts) for i in front}
    for a in range(len(items)):
        for b in range(len(items)):
            if constrained_dominates(items[a], items[b]):
                assert rank[a] < rank[b]
    chosen, crowding = survival(items, k)
    assert len(chosen) == min(k, len(items)) == len(set(chosen))
    unchosen = set(range(len(items))) - set(chosen)
    if chosen and unchosen:
        assert max(rank[i] for i in chosen) <= min(rank[i] for i in unchosen)
    assert all(d >= 0 for d in crowding)
