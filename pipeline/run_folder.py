"""The run folder: where a run's resolved config and outputs live, and the checks made before writing to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_json
from common.errors import UserError
from pipeline.config import PipelineConfig
from pipeline.stage import Stage


def default_run_dir(cfg: PipelineConfig, mode: str = "nas") -> Path:
    """``runs/<run.name>``, or ``runs/<dataset>-<mode>`` so that modes do not share a folder by accident."""
    return Path("runs") / (cfg.run.name or f"{cfg.data.dataset}-{mode}")


def run_folder_config(stage: Stage, out: str | None) -> dict[str, Any]:
    """The settings a mode working on an existing run starts from: that run's ``config.json``.

    Raises:
        UserError: ``--out`` is missing, is not a folder, or its ``config.json`` is unreadable.
    """
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
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path} is not readable as JSON ({type(exc).__name__}); restore it or pass --config") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} must hold a mapping of config sections")
    return data


def prepare_run_folder(stage: Stage, cfg: PipelineConfig, out: str | None, resume: bool) -> Path | None:
    """Resolve the run folder of ``stage``, check it, and create it (recording ``config.json``) if the stage does.

    Raises:
        UserError: ``--resume`` without a run to continue, or the stage's own folder check refuses.
    """
    if stage.run_folder == "none":
        return Path(out) if out else None
    run_dir = Path(out) if out else default_run_dir(cfg, stage.mode)
    if resume and not run_dir.is_dir():
        raise UserError(f"--resume: there is no run folder {run_dir} to continue; start a run there without --resume")
    check = stage.function("check_folder")
    if check is not None:
        check(run_dir, resume)
    if stage.run_folder == "new":
        init_run_folder(run_dir, cfg, resume=resume)
    return run_dir


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
