"""A run folder's results stay with their data and settings: refused commands change no file, --resume always continues."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from audio_trees import make_folders

from complete_pipeline import main

REPO = Path(__file__).resolve().parents[1]
SEARCH = ["--nas-population", "4", "--nas-generations", "1", "--proxy-epochs", "1", "--backend", "inline",
          "--jobs", "1", "--no-progress"]  # fmt: skip


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A finished tiny search on a folder dataset: (data root, run folder, cache folder)."""
    base = tmp_path_factory.mktemp("integrity")
    root = make_folders(base / "data", per_class=8)
    run, cache = base / "run", base / "cache"
    argv = ["--mode", "nas", "--dataset-path", str(root), "--split", "stratified", "--out", str(run),
            "--cache-dir", str(cache), *SEARCH]  # fmt: skip
    assert main(argv) == 0
    return root, run, cache


def test_features_with_other_settings_into_a_search_folder_are_refused_and_change_nothing(searched, cli_error,
                                                                                          tmp_path):  # fmt: skip
    root, run, cache = searched
    before = _hashes(run)
    config = tmp_path / "c.yaml"
    config.write_text("features:\n  n_mels: 16\n")
    msg = cli_error(["--mode", "features", "--out", str(run), "--cache-dir", str(cache), "--config", str(config)])
    assert "holds results made from other data" in msg and "nothing was changed" in msg
    assert _hashes(run) == before


def test_a_refused_resume_with_another_split_changes_nothing(searched, cli_error, tmp_path):
    root, run, cache = searched
    before = _hashes(run)
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  val_fraction: 0.3\n")
    msg = cli_error(["--mode", "nas", "--out", str(run), "--cache-dir", str(cache), "--config", str(config),
                     "--resume", *SEARCH])  # fmt: skip
    assert "other data" in msg
    assert _hashes(run) == before


def test_a_resume_with_fewer_generations_is_refused_and_rewrites_nothing(searched, cli_error):
    root, run, cache = searched
    before = _hashes(run)
    fewer = [*SEARCH]
    fewer[fewer.index("--nas-generations") + 1] = "0"
    msg = cli_error(["--mode", "nas", "--out", str(run), "--cache-dir", str(cache), "--resume", *fewer])
    assert "has run generations 0..1, more than the 0 asked for" in msg and "nothing was run or rewritten" in msg
    assert _hashes(run) == before


def test_features_with_the_same_data_keep_the_search_settings_in_config_json(searched, capsys):
    root, run, cache = searched
    recorded = json.loads((run / "config.json").read_text())
    assert main(["--mode", "features", "--out", str(run), "--cache-dir", str(cache), "--no-progress"]) == 0
    after = json.loads((run / "config.json").read_text())
    assert after["nas"] == recorded["nas"] and after["data"] == recorded["data"]
    assert after["nas"]["population"] == 4  # not reset to the default by a mode that does not search


def test_resume_after_a_kill_during_feature_extraction_starts_the_search(tmp_path):
    """The README's promise: killed at any moment, the same command with --resume continues."""
    root = make_folders(tmp_path / "data", classes=tuple(f"c{i}" for i in range(6)), per_class=40)
    run = tmp_path / "run"
    argv = [sys.executable, str(REPO / "complete_pipeline.py"), "--mode", "nas", "--dataset-path", str(root),
            "--split", "stratified", "--out", str(run), "--cache-dir", str(tmp_path / "cache"),
            *[a for a in SEARCH if a != "--no-progress"]]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the first progress line: extraction has begun
        line = proc.stderr.readline()
        if line.startswith("features (folders):") or not line:
            break
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (run / "nas" / "journal.jsonl").exists(), "killed too late: the search had started"
    resumed = subprocess.run([*argv, "--resume"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "holds no search yet" in resumed.stdout or "nothing to continue yet" in resumed.stdout
    assert (run / "nas" / "pareto.csv").is_file()


def test_resume_into_a_missing_folder_starts_the_run(tmp_path, capsys):
    root = make_folders(tmp_path / "data", per_class=4)
    run = tmp_path / "never-started"
    argv = ["--mode", "features", "--dataset-path", str(root), "--split", "stratified", "--out", str(run),
            "--cache-dir", str(tmp_path / "cache"), "--resume", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    assert "nothing to continue yet" in capsys.readouterr().out
    assert (run / "data" / "summary.json").is_file()
