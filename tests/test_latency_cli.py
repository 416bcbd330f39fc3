"""Latency modes on the command line: validation end to end, and one clear line for every bad input."""

from __future__ import annotations

import json
import math

from latency_fixtures import latencies_for, write_table

from latency_tables.collect import collect_table
from latency_tables.config import LatencyConfig
from latency_tables.keys import spec_ops
from latency_tables.ort_timing import TimingConfig
from latency_tables.table import load_table
from latency_tables.validate import validate_table, write_validation
from search_spaces import create_search_space

SPACE = create_search_space("mel2d")
SHAPE = (1, 40, 101)
SPECS = [
    "c8k3s2-ds16k3s2-ir16k3s1e2se-c24k3s2-h0d0",
    "c16k3s2-c32k3s2r2-ds64k3s2-c32k3s1-h32d10",
    "c12k5s2-ir24k3s2e4-ds48k5s2-c48k3s1-h0d0",
]
TIMING = TimingConfig(sessions=1, runs=20, min_runs=5, target_ms=5)


def test_validation_end_to_end_on_a_collected_table(tmp_path):
    specs = [SPACE.parse(s) for s in SPECS]
    ops = [op for s in specs for op in spec_ops(SPACE, s, 10, SHAPE)]
    collect_table(LatencyConfig(calibration_models=0, timing=TIMING), "dev", SHAPE, tmp_path, progress=False, ops=ops)
    report = validate_table(load_table(tmp_path / "dev.csv"), 3, 0, TIMING, progress=False, specs=specs)
    assert report.prediction.n == 3 and report.noise_floor.n == 3
    assert (report.frame["interpolated_share"] == 0).all()
    # no bound on the error here: a timing assertion fails on a loaded machine (the benchmark and
    # --mode validate-latency report the real figures beside the noise floor)
    assert math.isfinite(report.prediction.mape_pct) and math.isfinite(report.noise_floor.mape_pct)
    write_validation(report, tmp_path / "out", "dev")
    summary = json.loads((tmp_path / "out" / "latency_validation.json").read_text())
    assert {"prediction", "noise_floor", "predict_ms_per_spec", "measure_ms_per_spec"} <= set(summary)
    assert (tmp_path / "out" / "latency_validation.png").stat().st_size > 1000


def test_unknown_device(cli_error, tmp_path):
    msg = cli_error(["--mode", "validate-latency", "--device-name", "no-such-pi", "--out", str(tmp_path)])
    assert "unknown device 'no-such-pi'; known devices:" in msg and "--mode latency-table" in msg


def test_collection_needs_a_device_name(cli_error, tmp_path):
    assert "needs --device-name" in cli_error(["--mode", "latency-table", "--out", str(tmp_path)])


def test_invalid_device_name(cli_error, tmp_path):
    assert "latency.device must be a file-name-safe name" in cli_error(
        ["--mode", "latency-table", "--device-name", "my pi/4", "--out", str(tmp_path)]
    )


def test_table_of_another_input_shape_is_refused(cli_error, tmp_path):
    ops = spec_ops(SPACE, SPACE.parse(SPECS[0]), 10, SHAPE)
    write_table(tmp_path / "tables", "dev", latencies_for(ops))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("features:\n  n_mels: 64\n")
    msg = cli_error(
        [
            "--mode",
            "validate-latency",
            "--device-name",
            "dev",
            "--tables-dir",
            str(tmp_path / "tables"),
            "--config",
            str(cfg),
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert "input shape (1, 40, 101); this run needs space 'mel2d' with input shape (1, 64, 101)" in msg


def test_table_with_wrong_columns_is_refused(cli_error, tmp_path):
    folder = tmp_path / "tables"
    write_table(folder, "dev", {"stem_1x40x101_8_k3x3_s2_relu": 0.01})
    (folder / "dev.csv").write_text("key,ms\nstem_1x40x101_8_k3x3_s2_relu,0.01\n")
    msg = cli_error(
        [
            "--mode",
            "validate-latency",
            "--device-name",
            "dev",
            "--tables-dir",
            str(folder),
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert "lacks column(s) kind, latency_ms" in msg
