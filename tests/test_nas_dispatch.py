"""Dispatch order: with ``cost_metric`` each batch runs most expensive first, and the search's result is unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.config import SearchConfig
from nas.history import without_timing
from nas.journal import Journal
from nas.problem import validate_problem
from nas.search import run_search
from nas.toy import ToyProblem, read_calls

BASE = {"population": 12, "generations": 3, "backend": "inline"}


class _CostlyToy(ToyProblem):
    cost_metric = "size_kb"


def _calls_by_generation(run_dir: Path, state_dir: Path) -> dict[int, list[float]]:
    """Per generation, the ``size_kb`` of each evaluated candidate in the order the calls were made."""
    records = {r.key: r for r in Journal(run_dir / "nas" / "journal.jsonl").read()}
    order: dict[int, list[float]] = {}
    for _, key in read_calls(state_dir):
        record = records[key]
        order.setdefault(record.generation, []).append(record.metrics["size_kb"])
    return order


def test_cost_metric_dispatches_costliest_first_without_changing_the_result(tmp_path: Path) -> None:
    costly = run_search(_CostlyToy(state_dir=str(tmp_path)), SearchConfig(**BASE), tmp_path / "costly", progress=False)
    plain_dir = tmp_path / "plain-state"
    plain_dir.mkdir()
    plain = run_search(ToyProblem(state_dir=str(plain_dir)), SearchConfig(**BASE), tmp_path / "plain", progress=False)
    assert costly.pareto == plain.pareto
    assert without_timing(costly.history) == without_timing(plain.history)
    sorted_order = _calls_by_generation(tmp_path / "costly", tmp_path)
    assert sorted_order and all(sizes == sorted(sizes, reverse=True) for sizes in sorted_order.values())
    proposal_order = _calls_by_generation(tmp_path / "plain", plain_dir)
    assert any(sizes != sorted(sizes, reverse=True) for sizes in proposal_order.values())  # the order did change


@pytest.mark.parametrize("bad", ["", "size kb", 3])
def test_bad_cost_metric_is_refused_naming_the_field(bad) -> None:
    problem = ToyProblem()
    problem.cost_metric = bad
    with pytest.raises(ValueError, match=r"problem.cost_metric must be None or a metric name"):
        validate_problem(problem)
