"""The search loop on the toy problem, in process: quality, determinism, caching, constraints, resume, recovery."""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from deap.benchmarks.tools import hypervolume as deap_hypervolume

from common.errors import UserError
from nas.config import SearchConfig
from nas.history import history_columns, without_timing
from nas.hypervolume import hypervolume, normalised
from nas.journal import Journal
from nas.records import EvalRecord, ProblemContractError, make_record
from nas.runfolder import SearchPaths, folder_lock
from nas.search import run_search
from nas.toy import InterruptingToy, ToyProblem, read_calls

FAST = {"population": 16, "generations": 8, "backend": "inline"}


def search(run_dir: Path, problem: ToyProblem | None = None, resume: bool = False, on_generation=None, **fields: Any):
    config = SearchConfig(**{**FAST, **fields})
    problem = problem or ToyProblem()
    return run_search(problem, config, run_dir, resume=resume, progress=False, on_generation=on_generation)


def stop_after(generation: int):
    return lambda row: row["generation"] >= generation


def same_run(a, b) -> None:
    assert a.pareto == b.pareto
    assert without_timing(a.history) == without_timing(b.history)
    assert (a.n_evaluations, a.n_full_evaluations, a.n_cache_hits) == (
        b.n_evaluations,
        b.n_full_evaluations,
        b.n_cache_hits,
    )


def journal_keys(run_dir: Path) -> list[str]:
    return [r.key for r in Journal(run_dir / "nas" / "journal.jsonl").read()]


# --- quality and determinism -------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_nsga2_reaches_hypervolume_and_beats_random_search(tmp_path: Path, seed: int) -> None:
    budget = {"population": 16, "generations": 15, "seed": seed}
    nsga = search(tmp_path / "nsga", **budget)
    rand = search(tmp_path / "rand", strategy="random", **budget)
    hv_nsga, hv_rand = nsga.history[-1]["hypervolume"], rand.history[-1]["hypervolume"]
    assert hv_nsga > 0.95  # the true front of the toy has hypervolume 0.9667
    assert hv_nsga > hv_rand + 0.015
    assert nsga.history[0] == rand.history[0] | {
        "wall_s": nsga.history[0]["wall_s"],
        "elapsed_s": nsga.history[0]["elapsed_s"],
    }
    hv = [row["hypervolume"] for row in nsga.history]
    assert hv == sorted(hv)  # the front of everything seen never shrinks
    bounds = ToyProblem().gene_bounds
    for record in Journal(tmp_path / "nsga" / "nas" / "journal.jsonl").read():
        assert all(0 <= g <= b for g, b in zip(record.genome, bounds, strict=True))


def test_same_seed_same_front_other_seed_other_front(tmp_path: Path) -> None:
    a = search(tmp_path / "a", seed=3)
    b = search(tmp_path / "b", seed=3)
    c = search(tmp_path / "c", seed=4)
    same_run(a, b)
    assert [r["key"] for r in a.pareto] != [r["key"] for r in c.pareto]


def test_search_leaves_global_python_random_alone(tmp_path: Path) -> None:
    random.seed(123)
    before = random.getstate()
    search(tmp_path / "run", generations=2)
    assert random.getstate() == before


def test_three_objectives_and_outputs(tmp_path: Path) -> None:
    problem = ToyProblem(three_objectives=True, max_size_kb=200)
    result = search(tmp_path / "run", problem)
    folder = tmp_path / "run" / "nas"
    with open(folder / "history.csv") as f:
        header = f.readline().strip().split(",")
    assert header == history_columns(problem.objectives)
    assert len(result.history) == FAST["generations"] + 1
    assert result.history[-1]["hv_reference"] == "accuracy=0;latency_ms=100;size_kb=400"
    pareto_lines = (folder / "pareto.csv").read_text().splitlines()
    assert pareto_lines[0] == "key,generation,accuracy,latency_ms,size_kb,genome"
    assert len(pareto_lines) - 1 == len(result.pareto) == result.history[-1]["front_size"]
    assert len({row["key"] for row in result.pareto}) == len(result.pareto)
    assert all(row["size_kb"] <= 200 for row in result.pareto)
    checkpoint = json.loads((folder / "checkpoint.json").read_text())
    assert checkpoint["hypervolume"]["reference_point_z"] == [1.0, 1.0, 1.0]
    assert checkpoint["next_generation"] == FAST["generations"] + 1


def test_hypervolume_agrees_with_deap() -> None:
    problem = ToyProblem(three_objectives=True)
    rng = np.random.default_rng(0)
    records = []
    for i in range(40):
        metrics = {"accuracy": rng.uniform(0.2, 1), "latency_ms": rng.uniform(1, 90), "size_kb": rng.uniform(20, 300)}
        records.append(make_record(f"k{i}", [i], metrics, problem.objectives, [], generation=0))
    z = normalised(records, problem.objectives)
    expected = deap_hypervolume([_Ind(row) for row in z], ref=[1.0, 1.0, 1.0])
    assert hypervolume(records, problem.objectives) == pytest.approx(expected, rel=1e-12)


class _Ind:
    """Minimal DEAP-like individual for ``deap.benchmarks.tools.hypervolume`` (minimisation)."""

    def __init__(self, values: np.ndarray) -> None:
        self.fitness = type("Fit", (), {"wvalues": tuple(-v for v in values)})()


# --- evaluation cache and constraints ----------------------------------------------------------


def test_duplicate_keys_are_never_evaluated_twice(tmp_path: Path) -> None:
    problem = ToyProblem(n_tail=3, state_dir=str(tmp_path))
    result = search(tmp_path / "run", problem, novelty_retries=0, generations=10)
    calls = Counter(key for _, key in read_calls(tmp_path))
    assert result.n_cache_hits > 10
    assert max(calls.values()) == 1
    assert sum(calls.values()) == result.n_full_evaluations == result.n_evaluate_calls
    assert len(journal_keys(tmp_path / "run")) == len(set(journal_keys(tmp_path / "run")))


def test_canonical_genomes_share_a_key() -> None:
    problem = ToyProblem()
    a = [0, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5]
    b = [0, 5, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0]
    assert problem.key(a) == problem.key(b)


def test_precheck_infeasible_candidates_are_never_evaluated(tmp_path: Path) -> None:
    problem = ToyProblem(max_size_kb=60, state_dir=str(tmp_path))
    result = search(tmp_path / "run", problem)
    records = Journal(tmp_path / "run" / "nas" / "journal.jsonl").read()
    rejected = {r.key for r in records if r.status == "precheck_infeasible"}
    evaluated = {key for _, key in read_calls(tmp_path)}
    assert rejected and not rejected & evaluated
    assert result.history[-1]["precheck_rejected"] == len(rejected)
    assert all(r.violations["size_kb<=60"] > 0 and "accuracy" not in r.metrics for r in records if r.key in rejected)
    assert result.pareto and all(row["size_kb"] <= 60 for row in result.pareto)


def test_impossible_constraints_warn_and_the_search_goes_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    problem = ToyProblem(max_size_kb=20, min_accuracy=0.999)
    with caplog.at_level(logging.WARNING, logger="nas"):
        result = search(tmp_path / "run", problem, generations=3)
    text = caplog.text
    assert "may be impossible" in text and "size_kb<=20" in text and "smallest total violation" in text
    assert len(result.history) == 4 and result.history[-1]["hypervolume"] == 0.0
    violations = [row["min_violation"] for row in result.history]
    assert violations == sorted(violations, reverse=True)  # pressure towards feasibility


def test_failing_candidates_are_retried_then_recorded_failed(tmp_path: Path) -> None:
    problem = ToyProblem(fail_mod=6, state_dir=str(tmp_path))
    result = search(tmp_path / "run", problem, retries=1, generations=4)
    failed = [r for r in Journal(tmp_path / "run" / "nas" / "journal.jsonl").read() if r.status == "failed"]
    assert failed and result.history[-1]["failed"] == len(failed)
    calls = Counter(key for _, key in read_calls(tmp_path))
    for record in failed:
        assert record.attempts == 2 and calls[record.key] == 2
        assert "toy failure" in record.reason and record.violation == float("inf") and not record.feasible
    assert all(row["key"] not in {r.key for r in failed} for row in result.pareto)


def test_every_failure_in_generation_zero_stops_the_search(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="every evaluation of generation 0 failed"):
        search(tmp_path / "run", ToyProblem(fail_mod=1), retries=0)


class _UserErrorProblem(ToyProblem):
    def evaluate(self, genome: list[int]) -> dict:
        raise UserError("dataset folder /nowhere is missing")


class _BrokenProblem(ToyProblem):
    def evaluate(self, genome: list[int]) -> dict:
        return {"latency_ms": 1.0}


def test_user_error_in_evaluate_stops_without_journaling(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="/nowhere"):
        search(tmp_path / "run", _UserErrorProblem())
    assert journal_keys(tmp_path / "run") == []


def test_incomplete_evaluate_result_is_a_contract_error(tmp_path: Path) -> None:
    with pytest.raises(ProblemContractError, match="accuracy"):
        search(tmp_path / "run", _BrokenProblem())


# --- resume --------------------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [0, 3, 6])
def test_resume_after_stop_equals_uninterrupted(tmp_path: Path, cut: int) -> None:
    full = search(tmp_path / "full")
    part = search(tmp_path / "part", on_generation=stop_after(cut), problem=ToyProblem(state_dir=str(tmp_path)))
    assert not part.completed and len(part.history) == cut + 1
    resumed = search(tmp_path / "part", resume=True, problem=ToyProblem(state_dir=str(tmp_path)))
    assert resumed.completed and resumed.recovery == []
    same_run(full, resumed)
    assert max(Counter(key for _, key in read_calls(tmp_path)).values()) == 1


@pytest.mark.parametrize("calls", [5, 40, 75])
def test_interrupt_mid_generation_then_resume_equals_uninterrupted(tmp_path: Path, calls: int) -> None:
    full = search(tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        search(tmp_path / "part", InterruptingToy(calls, state_dir=str(tmp_path)))
    assert len(journal_keys(tmp_path / "part")) == calls
    resumed = search(tmp_path / "part", ToyProblem(state_dir=str(tmp_path)), resume=True)
    same_run(full, resumed)
    assert max(Counter(key for _, key in read_calls(tmp_path)).values()) == 1
    assert resumed.n_evaluate_calls == full.n_evaluate_calls - calls


def test_extending_generations_continues_a_finished_run(tmp_path: Path) -> None:
    full = search(tmp_path / "full", generations=10)
    search(tmp_path / "part", generations=5)
    extended = search(tmp_path / "part", generations=10, resume=True)
    same_run(full, extended)
    again = search(tmp_path / "part", generations=10, resume=True)  # nothing left to do
    assert again.n_evaluate_calls == 0 and again.completed
    same_run(full, again)


def test_fewer_generations_on_resume_are_refused_and_rewrite_nothing(tmp_path: Path) -> None:
    search(tmp_path / "long", generations=8)
    files = {p: p.read_bytes() for p in (tmp_path / "long" / "nas").iterdir() if p.is_file() and p.name != "lock"}
    with pytest.raises(UserError, match=r"has run generations 0\.\.8, more than the 4 asked for"):
        search(tmp_path / "long", generations=4, resume=True)
    assert {p: p.read_bytes() for p in files} == files


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"population": 20}, "config.population (16 -> 20)"),
        ({"seed": 9}, "config.seed (0 -> 9)"),
        ({"cx_prob": 0.5}, "config.cx_prob"),
        ({"strategy": "random"}, "config.strategy"),
    ],
)
def test_resume_refuses_changed_search_settings(tmp_path: Path, change: dict, named: str) -> None:
    search(tmp_path / "run", generations=2)
    with pytest.raises(UserError, match="settings changed") as info:
        search(tmp_path / "run", resume=True, **change)
    assert named in str(info.value)


def test_resume_refuses_a_changed_problem_but_not_changed_execution(tmp_path: Path) -> None:
    search(tmp_path / "run", generations=2)
    with pytest.raises(UserError, match=r"problem\.constraints"):
        search(tmp_path / "run", ToyProblem(max_size_kb=100), resume=True)
    with pytest.raises(UserError, match=r"problem\.describe\.n_tail"):
        search(tmp_path / "run", ToyProblem(n_tail=12), resume=True)
    result = search(tmp_path / "run", resume=True, generations=3, retries=5, backend="loky", jobs=2)  # execution only
    assert len(result.history) == 4


def test_resume_without_a_search_and_new_search_over_one_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        search(tmp_path / "missing", resume=True)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no search to resume"):
        search(tmp_path / "empty", resume=True)
    search(tmp_path / "run", generations=1)
    with pytest.raises(UserError, match="already holds a search"):
        search(tmp_path / "run")


def test_a_second_process_on_the_same_run_is_refused(tmp_path: Path) -> None:
    search(tmp_path / "run", generations=1)
    with folder_lock(SearchPaths(tmp_path / "run")), pytest.raises(UserError, match="another process"):
        search(tmp_path / "run", resume=True, generations=2)


# --- recovery -----------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated", "other_hash"])
def test_corrupt_checkpoint_is_recovered_from_the_journal(tmp_path: Path, damage: str) -> None:
    full = search(tmp_path / "full")
    search(tmp_path / "part", on_generation=stop_after(4), problem=ToyProblem(state_dir=str(tmp_path)))
    checkpoint = tmp_path / "part" / "nas" / "checkpoint.json"
    text = checkpoint.read_text()
    damaged = {
        "garbage": "\x00\x17not json",
        "empty": "",
        "truncated": text[: len(text) // 2],
        "other_hash": text.replace('"config_hash": "', '"config_hash": "x'),
    }[damage]
    checkpoint.write_text(damaged)
    resumed = search(tmp_path / "part", ToyProblem(state_dir=str(tmp_path)), resume=True)
    same_run(full, resumed)
    assert any("replaying the search from generation 0" in note for note in resumed.recovery)
    assert max(Counter(key for _, key in read_calls(tmp_path)).values()) == 1  # the journal served as cache


def test_torn_last_journal_line_is_dropped_and_reported(tmp_path: Path) -> None:
    full = search(tmp_path / "full")
    with pytest.raises(KeyboardInterrupt):
        search(tmp_path / "part", InterruptingToy(30))
    journal = tmp_path / "part" / "nas" / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(lines[:-1]) + lines[-1][:40])  # the last write torn by a crash
    resumed = search(tmp_path / "part", resume=True)
    same_run(full, resumed)
    assert any("torn last line" in note for note in resumed.recovery)
    assert (journal.parent / "journal.dropped.txt").read_text() == lines[-1][:40] + "\n"
    assert resumed.n_evaluate_calls == full.n_evaluate_calls - 29


def test_temp_files_left_by_a_kill_during_an_atomic_write_are_removed(tmp_path: Path) -> None:
    search(tmp_path / "run", on_generation=stop_after(1))
    stale = tmp_path / "run" / "nas" / ".checkpoint.json.abc123.tmp"
    stale.write_text('{"format_version": 1, "next_gen')
    search(tmp_path / "run", resume=True, generations=2)
    assert not stale.exists()


def test_unreadable_middle_journal_line_is_reported_and_re_evaluated(tmp_path: Path) -> None:
    full = search(tmp_path / "full")
    search(tmp_path / "part", on_generation=stop_after(3), problem=ToyProblem(state_dir=str(tmp_path)))
    journal = tmp_path / "part" / "nas" / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    lost = EvalRecord.from_json(json.loads(lines[10])).key
    lines[10] = "{broken\n"
    journal.write_text("".join(lines))
    resumed = search(tmp_path / "part", ToyProblem(state_dir=str(tmp_path)), resume=True)
    same_run(full, resumed)
    assert any("line(s) 11" in note for note in resumed.recovery)
    assert any("missing from the journal" in note for note in resumed.recovery)
    calls = Counter(key for _, key in read_calls(tmp_path))
    assert calls[lost] == 2 and sum(calls.values()) == full.n_evaluate_calls + 1


@pytest.mark.parametrize(
    ("problem_args", "fields"),
    [
        ({"max_size_kb": 60, "min_accuracy": 0.75}, {}),  # infeasible candidates, precheck rejections
        ({}, {"strategy": "random"}),
    ],
)
def test_resume_equivalence_with_constraints_and_for_random_search(
    tmp_path: Path, problem_args: dict, fields: dict
) -> None:
    full = search(tmp_path / "full", ToyProblem(**problem_args), **fields)
    search(tmp_path / "part", ToyProblem(**problem_args), on_generation=stop_after(2), **fields)
    with pytest.raises(KeyboardInterrupt):  # and once more in the middle of a generation
        search(tmp_path / "part", InterruptingToy(9, **problem_args), resume=True, **fields)
    resumed = search(tmp_path / "part", ToyProblem(**problem_args), resume=True, **fields)
    same_run(full, resumed)


def test_resume_with_lost_settings_file_checks_the_checkpoint_and_says_so(tmp_path: Path) -> None:
    full = search(tmp_path / "full")
    search(tmp_path / "part", on_generation=stop_after(2))
    (tmp_path / "part" / "nas" / "search.json").unlink()
    resumed = search(tmp_path / "part", resume=True)
    same_run(full, resumed)
    assert any("settings checked against checkpoint.json" in note for note in resumed.recovery)
    assert (tmp_path / "part" / "nas" / "search.json").exists()  # rewritten for the next resume


def test_resume_with_lost_settings_file_refuses_changed_constraints(tmp_path: Path) -> None:
    """The journal's feasibility was judged under the old constraints: reusing it would mix two searches."""
    search(tmp_path / "part", ToyProblem(max_size_kb=200), on_generation=stop_after(2))
    (tmp_path / "part" / "nas" / "search.json").unlink()
    with pytest.raises(UserError, match=r"settings changed.*problem\.constraints.*checkpoint\.json"):
        search(tmp_path / "part", ToyProblem(max_size_kb=60), resume=True)


def test_resume_without_settings_or_checkpoint_but_with_a_journal_is_refused(tmp_path: Path) -> None:
    search(tmp_path / "part", on_generation=stop_after(2))
    (tmp_path / "part" / "nas" / "search.json").unlink()
    (tmp_path / "part" / "nas" / "checkpoint.json").unlink()
    with pytest.raises(UserError, match="cannot be checked against the current settings"):
        search(tmp_path / "part", resume=True)
    assert (tmp_path / "part" / "nas" / "journal.jsonl").stat().st_size > 0  # kept
