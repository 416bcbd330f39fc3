"""The run folder: where a run's resolved config and outputs live."""

from __future__ import annotations

from pathlib import Path

from common.atomic import atomic_write_json
from pipeline.config import PipelineConfig


def default_run_dir(cfg: PipelineConfig) -> Path:
    """``runs/<name>`` under the current directory."""
    return Path("runs") / cfg.run_name


def init_run_folder(run_dir: Path, cfg: PipelineConfig) -> Path:
    """Create the run folder and write the resolved ``config.json`` into it (atomically)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "config.json", cfg.to_dict())
    return run_dir
