"""Crash-safe writes: whole files via temp file + ``os.replace``, journals via append + fsync."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _default_mode() -> int:
    """Permissions a plain ``open(path, "w")`` would give (0o666 minus the umask)."""
    return 0o666 & ~_umask()


_FILE_MODE = _default_mode()
_FOLDER_MODE = 0o777 & ~_umask()  # what a plain os.mkdir gives: 0o777 minus the umask


def make_temp_folder(parent: str | os.PathLike, prefix: str) -> Path:
    """A new uniquely named folder in ``parent`` with the permissions a plain ``mkdir`` would give.

    ``tempfile.mkdtemp`` makes 0700 folders; a build folder renamed into a shared cache must be
    as readable by the group and others as every other output (the umask decides).
    """
    folder = tempfile.mkdtemp(dir=parent, prefix=prefix)
    os.chmod(folder, _FOLDER_MODE)
    return Path(folder)


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's or a folder's entries to disk (a folder: so that renames into it survive a crash)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old or the new file, never half.

    Args:
        path: Destination file; its parent folder is created if missing.
        data: The complete new contents.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600 files; readers expect normal permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write UTF-8 text (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    """Atomically write ``obj`` as JSON with sorted keys (stable diffs, stable hashes)."""
    atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=True, default=str) + "\n")


def append_jsonl(path: str | os.PathLike, records: Iterable[dict[str, Any]]) -> None:
    """Append records as JSON lines and fsync, so a completed record survives a SIGKILL.

    Each record is written with a single ``write`` call of a complete line. A crash can leave at
    most one partial last line, which :func:`read_jsonl` reports and skips.

    Args:
        path: The journal file (created if missing).
        records: Dictionaries to append, one line each.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in records)
    if not payload:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())


def append_csv_rows(path: str | os.PathLike, header: list[str], rows: Iterable[Iterable[Any]]) -> None:
    """Append rows to a CSV journal (writing the header first if the file is new) and fsync.

    Like :func:`append_jsonl`, each call writes whole lines in one ``write``; a crash leaves at
    most a torn last line, which readers must tolerate.
    """
    import csv
    import io

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if not path.exists() or path.stat().st_size == 0:
        writer.writerow(header)
    writer.writerows(rows)
    if not buf.getvalue():
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(buf.getvalue())
        f.flush()
        os.fsync(f.fileno())


def cut_torn_tail(path: str | os.PathLike) -> bytes:
    """Cut a last line that lacks its newline (a write cut short) off an append-only text journal.

    Returns:
        The bytes removed (empty when the file was intact or missing).
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return b""
    with open(path, "rb+") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 1))
        if f.read(1) == b"\n":
            return b""
        f.seek(0)
        data = f.read()
        keep = data.rfind(b"\n") + 1
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
        return data[keep:]


def read_jsonl(path: str | os.PathLike) -> tuple[list[dict[str, Any]], list[int]]:
    """Read a JSON-lines journal, tolerating a torn or corrupt line.

    Args:
        path: The journal file; a missing file reads as empty.

    Returns:
        The parsed records, and the 1-based numbers of lines that could not be parsed
        (typically a last line cut short by a crash).
    """
    path = Path(path)
    records: list[dict[str, Any]] = []
    bad: list[int] = []
    if not path.exists():
        return records, bad
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                bad.append(number)
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                bad.append(number)
    return records, bad
