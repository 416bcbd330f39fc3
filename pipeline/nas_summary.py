"""A readable summary of a finished (or stopped) search, printed by ``--mode nas``."""

from __future__ import annotations

import json
import math
from pathlib import Path

from nas.search import SearchResult
from pipeline.search_data import read_search_data, search_data_line


def _fmt(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def summary_lines(result: SearchResult, run_dir: Path, max_rows: int = 12) -> list[str]:
    """Budget used, final hypervolume, the Pareto front (best accuracy first) and where the files are."""
    lines: list[str] = []
    last = result.history[-1] if result.history else {}
    lines.append(
        f"{result.n_evaluations} candidates ({result.n_full_evaluations} trained, "
        f"{last.get('precheck_rejected', 0)} rejected before training, {result.n_cache_hits} duplicate proposals "
        f"reused, {result.n_replayed} taken from the journal) in {result.wall_s:.0f} s; "
        f"hypervolume {_fmt(last.get('hypervolume', float('nan')))} (reference {last.get('hv_reference', '')})"
    )
    cut = result.partial_generation
    if cut is not None:
        lines.append(
            f"stopped by the time budget (nas.max_minutes) in generation {cut['generation']}: {cut['finished']} of its "
            f"{cut['proposed']} candidates recorded (journaled, on the front), the trainings in flight were stopped; "
            "--resume with a larger --max-minutes continues that generation"
        )
    elif not result.completed and result.history:
        lines.append(
            f"stopped by a time budget after generation {result.history[-1]['generation']} (nas.max_minutes, or "
            "--mode full's whole-run budget): the outputs are those of a run with that many generations; continue "
            "with --resume and a larger --max-minutes"
        )
    elif not result.completed:
        lines.append(
            "stopped by the time budget (nas.max_minutes) before generation 0: it was spent already; continue with "
            "--resume and a larger --max-minutes"
        )
    record = read_search_data(run_dir)
    if record is not None:
        lines.append(search_data_line(record))
    if result.recovery:
        lines.append("recovered: " + "; ".join(result.recovery))
    front = sorted(result.pareto, key=lambda r: -float(r.get("accuracy", r.get("macro_f1", 0)) or 0))
    if not front:
        lines.append("no feasible candidate yet: relax the constraints or raise --nas-generations")
    else:
        columns = [c for c in front[0] if c not in ("genome", "generation", "key")]
        lines.append(f"Pareto front ({len(front)} specs):")
        lines.append("  " + "  ".join(f"{c:>12}" for c in columns) + "  spec")
        for row in front[:max_rows]:
            lines.append("  " + "  ".join(f"{_fmt(row[c]):>12}" for c in columns) + f"  {row['key']}")
        if len(front) > max_rows:
            lines.append(f"  ... {len(front) - max_rows} more in pareto.csv")
    lines.append(f"results in {run_dir}/nas/ (journal.jsonl, checkpoint.json, history.csv, pareto.csv, "
                 "search_data.json)")  # fmt: skip
    lines += _what_you_got(run_dir, front)
    return lines


def _what_you_got(run_dir: Path, front: list[dict]) -> list[str]:
    """What the front's columns are (from ``nas/columns.json``) and the commands that come next."""
    try:
        legend = json.loads((run_dir / "nas" / "columns.json").read_text())["pareto.csv"]
    except (OSError, ValueError, KeyError):
        legend = {}
    lines = []
    shown = [c for c in (front[0] if front else {}) if c == "accuracy" or c.startswith(("latency_ms", "energy"))]
    for column in shown:
        if column in legend:
            lines.append(f"  {column}: {legend[column].split(' [')[0]}")
    lines.append(f"next: train, distil and INT8-export the front: python complete_pipeline.py --mode quantization "
                 f"--out {run_dir}")  # fmt: skip
    lines.append(f"next: figures and tables: python complete_pipeline.py --mode reports --out {run_dir} (--mode full "
                 "runs baseline, search, quantization and reports in one go)")  # fmt: skip
    return lines
