"""Multi-fidelity search (successive halving per generation): promotions, records, resume and bad input."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kill_helpers import kill_when_lines

from common.errors import UserError
from nas.config import SearchConfig
from nas.fidelity import promotion_count
from nas.history import without_timing
from nas.journal import Journal
from nas.runfolder import SearchPaths
from nas.search import run_search
from nas.toy import InterruptingToy, ToyProblem, read_calls

REPO = Path(__file__).resolve().parents[1]
FAST = {"population": 16, "generations": 5, "backend": "inline", "promote": 0.25}


def search(run_dir: Path, problem: ToyProblem | None = None, resume: bool = False, **fields: Any):
    config = SearchConfig(**{**FAST, **fields})
    problem = problem or ToyProblem(low_fidelity=True)
    return run_search(problem, config, run_dir, resume=resume, progress=False)


def same_run(a, b) -> None:
    assert a.pareto == b.pareto
    assert without_timing(a.history) == without_timing(b.history)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize(
    ("n", "share", "expected"), [(0, 0.5, 0), (1, 0.1, 1), (16, 0.25, 4), (10, 0.34, 4), (9, 1 / 3, 3), (5, 1.0, 5)]
)
def test_promotion_count_is_the_ceiling_of_the_share_and_at_least_one(n: int, share: float, expected: int) -> None:
    assert promotion_count(n, share) == expected


def test_each_generation_promotes_its_best_share_and_records_the_rest_at_low_fidelity(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    result = search(tmp_path / "run", ToyProblem(low_fidelity=True, state_dir=str(state)))
    calls = [key for _, key in read_calls(state)]
    low = [key.removesuffix("@r0") for key in calls if key.endswith("@r0")]
    full = [key for key in calls if "@" not in key]
    assert len(low) == len(set(low)) and len(full) == len(set(full))  # nothing evaluated twice at one fidelity
    assert set(full) <= set(low)  # only promoted candidates reach the full evaluation

    journal = {r.key: r for r in Journal(tmp_path / "run" / "nas" / "journal.jsonl").read()}
    rung0 = {r.key: r for r in Journal(tmp_path / "run" / "nas" / "rung0.jsonl").read()}
    assert set(rung0) == set(low) == set(journal)  # every candidate: one rung-0 line and one final line
    per_generation = Counter(r.generation for r in rung0.values())
    promoted = Counter(journal[k].generation for k in full)
    assert promoted == {g: promotion_count(n, 0.25) for g, n in per_generation.items()}
    for key, record in journal.items():
        assert record.rung == (None if key in full else 0)
        if key not in full:
            assert record.metrics == rung0[key].metrics  # ranked with the result it has

    # Promotion picks the best of a rung: every promoted candidate is non-dominated among its
    # generation's unpromoted ones on the rung-0 accuracy/latency pair.
    for g in per_generation:
        kept = [rung0[k].metrics for k in full if rung0[k].generation == g]
        left = [m for k, m in ((k, rung0[k].metrics) for k in rung0) if rung0[k].generation == g and k not in full]
        for m in kept:
            assert not any(o["accuracy"] > m["accuracy"] and o["latency_ms"] < m["latency_ms"] for o in left)

    rows = read_csv(tmp_path / "run" / "nas" / "pareto.csv")
    assert rows and {row["fidelity"] for row in rows} <= {"full", "noisy estimate"}
    history = read_csv(tmp_path / "run" / "nas" / "history.csv")
    assert int(history[-1]["low_fidelity"]) == len(journal) - len(full)
    legend = json.loads((tmp_path / "run" / "nas" / "columns.json").read_text())
    assert "fidelity" in legend["pareto.csv"]
    assert result.n_evaluate_calls == len(calls)


def test_same_seed_same_multi_fidelity_run_and_single_fidelity_is_unchanged(tmp_path: Path) -> None:
    same_run(search(tmp_path / "a"), search(tmp_path / "b"))
    plain = search(tmp_path / "plain", ToyProblem(), promote=None)
    plain_too = search(tmp_path / "plain2", ToyProblem(low_fidelity=True), promote=None)  # offered but not used
    same_run(plain, plain_too)
    assert not (tmp_path / "plain" / "nas" / "rung0.jsonl").exists()
    assert "fidelity" not in read_csv(tmp_path / "plain" / "nas" / "pareto.csv")[0]
    settings = json.loads(SearchPaths(tmp_path / "plain").settings.read_text())
    assert "promote" not in settings["settings"]["config"]  # one-fidelity resume checks as before


@pytest.mark.parametrize("calls", [3, 17, 30, 47])
def test_interrupt_between_or_inside_rungs_then_resume_equals_uninterrupted(tmp_path: Path, calls: int) -> None:
    full = search(tmp_path / "full")
    state = tmp_path / "state"
    state.mkdir()
    with pytest.raises(KeyboardInterrupt):
        search(tmp_path / "part", InterruptingToy(calls, low_fidelity=True, state_dir=str(state)))
    resumed = search(tmp_path / "part", ToyProblem(low_fidelity=True, state_dir=str(state)), resume=True)
    same_run(full, resumed)
    assert max(Counter(key for _, key in read_calls(state)).values()) == 1  # no rung result evaluated twice


@pytest.mark.parametrize("calls", [0, 4, 33])
def test_resume_with_a_prechecked_objective_equals_uninterrupted(tmp_path: Path, calls: int) -> None:
    # size_kb is an objective the precheck gives (as latency from a table is in the audio search): a
    # resumed rung must rank its replayed candidates on the same metrics as an uninterrupted one. The
    # interrupt counts full evaluations: 0 and 4 stop at a generation's first promoted candidate, so the
    # resumed session replays that whole rung 0 from the journal without prechecking anything new.
    toy = {"low_fidelity": True, "three_objectives": True, "max_size_kb": 80.0}
    full = search(tmp_path / "full", ToyProblem(**toy))
    state = tmp_path / "state"
    state.mkdir()
    with pytest.raises(KeyboardInterrupt):
        search(tmp_path / "part", InterruptingToy(calls, state_dir=str(state), **toy))
    resumed = search(tmp_path / "part", ToyProblem(state_dir=str(state), **toy), resume=True)
    same_run(full, resumed)


def test_sigkill_during_a_rung_then_resume_in_new_process_equals_uninterrupted(tmp_path: Path) -> None:
    config = {"population": 16, "generations": 4, "seed": 3, "promote": 0.25}
    reference = tmp_path / "ref"
    run_search(ToyProblem(low_fidelity=True), SearchConfig(**config), reference, progress=False)
    run_dir, state = tmp_path / "run", tmp_path / "state"
    state.mkdir()
    problem = json.dumps({"sleep_s": 0.02, "state_dir": str(state), "low_fidelity": True})

    def command(resume: bool) -> list[str]:
        cmd = [sys.executable, "-m", "nas.toy", str(run_dir), "--config", json.dumps(config), "--problem", problem]
        return cmd + ["--no-progress"] + (["--resume"] if resume else [])

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rung0 = run_dir / "nas" / "rung0.jsonl"
    for i, lines in enumerate([5, 21, 40]):  # inside generation 0's rung, in a later rung, later still
        kill_when_lines(subprocess.Popen(command(i > 0), cwd=REPO, env=env, stderr=subprocess.PIPE), rung0, lines)
    done = subprocess.run(command(True), cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (run_dir / "nas" / "pareto.csv").read_text() == (reference / "nas" / "pareto.csv").read_text()
    drop = ("wall_s", "elapsed_s")
    strip = [{k: v for k, v in row.items() if k not in drop} for row in read_csv(run_dir / "nas" / "history.csv")]
    ref = [{k: v for k, v in row.items() if k not in drop} for row in read_csv(reference / "nas" / "history.csv")]
    assert strip == ref
    calls = Counter(key for _, key in read_calls(state))
    assert sum(calls.values()) - len(calls) <= 3  # only the work in flight at each kill is repeated


@pytest.mark.parametrize("promote", [0, -0.5, 1.5, True, "half"])
def test_promote_outside_zero_one_is_refused_by_name(promote: Any) -> None:
    with pytest.raises(ValueError, match=r"promote must be .* in \(0, 1\]"):
        SearchConfig(promote=promote)


def test_promote_without_lower_fidelities_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"ToyProblem\.fidelities is empty"):
        search(tmp_path / "run", ToyProblem())
    assert not (tmp_path / "run").exists()


def test_resume_with_another_promote_share_or_without_it_is_refused(tmp_path: Path) -> None:
    search(tmp_path / "run", generations=2)
    for change in (0.5, None):
        with pytest.raises(UserError, match="settings changed"):
            search(tmp_path / "run", resume=True, promote=change)


def test_a_rung_promotes_by_accuracy_within_a_front_not_the_latency_extreme() -> None:
    from nas.fidelity import promoted
    from nas.problem import Constraint, ObjectiveSpec
    from nas.records import make_record

    objectives = [ObjectiveSpec("accuracy", "max", best=1.0, worst=0.0),
                  ObjectiveSpec("latency_ms", "min", best=0.0, worst=1.0)]  # fmt: skip
    constraints = [Constraint.at_most("latency_ms", 1.0)]
    points = {"fastest": (0.12, 0.1), "middle": (0.55, 0.5), "accurate": (0.76, 0.9), "dominated": (0.5, 0.95),
              "too-slow": (0.99, 1.5)}  # fmt: skip
    records = [make_record(key, [i], {"accuracy": a, "latency_ms": lat}, objectives, constraints, generation=0)
               for i, (key, (a, lat)) in enumerate(points.items())]  # fmt: skip
    assert promoted(records, objectives, constraints, 0.2, measured=["accuracy"]) == {"accurate"}
    assert promoted(records, objectives, constraints, 0.6, measured=["accuracy"]) == {"accurate", "middle", "fastest"}
    assert promoted(records, objectives, constraints, 0.8, measured=["accuracy"]) == set(points) - {"too-slow"}
