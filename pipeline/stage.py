"""The one shape of a pipeline stage (a ``--mode``), as registered in :mod:`pipeline.stages`.

A stage is its own module(s) plus one :class:`Stage` entry: the entry says which flags the mode
reads, which config section it owns, how it uses the run folder, and where its functions are.
The functions are named as ``"module:function"`` strings and imported only when the mode runs,
so ``--help`` and the parser never import torch.

The stage functions have these signatures::

    run(cfg: PipelineConfig, run_dir: Path | None, resume: bool) -> Any        # does the work
    summary(result: Any, run_dir: Path | None) -> list[str]                    # lines printed after it
    check_folder(run_dir: Path, resume: bool) -> None                          # before anything is written
    resolve(cfg: PipelineConfig) -> PipelineConfig                             # defaults made explicit
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.flags import Flag

RUN_FOLDER_USES = ("new", "existing", "none")


@dataclass(frozen=True)
class Stage:
    """A ``--mode``: what it reads, what it owns, and where its code is.

    Attributes:
        mode: The ``--mode`` value.
        help: What the mode does, one line.
        run: ``"module:function"`` of the stage function, or None for a planned mode.
        summary: ``"module:function"`` turning the result into printed lines (None: prints nothing).
        flags: Names (argparse destinations) of the shared flags it reads, see :data:`pipeline.flags.SHARED`.
        own_flags: Flags only this stage reads, declared here.
        flag_targets: Shared flags whose value goes elsewhere in this mode (dest -> config paths).
        section: ``(name, dataclass)`` of the config section the stage owns, e.g. ``("nas", NasConfig)``.
        run_folder: ``new``: writes into ``--out`` (default ``runs/<dataset>-<mode>``) and records
            ``config.json``; ``existing``: works on a run folder made by other modes (``--out`` is
            required, and its ``config.json`` is the base of the config); ``none``: no run folder
            (``--out`` is optional and only names where outputs go).
        check_folder: ``"module:function"`` refusing, before anything is written, a run that would
            clash with what the folder holds.
        resolve: ``"module:function"`` filling defaults that depend on the machine or the folder
            into the config before the stage runs (so ``config.json`` records what was used).
        needs: What the mode needs from the user, for ``--help``.
        config_sections: Other config sections the stage reads (``("*",)``: all). Into a folder's
            existing ``config.json`` a stage records these, its own ``section``, ``run`` and the
            shared data/features sections; the other sections stay as the stages that used them
            recorded them.
    """

    mode: str
    help: str
    run: str | None = None
    summary: str | None = None
    flags: tuple[str, ...] = ()
    own_flags: tuple[Flag, ...] = ()
    flag_targets: tuple[tuple[str, tuple[str, ...]], ...] = ()
    section: tuple[str, type] | None = None
    run_folder: str = "new"
    check_folder: str | None = None
    resolve: str | None = None
    needs: str = ""
    config_sections: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.run_folder not in RUN_FOLDER_USES:
            raise ValueError(f"stage {self.mode}: run_folder must be one of {RUN_FOLDER_USES}")

    @property
    def built(self) -> bool:
        """Whether the mode can run (planned modes are listed but refused)."""
        return self.run is not None

    @property
    def reads(self) -> set[str]:
        """Destinations of every non-global flag this mode reads."""
        return set(self.flags) | {f.dest for f in self.own_flags}

    def recorded_sections(self, shared: tuple[str, ...]) -> tuple[str, ...] | None:
        """The config sections this stage writes into ``config.json`` (None: all of them)."""
        if "*" in self.config_sections or self.run_folder == "existing":  # those start from the whole config
            return None
        own = (self.section[0],) if self.section else ()
        return tuple(dict.fromkeys((*shared, "run", *own, *self.config_sections)))

    def function(self, which: str) -> Callable[..., Any] | None:
        """Import and return the stage function ``which`` (``run``, ``summary``, ``check_folder`` or ``resolve``)."""
        target = getattr(self, which)
        if target is None:
            return None
        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module), name)
