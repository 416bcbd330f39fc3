"""Cleaning up the ``.tmp-*`` build folders that a killed process leaves behind.

The feature cache and the synthetic dataset are built in a temporary folder next to their final
place and renamed into place when complete, so a reader never sees half a build. A process killed
with SIGKILL cannot remove its folder; the next run removes it here, but only once nothing in it
has changed for :data:`STALE_AFTER_S`, since another process may still be writing a younger one.
Long writers refresh their folder's modification time as they go (:func:`touch`), so a build that
is still running never looks stale however long it takes.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

TMP_PREFIX = ".tmp-"
STALE_AFTER_S = 3600.0  # an hour without any change


def last_change(folder: Path) -> float:
    """Newest modification time (epoch seconds) of ``folder`` and everything below it."""
    newest = folder.stat().st_mtime
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in (*dirnames, *filenames):
            try:
                newest = max(newest, os.stat(os.path.join(dirpath, name), follow_symlinks=False).st_mtime)
            except OSError:  # removed meanwhile
                continue
    return newest


def remove_stale_tmp_dirs(
    parent: Path, prefix: str = TMP_PREFIX, max_age_s: float = STALE_AFTER_S, now: float | None = None
) -> list[Path]:
    """Remove the ``prefix*`` folders directly in ``parent`` in which nothing changed for ``max_age_s``.

    Younger ones are left alone: another process may be writing them. Errors are ignored (a
    concurrent run may be removing the same folder); a missing ``parent`` is not an error.

    Args:
        parent: The folder whose temporary children are checked.
        prefix: Name prefix of the temporary folders.
        max_age_s: Age, since the newest change anywhere inside, above which a folder is stale.
        now: The current time (epoch seconds); defaults to ``time.time()``.

    Returns:
        The folders removed.
    """
    now = time.time() if now is None else now
    removed = []
    try:
        candidates = [p for p in Path(parent).iterdir() if p.name.startswith(prefix) and p.is_dir()]
    except OSError:
        return []
    for folder in candidates:
        try:
            stale = now - last_change(folder) > max_age_s
        except OSError:  # removed meanwhile
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def touch(folder: Path) -> None:
    """Mark ``folder`` as being written now (its modification time), so no other run deems it stale."""
    os.utime(folder)
