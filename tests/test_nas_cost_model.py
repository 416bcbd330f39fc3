"""The cost model that predicts a generation's time from its candidates' costs, and its use by the budget."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from nas.config import SearchConfig
from nas.cost_model import MIN_POINTS, CostModel, costliest_first_s, makespan_s
from nas.search import run_search
from nas.toy import ToyProblem


def test_makespan_replays_greedy_list_scheduling_in_the_given_order():
    assert makespan_s([1, 1, 4], workers=2) == 5  # the long task starts last, one worker waits
    assert costliest_first_s([1, 1, 4], workers=2) == 4  # longest first: the short ones fill in beside it
    assert makespan_s([5, 3, 3, 3], workers=2) == 8
    assert makespan_s([2, 2, 2], workers=1) == 6
    assert makespan_s([], workers=2) == 0


def test_fit_recovers_a_line_and_predicts_a_batch():
    costs = [1.0, 2.0, 4.0, 8.0, 16.0]
    model = CostModel.fit(costs, [2 + 0.5 * c for c in costs])
    assert model is not None
    assert (model.intercept_s, model.slope_s, model.scale, model.points) == pytest.approx((2.0, 0.5, 1.0, 5))
    assert model.predict_s(10) == pytest.approx(7.0)
    assert model.batch_s([10, 2, 2], workers=2) == pytest.approx(7.0)  # 7 s beside 3 + 3 s
    assert model.batch_s([], workers=2) == 0.0
    assert model.predict_s(math.nan) == model.floor_s == 2.5


def test_fit_needs_enough_usable_points_and_stays_on_the_safe_side_of_noise():
    assert CostModel.fit([1.0, 2.0], [1.0, 2.0]) is None
    assert CostModel.fit([1.0, math.nan, 3.0, 4.0], [1.0, 2.0, 0.0, 4.0]) is None  # NaN cost, zero seconds: unusable
    assert MIN_POINTS == 3
    costs = [float(c) for c in range(1, 21)]
    seconds = [5 + c * (1.3 if i % 3 == 0 else 0.9) for i, c in enumerate(costs)]  # a third of them run slower
    model = CostModel.fit(costs, seconds)
    assert model is not None and model.scale > 1
    covered = sum(s <= model.predict_s(c) + 1e-9 for c, s in zip(costs, seconds, strict=True))
    assert covered >= 0.8 * len(costs)  # the upper-quantile scale: most candidates finish within the prediction
    assert CostModel.fit([1.0, 1.0, 1.0], [3.0, 4.0, 5.0]).slope_s == 0.0  # one cost only: no slope, the median


class _CostlyToy(ToyProblem):
    cost_metric = "size_kb"


def test_the_budget_is_told_the_next_batch_expected_time_and_the_search_is_unchanged(tmp_path: Path):
    config = SearchConfig(population=8, generations=4, backend="inline")
    rows: list[dict] = []
    plain = run_search(ToyProblem(), config, tmp_path / "plain", progress=False)
    costly = run_search(_CostlyToy(), config, tmp_path / "costly", progress=False, on_generation=rows.append)
    assert costly.pareto == plain.pareto  # breeding the next batch before the callback changes nothing
    assert [r["generation"] for r in rows] == [0, 1, 2, 3, 4]
    predicted = [r["next_wall_s"] for r in rows[:-1]]
    assert all(math.isfinite(p) and p >= 0 for p in predicted)
    # the toy evaluates in microseconds: a prediction from those, not the slowest generation's time (file writes)
    assert max(predicted) < max(r["wall_s"] for r in rows)
