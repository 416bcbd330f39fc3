"""Per-generation history rows and the CSV files of the run folder.

``<run_dir>/nas/history.csv``: one row per finished generation, rewritten atomically each
generation. Columns: ``generation``; cumulative counts ``evaluations`` (distinct candidates
recorded), ``full_evaluations`` (candidates passed to ``evaluate``), ``precheck_rejected``,
``failed``, ``cache_hits`` (proposed candidates whose key was already recorded, so reused
without evaluation: exactly the proposals that exhausted their novelty retries), ``low_fidelity``
(multi-fidelity search: evaluated candidates recorded with a lower-fidelity result, not promoted);
``pop_feasible`` (feasible members of the current population, or of the batch for random
search); ``feasible_total``; ``front_size`` and ``hypervolume`` of the feasible
front of everything recorded so far (see :mod:`nas.hypervolume`); ``best_<objective>`` over
feasible candidates so far (empty while there is none); ``min_violation`` in the population (as
ranked: a candidate rejected before evaluation is charged its unmeasured constraints' worst case);
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
from nas.fidelity import fidelity_label
from nas.problem import Constraint, ObjectiveSpec
from nas.records import EvalRecord

TIMING_COLUMNS = ("wall_s", "elapsed_s")
COUNT_COLUMNS = ("evaluations", "full_evaluations", "precheck_rejected", "failed", "cache_hits", "low_fidelity")


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


def pareto_columns(
    objectives: Sequence[ObjectiveSpec],
    constraints: Sequence[Constraint],
    reported: Sequence[str] = (),
    fidelities: Sequence[str] | None = None,
) -> list[str]:
    """Column order of ``pareto.csv``: key, generation, objectives, constrained and reported metrics, genome.

    With ``fidelities`` (a multi-fidelity search) a ``fidelity`` column comes before ``genome``.
    """
    names = [o.name for o in objectives]
    extra = [c.metric for c in constraints if c.metric not in names] + [m for m in reported if m not in names]
    fidelity = ["fidelity"] if fidelities is not None else []
    return ["key", "generation", *names, *dict.fromkeys(extra), *fidelity, "genome"]


def pareto_rows(
    front: Sequence[EvalRecord],
    objectives: Sequence[ObjectiveSpec],
    constraints: Sequence[Constraint],
    reported: Sequence[str] = (),
    fidelities: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Rows of ``pareto.csv`` for the records of ``front`` (genome as a list)."""
    columns = [c for c in pareto_columns(objectives, constraints, reported) if c not in ("key", "generation", "genome")]
    rows = []
    for r in front:
        row: dict[str, Any] = {"key": r.key, "generation": r.generation, "genome": list(r.genome)}
        row.update({name: r.metrics.get(name, math.nan) for name in columns})
        if fidelities is not None:
            row["fidelity"] = fidelity_label(r, fidelities)
        rows.append(row)
    return rows


HISTORY_DESCRIPTIONS = {
    "generation": "generation number (0 = the initial population)",
    "evaluations": "distinct candidates recorded so far (evaluated, rejected by the precheck, or failed)",
    "full_evaluations": "candidates passed to the expensive evaluation (at any fidelity) so far",
    "precheck_rejected": "candidates rejected by a cheap constraint before evaluation, so far",
    "failed": "candidates whose evaluation failed after retries, so far",
    "cache_hits": "proposals whose key was already recorded (reused, not evaluated: novelty retries exhausted), so far",
    "low_fidelity": "multi-fidelity search: evaluated candidates recorded with a lower-fidelity result (not promoted), "
    "so far",
    "pop_feasible": "feasible members of this generation's population (random search: of its batch)",
    "feasible_total": "feasible candidates so far",
    "front_size": "size of the feasible Pareto front of everything recorded so far",
    "hypervolume": "hypervolume of that front in the normalised objective box (reference point: hv_reference)",
    "min_violation": "smallest constraint violation in the population (0: some member is feasible), as ranked: a "
    "candidate rejected before evaluation is charged the worst case of the constraints it was not measured on",
    "wall_s": "wall time of this generation (s)",
    "elapsed_s": "wall time since the search started, across resumed sessions (s)",
    "hv_reference": "the hypervolume reference point: each objective's worst value, in its own units",
}
PARETO_DESCRIPTIONS = {
    "key": "canonical architecture string (the key of the journal and of every table)",
    "generation": "generation in which the candidate was first recorded",
    "genome": "the integer genome (JSON list; gene i indexes choice list i of the search space)",
    "fidelity": "multi-fidelity search: what the metrics were measured at: full (the whole evaluation), or the lower "
    "fidelity of a candidate that was not promoted",
}


def column_legend(
    objectives: Sequence[ObjectiveSpec],
    constraints: Sequence[Constraint],
    descriptions: dict[str, str],
    fidelities: Sequence[str] | None = None,
) -> dict[str, dict[str, str]]:
    """What each column of ``pareto.csv`` and ``history.csv`` is (written as ``nas/columns.json``).

    Args:
        objectives: The search's objectives (each gets a ``best_<name>`` history column).
        constraints: Its constraints.
        descriptions: The problem's metric descriptions (:meth:`nas.problem.SearchProblem.metric_descriptions`).
        fidelities: The lower fidelities of a multi-fidelity search (None: one fidelity).
    """
    reported = list(descriptions)
    pareto = {}
    for column in pareto_columns(objectives, constraints, reported, fidelities):
        pareto[column] = PARETO_DESCRIPTIONS.get(column) or descriptions.get(column, "metric recorded by the problem")
    for o in objectives:
        pareto[o.name] = f"{pareto[o.name]} [objective, {o.direction}imised]"
    history = {}
    for column in history_columns(objectives):
        name = column.removeprefix("best_")
        history[column] = HISTORY_DESCRIPTIONS.get(column) or (
            f"best feasible {name} so far: {descriptions.get(name, name)}"
        )
    return {"pareto.csv": pareto, "history.csv": history}


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
