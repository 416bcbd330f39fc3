"""``<run>/stages.jsonl``: when each stage of a run started and ended, appended and fsynced as it happens.

One JSON line per event: ``{"mode", "event": "start"|"end"|"failed", "time" (UTC ISO 8601),
"config_hash", "resume", "tool" (version and git commit, on start), "wall_s" (end/failed), "reason"
(failed), "note" (end, when the stage stopped short: a search stopped by its time budget)}``.
``--mode full`` reads it to skip stages that already finished with the same config; the reports
read it for start/end times and wall time per stage. Append-only: nothing earlier is ever rewritten.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from common.atomic import append_jsonl, cut_torn_tail, read_jsonl
from common.hashing import stable_hash
from common.version import tool_source

LOG_NAME = "stages.jsonl"


RESULT_FREE = {"run": ("progress", "jobs")}  # settings that change no result (display, worker count)


def config_hash(config: dict[str, Any]) -> str:
    """A short stable hash of a resolved config (``config.json`` content), display and worker count aside."""
    trimmed = {
        section: ({k: v for k, v in values.items() if k not in RESULT_FREE.get(section, ())}
                  if isinstance(values, dict) else values)
        for section, values in config.items()
    }  # fmt: skip
    return stable_hash(trimmed, length=16)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class StageRecord:
    """What the log says of one stage: its last start and whether that start ended."""

    mode: str
    started: str | None = None
    ended: str | None = None
    wall_s: float | None = None
    config_hash: str | None = None
    failed: str | None = None
    tool: dict[str, Any] | None = None  # version and git commit of the tool that ran it

    @property
    def finished(self) -> bool:
        """Whether the last start of the stage ended successfully."""
        return self.ended is not None and self.failed is None


class StageLog:
    """The stage log of one run folder."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOG_NAME

    def _append(self, record: dict[str, Any]) -> None:
        cut_torn_tail(self.path)  # a kill mid-write leaves a partial line; the next record starts clean
        append_jsonl(self.path, [record])

    def start(self, mode: str, config: dict[str, Any], resume: bool) -> float:
        """Record a stage's start; returns the monotonic start time for :meth:`end`."""
        self._append({"mode": mode, "event": "start", "time": _now(), "config_hash": config_hash(config),
                      "resume": resume, "tool": tool_source()})  # fmt: skip
        return time.monotonic()

    def end(self, mode: str, config: dict[str, Any], started: float, note: str | None = None) -> None:
        """Record that a stage finished (``note``: how, when it stopped short, e.g. at its time budget)."""
        record = {"mode": mode, "event": "end", "time": _now(), "config_hash": config_hash(config),
                  "wall_s": round(time.monotonic() - started, 2)}  # fmt: skip
        if note:
            record["note"] = note
        self._append(record)

    def failed(self, mode: str, started: float, reason: str) -> None:
        """Record that a stage stopped with an error (a kill leaves a start without an end)."""
        self._append({"mode": mode, "event": "failed", "time": _now(), "wall_s": round(time.monotonic() - started, 2),
                      "reason": reason[:300]})  # fmt: skip

    def events(self) -> list[dict[str, Any]]:
        """Every event, oldest first (a torn last line, from a kill mid-write, is left out)."""
        if not self.path.is_file():
            return []
        records, _ = read_jsonl(self.path)
        return records

    def records(self) -> dict[str, StageRecord]:
        """Per mode, its last start and how that start ended."""
        out: dict[str, StageRecord] = {}
        for event in self.events():
            mode = event.get("mode")
            if not isinstance(mode, str):
                continue
            if event.get("event") == "start":
                out[mode] = StageRecord(mode, started=event.get("time"), config_hash=event.get("config_hash"),
                                        tool=event.get("tool"))  # fmt: skip
            elif mode in out and event.get("event") == "end":
                out[mode].ended, out[mode].wall_s = event.get("time"), event.get("wall_s")
            elif mode in out and event.get("event") == "failed":
                out[mode].ended, out[mode].wall_s = event.get("time"), event.get("wall_s")
                out[mode].failed = event.get("reason") or "failed"
        return out
