"""The search's files inside a run folder, the lock that keeps one process per folder, and start checks."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import UserError
from nas.checkpoint import changed_fields, read_settings, upgrade_settings

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory lock
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True)
class SearchPaths:
    """Paths under ``<run_dir>/nas/``."""

    run_dir: Path

    @property
    def folder(self) -> Path:
        """``<run_dir>/nas``."""
        return self.run_dir / "nas"

    @property
    def journal(self) -> Path:
        """One line per finished evaluation."""
        return self.folder / "journal.jsonl"

    def rung_journal(self, rung: int) -> Path:
        """The journal of lower-fidelity results at ``rung`` (multi-fidelity search): ``nas/rung<k>.jsonl``."""
        return self.folder / f"rung{rung}.jsonl"

    @property
    def prechecks(self) -> Path:
        """The precheck's answers by key (:mod:`nas.precheck_memo`): ``nas/prechecks.jsonl``."""
        return self.folder / "prechecks.jsonl"

    @property
    def checkpoint(self) -> Path:
        """State at the last generation boundary."""
        return self.folder / "checkpoint.json"

    @property
    def settings(self) -> Path:
        """Search-relevant settings, written when the run starts."""
        return self.folder / "search.json"

    @property
    def history(self) -> Path:
        """Per-generation history."""
        return self.folder / "history.csv"

    @property
    def pareto(self) -> Path:
        """The feasible Pareto set."""
        return self.folder / "pareto.csv"

    @property
    def lock(self) -> Path:
        """Held (``flock``) by the process running the search."""
        return self.folder / "lock"

    def has_search(self) -> bool:
        """Whether a search was started here."""
        return self.settings.exists() or self.journal.exists() or self.checkpoint.exists()


def check_start(paths: SearchPaths, settings: dict[str, Any], resume: bool) -> list[str]:
    """Refuse what cannot work before touching anything.

    Returns:
        Notes (e.g. ``search.json`` unreadable so the settings could not be compared).

    Raises:
        UserError: Resume without a search in the folder; a new search in a folder that has one;
            a resume whose search-relevant settings changed (the message names the fields).
    """
    if not resume:
        if paths.has_search():
            raise UserError(
                f"{paths.folder} already holds a search; resume it (--resume) or choose another run folder (--out)"
            )
        return []
    if not paths.run_dir.is_dir():
        raise UserError(f"--resume: run folder {paths.run_dir} does not exist; start a new search without --resume")
    if not paths.has_search():
        raise UserError(
            f"--resume: no search to resume in {paths.run_dir} (expected {paths.settings.name} or "
            f"{paths.journal.name} in {paths.folder}); start a new search without --resume"
        )
    notes: list[str] = []
    stored, source = read_settings(paths.settings), paths.settings
    if stored is None:
        # The journal's feasibility and violations were computed under the stored settings: without
        # them, reusing its results could silently mix two searches.
        stored, source = read_settings(paths.checkpoint), paths.checkpoint
        if stored is None and not _has_records(paths.journal):
            return [f"{paths.settings} is missing or unreadable and nothing was journaled yet: starting over"]
        if stored is None:
            raise UserError(
                f"cannot resume: {paths.settings.name} and {paths.checkpoint.name} in {paths.folder} are both missing "
                f"or unreadable, so the journal's results cannot be checked against the current settings; restore "
                f"one of them, or start a new run folder (the journal is kept)"
            )
        notes.append(f"{paths.settings} is missing or unreadable: settings checked against {paths.checkpoint.name}")
    changed = changed_fields(upgrade_settings(stored, settings), settings)
    if changed:
        raise UserError(
            "cannot resume: search-relevant settings changed since the run started: "
            + "; ".join(changed)
            + f". Restore them, or start a new run folder (the original settings are in {source})"
        )
    return notes


def _has_records(journal: Path) -> bool:
    """Whether the journal holds a complete line (a torn last line alone is no record)."""
    try:
        data = journal.read_bytes()
    except FileNotFoundError:
        return False
    return any(line.strip() for line in data.split(b"\n")[:-1])


@contextlib.contextmanager
def folder_lock(paths: SearchPaths) -> Iterator[None]:
    """Hold an exclusive lock on the run's search files (released by the OS if the process dies).

    Once held, leftover temp files of interrupted atomic writes are removed.

    Raises:
        UserError: Another process holds it.
    """
    paths.folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserError(
                    f"another process is running the search in {paths.run_dir}; wait for it or stop it"
                ) from None
        for stale in paths.folder.glob(".*.tmp"):  # temp files of atomic writes cut short by a kill
            stale.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)
