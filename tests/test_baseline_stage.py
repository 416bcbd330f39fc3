"""--mode baseline: trains, tests and tabulates; resumes without redoing finished runs; clear errors."""

from __future__ import annotations

import csv
import json

import pytest

from complete_pipeline import main


def test_baseline_run_writes_models_metrics_and_results(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "--mode",
        "baseline",
        "--models",
        "dscnn",
        "--epochs",
        "1",
        "--seeds",
        "2",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    with open(out / "baseline_results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == ["dscnn", "linear"] and rows[0]["seeds"] == "2"
    assert rows[0]["dataset"] == "synthetic" and [r["kind"] for r in rows] == ["baseline", "reference"]
    assert 0 <= float(rows[0]["test_accuracy_mean"]) <= 1 and float(rows[0]["params"]) > 0
    linear = rows[1]
    assert 0 <= float(linear["test_accuracy_mean"]) <= 1 and linear["seeds"] == "1" and "logistic" in linear["spec"]
    printed = capsys.readouterr().out
    assert "(linear reference)" in printed and "linear reference (" in printed  # its line, and the verdict
    assert json.loads((out / "models" / "linear" / "metrics.json").read_text())["c"] > 0
    metrics = json.loads((out / "models" / "dscnn" / "metrics.json").read_text())
    assert metrics["test"]["accuracy"]["n"] == 2 and len(metrics["runs"]) == 2
    assert "confusion_matrix" in metrics["runs"][0]["test"]
    for folder in (out / "models" / "dscnn", out / "models" / "dscnn" / "seed1"):
        assert (folder / "best.pt").is_file() and (folder / "run.json").is_file()
    first = (out / "models" / "dscnn" / "run.json").stat().st_mtime_ns
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 0
    assert (out / "models" / "dscnn" / "run.json").stat().st_mtime_ns == first  # finished runs are not redone


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--models", "huge"], "unknown baseline(s) huge; known baselines: tiny, small, medium, dscnn"),
        (["--epochs", "0"], "train.epochs must be >= 1, got 0"),
        (["--seeds", "0"], "baseline.seeds must be >= 1"),
    ],
)
def test_bad_baseline_arguments(cli_error, argv, message):
    assert message in cli_error(["--mode", "baseline", *argv])


def test_finished_run_with_other_settings_is_refused(tmp_path, capsys, cli_error):
    out = tmp_path / "run"
    argv = ["--mode", "baseline", "--models", "dscnn", "--epochs", "1", "--out", str(out), "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    msg = cli_error(["--mode", "baseline", "--models", "dscnn", "--epochs", "2", "--out", str(out)])
    assert "trained with other settings (train.epochs: 1 -> 2)" in msg
