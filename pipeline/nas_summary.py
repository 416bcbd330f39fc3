"""A readable summary of a finished (or stopped) search, printed by ``--mode nas``."""

from __future__ import annotations

import math
from pathlib import Path

from nas.search import SearchResult


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
    if not result.completed and result.history:
        lines.append(
            f"stopped by the time budget (nas.max_minutes) after generation {result.history[-1]['generation']}: the "
            "outputs are those of a run with that many generations; continue with --resume and a larger --max-minutes"
        )
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
    lines.append(f"results in {run_dir}/nas/ (journal.jsonl, checkpoint.json, history.csv, pareto.csv)")
    return lines
