"""The search's wall-clock budget: a deadline it stops at, mid-generation if need be, resumably and exactly."""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import pytest

from complete_pipeline import main
from nas.config import SearchConfig
from nas.history import without_timing
from nas.journal import Journal
from nas.search import next_generation_s, run_search
from nas.toy import ToyProblem, read_calls
from pipeline.nas_stage import GenerationReporter

TINY = ["--nas-population", "4", "--nas-generations", "2", "--proxy-epochs", "1", "--max-latency-ms", "0.3",
        "--backend", "inline", "--jobs", "1", "--no-progress"]  # fmt: skip
CONFIG = SearchConfig(population=8, generations=3, backend="inline")
SLEEP_S = 0.2  # per evaluation: 8 per generation (1.6 s), so a budget of BUDGET_S ends inside generation 1
BUDGET_S = 2.4


def _row(generation: int, elapsed_s: float, wall_s: float) -> dict:
    return {"generation": generation, "evaluations": 4, "full_evaluations": 1, "feasible_total": 1, "front_size": 1,
            "hypervolume": 0.1, "elapsed_s": elapsed_s, "wall_s": wall_s}  # fmt: skip


def test_reporter_prints_each_generation_and_leaves_the_budget_to_the_engine(capsys):
    reporter = GenerationReporter(generations=5)
    assert reporter(_row(1, 1e9, 1e9)) is False
    assert "generation 1: 4 candidates (1 trained), 1 feasible, front 1" in capsys.readouterr().out


def test_next_generation_is_expected_as_slow_as_the_slowest_of_the_last_three():
    walls = [80, 194, 129, 69]  # the built-in first run's generations on a 2-core Intel Xeon; the next took 162 s
    history = [{"wall_s": w} for w in walls]
    assert next_generation_s([]) == 0.0
    assert next_generation_s(history[:1]) == 80
    assert next_generation_s(history) == 194  # not 69, the last generation's
    assert next_generation_s([*history, {"wall_s": 50}, {"wall_s": 60}, {"wall_s": 55}]) == 60  # a window of three


def _problem(state: Path | None = None, cls: type = ToyProblem) -> ToyProblem:
    return cls(sleep_s=SLEEP_S, max_size_kb=120, state_dir=None if state is None else str(state))


def test_the_deadline_cuts_a_generation_and_a_resume_continues_it_exactly(tmp_path: Path):
    state = tmp_path / "state"
    state.mkdir()
    reference = run_search(_problem(), CONFIG, tmp_path / "ref", progress=False)
    cut = run_search(_problem(state), CONFIG, tmp_path / "run", progress=False, budget_s=BUDGET_S)
    assert not cut.completed and cut.budget_stop
    part = cut.partial_generation
    assert part is not None and part["generation"] == len(cut.history) and 0 < part["finished"] < part["proposed"]
    # the finished candidates of the cut generation are journaled and on the front already
    journaled = {r.key: r for r in Journal(tmp_path / "run" / "nas" / "journal.jsonl").read()}
    assert any(journaled[row["key"]].generation == part["generation"] for row in cut.pareto)
    calls_at_cut = len(read_calls(state))
    again = run_search(_problem(state), CONFIG, tmp_path / "run", resume=True, progress=False, budget_s=BUDGET_S)
    assert again.budget_stop and len(read_calls(state)) == calls_at_cut  # spent: nothing more is evaluated
    assert again.partial_generation == part and again.pareto == cut.pareto  # and what the cut kept is still shown
    done = run_search(_problem(state), CONFIG, tmp_path / "run", resume=True, progress=False, budget_s=60)
    assert done.completed and not done.budget_stop
    assert done.pareto == reference.pareto
    assert without_timing(done.history) == without_timing(reference.history)
    calls = [key for _, key in read_calls(state)]
    assert len(calls) == len(set(calls)) == reference.n_full_evaluations  # nothing trained twice
    assert done.wall_s > cut.wall_s >= BUDGET_S  # the cut generation's time counts against the budget


class _CostlyToy(ToyProblem):
    cost_metric = "size_kb"


def test_the_generation_the_deadline_will_cut_goes_cheapest_first(tmp_path: Path):
    state = tmp_path / "state"
    state.mkdir()
    cut = run_search(_problem(state, _CostlyToy), CONFIG, tmp_path / "run", progress=False, budget_s=BUDGET_S)
    generation = cut.partial_generation["generation"]
    records = {r.key: r for r in Journal(tmp_path / "run" / "nas" / "journal.jsonl").read()}
    sizes = {}
    for _, key in read_calls(state):
        sizes.setdefault(records[key].generation, []).append(records[key].metrics["size_kb"])
    assert sizes[0] == sorted(sizes[0], reverse=True)  # a whole generation: the most expensive first
    assert len(sizes[generation]) > 1 and sizes[generation] == sorted(sizes[generation])  # cut: the cheapest first


def test_budget_stop_then_resume_with_a_larger_budget(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--mode", "nas", "--out", str(out), *TINY, "--max-minutes", "0.001"]) == 0
    printed = capsys.readouterr().out
    assert "stopped by the time budget (nas.max_minutes)" in printed
    assert (out / "nas" / "pareto.csv").is_file()
    ends = [json.loads(line) for line in (out / "stages.jsonl").read_text().splitlines()]
    assert "stopped by the time budget" in ends[-1]["note"]  # recorded on disk, not only printed
    journal = out / "nas" / "journal.jsonl"
    lines = journal.read_text() if journal.exists() else ""
    # the same budget again: spent already, so the resumed session evaluates nothing
    assert main(["--mode", "nas", "--out", str(out), *TINY, "--resume", "--max-minutes", "0.001"]) == 0
    assert "stopped by the time budget" in capsys.readouterr().out
    assert (journal.read_text() if journal.exists() else "") == lines
    assert main(["--mode", "nas", "--out", str(out), *TINY, "--resume", "--max-minutes", "60"]) == 0
    assert "stopped by the time budget" not in capsys.readouterr().out
    with open(out / "nas" / "history.csv") as f:
        assert [r["generation"] for r in csv.DictReader(f)] == ["0", "1", "2"]


def test_a_loky_search_stops_its_workers_at_the_deadline_and_resumes_exactly(tmp_path: Path):
    config = SearchConfig(population=8, generations=1, backend="loky", jobs=2)
    reference = run_search(_problem(), CONFIG, tmp_path / "ref", progress=False)
    start = time.monotonic()
    cut = run_search(ToyProblem(sleep_s=1.0, max_size_kb=120), config, tmp_path / "run", progress=False, budget_s=1.5)
    assert cut.budget_stop and time.monotonic() - start < 1.5 + 3.0  # not waiting for the 1-s trainings in flight
    done = run_search(_problem(), CONFIG, tmp_path / "run", resume=True, progress=False)
    assert done.pareto == reference.pareto
    assert without_timing(done.history) == without_timing(reference.history)


@pytest.mark.parametrize("bad", [0, -1.0, math.inf, math.nan, "60", True])
def test_a_budget_that_is_not_a_positive_number_of_seconds_is_refused(tmp_path: Path, bad):
    with pytest.raises(ValueError, match="budget_s must be None"):
        run_search(ToyProblem(), CONFIG, tmp_path / "run", progress=False, budget_s=bad)
