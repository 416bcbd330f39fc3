"""What :func:`nas.search.run_search` returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SearchResult:
    """Outcome of a search session (the files in ``<run_dir>/nas/`` hold the same and more).

    Attributes:
        run_dir: The run folder.
        pareto: Rows of ``pareto.csv``: ``key``, ``generation``, objectives, constrained metrics, ``genome``.
        history: Rows of ``history.csv``, one per finished generation.
        n_evaluations: Distinct candidates recorded (evaluated, precheck-rejected or failed).
        n_full_evaluations: Of those, candidates passed to ``evaluate``.
        n_cache_hits: Proposals whose key was already recorded (reused, not evaluated): those that exhausted
            their novelty retries.
        n_replayed: Results taken from the journal of an earlier session instead of evaluating again.
        n_evaluate_calls: ``evaluate`` calls made in this session, retries included.
        wall_s: Time spent in generations, across sessions.
        completed: False when stopped early by a callback or the time budget.
        budget_stop: Stopped by ``budget_s``.
        partial_generation: When the deadline cut a generation: ``generation``, ``finished`` (its
            candidates recorded in the journal, trained or rejected by the precheck; the trained
            ones are on the front) and ``proposed``; else ``None``.
        recovery: Notes on what was repaired or dropped when resuming (empty when nothing was).
        warnings: What this session warned about (exhausted novelty retries, objective values beyond their box).
    """

    run_dir: Path
    pareto: list[dict[str, Any]]
    history: list[dict[str, Any]]
    n_evaluations: int
    n_full_evaluations: int
    n_cache_hits: int
    n_replayed: int
    n_evaluate_calls: int
    wall_s: float
    completed: bool
    budget_stop: bool = False
    partial_generation: dict[str, int] | None = None
    recovery: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
