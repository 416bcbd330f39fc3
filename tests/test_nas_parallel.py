"""Parallel and distributed evaluation: loky and dask give the inline result; dead workers cost one candidate."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from common.errors import UserError
from nas.config import SearchConfig
from nas.history import without_timing
from nas.journal import Journal
from nas.search import run_search
from nas.toy import ToyProblem, read_calls

BASE = {"population": 16, "generations": 5}


def search(run_dir: Path, problem: ToyProblem | None = None, **fields: Any):
    config = SearchConfig(**{**BASE, **fields})
    return run_search(problem or ToyProblem(), config, run_dir, progress=False)


def assert_same(a, b) -> None:
    assert a.pareto == b.pareto
    assert without_timing(a.history) == without_timing(b.history)


@pytest.fixture(scope="module")
def inline_result(tmp_path_factory: pytest.TempPathFactory):
    return search(tmp_path_factory.mktemp("inline") / "run", backend="inline")


class _ThreadsProblem(ToyProblem):
    """Reports the thread cap its worker process was started with."""

    def evaluate(self, genome: list[int]) -> Mapping[str, Any]:
        return {**super().evaluate(genome), "omp_threads": os.environ.get("OMP_NUM_THREADS")}


def test_loky_two_workers_equals_one_and_inline(tmp_path: Path, inline_result) -> None:
    two = search(tmp_path / "two", _ThreadsProblem(), backend="loky", jobs=2)
    one = search(tmp_path / "one", backend="loky", jobs=1)
    assert_same(inline_result, two)
    assert_same(inline_result, one)
    records = Journal(tmp_path / "two" / "nas" / "journal.jsonl").read()
    assert len({r.provenance["pid"] for r in records}) == 2  # two worker processes did the work
    assert {r.info["omp_threads"] for r in records} == {str(max(1, (os.cpu_count() or 1) // 2))}
    assert os.getpid() not in {r.provenance["pid"] for r in records}


def test_loky_worker_killed_by_os_exit_costs_only_its_candidate(tmp_path: Path, inline_result) -> None:
    problem = ToyProblem(state_dir=str(tmp_path), crash_mod=25)  # these die on their first evaluation
    result = search(tmp_path / "run", problem, backend="loky", jobs=2)
    crashed = {p.name.removeprefix("crashed-") for p in tmp_path.glob("crashed-*")}
    assert crashed  # some workers really died
    assert_same(inline_result, result)  # ... and the search did not notice
    records = {r.key: r for r in Journal(tmp_path / "run" / "nas" / "journal.jsonl").read()}
    assert all(records[key].status == "ok" for key in crashed)
    calls = Counter(key for _, key in read_calls(tmp_path))
    assert all(calls[key] == 2 for key in crashed)  # the crash and one retry
    innocent = [key for key, n in calls.items() if key not in crashed and n > 1]
    assert len(innocent) <= len(crashed)  # at most the one co-runner per crash was re-run


def test_candidate_that_always_kills_its_worker_is_recorded_failed(tmp_path: Path) -> None:
    problem = ToyProblem(state_dir=str(tmp_path), crash_mod=15, crash_always=True)  # one candidate of this run
    result = search(tmp_path / "run", problem, backend="loky", jobs=2, retries=1, generations=1)
    records = Journal(tmp_path / "run" / "nas" / "journal.jsonl").read()
    failed = [r for r in records if r.status == "failed"]
    assert failed and result.history[-1]["failed"] == len(failed)
    assert all("worker died" in r.reason and r.attempts == 2 for r in failed)
    assert sum(r.status == "ok" for r in records) == len(records) - len(failed)


def test_unpicklable_problem_is_refused_for_process_backends(tmp_path: Path) -> None:
    problem = ToyProblem()
    problem.lock = threading.Lock()  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="cannot be pickled"):
        search(tmp_path / "run", problem, backend="loky")
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def dask_cluster():
    dask = pytest.importorskip("dask", reason="dask is not installed")
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")
    from nas.backends import recommended_dask_config

    # a task on a worker that another task's crash kills counts a failure too; with dask's default of 3, two
    # workers dying at once on a loaded machine could mark an innocent candidate failed and change the front
    with dask.config.set({**recommended_dask_config(), "distributed.scheduler.allowed-failures": 10}):
        cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None)
    yield cluster
    cluster.close()


def test_dask_backend_equals_loky_and_inline(tmp_path: Path, dask_cluster, inline_result) -> None:
    result = search(tmp_path / "run", backend="dask", scheduler=dask_cluster.scheduler_address)
    assert_same(inline_result, result)
    pids = {r.provenance["pid"] for r in Journal(tmp_path / "run" / "nas" / "journal.jsonl").read()}
    assert os.getpid() not in pids


def test_unreachable_dask_scheduler_is_a_user_error_naming_the_address(tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="dask.distributed is not installed")
    with pytest.raises(UserError, match=r"tcp://127\.0\.0\.1:9"):
        search(tmp_path / "run", backend="dask", scheduler="tcp://127.0.0.1:9", connect_timeout_s=0.5)
    assert not (tmp_path / "run").exists()  # nothing written, so a corrected command starts cleanly


def test_dask_worker_killed_by_os_exit_costs_only_its_candidate(tmp_path: Path, dask_cluster, inline_result) -> None:
    problem = ToyProblem(state_dir=str(tmp_path), crash_mod=25)
    result = search(tmp_path / "run", problem, backend="dask", scheduler=dask_cluster.scheduler_address)
    assert list(tmp_path.glob("crashed-*"))  # some workers really died (the nanny restarted them)
    assert_same(inline_result, result)


def test_dask_candidate_that_always_kills_its_worker_is_recorded_failed(tmp_path: Path, dask_cluster) -> None:
    problem = ToyProblem(state_dir=str(tmp_path), crash_mod=30, crash_always=True)  # one candidate of this run
    config = {"backend": "dask", "scheduler": dask_cluster.scheduler_address, "generations": 1}
    result = search(tmp_path / "run", problem, **config)
    failed = [r for r in Journal(tmp_path / "run" / "nas" / "journal.jsonl").read() if r.status == "failed"]
    assert failed and result.history[-1]["failed"] == len(failed)
    assert all("dask worker(s) died" in r.reason and r.attempts == 1 for r in failed)
