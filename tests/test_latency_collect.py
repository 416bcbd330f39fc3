"""Collecting tables: resumable (SIGKILL included), never re-measures, records failures, refuses mixed settings."""

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

from common.errors import UserError
from latency_tables.collect import collect_table
from latency_tables.config import LatencyConfig
from latency_tables.keys import OpKey, spec_ops
from latency_tables.ort_timing import TimingConfig
from latency_tables.table import load_table
from search_spaces import create_search_space

REPO = Path(__file__).resolve().parents[1]
QUICK = LatencyConfig(calibration_models=0, timing=TimingConfig(sessions=1, runs=10, min_runs=3, target_ms=3))
SPACE = create_search_space("mel2d")
SHAPE = (1, 40, 101)


def _ops(spec_text="c8k3s2-ds16k3s2-ir16k3s1e2se-c24k3s2-h0d0"):
    return spec_ops(SPACE, SPACE.parse(spec_text), 10, SHAPE)


def _keys(csv_path: Path) -> list[str]:
    with open(csv_path) as f:
        return [row["key"] for row in csv.DictReader(f) if row["kind"] != "reference"]


def test_collect_then_rerun_measures_nothing_new(tmp_path):
    ops = _ops()
    first = collect_table(QUICK, "dev", SHAPE, tmp_path, progress=False, ops=ops)
    assert first.measured_now == len(set(ops)) and first.coverage == 1.0 and not first.failed
    table = load_table(tmp_path / "dev.csv")
    pred = table.predict(SPACE.parse("c8k3s2-ds16k3s2-ir16k3s1e2se-c24k3s2-h0d0"))
    assert pred.latency_ms > 0 and pred.missing == ()
    again = collect_table(QUICK, "dev", SHAPE, tmp_path, progress=False, ops=ops)
    assert again.measured_now == 0 and again.measured_before == len(set(ops))
    meta = json.loads((tmp_path / "dev.json").read_text())
    assert meta["units"] == "ms" and meta["input_shape"] == list(SHAPE) and meta["threads"] == 1
    assert meta["device"]["onnxruntime"] and meta["device"]["cpu_count"] >= 1 and "method" in meta


def test_op_that_fails_is_recorded_and_collection_goes_on(tmp_path):
    bad = OpKey("conv", (4, 0, 5), out_channels=4, kernel=(3, 3), act="relu")
    good = _ops()[:3]
    report = collect_table(QUICK, "dev", SHAPE, tmp_path, progress=False, ops=[bad, *good])
    assert report.measured_now == 3 and [key for key, _ in report.failed] == [bad.key]
    assert "INVALID_ARGUMENT" in report.failed[0][1] or "Error" in report.failed[0][1]


def test_resume_with_other_settings_is_refused(tmp_path):
    collect_table(QUICK, "dev", SHAPE, tmp_path, progress=False, ops=_ops()[:2])
    other = LatencyConfig(n_classes=12, calibration_models=0, timing=QUICK.timing)
    with pytest.raises(UserError, match=r"collected with other settings \(n_classes: table 10 vs now 12\)"):
        collect_table(other, "dev", SHAPE, tmp_path, progress=False, ops=_ops()[:2])


def test_torn_last_line_is_dropped_on_resume(tmp_path):
    ops = _ops()
    collect_table(QUICK, "dev", SHAPE, tmp_path, progress=False, ops=ops[:4])
    path = tmp_path / "dev.csv"
    with open(path, "a") as f:
        f.write("pw_8x10x26_16_relu,pw,0.01")  # a write cut short
    report = collect_table(QUICK, "dev", SHAPE, tmp_path, progress=False, ops=ops)
    keys = _keys(path)
    assert len(keys) == len(set(keys)) == len(set(ops)) and report.measured_now == len(set(ops)) - len(set(ops[:4]))


def test_sigkill_mid_collection_then_resume_never_remeasures(tmp_path):
    config = tmp_path / "lat.yaml"
    config.write_text(
        "features:\n  n_mels: 8\n  clip_seconds: 0.1\n"
        "latency:\n  max_minutes: 0.2\n  calibration_models: 0\n"
        "  timing:\n    sessions: 1\n    runs: 5\n    min_runs: 2\n    target_ms: 1\n"
    )
    tables = tmp_path / "tables"
    cmd = [
        sys.executable,
        str(REPO / "complete_pipeline.py"),
        "--mode",
        "latency-table",
        "--device-name",
        "dev",
        "--tables-dir",
        str(tables),
        "--config",
        str(config),
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    csv_path = tables / "dev.csv"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not csv_path.exists() or len(_keys(csv_path)) < 30):
        assert proc.poll() is None, proc.stdout.read().decode()
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _keys(csv_path)
    assert len(before) >= 30
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    after = _keys(csv_path)
    assert after[: len(before)] == before  # nothing measured before the kill was lost or rewritten
    assert len(after) == len(set(after)) > len(before)  # no op measured twice, and it went on
    assert "coverage" in done.stdout
