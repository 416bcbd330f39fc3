"""Killing a real process with SIGKILL once it has written enough (resume tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def line_count(path: Path) -> int:
    """Newline-terminated lines in ``path`` (0 while it does not exist)."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def kill_when_lines(proc: subprocess.Popen, path: Path, lines: int, timeout_s: float = 60.0) -> None:
    """SIGKILL ``proc`` as soon as ``path`` holds ``lines`` lines; fails if it finished first."""
    deadline = time.monotonic() + timeout_s
    while line_count(path) < lines and time.monotonic() < deadline:
        assert proc.poll() is None, "the process finished before it could be killed"
        time.sleep(0.002)
    assert proc.poll() is None, "the process finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
