"""Console output through a pipe (a CI log, nohup, tee): whole progress lines, no raw Python warnings."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from audio_trees import make_folders

from common.progress import LineProgress, progress

REPO = Path(__file__).resolve().parents[1]
RAW_WARNING = re.compile(r"\w+Warning: |warnings\.warn\(")


def test_a_search_through_a_pipe_prints_whole_lines_and_no_raw_warning(tmp_path):
    root = make_folders(tmp_path / "data", per_class=8)
    proc = subprocess.run(
        [sys.executable, str(REPO / "complete_pipeline.py"), "--mode", "nas", "--dataset-path", str(root),
         "--split", "stratified", "--nas-population", "4", "--nas-generations", "1", "--proxy-epochs", "1",
         "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    both = proc.stdout + proc.stderr
    assert "\r" not in both, "a progress bar redrew itself with carriage returns in a log"
    assert not RAW_WARNING.search(both), both
    progress_lines = [line for line in proc.stderr.splitlines() if line.startswith(("features (folders):", "nas:"))]
    assert any("24/24 file (100%)" in line for line in progress_lines), proc.stderr
    assert any(line.startswith("nas: 2/2 gen (100%)") for line in progress_lines), proc.stderr
    assert len(progress_lines) <= 2 * 11, "more than one line per 10% step"
    # the first-run summary says what the columns are and what to run next
    assert "accuracy: proxy validation accuracy" in proc.stdout
    assert f"--mode quantization --out {tmp_path / 'run'}" in proc.stdout


def test_line_progress_prints_one_line_per_step_and_the_end(tmp_path):
    out = tmp_path / "log.txt"
    with out.open("w") as log:
        with progress(total=50, desc="work", unit="op", file=log, step_pct=25) as bar:
            for _ in range(49):
                bar.update(1)
        assert isinstance(bar, LineProgress)  # a file is not a terminal
        stopped = progress(total=10, desc="stopped", unit="op", file=log)
        stopped.update(3)
        stopped.close()
        quiet = progress(total=10, desc="quiet", unit="op", file=log, disable=True)
        quiet.update(10)
        quiet.close()
    lines = out.read_text().splitlines()
    work = [line for line in lines if line.startswith("work:")]
    assert [line.split()[1] for line in work] == ["0/50", "13/50", "25/50", "38/50", "49/50"]
    assert [line.split()[1] for line in lines if line.startswith("stopped:")] == ["0/10", "3/10"]
    assert not any(line.startswith("quiet") for line in lines)
    assert "\r" not in out.read_text()
