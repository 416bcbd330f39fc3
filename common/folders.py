"""Checking, once at the start of a run, that a folder the run writes into can be written.

A run folder, a cache or a tables folder that cannot be written would otherwise fail deep
inside a stage with a ``PermissionError`` or ``FileExistsError`` traceback, possibly after
minutes of work. :func:`check_writable_folder` finds that out first, without leaving anything
behind, and names the folder and the flag that moves it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from common.errors import UserError


def nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (the folder a missing ``path`` would be created in)."""
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable_folder(path: str | os.PathLike, flag: str, what: str) -> None:
    """Refuse a folder that cannot be created or written, before anything is written.

    The test is real (a probe folder is made and removed at once), so it also holds for root, for
    whom permission bits do not count, and for read-only file systems. Nothing is created when
    ``path`` is missing: its nearest existing ancestor is probed instead.

    Args:
        path: The folder (it need not exist yet).
        flag: The option that moves it, e.g. ``"--out"``, for the message.
        what: What the folder holds, e.g. ``"run folder"``, for the message.

    Raises:
        UserError: ``path`` (or an ancestor) is a file, or the folder cannot be written.
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not a folder; {flag} names the {what}: give a folder path "
                        "(a missing folder is created)")  # fmt: skip
    existing = nearest_existing(path)
    if not existing.is_dir():
        raise UserError(f"{flag} {path}: the {what} cannot be created because {existing} is a file, not a folder; "
                        f"give {flag} a path inside a folder you can write")  # fmt: skip
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=existing))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        where = "" if existing == Path(os.path.abspath(path)) else f" (its nearest existing folder {existing})"
        raise UserError(
            f"the {what} {path} is not writable{where}: {reason}; give {flag} a folder you can write"
        ) from None
