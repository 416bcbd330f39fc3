"""The search's wall-clock budget: it stops at the generation boundary it would overrun, resumably."""

from __future__ import annotations

import csv
import json

from complete_pipeline import main
from nas.search import next_generation_s
from pipeline.nas_stage import GenerationReporter

TINY = ["--nas-population", "4", "--nas-generations", "2", "--proxy-epochs", "1", "--max-latency-ms", "0.3",
        "--backend", "inline", "--jobs", "1", "--no-progress"]  # fmt: skip


def _row(generation: int, elapsed_s: float, wall_s: float) -> dict:
    return {"generation": generation, "evaluations": 4, "full_evaluations": 1, "feasible_total": 1, "front_size": 1,
            "hypervolume": 0.1, "elapsed_s": elapsed_s, "wall_s": wall_s}  # fmt: skip


def test_reporter_stops_when_the_next_generation_would_overrun(capsys):
    reporter = GenerationReporter(max_minutes=1.0, generations=5)
    assert reporter(_row(0, 20, 20)) is False  # 20 s + 20 s predicted fits in 60 s
    assert reporter(_row(1, 45, 25)) is True  # 45 s + 25 s would overrun
    assert reporter.stopped_at == 1
    assert GenerationReporter(None, 5)(_row(3, 1e9, 1e9)) is False  # no budget
    assert GenerationReporter(1.0, 5)(_row(5, 1e9, 1e9)) is False  # the last generation: nothing to stop
    assert GenerationReporter(1.0, 5).spent({}) is False  # before generation 0
    assert GenerationReporter(1.0, 5).spent(_row(2, 50, 20)) is True  # a resumed session with its budget spent
    assert "generation 1: 4 candidates" in capsys.readouterr().out


def test_next_generation_is_expected_as_slow_as_the_slowest_of_the_last_three():
    walls = [80, 194, 129, 69]  # the built-in first run's generations on a 2-core Intel Xeon; the next took 162 s
    history = [{"wall_s": w} for w in walls]
    assert next_generation_s([]) == 0.0
    assert next_generation_s(history[:1]) == 80
    assert next_generation_s(history) == 194  # not 69, the last generation's
    assert next_generation_s([*history, {"wall_s": 50}, {"wall_s": 60}, {"wall_s": 55}]) == 60  # a window of three


def test_reporter_keeps_the_slowest_recent_generation_for_the_next(capsys):
    row = _row(3, 472, 69) | {"next_wall_s": 194}
    assert GenerationReporter(max_minutes=10.0, generations=5)(row) is True  # 472 + 194 > 600, though 472 + 69 fits
    assert GenerationReporter(max_minutes=12.0, generations=5)(row) is False


def test_budget_stop_then_resume_with_a_larger_budget(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--mode", "nas", "--out", str(out), *TINY, "--max-minutes", "0.001"]) == 0
    printed = capsys.readouterr().out
    assert "stopped by a time budget after generation 0 (nas.max_minutes" in printed
    with open(out / "nas" / "history.csv") as f:
        assert [r["generation"] for r in csv.DictReader(f)] == ["0"]
    assert (out / "nas" / "pareto.csv").is_file()
    ends = [json.loads(line) for line in (out / "stages.jsonl").read_text().splitlines()]
    assert "stopped by the time budget after generation 0" in ends[-1]["note"]  # recorded on disk, not only printed
    # the same budget again: spent already, so the resumed session runs no generation at all
    assert main(["--mode", "nas", "--out", str(out), *TINY, "--resume", "--max-minutes", "0.001"]) == 0
    assert "stopped by a time budget after generation 0 (nas.max_minutes" in capsys.readouterr().out
    with open(out / "nas" / "history.csv") as f:
        assert [r["generation"] for r in csv.DictReader(f)] == ["0"]
    assert main(["--mode", "nas", "--out", str(out), *TINY, "--resume", "--max-minutes", "60"]) == 0
    assert "stopped by the time budget" not in capsys.readouterr().out
    with open(out / "nas" / "history.csv") as f:
        assert [r["generation"] for r in csv.DictReader(f)] == ["0", "1", "2"]
