"""A real search process killed with SIGKILL (mid-generation, mid-write) and resumed in a new process."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kill_helpers import kill_when_lines, line_count

from nas.config import SearchConfig
from nas.history import TIMING_COLUMNS
from nas.journal import Journal
from nas.search import run_search
from nas.toy import ToyProblem, read_calls

REPO = Path(__file__).resolve().parents[1]
CONFIG = {"population": 16, "generations": 6, "seed": 5}
MAX_SIZE_KB = 120  # a bound the precheck enforces: proposals it rejects are drawn again (feasible_retries)


def toy_command(run_dir: Path, state_dir: Path, resume: bool, backend: str) -> list[str]:
    problem = {"sleep_s": 0.01, "state_dir": str(state_dir), "max_size_kb": MAX_SIZE_KB}
    config = {**CONFIG, "backend": backend, "jobs": 2 if backend == "loky" else 1}
    cmd = [sys.executable, "-m", "nas.toy", str(run_dir), "--config", json.dumps(config)]
    return cmd + ["--problem", json.dumps(problem), "--no-progress"] + (["--resume"] if resume else [])


def journal_lines(run_dir: Path) -> int:
    return line_count(run_dir / "nas" / "journal.jsonl")


def kill_when(proc: subprocess.Popen, run_dir: Path, lines: int) -> None:
    kill_when_lines(proc, run_dir / "nas" / "journal.jsonl", lines)


def read_csv(path: Path, drop: tuple[str, ...] = ()) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


@pytest.mark.parametrize("backend", ["inline", "loky"])
def test_sigkill_then_resume_in_new_process_equals_uninterrupted(tmp_path: Path, backend: str) -> None:
    reference = run_search(
        ToyProblem(max_size_kb=MAX_SIZE_KB), SearchConfig(**CONFIG, backend="inline"), tmp_path / "ref", progress=False
    )
    run_dir, state = tmp_path / "run", tmp_path / "state"
    state.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    kills: list[tuple[int, set[str]]] = []  # (evaluate calls so far, keys journaled) at each kill
    for i, lines in enumerate([6, 40, 75]):
        proc = subprocess.Popen(toy_command(run_dir, state, i > 0, backend), cwd=REPO, env=env, stderr=subprocess.PIPE)
        kill_when(proc, run_dir, lines)
        kills.append((len(read_calls(state)), {r.key for r in Journal(run_dir / "nas" / "journal.jsonl").read()}))
        if i == 1:  # as if the kill had landed in the middle of a journal write
            with open(run_dir / "nas" / "journal.jsonl", "a") as f:
                f.write('{"attempts": 1, "feasible": tr')
    done = subprocess.run(toy_command(run_dir, state, True, backend), cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]

    # Same history (timing aside) and the same Pareto set, as files.
    folder, ref_folder = run_dir / "nas", tmp_path / "ref" / "nas"
    assert read_csv(folder / "history.csv", TIMING_COLUMNS) == read_csv(ref_folder / "history.csv", TIMING_COLUMNS)
    assert (folder / "pareto.csv").read_text() == (ref_folder / "pareto.csv").read_text()
    assert (folder / "journal.dropped.txt").read_text() == '{"attempts": 1, "feasible": tr\n'

    # One journal line per candidate, and no candidate journaled before a kill was evaluated after it.
    keys = [r.key for r in Journal(folder / "journal.jsonl").read()]
    assert len(keys) == len(set(keys)) == reference.n_evaluations
    calls = [key for _, key in read_calls(state)]
    for n_calls, journaled in kills:
        again = set(calls[n_calls:]) & journaled
        assert not again, f"re-evaluated after a kill: {sorted(again)[:3]}"
    assert len(calls) - len(keys) <= 3 * (2 if backend == "loky" else 1)  # only in-flight work is lost at a kill


def test_ctrl_c_on_a_loky_search_stops_its_workers_and_resumes(tmp_path: Path) -> None:
    reference = run_search(
        ToyProblem(max_size_kb=MAX_SIZE_KB), SearchConfig(**CONFIG, backend="inline"), tmp_path / "ref", progress=False
    )
    run_dir, state = tmp_path / "run", tmp_path / "state"
    state.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # SIGINT back to its default in the child: a test run started in the background by a shell without job
    # control inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
    proc = subprocess.Popen(
        toy_command(run_dir, state, False, "loky"),
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while journal_lines(run_dir) < 30 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    assert proc.poll() is None, "the search finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and b"resume with --resume" in err
    records = Journal(run_dir / "nas" / "journal.jsonl").read()
    workers = {r.provenance["pid"] for r in records if "pid" in r.provenance}  # not the prechecked-out ones
    time.sleep(0.5)
    assert not [pid for pid in workers if _alive(pid)]  # no training left running after Ctrl-C
    done = subprocess.run(toy_command(run_dir, state, True, "loky"), cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    folder, ref_folder = run_dir / "nas", tmp_path / "ref" / "nas"
    assert read_csv(folder / "history.csv", TIMING_COLUMNS) == read_csv(ref_folder / "history.csv", TIMING_COLUMNS)
    assert (folder / "pareto.csv").read_text() == (ref_folder / "pareto.csv").read_text()
    assert len(Journal(folder / "journal.jsonl").read()) == reference.n_evaluations


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
