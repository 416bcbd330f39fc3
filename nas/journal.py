"""The evaluation journal: every finished evaluation, appended and fsynced as it arrives.

``<run_dir>/nas/journal.jsonl`` holds one :class:`~nas.records.EvalRecord` per line (format in
:mod:`nas.records`), at most one line per key, in arrival order. It is the search's cache: a
key found in it is never evaluated again, which is what makes a killed run cheap to resume.

Damage is repaired, never fatal. A last line cut short by a crash (no trailing newline) is
moved to ``journal.dropped.txt`` and cut off, so the next append starts on a fresh line. Other
unreadable lines stay in place and are skipped; their candidates are simply evaluated again.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from common.atomic import append_jsonl, read_jsonl
from nas.records import EvalRecord

log = logging.getLogger(__name__)


class Journal:
    """Append-only JSONL store of final evaluation results, keyed by candidate key."""

    def __init__(self, path: Path) -> None:
        """Bind to ``path`` (``<run_dir>/nas/journal.jsonl``); nothing is read or written yet."""
        self.path = Path(path)
        self.dropped_path = self.path.with_name("journal.dropped.txt")

    def exists(self) -> bool:
        """Whether the journal file is present."""
        return self.path.exists()

    def load(self) -> tuple[dict[str, EvalRecord], list[str]]:
        """Read every record, repairing a torn last line first.

        Returns:
            Records by key (the first line of a key wins) and human-readable notes on what was
            dropped or skipped (empty when the journal is intact).
        """
        notes = self._repair_tail()
        lines, bad = read_jsonl(self.path)
        if bad:
            notes.append(f"journal {self.path}: skipped unreadable line(s) {_span(bad)}; those candidates are re-run")
        records: dict[str, EvalRecord] = {}
        invalid = duplicates = 0
        for data in lines:
            try:
                record = EvalRecord.from_json(data)
            except ValueError:
                invalid += 1
                continue
            if record.key in records:
                duplicates += 1
            else:
                records[record.key] = record
        if invalid:
            notes.append(f"journal {self.path}: skipped {invalid} line(s) that are not evaluation records")
        if duplicates:
            notes.append(f"journal {self.path}: ignored {duplicates} repeated key(s) (the first result is kept)")
        return records, notes

    def read(self) -> list[EvalRecord]:
        """All readable records in file order, without repairing anything (for reports and tests)."""
        records = []
        for data in read_jsonl(self.path)[0]:
            try:
                records.append(EvalRecord.from_json(data))
            except ValueError:
                continue
        return records

    def append(self, record: EvalRecord) -> None:
        """Append one record as a single line, flushed and fsynced before returning."""
        append_jsonl(self.path, [record.to_json()])

    def _repair_tail(self) -> list[str]:
        """Fix a last line without newline: complete it if it is a whole record, else cut it and keep it aside."""
        if not self.path.exists():
            return []
        with open(self.path, "rb+") as f:
            data = f.read()
            if not data or data.endswith(b"\n"):
                return []
            cut = data.rfind(b"\n") + 1
            tail = data[cut:]
            if _is_record(tail):  # only the newline was lost
                f.write(b"\n")
            else:
                with open(self.dropped_path, "ab") as side:
                    side.write(tail + b"\n")
                    side.flush()
                    os.fsync(side.fileno())
                f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())
        if _is_record(tail):
            return []
        note = (
            f"journal {self.path}: dropped a torn last line ({len(tail)} bytes, kept in {self.dropped_path.name}); "
            "that candidate is re-run"
        )
        log.warning(note)
        return [note]


def _is_record(line: bytes) -> bool:
    try:
        EvalRecord.from_json(json.loads(line))
    except (ValueError, TypeError, AttributeError):
        return False
    return True


def _span(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:10])
    return shown + (f" and {len(numbers) - 10} more" if len(numbers) > 10 else "")
