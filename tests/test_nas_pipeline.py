"""The audio search end to end: a tiny search on the built-in data, kill -9 and resume, bad input."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from latency_fixtures import latencies_for, write_table

from complete_pipeline import main
from latency_tables.keys import space_ops
from pipeline.config import build_config
from pipeline.nas_stage import build_problem
from search_spaces import create_search_space

REPO = Path(__file__).resolve().parents[1]
# small, fast candidates in one process (the engine's own tests cover loky and dask)
TINY = ["--nas-population", "4", "--nas-generations", "2", "--proxy-epochs", "1", "--max-latency-ms", "0.3",
        "--backend", "inline", "--jobs", "1", "--no-progress"]  # fmt: skip


def _pareto(run: Path) -> list[dict]:
    with open(run / "nas" / "pareto.csv") as f:
        return sorted(csv.DictReader(f), key=lambda r: r["key"])


def _history(run: Path) -> list[dict]:
    with open(run / "nas" / "history.csv") as f:
        return [{k: v for k, v in row.items() if k not in ("wall_s", "elapsed_s")} for row in csv.DictReader(f)]


def _cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO / "complete_pipeline.py"), "--mode", "nas", "--out", str(out), *TINY, *extra]


def test_tiny_search_writes_journal_checkpoint_history_pareto(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--mode", "nas", "--out", str(out), *TINY]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "Pareto front" in printed or "no feasible candidate" in printed
    for name in ("journal.jsonl", "checkpoint.json", "history.csv", "pareto.csv"):
        assert (out / "nas" / name).is_file(), name
    records = [json.loads(line) for line in (out / "nas" / "journal.jsonl").read_text().splitlines()]
    assert len({r["key"] for r in records}) == len(records) >= 4  # each candidate once
    trained = [r for r in records if r["status"] == "ok"]
    assert trained and all(0 <= r["metrics"]["accuracy"] <= 1 for r in trained)
    assert all(r["info"]["latency_source"] == "table" for r in records if r["status"] != "failed")
    rejected = [r for r in records if r["status"] == "precheck_infeasible"]
    assert all(r["metrics"].get("accuracy") is None for r in rejected)  # never trained
    history = _history(out)
    assert [int(h["generation"]) for h in history] == [0, 1, 2]
    assert float(history[-1]["hypervolume"]) >= float(history[0]["hypervolume"])


@pytest.mark.slow  # 80 s; the engine-level SIGKILL tests (test_nas_kill, test_nas_operators) run by default
def test_kill_9_mid_search_then_resume_equals_uninterrupted(tmp_path):
    straight = tmp_path / "straight"
    done = subprocess.run(_cmd(straight), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(killed), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip
    journal = killed / "nas" / "journal.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and (not journal.exists() or len(journal.read_text().splitlines()) < 6):
        assert proc.poll() is None, "the search finished before it could be killed"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = len(journal.read_text().splitlines())
    resumed = subprocess.run(_cmd(killed, "--resume"), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    assert _pareto(killed) == _pareto(straight)
    assert _history(killed) == _history(straight)
    keys = [json.loads(line)["key"] for line in journal.read_text().splitlines()]
    assert len(keys) == len(set(keys)) >= before  # nothing journaled before the kill was evaluated again


def test_resume_with_other_search_settings_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--mode", "nas", "--out", str(out), *TINY]) == 0
    capsys.readouterr()
    code = main(["--mode", "nas", "--out", str(out), "--resume", "--nas-population", "8", *TINY[2:]])
    err = capsys.readouterr().err
    assert code == 2 and "population" in err and "Traceback" not in err
    (out / "nas" / "search.json").unlink()  # lost: the CLI defers to the engine, which checks the checkpoint
    code = main(["--mode", "nas", "--out", str(out), "--resume", "--nas-population", "8", *TINY[2:]])
    assert code == 2 and "population" in capsys.readouterr().err
    assert main(["--mode", "nas", "--out", str(out), "--resume", *TINY]) == 0


def test_population_not_a_multiple_of_4(cli_error, tmp_path):
    assert "population must be a multiple of 4" in cli_error(
        ["--mode", "nas", "--nas-population", "10", "--out", str(tmp_path)]
    )


def test_unknown_objective_and_device(cli_error, tmp_path):
    assert "unknown objective(s) speed" in cli_error(
        ["--mode", "nas", "--objectives", "accuracy,speed", "--out", str(tmp_path)]
    )
    assert "unknown device 'rpi9'" in cli_error(["--mode", "nas", "--devices", "rpi9", "--out", str(tmp_path)])


def test_resume_without_run_folder_starts_the_run(tmp_path, capsys):
    assert main(["--mode", "nas", "--resume", "--out", str(tmp_path / "none"), *TINY]) == 0
    assert "--resume: nothing to continue yet" in capsys.readouterr().out
    assert (tmp_path / "none" / "nas" / "pareto.csv").is_file()


def test_unreachable_dask_scheduler(cli_error, tmp_path):
    msg = cli_error(
        ["--mode", "nas", *TINY[:-1], "--backend", "dask", "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path)],
    )
    assert "tcp://127.0.0.1:1" in msg


def test_impossible_constraint_keeps_going(tmp_path, capsys, caplog):
    out = tmp_path / "run"
    assert main(["--mode", "nas", "--out", str(out), *TINY, "--max-latency-ms", "0.0001"]) == 0
    captured = capsys.readouterr()
    assert "no feasible candidate" in captured.out
    warning = " ".join(r.getMessage() for r in caplog.records if "no feasible candidate" in r.getMessage())
    assert "latency_ms_epyc_avx512_2c_ort_fp32_t1<=0.0001" in warning  # it names the constraint no one met


def test_two_devices_give_two_latency_objectives(tmp_path, capsys, monkeypatch):
    space = create_search_space("mel2d")
    ops = sorted(space_ops(space, 10, (1, 40, 101)), key=lambda o: o.key)
    write_table(tmp_path / "tables", "toy-phone", latencies_for(ops, base=1e-5))
    monkeypatch.setenv("EDGE_AUDIO_NAS_TABLES", str(tmp_path / "tables"))
    out = tmp_path / "run"
    argv = ["--mode", "nas", "--out", str(out), "--devices", "epyc-avx512-2c_ort_fp32_t1,toy-phone", *TINY]
    assert main(argv) == 0, capsys.readouterr().err
    header = (out / "nas" / "pareto.csv").read_text().splitlines()[0]
    assert "latency_ms_epyc_avx512_2c_ort_fp32_t1" in header and "latency_ms_toy_phone" in header


def test_refused_resume_keeps_the_original_config_and_new_search_is_refused_early(tmp_path, cli_error):
    out = tmp_path / "run"
    assert main(["--mode", "nas", "--out", str(out), *TINY]) == 0
    before = (out / "config.json").read_text()
    msg = cli_error(["--mode", "nas", "--out", str(out), "--resume", "--nas-population", "8", *TINY[2:]])
    assert "population" in msg
    assert (out / "config.json").read_text() == before  # the refused settings were not written
    assert "already holds a search" in cli_error(["--mode", "nas", "--out", str(out), *TINY])


def test_wave1d_searches_and_unfit_candidates_are_infeasible_not_fatal(tmp_path, capsys):
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(
        "features:\n  kind: waveform\n  clip_seconds: 0.05\n"  # 800 samples: deep strides and pools do not fit
        "nas:\n  space: wave1d\n  objectives: [accuracy, size_kb]\n  max_latency_ms: null\n"
    )
    out = tmp_path / "run"
    argv = ["--mode", "nas", "--config", str(cfg_file), "--out", str(out), "--nas-population", "4",
            "--nas-generations", "1", "--proxy-epochs", "1", "--backend", "inline", "--no-progress"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert any(json.loads(line)["feasible"] for line in (out / "nas" / "journal.jsonl").read_text().splitlines())

    cfg = build_config(cfg_file, {})
    problem = build_problem(
        cfg, out, n_classes=10, data=json.loads((out / "data" / "summary.json").read_text())["data_fingerprint"]
    )
    space = create_search_space("wave1d")
    unfit = space.encode(space.largest())  # needs about 4,000 samples
    cheap = problem.precheck(unfit)
    assert math.isnan(cheap["size_kb"]) and "unfit" in cheap
    result = problem.evaluate(unfit)  # a clear NaN result, not a UserError that would stop the search
    assert math.isnan(result["accuracy"]) and "input too small" in result["unfit"]


def test_measured_latency_needs_a_bound_and_devices_must_differ(cli_error, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("nas:\n  max_latency_ms: null\n")
    no_bound = [a for a in TINY[:-1] if a not in ("--max-latency-ms", "0.3")]
    assert "--latency measure needs --max-latency-ms" in cli_error(
        ["--mode", "nas", "--config", str(cfg), "--latency", "measure", *no_bound]
    )
    msg = cli_error(["--mode", "nas", "--devices", "epyc-avx512-2c_ort_fp32_t1,epyc-avx512-2c_ort_fp32_t1",
                     *TINY[:-1]])  # fmt: skip
    assert "each device must be named once" in msg


def test_partial_table_with_strict_is_refused_before_the_search(cli_error, tmp_path, monkeypatch):
    space = create_search_space("mel2d")
    ops = sorted(space_ops(space, 10, (1, 40, 101)), key=lambda o: o.key)
    write_table(tmp_path / "tables", "half-phone", latencies_for(ops[::2], base=1e-5))  # every other op measured
    monkeypatch.setenv("EDGE_AUDIO_NAS_TABLES", str(tmp_path / "tables"))
    out = tmp_path / "run"
    argv = ["--mode", "nas", "--out", str(out), "--devices", "half-phone", "--strict", *TINY]
    msg = cli_error(argv)
    assert f"lacks {len(ops) - len(ops[::2])} op(s)" in msg and "--device-name half-phone" in msg
    assert "leave out --strict" in msg
    assert not (out / "nas" / "journal.jsonl").exists()  # refused before any candidate
    assert main([a for a in argv if a != "--strict"]) == 0  # interpolating, the same table searches


def test_measured_latency_without_latency_objective_or_bound_needs_no_bound(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("nas:\n  max_latency_ms: null\n  max_size_kb: 40\n  objectives: [accuracy, size_kb]\n")
    no_bound = [a for a in TINY if a not in ("--max-latency-ms", "0.3")]
    out = tmp_path / "run"
    argv = ["--mode", "nas", "--config", str(cfg), "--latency", "measure", "--out", str(out), *no_bound]
    assert main(argv) == 0, capsys.readouterr().err
    header = (out / "nas" / "pareto.csv").read_text().splitlines()[0]
    assert "latency_ms" not in header
