"""The command line: the features mode end to end, and one clear line with exit code 2 for every bad input."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from audio_trees import make_folders, make_urbansound8k, write_wav

from complete_pipeline import main

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "complete_pipeline.py"), *args, "--no-progress"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )


def test_default_run_on_builtin_data_writes_run_folder(tmp_path):
    out = tmp_path / "run"
    cache = ["--cache-dir", str(tmp_path / "cache")]  # its own cache: the first run must extract
    proc = _run("--mode", "features", "--out", str(out), *cache)
    assert proc.returncode == 0, proc.stderr
    assert "[synthetic]" in proc.stdout and "cache written" in proc.stdout
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["dataset"] == "synthetic"
    summary = json.loads((out / "data" / "summary.json").read_text())
    assert summary["dataset"] == "synthetic" and len(summary["classes"]) >= 8
    assert sum(summary["split_sizes"].values()) == summary["n_files"] == 600
    again = _run("--mode", "features", "--out", str(out), *cache)
    assert again.returncode == 0 and "cache hit" in again.stdout


def test_fsdd_acceptance(tmp_path, fsdd_path):
    out = tmp_path / "r"
    assert (
        main(
            [
                "--mode",
                "features",
                "--dataset",
                "fsdd",
                "--dataset-path",
                str(fsdd_path),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    summary = json.loads((out / "data" / "summary.json").read_text())
    sizes = summary["split_sizes"]
    assert sizes["test"] == 300 and sizes["train"] + sizes["val"] == 2700
    assert summary["feature_shape"] == [40, 101]
    with open(out / "data" / "clips.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3000 and {r["split"] for r in rows} == {"train", "val", "test"}
    assert (
        main(
            [
                "--mode",
                "features",
                "--dataset",
                "fsdd",
                "--dataset-path",
                str(fsdd_path),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    assert json.loads((out / "data" / "summary.json").read_text())["cache_hit"] is True


def test_skipped_files_listed_and_run_continues(tmp_path, capsys):
    root = make_folders(tmp_path / "data", per_class=20)
    (root / "cat" / "zz_empty.wav").write_bytes(b"")
    write_wav(root / "dog" / "stereo_22k.wav", 500, sr=22050, channels=2)  # handled, not an error
    out = tmp_path / "run"
    code = main(
        ["--mode", "features", "--dataset-path", str(root), "--out", str(out), "--split", "stratified", "--no-progress"]
    )
    assert code == 0, capsys.readouterr().err
    with open(out / "skipped_files.csv") as f:
        rows = list(csv.DictReader(f))
    assert [Path(r["path"]).name for r in rows] == ["zz_empty.wav"] and "empty" in rows[0]["reason"]


def test_long_clips_cropped_to_clip_seconds_are_reported(tmp_path, capsys, caplog):
    root = tmp_path / "data"
    for cls in ("a", "b"):
        for k in range(10):
            write_wav(root / cls / f"{cls}{k}.wav", 300 + 40 * k + 200 * (cls == "b"), seconds=2.5 if k < 8 else 0.8)
    out = tmp_path / "run"
    argv = ["--mode", "features", "--dataset-path", str(root), "--out", str(out), "--split", "stratified"]
    assert main([*argv, "--no-progress", "--cache-dir", str(tmp_path / "cache")]) == 0, capsys.readouterr().err
    assert "16 of 20 clips are longer than features.clip_seconds=1 s (median 2.50 s, longest 2.50 s)" in caplog.text
    durations = json.loads((out / "data" / "summary.json").read_text())["durations"]
    assert durations == {"n_cropped": 16, "median_s": 2.5, "max_s": 2.5}


def test_missing_dataset_path(cli_error, tmp_path):
    assert "dataset path does not exist" in cli_error(["--dataset", "fsdd", "--dataset-path", str(tmp_path / "x")])


def test_real_dataset_without_path(cli_error):
    assert "needs --dataset-path" in cli_error(["--dataset", "esc50"])


def test_layout_matches_no_loader(cli_error, tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    msg = cli_error(["--dataset-path", str(tmp_path)])
    assert "no known dataset layout" in msg and "metadata/UrbanSound8K.csv" in msg


def test_unknown_dataset_name(cli_error):
    msg = cli_error(["--dataset", "librispeech"])
    assert "unknown dataset 'librispeech'" in msg and "urbansound8k" in msg


def test_metadata_missing_column(cli_error, tmp_path):
    make_urbansound8k(tmp_path, per_fold=1)
    meta = tmp_path / "metadata" / "UrbanSound8K.csv"
    meta.write_text(meta.read_text().replace("slice_file_name", "file"))
    assert "lacks required column(s) slice_file_name" in cli_error(["--dataset-path", str(tmp_path)])


def test_too_many_bad_files(cli_error, tmp_path):
    root = make_folders(tmp_path / "data", per_class=4)
    for k in range(3):
        (root / "cat" / f"bad{k}.wav").write_text("not audio")
    msg = cli_error(["--dataset-path", str(root), "--out", str(tmp_path / "run")])
    assert "3 of 15 audio files" in msg and "max_bad_fraction" in msg
    assert (tmp_path / "run" / "skipped_files.csv").read_text().count("not readable as audio") == 3


def test_config_unknown_key(cli_error, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[features]\nmels = 64\n")
    assert "unknown config key 'features.mels'" in cli_error(["--config", str(cfg)])


def test_speaker_split_without_speakers(cli_error, tmp_path):
    root = make_folders(tmp_path / "data")
    assert "needs speaker ids" in cli_error(["--dataset-path", str(root), "--split", "speaker"])


def test_reports_on_a_folder_without_a_run_names_what_is_expected(cli_error):
    assert "is not a run folder" in cli_error(["--mode", "reports"])


def test_full_refuses_a_bad_compare_before_training(cli_error, tmp_path):
    assert "--compare" in cli_error(["--mode", "full", "--compare", str(tmp_path / "missing")])


def test_subprocess_error_has_exit_code_2_and_no_traceback(tmp_path):
    proc = _run("--dataset", "fsdd", "--dataset-path", str(tmp_path / "missing"))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: dataset path does not exist")


def test_a_later_mode_in_the_same_run_folder_keeps_its_dataset(tmp_path, capsys):
    """``--mode X --out RUN`` after another mode wrote RUN starts from RUN's data and feature settings."""
    root = make_folders(tmp_path / "data", per_class=8)
    out = tmp_path / "run"
    config = tmp_path / "c.yaml"
    config.write_text("features:\n  n_mels: 16\n")
    first = ["--mode", "features", "--dataset-path", str(root), "--split", "stratified", "--config", str(config)]
    assert main([*first, "--out", str(out), "--no-progress"]) == 0, capsys.readouterr().err
    before = json.loads((out / "config.json").read_text())
    assert main(["--mode", "features", "--out", str(out), "--no-progress"]) == 0, capsys.readouterr().err
    after = json.loads((out / "config.json").read_text())
    assert after["data"] == before["data"] and after["features"] == before["features"]
    assert json.loads((out / "data" / "summary.json").read_text())["cache_hit"] is True
