"""The run folder: where a run's resolved config and outputs live, and the checks made before writing to it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_bytes, atomic_write_json
from common.errors import UserError
from common.folders import check_writable_folder, nearest_existing
from common.text_files import read_user_json
from pipeline.config import PipelineConfig
from pipeline.stage import Stage
from train.features import FORMER_DEFAULTS as FEATURE_FORMER_DEFAULTS


def default_run_dir(cfg: PipelineConfig, mode: str = "nas") -> Path:
    """``runs/<run.name>``, or ``runs/<dataset>-<mode>`` so that modes do not share a folder by accident."""
    return Path("runs") / (cfg.run.name or f"{cfg.data.dataset}-{mode}")


SHARED_SECTIONS = ("data", "features", "run")  # what every stage of one run folder shares (seed, cache, ...)

# Settings whose default changed: the value a run folder recorded without the field was made with.
FORMER_DEFAULTS = {"features": FEATURE_FORMER_DEFAULTS}


def run_folder_config(stage: Stage, out: str | None) -> dict[str, Any]:
    """The settings a mode starts from: the run folder's ``config.json``.

    A mode working on an existing run (reports, quantization) starts from all of it. A mode that
    adds to a folder (``--mode nas --out RUN`` after ``--mode baseline --out RUN``) starts from its
    data and feature settings only, so that one run folder holds one dataset without repeating
    ``--dataset``; flags and ``--config`` still override them.

    Raises:
        UserError: ``--out`` is missing (for an existing run), is not a folder, or its
            ``config.json`` is unreadable.
    """
    if stage.run_folder == "new":
        if not out or not Path(out).is_dir():
            return {}
        recorded = read_run_config(Path(out))
        return {name: recorded[name] for name in SHARED_SECTIONS if isinstance(recorded.get(name), dict)}
    if stage.run_folder != "existing":
        return {}
    if not out:
        raise UserError(
            f"--mode {stage.mode} works on an existing run folder: give it with --out RUN (a folder written by "
            "--mode baseline or --mode nas)"
        )
    if not Path(out).is_dir():
        raise UserError(f"--out {out} is not a folder; --mode {stage.mode} needs a run folder made by --mode "
                        "baseline or --mode nas")  # fmt: skip
    return read_run_config(Path(out))


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """A run folder's ``config.json`` as a dict (empty when there is none).

    Raises:
        UserError: The file is not readable JSON holding a mapping.
    """
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        return {}
    data = read_user_json(path, "run config")
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a mapping of config sections")
    for section, former in FORMER_DEFAULTS.items():
        if isinstance(data.get(section), dict):
            data[section] = former | data[section]
    return data


def planned_run_dir(stage: Stage, cfg: PipelineConfig, out: str | None) -> Path | None:
    """The run folder ``stage`` will use: ``--out``, else the default (None for a stage without one)."""
    if stage.run_folder == "none":
        return None
    return Path(out) if out else default_run_dir(cfg, stage.mode)


def prepare_run_folder(stage: Stage, cfg: PipelineConfig, out: str | None, resume: bool) -> Path | None:
    """Resolve the run folder of ``stage``, check it, and create it (recording ``config.json``) if the stage does.

    Raises:
        UserError: ``--out`` is a file or cannot be written, ``--resume`` without a run to continue,
            or the stage's own folder check refuses.
    """
    run_dir = planned_run_dir(stage, cfg, out)
    if run_dir is None:
        return Path(out) if out else None
    check_writable_folder(run_dir, "--out", "run folder")
    if resume and not run_dir.is_dir():
        if stage.run_folder != "new":
            raise UserError(f"--resume: there is no run folder {run_dir} to continue")
        print(f"--resume: nothing to continue yet ({run_dir} does not exist): starting the run there", flush=True)
    check = stage.function("check_folder")
    if check is not None:
        check(run_dir, resume)
    if stage.run_folder == "new":
        init_run_folder(run_dir, cfg, resume=resume, sections=stage.recorded_sections(SHARED_SECTIONS))
    return run_dir


def init_run_folder(
    run_dir: Path, cfg: PipelineConfig, resume: bool = False, sections: tuple[str, ...] | None = None
) -> Path:
    """Create the run folder and write the resolved ``config.json`` (atomically).

    When resuming, an existing ``config.json`` is kept until the run succeeds (see
    :func:`record_config`): a refused resume must not leave the refused settings behind.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (resume and (run_dir / "config.json").is_file()):
        record_config(run_dir, cfg, sections)
    return run_dir


def record_config(run_dir: Path, cfg: PipelineConfig, sections: tuple[str, ...] | None = None) -> None:
    """Write ``config.json``: per section, the resolved settings of the last successful start that used it.

    Args:
        run_dir: The run folder.
        cfg: The resolved config of this start.
        sections: The sections this start used (None: all); the folder's other recorded sections
            are kept (``--mode features --out RUN`` must not reset the search settings of RUN).
    """
    new = cfg.to_dict()
    if sections is not None:
        try:
            recorded = read_run_config(run_dir)
        except UserError:
            recorded = {}  # unreadable: replaced whole
        if recorded:
            new = {name: recorded[name] if name in recorded and name not in sections else value
                   for name, value in new.items()}  # fmt: skip
    atomic_write_json(run_dir / "config.json", new)


BOOKKEEPING = ("config.json", "stages.jsonl")  # what a start writes before the stage itself writes anything


@dataclass(frozen=True)
class FolderState:
    """What a run folder held before a start: enough to put it back if the start fails on bad input.

    Attributes:
        root: The run folder.
        created_from: The topmost folder the start creates (``root`` or a missing ancestor), or
            None when ``root`` existed.
        files: Every file below ``root`` (relative path -> size and modification time).
        folders: Every folder below ``root`` (relative paths).
        bookkeeping: The contents of :data:`BOOKKEEPING` files (None: absent).
    """

    root: Path
    created_from: Path | None
    files: dict[str, tuple[int, int]]
    folders: frozenset[str]
    bookkeeping: dict[str, bytes | None]

    @classmethod
    def of(cls, root: Path) -> FolderState:
        """The current state of ``root`` (which need not exist)."""
        root = Path(os.path.abspath(root))
        created_from = None
        if not root.exists():
            existing = nearest_existing(root)
            created_from = root if root.parent == existing else Path(existing, root.relative_to(existing).parts[0])
        files, folders = _listing(root)
        bookkeeping = {name: _read_or_none(root / name) for name in BOOKKEEPING}
        return cls(root, created_from, files, folders, bookkeeping)

    def only_bookkeeping_changed(self) -> bool:
        """Whether, since this state, nothing but :data:`BOOKKEEPING` files and empty folders changed."""
        files, _ = _listing(self.root)
        return {k: v for k, v in files.items() if k not in BOOKKEEPING} == {
            k: v for k, v in self.files.items() if k not in BOOKKEEPING
        }

    def restore(self) -> None:
        """Put the bookkeeping files back and remove the folders created since (only empty ones)."""
        if not self.root.is_dir():
            return
        for name, data in self.bookkeeping.items():
            path = self.root / name
            if data is None:
                path.unlink(missing_ok=True)
            elif _read_or_none(path) != data:
                atomic_write_bytes(path, data)
        _, folders = _listing(self.root)
        for rel in sorted(folders - self.folders, key=lambda r: -r.count(os.sep)):
            with contextlib.suppress(OSError):
                (self.root / rel).rmdir()
        if self.created_from is not None:
            folder = self.root
            while True:
                with contextlib.suppress(OSError):
                    folder.rmdir()
                if folder == self.created_from or folder == folder.parent:
                    break
                folder = folder.parent


@contextlib.contextmanager
def undo_failed_start(run_dir: Path | None) -> Iterator[None]:
    """Leave ``run_dir`` as it was when what runs inside fails with a :class:`UserError` before writing outputs.

    A start writes ``config.json`` and a ``stages.jsonl`` line before the stage checks its own
    inputs (the dataset, the latency tables, ...). When the stage refuses its input before writing
    anything of its own, those are taken back (a new folder is removed again), so a failed start
    never replaces the config of the run the folder holds. Once the stage has written outputs, the
    folder is left as the failure left it: the outputs (e.g. ``skipped_files.csv``) are what the
    message points at, and ``stages.jsonl`` records the failure.

    Args:
        run_dir: The run folder (None, or a path that is not a folder: nothing to guard).
    """
    if run_dir is None or (run_dir.exists() and not run_dir.is_dir()):
        yield
        return
    before = FolderState.of(run_dir)
    try:
        yield
    except UserError:
        if before.only_bookkeeping_changed():
            before.restore()
        raise


def _listing(root: Path) -> tuple[dict[str, tuple[int, int]], frozenset[str]]:
    """(files with their size and mtime, folders) below ``root``, as paths relative to it."""
    files: dict[str, tuple[int, int]] = {}
    folders: set[str] = set()
    for here, dirs, names in os.walk(root):
        rel = os.path.relpath(here, root)
        folders.update(os.path.normpath(os.path.join(rel, d)) for d in dirs)
        for name in names:
            with contextlib.suppress(OSError):
                info = os.stat(os.path.join(here, name))
                files[os.path.normpath(os.path.join(rel, name))] = (info.st_size, info.st_mtime_ns)
    return files, frozenset(folders)


def _read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
