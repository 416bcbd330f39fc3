"""The run folder: where a run's resolved config and outputs live, and the checks made before writing to it."""

from __future__ import annotations

from pathlib import Path

from common.atomic import atomic_write_json
from common.errors import UserError
from nas.runfolder import SearchPaths
from pipeline.config import PipelineConfig


def default_run_dir(cfg: PipelineConfig, mode: str = "nas") -> Path:
    """``runs/<run.name>``, or ``runs/<dataset>-<mode>`` so that modes do not share a folder by accident."""
    return Path("runs") / (cfg.run.name or f"{cfg.data.dataset}-{mode}")


def check_run_folder(mode: str, run_dir: Path, resume: bool) -> None:
    """Refuse, before anything is written, a run that would clash with what the folder holds.

    Raises:
        UserError: ``--resume`` without a run to continue, or a new search into a folder that
            already holds one.
    """
    has_search = SearchPaths(run_dir).has_search()  # the engine's own test (settings, journal or checkpoint)
    if resume and not run_dir.is_dir():
        raise UserError(f"--resume: there is no run folder {run_dir} to continue; start a run there without --resume")
    if mode == "nas" and resume and not has_search:
        raise UserError(f"--resume: {run_dir} holds no search to continue (nothing in nas/); drop --resume")
    if mode == "nas" and not resume and has_search:
        raise UserError(
            f"{run_dir} already holds a search: continue it with --resume, or start a new one with another --out"
        )


def init_run_folder(run_dir: Path, cfg: PipelineConfig, resume: bool = False) -> Path:
    """Create the run folder and write the resolved ``config.json`` (atomically).

    When resuming, an existing ``config.json`` is kept until the run succeeds (see
    :func:`record_config`): a refused resume must not leave the refused settings behind.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    if not (resume and (run_dir / "config.json").is_file()):
        record_config(run_dir, cfg)
    return run_dir


def record_config(run_dir: Path, cfg: PipelineConfig) -> None:
    """Write ``config.json``: the resolved config of the run's last successful start."""
    atomic_write_json(run_dir / "config.json", cfg.to_dict())
