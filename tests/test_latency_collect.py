"""Collecting tables: resumable (SIGKILL included), never re-measures, records failures, refuses mixed settings."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import latency_tables.collect as collect_module
from common.errors import UserError
from latency_tables.calibration import CalibrationPoint, measure_points
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
    created = json.loads((tmp_path / "dev.json").read_text())["created"]
    again = collect_table(QUICK, "dev", SHAPE, tmp_path, progress=False, ops=ops)
    assert again.measured_now == 0 and again.measured_before == len(set(ops))
    assert load_table(tmp_path / "dev.csv").fingerprint() == table.fingerprint()
    meta = json.loads((tmp_path / "dev.json").read_text())
    assert meta["units"] == "ms" and meta["input_shape"] == list(SHAPE) and meta["threads"] == 1
    assert meta["device"]["onnxruntime"] and meta["device"]["cpu_count"] >= 1 and "method" in meta
    assert meta["created"] == created


def test_each_op_reaches_the_file_as_it_finishes(tmp_path, monkeypatch):
    ops = _ops()[:4]
    rows_seen = []
    real_time_model = collect_module.time_model

    def spying_time_model(model, timing, optimization="all"):
        path = tmp_path / "dev.csv"
        rows_seen.append(len(_keys(path)) if path.exists() and path.stat().st_size else 0)
        return real_time_model(model, timing, optimization)

    monkeypatch.setattr(collect_module, "time_model", spying_time_model)
    collect_table(QUICK, "dev", SHAPE, tmp_path, progress=False, ops=ops)
    # references are timed before their op: the rows already written never lag more than the ops finished
    assert rows_seen[-1] == len(set(ops)) - 1 and sorted(rows_seen) == rows_seen


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


def _edit_meta(path: Path, **changes) -> None:
    meta = json.loads(path.read_text())
    for name, value in changes.items():
        *parents, last = name.split("__")
        node = meta
        for part in parents:
            node = node[part]
        node[last] = value
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("meta_change", "timing_change", "message"),
    [
        ({"device__cpu_model": "Other CPU"}, {}, r"device\.cpu_model: table Other CPU vs now "),
        ({"device__onnxruntime": "1.20.0"}, {}, r"device\.onnxruntime: table 1\.20\.0 vs now "),
        ({"channel_block": 999}, {}, r"channel_block: table 999 vs now "),
        ({}, {"sessions": 2}, r"timing\.sessions: table 1 vs now 2"),
        ({}, {"target_ms": 5.0}, r"timing\.target_ms: table 3 vs now 5\.0"),
        ({}, {"min_runs": 4}, r"timing\.min_runs: table 3 vs now 4"),
        ({}, {"runs": 20}, r"timing\.runs: table 10 vs now 20"),
        ({}, {"threads": 2}, r"threads: table 1 vs now 2, timing\.threads: table 1 vs now 2"),
    ],
    ids=["cpu", "onnxruntime", "channel-block", "sessions", "target-ms", "min-runs", "runs", "threads"],
)
def test_resume_on_another_machine_or_statistic_is_refused(tmp_path, meta_change, timing_change, message):
    collect_table(QUICK, "dev", SHAPE, tmp_path, progress=False, ops=_ops()[:2])
    _edit_meta(tmp_path / "dev.json", **meta_change)
    cfg = dataclasses.replace(QUICK, timing=dataclasses.replace(QUICK.timing, **timing_change))
    with pytest.raises(UserError, match=rf"collected with other settings \({message}"):
        collect_table(cfg, "dev", SHAPE, tmp_path, progress=False, ops=_ops()[:3])
    assert len(_keys(tmp_path / "dev.csv")) == 2  # nothing was added


def test_resume_with_other_warmup_is_allowed(tmp_path):
    collect_table(QUICK, "dev", SHAPE, tmp_path, progress=False, ops=_ops()[:2])
    cfg = dataclasses.replace(QUICK, timing=dataclasses.replace(QUICK.timing, warmup=3))
    assert collect_table(cfg, "dev", SHAPE, tmp_path, progress=False, ops=_ops()[:3]).measured_now == 1


class _Killed(BaseException):
    """Stands for a SIGKILL during the calibration."""


def _fake_calibration(monkeypatch, factor: float | None) -> None:
    """Calibration models measured as ``factor`` x their summed op timings (None: the run is killed there)."""
    specs = [
        SPACE.parse("c8k3s2-ds16k3s2-ir16k3s1e2se-c24k3s2-h0d0"),
        SPACE.parse("c8k3s2-ds16k3s2-ir16k3s1e2se-c64k3s2-h0d0"),  # interpolated, but predictable
    ]

    def measure_points(table, picked, timing, deadline=None):
        if factor is None:
            raise _Killed
        summed = [table.predict(s).summed_ms for s in picked]
        return [CalibrationPoint(str(s), ms, factor * ms) for s, ms in zip(picked, summed, strict=True)]

    monkeypatch.setattr(collect_module, "spread_by_latency", lambda table, k, seed: specs)
    monkeypatch.setattr(collect_module, "measure_points", measure_points)


def test_calibration_is_refitted_whenever_the_measured_ops_changed(tmp_path, monkeypatch):
    first, cfg, meta_path = _ops(), dataclasses.replace(QUICK, calibration_models=2), tmp_path / "dev.json"
    ops = first + _ops("c8k3s2-ds16k3s2-ir16k3s1e2se-c24k3s2-h32d0")  # one more op: a head with a hidden layer
    _fake_calibration(monkeypatch, 1.2)
    collect_table(cfg, "dev", SHAPE, tmp_path, progress=False, ops=first)
    cal = json.loads(meta_path.read_text())["calibration"]
    assert cal["scale"] == pytest.approx(1.2) and cal["fitted_on_ops"] == len(set(first))

    _fake_calibration(monkeypatch, None)  # measures the rest, then dies while calibrating
    with pytest.raises(_Killed):
        collect_table(cfg, "dev", SHAPE, tmp_path, progress=False, ops=ops)
    assert json.loads(meta_path.read_text())["calibration"]["fitted_on_ops"] == len(set(first))  # stale

    _fake_calibration(monkeypatch, 1.3)
    report = collect_table(cfg, "dev", SHAPE, tmp_path, progress=False, ops=ops)
    cal = json.loads(meta_path.read_text())["calibration"]
    assert report.measured_now == 0 and cal["scale"] == pytest.approx(1.3) and cal["fitted_on_ops"] == len(set(ops))
    fingerprint = load_table(tmp_path / "dev.csv").fingerprint()

    _fake_calibration(monkeypatch, None)  # a no-op re-run neither measures nor recalibrates
    report = collect_table(cfg, "dev", SHAPE, tmp_path, progress=False, ops=ops)
    assert report.measured_now == 0 and json.loads(meta_path.read_text())["calibration"] == cal
    assert load_table(tmp_path / "dev.csv").fingerprint() == fingerprint

    # a table from before fitted_on_ops: its last run's op count stands in
    _edit_meta(meta_path, calibration={k: v for k, v in cal.items() if k != "fitted_on_ops"})
    collect_table(cfg, "dev", SHAPE, tmp_path, progress=False, ops=ops)
    _edit_meta(meta_path, collection__measured=len(set(ops)) - 1)
    _fake_calibration(monkeypatch, 1.4)
    collect_table(cfg, "dev", SHAPE, tmp_path, progress=False, ops=ops)
    assert json.loads(meta_path.read_text())["calibration"]["scale"] == pytest.approx(1.4)


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
    # a longer budget for the resumed run: on a loaded machine 12 s may not reach a new op
    done = subprocess.run([*cmd, "--max-minutes", "0.3"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    after = _keys(csv_path)
    assert after[: len(before)] == before  # nothing measured before the kill was lost or rewritten
    assert len(set(after)) > len(set(before))  # it went on
    with open(csv_path) as f:
        timings: dict[str, set[str]] = {}
        for row in csv.DictReader(f):
            timings.setdefault(row["key"], set()).add(row["model_ms"])
    # no op measured twice: a key appears again only as a correction (same model timing, lower reference);
    # a reference at most twice (re-timed once when an op beat it)
    assert all(len(models) == 1 for key, models in timings.items() if not key.startswith("ref_"))
    assert all(len(models) <= 2 for key, models in timings.items() if key.startswith("ref_"))
    assert "coverage" in done.stdout


def test_a_reference_some_op_beat_is_timed_again_and_its_rows_corrected(tmp_path):
    """One slow measurement of an op's context alone must not skew (or floor) every op timed against it."""
    ops = _ops()
    collect_table(QUICK, "dev", SHAPE, tmp_path, progress=False, ops=ops)
    csv_path = tmp_path / "dev.csv"
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    refs = {r["key"]: float(r["model_ms"]) for r in rows if r["kind"] == "reference"}
    ref_key = max(refs, key=lambda k: sum(r["reference_key"] == k for r in rows))
    users = {r["key"]: r for r in rows if r["reference_key"] == ref_key}
    inflated = 10 * refs[ref_key]  # as if another process had run during the reference's timing
    for r in rows:  # the table as that collection would have written it
        if r["key"] == ref_key:
            r["latency_ms"] = r["model_ms"] = str(inflated)
        elif r["reference_key"] == ref_key:
            r["latency_ms"], r["reference_ms"] = "0.0001", str(inflated)
    seen: set[str] = set()
    first = [r for r in rows if not (r["kind"] == "reference" and r["key"] in seen) and not seen.add(r["key"])]
    with open(csv_path, "w", newline="") as f:  # one row per reference: none re-timed yet
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(first)

    report = collect_table(QUICK, "dev", SHAPE, tmp_path, progress=False, ops=ops)
    assert report.measured_now == 0 and ref_key in report.references_rechecked
    assert report.rows_corrected >= len(users)
    with open(csv_path) as f:
        new_ref = [float(r["model_ms"]) for r in csv.DictReader(f) if r["key"] == ref_key][-1]
    assert new_ref < inflated / 2
    table = load_table(csv_path)
    for key, r in users.items():
        assert table.latency_ms[key] == pytest.approx(max(float(r["model_ms"]) - new_ref, 1e-4), abs=2e-6)
    with open(csv_path) as f:  # the re-timing is recorded for later runs: a second row for the reference
        assert sum(r["key"] == ref_key for r in csv.DictReader(f)) == 2

    again = collect_table(QUICK, "dev", SHAPE, tmp_path, progress=False, ops=ops)  # once per reference, ever
    assert again.references_rechecked == [] and again.rows_corrected == 0
    assert load_table(csv_path).fingerprint() == table.fingerprint()


def test_a_reference_timed_slow_during_collection_is_caught_by_the_next_op(tmp_path, monkeypatch):
    """Fault injection: the first timing of every reference comes out 20x too slow."""
    real_prepare, real_time = collect_module.prepare, collect_module.time_model
    references: dict[bytes, int] = {}

    def prepare(op, with_reference=True):
        graphs = real_prepare(op, with_reference)
        references.setdefault(graphs.reference, 0)
        return graphs

    def time_model(model, timing, *args):
        result = real_time(model, timing, *args)
        if model in references and references[model] == 0:
            references[model] += 1
            slow = [20 * m for m in result.session_medians_ms]
            return dataclasses.replace(result, latency_ms=20 * result.latency_ms, session_medians_ms=slow)
        return result

    monkeypatch.setattr(collect_module, "prepare", prepare)
    monkeypatch.setattr(collect_module, "time_model", time_model)
    report = collect_table(QUICK, "dev", SHAPE, tmp_path, progress=False, ops=_ops())
    with open(tmp_path / "dev.csv") as f:
        rows = list(csv.DictReader(f))
    final = {r["key"]: r for r in rows}  # the last row per key wins
    refs = {k: float(r["model_ms"]) for k, r in final.items() if r["kind"] == "reference"}
    first = {}
    for r in rows:
        first.setdefault(r["key"], float(r["model_ms"]))
    assert sorted(report.references_rechecked) == sorted(refs)  # every op beat its 20x-slow context
    assert all(refs[k] < first[k] / 5 for k in refs)  # the slow timings were replaced
    for row in final.values():
        if row["reference_key"]:
            assert float(row["reference_ms"]) == pytest.approx(refs[row["reference_key"]], abs=1e-6)


def test_a_calibration_cut_short_by_the_budget_is_refitted_by_the_next_run(tmp_path, monkeypatch):
    cfg, meta_path = dataclasses.replace(QUICK, calibration_models=2), tmp_path / "dev.json"
    _fake_calibration(monkeypatch, 1.2)
    full = collect_module.measure_points
    deadlines = []

    def cut_short(table, picked, timing, deadline=None):
        deadlines.append(deadline)
        return full(table, picked, timing)[:1]  # the budget ran out after one model

    monkeypatch.setattr(collect_module, "measure_points", cut_short)
    collect_table(cfg, "dev", SHAPE, tmp_path, progress=False, ops=_ops())
    cal = json.loads(meta_path.read_text())["calibration"]
    assert deadlines and deadlines[0] is not None  # the calibration is bounded by the run's budget
    assert cal["n_models_asked"] == 2 and cal["n_models"] < 2
    _fake_calibration(monkeypatch, 1.2)
    collect_table(cfg, "dev", SHAPE, tmp_path, progress=False, ops=_ops())  # nothing new to measure
    cal = json.loads(meta_path.read_text())["calibration"]
    assert cal["n_models"] == 2 and cal["scale"] == pytest.approx(1.2)


def test_calibration_models_are_not_started_past_the_deadline(tmp_path):
    collect_table(QUICK, "dev", SHAPE, tmp_path, progress=False, ops=_ops())
    table = load_table(tmp_path / "dev.csv")
    specs = [SPACE.parse("c8k3s2-ds16k3s2-ir16k3s1e2se-c24k3s2-h0d0")]
    assert measure_points(table, specs, QUICK.timing, deadline=time.monotonic() - 1) == []
    assert len(measure_points(table, specs, QUICK.timing, deadline=time.monotonic() + 600)) == 1


def test_the_next_calibration_model_is_priced_by_its_latency():
    from latency_tables.calibration import _expected_s

    assert _expected_s([], 5.0) == 0.0  # nothing measured yet: the first model always runs
    assert _expected_s([(2.0, 1.0)], 0.5) == 2.0  # a faster model is not assumed cheaper
    assert _expected_s([(2.0, 1.0), (3.0, 2.0)], 4.0) == pytest.approx(8.0)  # 4 ms: the 1 ms model's 2 s, four times
