"""Ranking honesty: unknown accuracy with min_accuracy, values beyond the hypervolume box, spent proposals."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from nas.config import SearchConfig
from nas.hypervolume import box_excess
from nas.nsga2 import ranked
from nas.problem import Constraint, ObjectiveSpec
from nas.ranking import constrained_fronts, survival
from nas.records import failed_record, make_record, precheck_record
from nas.search import run_search
from nas.toy import ToyProblem
from nas.violation import charged_violation

OBJECTIVES = [ObjectiveSpec("accuracy", "max", 1.0, 0.0), ObjectiveSpec("latency_ms", "min", 0.0, 10.0)]
SIZE, ACCURACY = Constraint.at_most("size_kb", 100), Constraint.at_least("accuracy", 0.8)
CONSTRAINTS = [SIZE, ACCURACY]


def trained(key: str, accuracy: float, size_kb: float = 50.0):
    metrics = {"accuracy": accuracy, "latency_ms": 2.0, "size_kb": size_kb}
    return make_record(key, [0], metrics, OBJECTIVES, CONSTRAINTS, generation=0)


def rejected(key: str, size_kb: float):
    return precheck_record(key, [0], {"size_kb": size_kb, "latency_ms": 2.0}, CONSTRAINTS, generation=0)


# name, record, charged violation, rank (fronts, best first; equal ranks share a front)
TABLE = [
    ("feasible", trained("feasible", 0.9), 0.0, 0),
    ("misses min_accuracy slightly", trained("acc0.79", 0.79), 0.0125, 1),
    ("misses min_accuracy widely", trained("acc0.2", 0.2), 0.75, 2),
    ("accuracy 0: the worst a trained one can be", trained("acc0", 0.0), 1.0, 3),
    ("rejected, size 1% over, accuracy unknown", rejected("size101", 101.0), 1.01, 4),
    ("rejected, size 50% over, accuracy unknown", rejected("size150", 150.0), 1.5, 5),
    ("failed", failed_record("failed", [0], "boom", generation=0), math.inf, 6),
]


@pytest.mark.parametrize(("name", "record", "charged", "rank"), TABLE, ids=[row[0] for row in TABLE])
def test_charged_violation_table(name: str, record, charged: float, rank: int) -> None:
    assert charged_violation(record, OBJECTIVES, CONSTRAINTS) == pytest.approx(charged)


def test_rejected_candidates_never_outrank_trained_ones_that_miss_min_accuracy() -> None:
    records = [row[1] for row in reversed(TABLE)]  # worst first: order must not matter
    items = [ranked(r, OBJECTIVES, CONSTRAINTS) for r in records]
    fronts = constrained_fronts(items)
    by_key = {records[i].key: rank for rank, front in enumerate(fronts) for i in front}
    assert by_key == {row[1].key: row[3] for row in TABLE}
    chosen, _ = survival(items, 4)  # the best four: feasible, then the trained ones, however inaccurate
    assert {records[i].key for i in chosen} == {"feasible", "acc0.79", "acc0.2", "acc0"}
    # what the ranking saw before: the rejected one's violation was only its size excess (0.01)
    assert records[2].violation == pytest.approx(0.01) and ranked(records[2], OBJECTIVES, CONSTRAINTS).violation > 1


def test_unmeasured_metric_without_a_box_ranks_just_above_failed() -> None:
    f1 = Constraint.at_least("macro_f1", 0.5)  # not an objective: no declared worst value
    constraints = [SIZE, f1]
    a = precheck_record("a", [0], {"size_kb": 120.0}, constraints, generation=0)
    b = precheck_record("b", [0], {"size_kb": 110.0}, constraints, generation=0)
    failed = failed_record("c", [0], "boom", generation=0)
    items = [ranked(r, OBJECTIVES, constraints) for r in (a, b, failed)]
    assert [item.violation for item in items] == [math.inf] * 3
    assert constrained_fronts(items) == [[1], [0], [2]]  # ordered by what was measured; failed last


def test_toy_search_with_min_accuracy_prefers_trained_candidates(tmp_path: Path) -> None:
    problem = ToyProblem(max_size_kb=60, min_accuracy=0.9)
    config = SearchConfig(population=16, generations=4, backend="inline")
    result = run_search(problem, config, tmp_path / "run", progress=False)
    violations = [row["min_violation"] for row in result.history]
    assert violations == sorted(violations, reverse=True)


# --- hypervolume box -----------------------------------------------------------------------------------


class _TooOptimistic(ToyProblem):
    """Declares latency best 20 ms though candidates reach 1 ms."""

    def __init__(self) -> None:
        super().__init__()
        self.objectives = [self.objectives[0], ObjectiveSpec("latency_ms", "min", best=20.0, worst=100.0)]


def test_values_beyond_the_box_are_measured() -> None:
    records = [make_record(f"k{i}", [0], {"accuracy": 0.5, "latency_ms": v}, OBJECTIVES, [], generation=0)
               for i, v in enumerate([-1.0, 4.0, 12.5, 15.0])]  # fmt: skip
    found = {(e.objective, e.side): e for e in box_excess(records, OBJECTIVES)}
    assert set(found) == {("latency_ms", "best"), ("latency_ms", "worst")}
    assert found["latency_ms", "best"].count == 1 and found["latency_ms", "best"].amount == pytest.approx(1.0)
    assert found["latency_ms", "worst"].count == 2 and found["latency_ms", "worst"].share == pytest.approx(0.5)


def test_clipped_hypervolume_is_warned_once_with_the_amount(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = SearchConfig(population=16, generations=5, backend="inline")
    with caplog.at_level(logging.WARNING, logger="nas"):
        result = run_search(_TooOptimistic(), config, tmp_path / "run", progress=False)
    said = [w for w in result.warnings if "latency_ms" in w and "best" in w]
    assert len(said) == 1 and said[0] in caplog.text
    assert "better than its declared best 20" in said[0] and "by up to 19" in said[0] and "clipped" in said[0]


# --- spent proposals ------------------------------------------------------------------------------------


def test_proposals_that_exhaust_their_novelty_retries_are_reported(tmp_path: Path) -> None:
    config = SearchConfig(population=16, generations=6, backend="inline", novelty_retries=1)
    result = run_search(ToyProblem(n_tail=2), config, tmp_path / "run", progress=False)  # a small space
    assert result.n_cache_hits > 0
    said = [w for w in result.warnings if "novelty retries" in w]
    assert said and all("reuse its result" in w for w in said)
    assert sum(int(w.split(": ", 1)[1].split(" ")[0]) for w in said) == result.n_cache_hits
