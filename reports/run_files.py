"""Tolerant readers for the files of a run folder: a missing or damaged file is a note, never a crash.

A run folder may be mid-write (a search still running), cut short by a kill, or copied from
another machine. Every reader returns ``None`` for a file that is absent, empty or unreadable,
and appends a one-line note saying what was wrong with a file that exists but cannot be used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from common.atomic import read_jsonl


def read_json(path: Path, notes: list[str]) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None (with a note when the file exists but is unusable)."""
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        notes.append(f"{_rel(path)} is unreadable ({type(exc).__name__}): left out")
        return None
    if not isinstance(data, dict):
        notes.append(f"{_rel(path)} does not hold a JSON object: left out")
        return None
    return data


def read_csv(path: Path, notes: list[str]) -> pd.DataFrame | None:
    """The table in ``path`` (empty cells as NaN), or None when absent, empty or unparsable."""
    if not path.is_file():
        return None
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        notes.append(f"{_rel(path)} is empty: left out")
        return None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        notes.append(f"{_rel(path)} is unreadable ({type(exc).__name__}): left out")
        return None
    if frame.empty:
        notes.append(f"{_rel(path)} has a header but no rows")
    return frame


def jsonl_damage(path: Path) -> list[int]:
    """1-based numbers of the lines of a JSON-lines file that do not parse (a torn last line, typically)."""
    return read_jsonl(path)[1] if path.is_file() else []


def _rel(path: Path) -> str:
    """``<folder>/<file>`` relative to the run folder, for notes that read the same on any machine."""
    parts = path.parts
    return "/".join(parts[-2:]) if len(parts) >= 2 else str(path)
