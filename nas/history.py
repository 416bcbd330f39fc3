"""Per-generation history rows and the CSV files of the run folder.

``<run_dir>/nas/history.csv``: one row per finished generation, rewritten atomically each
generation. Columns: ``generation``; cumulative counts ``evaluations`` (distinct candidates
recorded), ``full_evaluations`` (candidates passed to ``evaluate``), ``precheck_rejected``,
``failed``, ``cache_hits`` (proposed candidates whose key was already recorded, so reused
without evaluation); ``pop_feasible`` (feasible members of the current population, or of the
batch for random search); ``feasible_total``; ``front_size`` and ``hypervolume`` of the feasible
front of everything recorded so far (see :mod:`nas.hypervolume`); ``best_<objective>`` over
feasible candidates so far (empty while there is none); ``min_violation`` in the population;
the timing columns ``wall_s`` (this generation) and ``elapsed_s`` (since the run started,
across resumes); and ``hv_reference``, the reference point in original units.

``<run_dir>/nas/pareto.csv``: the final feasible Pareto set, one row per key: ``key``,
``generation`` (when first recorded), every objective, every other constrained metric, and
``genome`` (JSON list).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_text
from nas.problem import Constraint, ObjectiveSpec
from nas.records import EvalRecord

TIMING_COLUMNS = ("wall_s", "elapsed_s")
COUNT_COLUMNS = ("evaluations", "full_evaluations", "precheck_rejected", "failed", "cache_hits")


def history_columns(objectives: Sequence[ObjectiveSpec]) -> list[str]:
    """Column order of ``history.csv``."""
    head = ["generation", *COUNT_COLUMNS, "pop_feasible", "feasible_total", "front_size", "hypervolume"]
    return head + [f"best_{o.name}" for o in objectives] + ["min_violation", *TIMING_COLUMNS, "hv_reference"]


def best_values(feasible: Sequence[EvalRecord], objectives: Sequence[ObjectiveSpec]) -> dict[str, float | None]:
    """``best_<name>`` of each objective over ``feasible`` (``None``, an empty CSV cell, when empty)."""
    best: dict[str, float | None] = {}
    for i, o in enumerate(objectives):
        values = [r.objective_values(objectives)[i] for r in feasible]
        best[f"best_{o.name}"] = (max if o.direction == "max" else min)(values) if values else None
    return best


def pareto_columns(objectives: Sequence[ObjectiveSpec], constraints: Sequence[Constraint]) -> list[str]:
    """Column order of ``pareto.csv``."""
    names = [o.name for o in objectives]
    extra = [c.metric for c in constraints if c.metric not in names]
    return ["key", "generation", *names, *dict.fromkeys(extra), "genome"]


def pareto_rows(
    front: Sequence[EvalRecord], objectives: Sequence[ObjectiveSpec], constraints: Sequence[Constraint]
) -> list[dict[str, Any]]:
    """Rows of ``pareto.csv`` for the records of ``front`` (genome as a list)."""
    columns = pareto_columns(objectives, constraints)
    rows = []
    for r in front:
        row: dict[str, Any] = {"key": r.key, "generation": r.generation, "genome": list(r.genome)}
        row.update({name: r.metrics.get(name, math.nan) for name in columns[2:-1]})
        rows.append(row)
    return rows


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
    """Atomically write ``rows`` as CSV (lists as JSON; floats in full precision)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, list) else _cell(v) for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())


def _cell(value: Any) -> Any:
    return repr(value) if isinstance(value, float) else value


def without_timing(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """History rows without the timing columns: what equal runs (e.g. resumed vs uninterrupted) share."""
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows]
