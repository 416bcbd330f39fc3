"""Book-keeping between generations: what was recorded, the running front, counters, history rows."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

from nas.checkpoint import CheckpointError
from nas.history import best_values
from nas.hypervolume import box_excess, hypervolume, pareto_front, reference_description
from nas.problem import SearchProblem
from nas.records import EvalRecord
from nas.state import SearchState
from nas.violation import charged_violation


class LoopState:
    """A :class:`SearchState` plus what is derived from it and the result cache.

    Attributes:
        state: The checkpointed part.
        seen: Keys recorded so far (the logical "already evaluated" set used for cache hits and novelty).
        front: The feasible Pareto front of everything recorded so far.
        replayed: Results taken from the journal of an earlier session in this session.
    """

    def __init__(self, problem: SearchProblem, cache: dict[str, EvalRecord]) -> None:
        """Start empty (call :meth:`reset` or :meth:`adopt`)."""
        self.problem, self.cache = problem, cache
        self.state = SearchState()
        self.seen: set[str] = set()
        self.front: list[EvalRecord] = []
        self.replayed = 0
        self._box_warned: set[tuple[str, str]] = set()

    def reset(self) -> None:
        """Back to before generation 0."""
        self.state = SearchState()
        self.seen, self.front = set(), []

    def adopt(self, state: SearchState) -> None:
        """Take over a checkpointed state.

        Raises:
            CheckpointError: It refers to keys whose results the journal does not hold.
        """
        needed = state.evaluated_keys + [m.key for m in state.population]
        missing = [k for k in needed if k not in self.cache]
        if missing:
            raise CheckpointError(f"checkpoint refers to {len(missing)} result(s) missing from the journal")
        self.state = state
        self.seen = set(state.evaluated_keys)
        self.front = pareto_front([self.cache[k] for k in state.evaluated_keys], self.problem.objectives)

    def records(self) -> Iterator[EvalRecord]:
        """Records of the keys recorded so far, in the order they were first met."""
        return (self.cache[k] for k in self.state.evaluated_keys)

    def record(self, keys: Sequence[str], journaled: set[str]) -> None:
        """Count a generation's proposals (cache hits, new records by status) and update the front.

        Args:
            keys: Keys of the proposals, in order.
            journaled: Those that were already in the journal before this generation's evaluation.
        """
        counters, new = self.state.counters, []
        for key in keys:
            if key in self.seen:
                counters["cache_hits"] += 1
                continue
            self.seen.add(key)
            self.state.evaluated_keys.append(key)
            record = self.cache[key]
            new.append(record)
            self.replayed += key in journaled
            counters["evaluations"] += 1
            counters["full_evaluations"] += record.status != "precheck_infeasible"
            counters["precheck_rejected"] += record.status == "precheck_infeasible"
            counters["failed"] += record.status == "failed"
            counters["feasible"] += record.feasible
            counters["low_fidelity"] += record.rung is not None and record.status == "ok"
        if new:
            self.front = pareto_front(self.front + new, self.problem.objectives)

    def box_warnings(self) -> list[str]:
        """Front values beyond an objective's box, each (objective, side) said once per session."""
        objectives = {o.name: o for o in self.problem.objectives}
        texts = []
        for excess in box_excess(self.front, self.problem.objectives):
            if (excess.objective, excess.side) not in self._box_warned:
                self._box_warned.add((excess.objective, excess.side))
                texts.append(excess.describe(objectives[excess.objective]))
        return texts

    def finish_generation(self, generation: int, wall_s: float) -> dict[str, Any]:
        """Close ``generation``: append and return its history row."""
        state, objectives = self.state, self.problem.objectives
        population = [self.cache[m.key] for m in state.population]
        counters = state.counters
        state.elapsed_s += wall_s
        row: dict[str, Any] = {"generation": generation}
        row.update({name: counters[name] for name in ("evaluations", "full_evaluations", "precheck_rejected")})
        row.update({name: counters[name] for name in ("failed", "cache_hits", "low_fidelity")})
        row["pop_feasible"] = sum(r.feasible for r in population)
        row["feasible_total"] = counters["feasible"]
        row["front_size"] = len(self.front)
        row["hypervolume"] = hypervolume(self.front, objectives)
        row.update(best_values(self.front, objectives))
        charged = (charged_violation(r, objectives, self.problem.constraints) for r in population)
        row["min_violation"] = min(charged, default=None)
        row.update({"wall_s": wall_s, "elapsed_s": state.elapsed_s, "hv_reference": reference_description(objectives)})
        state.history.append(row)
        state.next_generation = generation + 1
        return row

    def infeasibility_report(self) -> str:
        """A warning for a first generation without any feasible candidate."""
        constraints = self.problem.constraints
        records = list(self.records())
        best = min((r.violation for r in records), default=math.inf)
        per_constraint = []
        for c in constraints:
            amounts = [r.violations[c.label] for r in records if c.label in r.violations]
            broken = sum(1 for a in amounts if a > 0)
            unmeasured = len(records) - len(amounts)
            extra = f", {unmeasured} not measured" if unmeasured else ""
            per_constraint.append(f"{c.label} broken by {broken}/{len(records)}{extra}")
        return (
            "no feasible candidate in generation 0: the constraint set may be impossible to meet "
            f"({'; '.join(per_constraint) or 'no constraints: all candidates failed or had NaN objectives'}); "
            f"smallest total violation {best:.4g}. The search continues and moves towards lower violation."
        )
