"""``--mode reports``: figures, tables and an offline HTML page from a run folder alone (never trains or measures)."""

from __future__ import annotations

from pathlib import Path

from common.errors import UserError
from common.folders import check_writable_folder
from pipeline.config import PipelineConfig


def check_folder(run_dir: Path, resume: bool) -> None:
    """Refuse a folder that is not a run (the reports read everything from it)."""
    markers = ("config.json", "data", "nas", "models")
    if not any((run_dir / m).exists() for m in markers):
        raise UserError(f"{run_dir} is not a run folder (no config.json, data/, nas/ or models/); give the --out "
                        "of a run made by another mode")  # fmt: skip


def run(cfg: PipelineConfig, run_dir: Path, resume: bool = False):
    """Write every figure and table that the run folder's contents allow; returns the ReportResult."""
    from reports.generate import generate_reports

    compare = [Path(p) for p in cfg.reports.compare]
    for path in compare:
        if not path.is_dir():
            raise UserError(f"--compare {path} is not a folder (expected the --out of another run)")
    out_dir = Path(cfg.reports.out_dir) if cfg.reports.out_dir else None
    if out_dir is not None:
        check_writable_folder(out_dir, "reports.out_dir", "reports folder")
    return generate_reports(run_dir, compare=compare, out_dir=out_dir)


def summary(result, run_dir: Path) -> list[str]:
    """What was written, what is missing and which mode makes it."""
    lines = [f"{len(result.figures)} figure(s) and {len(result.tables)} table(s) in {result.out_dir}/; "
             f"open {result.html}"]  # fmt: skip
    lines += [f"  missing: {m}" for m in result.missing]
    lines += [f"  note: {n}" for n in result.notes]
    return lines
