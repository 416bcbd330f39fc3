"""The search over time: hypervolume per generation per run and per strategy, and feasibility per generation.

Hypervolume comes from each run's ``nas/history.csv`` (computed by the search against its fixed
reference point). Runs are compared only when they share the reference (same objectives and
box): a hypervolume against another box is another number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from reports.fronts import candidates_frame
from reports.run_data import RunData


@dataclass(frozen=True)
class HypervolumeCurves:
    """Hypervolume per generation of comparable runs.

    Attributes:
        runs: Long table: ``run``, ``strategy``, ``seed``, ``generation``, ``hypervolume``, ``evaluations``.
        by_strategy: Per strategy and generation: ``mean``, ``std`` (0 for one run), ``n_runs``.
        reference: The shared reference point, as text.
        left_out: Runs not comparable with the first (other reference) or without a history, with why.
    """

    runs: pd.DataFrame
    by_strategy: pd.DataFrame
    reference: str
    left_out: list[str] = field(default_factory=list)

    @property
    def strategies(self) -> list[str]:
        """Strategies present, NSGA-II first."""
        names = list(dict.fromkeys(self.runs["strategy"])) if len(self.runs) else []
        return sorted(names, key=lambda s: (s != "nsga2", s))


def _reference(run: RunData) -> str:
    if run.history is not None and "hv_reference" in run.history and run.history["hv_reference"].notna().any():
        return str(run.history["hv_reference"].dropna().iloc[-1])
    return run.search.reference_text() if run.search else ""


def hypervolume_curves(runs: Sequence[RunData]) -> HypervolumeCurves:
    """Hypervolume per generation of ``runs`` (the first run sets the reference point)."""
    frames, left_out, reference = [], [], None
    for run in runs:
        history = run.history
        if history is None or "hypervolume" not in history or history.empty:
            left_out.append(f"{run.name}: no nas/history.csv rows")
            continue
        ref = _reference(run)
        if reference is None:
            reference = ref
        elif ref != reference:
            left_out.append(f"{run.name}: other hypervolume reference ({ref} instead of {reference})")
            continue
        frame = history[["generation", "hypervolume"]].copy()
        frame["evaluations"] = history["evaluations"] if "evaluations" in history else float("nan")
        frame["run"] = run.name
        frame["strategy"] = run.search.strategy if run.search else "unknown"
        frame["seed"] = run.search.seed if run.search else None
        frames.append(frame)
    columns = ["run", "strategy", "seed", "generation", "hypervolume", "evaluations"]
    long = pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
    grouped = long.groupby(["strategy", "generation"])["hypervolume"]
    by_strategy = pd.DataFrame(
        {"mean": grouped.mean(), "std": grouped.std(ddof=1).fillna(0.0), "n_runs": grouped.count()}
    ).reset_index()
    return HypervolumeCurves(long, by_strategy, reference or "", left_out)


def feasibility_by_generation(run: RunData) -> pd.DataFrame:
    """Per generation of first evaluation: candidates, how many are feasible, and what made the others infeasible.

    Returns:
        Columns ``generation``, ``candidates``, ``feasible``, ``feasible_share`` and one count column per
        binding cause (a constraint label, ``failed`` or ``NaN objective``), in order of total count.
    """
    frame = candidates_frame(run.records)
    if frame.empty:
        return pd.DataFrame(columns=["generation", "candidates", "feasible", "feasible_share"])
    counts = frame.groupby("generation").agg(candidates=("key", "size"), feasible=("feasible", "sum"))
    causes = frame.dropna(subset=["binding"]).pivot_table(
        index="generation", columns="binding", values="key", aggfunc="count", fill_value=0
    )
    if not causes.empty:
        causes = causes[causes.sum().sort_values(ascending=False).index]
    table = counts.join(causes, how="left").fillna(0)
    table["feasible_share"] = table["feasible"] / table["candidates"]
    table = table.reset_index()
    ordered = ["generation", "candidates", "feasible", "feasible_share", *[c for c in causes.columns]]
    return table[ordered].astype({c: int for c in ordered if c not in ("feasible_share",)})


def violation_counts(run: RunData) -> pd.DataFrame:
    """Per constraint: candidates that violate it at all and candidates for which it binds (misses most)."""
    frame = candidates_frame(run.records)
    labels = sorted({label for r in run.records for label in r.violations})
    rows = []
    for label in labels:
        violated = sum(1 for r in run.records if (r.violations.get(label) or 0) > 0)
        binding = int((frame["binding"] == label).sum()) if not frame.empty else 0
        rows.append({"constraint": label, "violated": violated, "binding": binding})
    return pd.DataFrame(rows, columns=["constraint", "violated", "binding"])
