"""Which version of the tool made something: the installed version and the git commit of its source."""

from __future__ import annotations

import functools
import importlib.metadata
import subprocess
from pathlib import Path

TOOL = "edge-audio-nas"
SOURCE = Path(__file__).resolve().parents[1]  # the checkout holding the tool's packages


def tool_version() -> str | None:
    """The installed version of the tool (None when it is run from a checkout that is not installed)."""
    try:
        return importlib.metadata.version(TOOL)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit(folder: Path, tracked: str | None = None) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout holding ``folder``, ``(None, None)`` when it is not in one.

    Args:
        folder: Where to look.
        tracked: A file in ``folder`` that must be tracked by that checkout (a run folder inside an
            ignored ``runs/`` of the tool's repository is not versioned by it).
    """
    try:
        if tracked:
            subprocess.run(["git", "-C", str(folder), "ls-files", "--error-unmatch", tracked], capture_output=True,
                           timeout=10, check=True)  # fmt: skip
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()  # fmt: skip
        status = subprocess.run(["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None, None
    return head or None, bool(status.strip())


@functools.cache
def tool_source() -> dict[str, object]:
    """The tool's version, and the commit (and whether it had local changes) of the source it runs from."""
    commit, dirty = git_commit(SOURCE)
    return {"tool_version": tool_version(), "git_commit": commit, "git_dirty": dirty}
