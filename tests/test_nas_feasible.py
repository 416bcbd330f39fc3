"""Feasibility retries: a candidate the precheck rejects is drawn again instead of spending a slot untrained."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from nas.config import SearchConfig
from nas.history import without_timing
from nas.precheck_memo import PrecheckMemo
from nas.search import run_search
from nas.toy import ToyProblem

BASE = {"population": 16, "generations": 5, "backend": "inline"}


def _rejected(result) -> int:
    return result.history[-1]["precheck_rejected"]


def test_retries_fill_the_generations_with_candidates_that_pass_the_precheck(tmp_path: Path) -> None:
    problem = ToyProblem(max_size_kb=120)
    old = run_search(problem, SearchConfig(**BASE, feasible_retries=0), tmp_path / "old", progress=False)
    new = run_search(problem, SearchConfig(**BASE), tmp_path / "new", progress=False)
    assert _rejected(old) > 0  # without retries a share of every generation is rejected untrained
    assert _rejected(new) == 0
    assert new.n_full_evaluations > old.n_full_evaluations
    assert (tmp_path / "new" / "nas" / "prechecks.jsonl").is_file()


def test_an_unreachable_bound_exhausts_the_retries_and_records_the_candidates_infeasible(tmp_path: Path) -> None:
    config = SearchConfig(**{**BASE, "generations": 2})
    result = run_search(ToyProblem(max_size_kb=1), config, tmp_path / "run", progress=False)
    assert result.n_full_evaluations == 0
    assert _rejected(result) == result.n_evaluations > 0


class _LoggedPrecheck(ToyProblem):
    """Logs every precheck call the search makes (one key per line) in ``state_dir``."""

    quiet = False

    def evaluate(self, genome: list[int]):
        self.quiet = True  # the toy's evaluate reports the precheck's metrics too: not a call of the search's
        try:
            return super().evaluate(genome)
        finally:
            self.quiet = False

    def precheck(self, genome: list[int]):
        if self.quiet:
            return super().precheck(genome)
        fd = os.open(Path(self.state_dir) / "prechecks.txt", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{self.key(genome)}\n".encode())
        finally:
            os.close(fd)
        return super().precheck(genome)


def test_each_candidate_is_prechecked_once_across_a_stop_and_a_resume(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    problem = _LoggedPrecheck(max_size_kb=120, state_dir=str(state))
    config = SearchConfig(**BASE)
    reference = run_search(ToyProblem(max_size_kb=120), config, tmp_path / "ref", progress=False)
    stop_at_2 = lambda row: row["generation"] == 2  # noqa: E731
    stopped = run_search(problem, config, tmp_path / "run", progress=False, on_generation=stop_at_2)
    assert not stopped.completed
    resumed = run_search(problem, config, tmp_path / "run", resume=True, progress=False)
    assert resumed.pareto == reference.pareto
    assert without_timing(resumed.history) == without_timing(reference.history)
    calls = Counter((state / "prechecks.txt").read_text().split())
    assert calls and max(calls.values()) == 1  # bred, evaluated, resumed: one precheck per candidate


def test_a_new_search_does_not_read_the_prechecks_a_folder_holds(tmp_path: Path) -> None:
    folder = tmp_path / "run" / "nas"
    folder.mkdir(parents=True)
    stale = '{"key": "%s", "metrics": {"size_kb": 1e9}, "info": {}}\n'
    keys = [ToyProblem().key([d, w, *[0] * 10]) for d in range(4) for w in range(32)]
    (folder / "prechecks.jsonl").write_text("".join(stale % k for k in keys))  # every shallow candidate "too large"
    config = SearchConfig(**{**BASE, "generations": 1})
    result = run_search(ToyProblem(max_size_kb=120), config, tmp_path / "run", progress=False)
    assert result.n_full_evaluations > 0
    assert (
        "1e9" not in (folder / "prechecks.jsonl").read_text()
        and "1000000000" not in (folder / "prechecks.jsonl").read_text()
    )


def test_a_torn_last_precheck_line_is_skipped_and_the_next_answer_starts_on_a_line_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "prechecks.jsonl"
    problem = ToyProblem(max_size_kb=120)
    genome = problem.canonical([0, 3, *[1] * 10])
    key = problem.key(genome)
    path.write_text('{"key": "k1", "metrics": {"size_kb": 20.0}, "info": {}}\n{"key": "k2", "metr')
    memo = PrecheckMemo(problem, path)
    assert set(memo.answers) == {"k1"}
    assert memo.passes(key, genome)
    assert set(PrecheckMemo(problem, path).answers) == {"k1", key}  # the new answer was kept on a clean line
