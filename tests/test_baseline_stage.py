"""--mode baseline: trains, tests and tabulates; resumes without redoing finished runs; clear errors."""

from __future__ import annotations

import csv
import json

import pytest
from audio_trees import make_fsdd

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
    assert "1 epochs" in rows[0]["recipe"] and "label smoothing" in rows[0]["recipe"]  # the recipe, recorded
    assert not (out / "per_speaker_accuracy.csv").exists()  # the synthetic data has no speakers
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


def test_a_run_stored_before_memory_format_existed_reads_as_contiguous(tmp_path, capsys, cli_error):
    out = tmp_path / "run"
    argv = ["--mode", "baseline", "--models", "dscnn", "--epochs", "1", "--out", str(out), "--no-progress"]
    assert main(argv) == 0, capsys.readouterr().err
    done = out / "models" / "dscnn" / "run.json"
    record = json.loads(done.read_text())
    del record["settings"]["train"]["memory_format"]  # as written before the field existed
    done.write_text(json.dumps(record))
    msg = cli_error([*argv, "--resume"])
    assert "trained with other settings (train.memory_format: 'contiguous' -> 'channels_last')" in msg
    assert "restore those settings" in msg
    config = tmp_path / "old.yaml"
    config.write_text("train:\n  memory_format: contiguous\n")
    assert main([*argv, "--resume", "--config", str(config)]) == 0, capsys.readouterr().err


def test_per_speaker_accuracy_shows_each_test_speaker(tmp_path, capsys):
    """A dataset with speakers gets per_speaker_accuracy.csv: one row per model and test speaker."""
    root = make_fsdd(tmp_path / "fsdd", takes=12)
    out = tmp_path / "run"
    argv = ["--mode", "baseline", "--dataset", "fsdd", "--dataset-path", str(root), "--models", "dscnn",
            "--epochs", "1", "--out", str(out), "--no-progress", "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    with open(out / "per_speaker_accuracy.csv") as f:
        rows = list(csv.DictReader(f))
    with open(out / "data" / "clips.csv") as f:
        test = [r for r in csv.DictReader(f) if r["split"] == "test"]
    speakers = sorted({r["speaker"] for r in test})
    assert len(speakers) == 3  # FSDD's official test split holds takes 0-4 of every speaker
    for model in ("dscnn", "linear"):
        mine = [r for r in rows if r["model"] == model]
        assert [r["speaker"] for r in mine] == speakers
        assert sum(int(r["n_test_clips"]) for r in mine) == len(test)
        assert all(0 <= float(r["test_accuracy_mean"]) <= 1 for r in mine)
    printed = capsys.readouterr().out
    assert "dscnn: worst test speaker" in printed and "per_speaker_accuracy.csv" in printed
