"""Turning proposed genomes into journaled results: cache, precheck, dispatch, retries.

For each distinct key of a batch, in order:

1. a key already in the cache (the journal) is not evaluated again;
2. ``precheck`` runs here, in the search process; if a cheap constraint fails, the candidate is
   journaled as ``precheck_infeasible`` and never reaches ``evaluate``;
3. the rest go to the backend. Results are journaled (append + fsync) the moment they arrive,
   in whatever order they finish; the loop reads them back by key, so arrival order never
   changes the search.

With multi-fidelity search (``SearchConfig.promote``; :mod:`nas.fidelity`) step 3 runs in rungs:
every new candidate at the lowest fidelity first, results journaled in the rung's own journal,
then only the best share at the next rung and finally at full fidelity; the others are recorded
in the main journal with their lower-fidelity result.

Failures: an exception in ``evaluate`` is retried; a worker death with an unknown culprit (a loky
pool breaks as a whole) sends the tasks that were in flight to a suspect queue, whose tasks then
run one at a time, so a crash there is attributable. After ``retries`` retries a candidate is
journaled as ``failed`` (infeasible, with the reason) and the search goes on. A ``UserError``
raised by ``evaluate`` or a broken return value stops the search (nothing is journaled for it).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from common.errors import UserError
from nas.backends import Backend, WorkerLost, utc_now
from nas.config import SearchConfig
from nas.cost_model import CostModel
from nas.fidelity import AtRung, promoted, promotion_count
from nas.journal import Journal
from nas.precheck_memo import PrecheckMemo
from nas.problem import SearchProblem
from nas.records import (
    EvalRecord,
    ProblemContractError,
    cheap_violations,
    failed_record,
    make_record,
    precheck_record,
)

log = logging.getLogger(__name__)


@dataclass
class _Task:
    key: str
    genome: list[int]
    cheap: dict[str, float] = field(default_factory=dict)
    cheap_info: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0
    last_error: str = ""
    rung: int | None = None  # the fidelity it is being evaluated at (None: full)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


class DeadlineReached(Exception):
    """The search's time budget ran out during a batch: nothing more is submitted, what is in flight is abandoned."""


class Evaluator:
    """Fills the result cache for batches of genomes, journaling every new result.

    Attributes:
        cache: Records by key (loaded from the journal, then grown).
        submitted: ``evaluate`` calls started in this session (retries included).
        recorded: Records journaled in this session.
    """

    def __init__(
        self,
        problem: SearchProblem,
        config: SearchConfig,
        journal: Journal,
        cache: dict[str, EvalRecord],
        backend: Backend,
        rungs: Sequence[tuple[Journal, dict[str, EvalRecord]]] = (),
        memo: PrecheckMemo | None = None,
    ) -> None:
        """Bind the collaborators; nothing runs yet.

        ``rungs``: per lower fidelity, its journal and the records it holds (multi-fidelity search only).
        ``memo``: the search's precheck answers (default: a fresh one kept in memory).
        """
        self.problem, self.config, self.journal, self.cache, self.backend = problem, config, journal, cache, backend
        self.rungs = list(rungs)
        self.submitted = 0
        self.recorded = 0
        self.memo = memo if memo is not None else PrecheckMemo(problem, None)
        self.deadline_s: float | None = None  # time.monotonic() at which the budget runs out (None: no budget)

    def evaluate(
        self, genomes: Sequence[Sequence[int]], keys: Sequence[str], generation: int, seen: Collection[str] = ()
    ) -> None:
        """Make sure every key has a record in :attr:`cache`.

        Args:
            genomes: Genomes as bred (canonicalised here).
            keys: Their keys (``problem.key``), aligned with ``genomes``.
            generation: Stored in new records.
            seen: Keys recorded by earlier generations (multi-fidelity: the others form this generation's rungs).
        """
        if self.rungs:
            self._evaluate_in_rungs(genomes, keys, generation, seen)
            return
        tasks: list[_Task] = []
        queued: set[str] = set()
        for genome, key in zip(genomes, keys, strict=True):
            if key in self.cache or key in queued:
                continue
            queued.add(key)
            task = self._precheck(key, self.problem.canonical(genome), generation)
            if task is not None:
                tasks.append(task)
        if tasks:
            self._dispatch(tasks, generation)

    def _evaluate_in_rungs(
        self, genomes: Sequence[Sequence[int]], keys: Sequence[str], generation: int, seen: Collection[str]
    ) -> None:
        """Successive halving over the generation's new candidates (see :mod:`nas.fidelity`).

        Replays exactly: a rung result already journaled is reused, the promotions are decided
        again from the same results, and only missing results are evaluated.
        """
        alive: list[_Task] = []
        queued: set[str] = set()
        for genome, key in zip(genomes, keys, strict=True):
            if key in seen or key in queued:
                continue
            queued.add(key)
            final, canonical = self.cache.get(key), self.problem.canonical(genome)
            if final is not None and final.status == "precheck_infeasible":
                continue
            # a replayed candidate is prechecked again (not stored twice): promotion needs its cheap metrics' names
            task = (
                self._precheck(key, canonical, generation)
                if final is None
                else _Task(key, canonical, *self._cheap(key, canonical))
            )
            if task is not None:
                alive.append(task)
        cheap = {name for t in alive for name in t.cheap}  # the same at every fidelity: promotion ignores them
        measured = [o.name for o in self.problem.objectives if o.name not in cheap]
        share = float(self.config.promote)
        for rung, (_, results) in enumerate(self.rungs):
            self._run([t for t in alive if t.key not in results and not self._failed_at(t.key, rung)], generation, rung)
            done = [results[t.key] for t in alive if t.key in results]
            keep = promoted(done, self.problem.objectives, self.problem.constraints, share, measured)
            for record in done:
                if record.key not in keep and record.key not in self.cache:
                    self._store(record)  # final: the candidate is ranked with its lower-fidelity result
            alive = [t for t in alive if t.key in keep]
        self._run([t for t in alive if t.key not in self.cache], generation, None)

    def expected_s(self, genomes: Sequence[Sequence[int]], keys: Sequence[str], seen: Collection[str]) -> float | None:
        """Seconds the evaluation of this batch is expected to take (:mod:`nas.cost_model`), or ``None``.

        Only candidates that will run count: not those already recorded or journaled, nor those
        the precheck rejects. Each fidelity is fitted on what was trained at it so far; with
        multi-fidelity search every promotion is assumed to take the most expensive share (the
        safe side).

        Returns:
            ``None`` without ``problem.cost_metric`` or before :data:`nas.cost_model.MIN_POINTS`
            candidates were trained at some fidelity the batch needs.
        """
        metric = self.problem.cost_metric
        if metric is None:
            return None
        costs: list[float] = []
        queued: set[str] = set()
        for genome, key in zip(genomes, keys, strict=True):
            if key in seen or key in self.cache or key in queued:
                continue
            queued.add(key)
            canonical = self.problem.canonical(genome)
            if self.memo.passes(key, canonical):  # one the precheck rejects is never trained
                costs.append(_number(self._cheap(key, canonical)[0].get(metric)))
        if not costs:
            return 0.0
        costs.sort(key=lambda c: c if math.isfinite(c) else -math.inf, reverse=True)
        total_s, count = 0.0, len(costs)
        for stage, rung in enumerate([*range(len(self.rungs)), None]):
            model = self._cost_model(rung, metric)
            if model is None:
                return None
            if stage > 0:
                count = promotion_count(count, float(self.config.promote))
            total_s += model.batch_s(costs[:count], self.backend.parallelism)
        return total_s

    def _failed_at(self, key: str, rung: int) -> bool:
        record = self.cache.get(key)
        return record is not None and record.status == "failed" and record.rung == rung

    def _run(self, tasks: list[_Task], generation: int, rung: int | None) -> None:
        """Dispatch ``tasks`` at fidelity ``rung`` (None: full)."""
        for task in tasks:
            task.rung, task.attempts, task.last_error = rung, 0, ""
        if tasks:
            self._dispatch(tasks, generation)

    def _cheap(self, key: str, genome: list[int]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The precheck's metrics and info of ``genome`` (computed once per search: :class:`PrecheckMemo`)."""
        return self.memo.get(key, genome)

    def _precheck(self, key: str, genome: list[int], generation: int) -> _Task | None:
        cheap, info = self._cheap(key, genome)
        if sum(cheap_violations(cheap, self.problem.constraints).values()) > 0:
            record = precheck_record(
                key, genome, cheap, self.problem.constraints, info=info, generation=generation, provenance=self._where()
            )
            self._store(record)
            return None
        return _Task(key, genome, cheap, info)

    def _dispatch(self, tasks: list[_Task], generation: int) -> None:
        queue, suspects = deque(self._ordered(tasks)), deque()
        inflight: dict[Any, tuple[_Task, bool]] = {}
        while queue or suspects or inflight:
            left_s = self._left_s()
            if left_s is not None and left_s <= 0:
                raise DeadlineReached(f"{len(queue) + len(suspects)} queued and {len(inflight)} running")
            self._fill(queue, suspects, inflight)
            for handle in self.backend.wait_any(list(inflight), self._left_s()):
                task, alone = inflight.pop(handle)
                self._settle(task, handle, alone, queue, suspects, generation)

    def _left_s(self) -> float | None:
        """Seconds until the deadline (None: no budget)."""
        return None if self.deadline_s is None else self.deadline_s - time.monotonic()

    def _ordered(self, tasks: list[_Task]) -> list[_Task]:
        """``tasks`` in dispatch order: by decreasing ``problem.cost_metric`` (unknown costs first).

        Longest processing time first: on a few workers the batch then ends with short tasks
        filling in beside the long ones, instead of a long task started last while the others wait
        for it. But when the cost model expects the batch to end after the deadline, the cheapest
        go first, so that as many as possible finish in time. Ties keep proposal order.
        """
        metric = self.problem.cost_metric
        if metric is None:
            return tasks

        def cost(task: _Task) -> float:
            value = _number(task.cheap.get(metric))
            return math.inf if math.isnan(value) else value

        order = sorted(tasks, key=cost, reverse=True)
        left_s, rung = self._left_s(), tasks[0].rung if tasks else None
        model = self._cost_model(rung, metric) if left_s is not None else None
        if model is not None and model.batch_s([cost(t) for t in order], self.backend.parallelism) > left_s:
            order.reverse()
        return order

    def _cost_model(self, rung: int | None, metric: str) -> CostModel | None:
        """Seconds against ``metric``, fitted on what was trained at fidelity ``rung`` (None: full) so far."""
        if rung is None:
            done = [r for r in self.cache.values() if r.status == "ok" and r.rung is None]
        else:
            done = list(self.rungs[rung][1].values())
        return CostModel.fit([_number(r.metrics.get(metric)) for r in done], [r.wall_s for r in done])

    def _fill(self, queue: deque, suspects: deque, inflight: dict) -> None:
        """Submit work: suspects one at a time on an idle backend, otherwise up to the window."""
        if suspects:
            if not inflight:
                task = suspects.popleft()
                inflight[self._submit(task)] = (task, True)
            return
        while queue and len(inflight) < self.backend.window:
            task = queue.popleft()
            inflight[self._submit(task)] = (task, self.backend.window == 1)

    def _submit(self, task: _Task) -> Any:
        self.submitted += 1
        problem = self.problem if task.rung is None else AtRung(self.problem, task.rung)
        return self.backend.submit(problem, task.genome)

    def _settle(self, task: _Task, handle: Any, alone: bool, queue: deque, suspects: deque, generation: int) -> None:
        try:
            out = self.backend.outcome(handle, alone)
        except WorkerLost as exc:
            if not exc.attributable:
                log.warning("%s was in flight when a worker died; re-running it alone to find the culprit", task.key)
                suspects.append(task)
                return
            self._failed_attempt(task, str(exc), suspects, generation, final=exc.final)
            return
        if out["ok"]:
            self._complete(task, out, generation)
        elif out["kind"] == "user_error":
            raise UserError(out["error"])
        elif out["kind"] == "contract":
            raise ProblemContractError(out["error"])
        else:
            log.warning("evaluation of %s raised %s\n%s", task.key, out["error"], out.get("traceback", ""))
            self._failed_attempt(task, out["error"], queue, generation)

    def _failed_attempt(
        self, task: _Task, error: str, retry_queue: deque, generation: int, final: bool = False
    ) -> None:
        task.attempts += 1
        task.last_error = error
        if task.attempts <= self.config.retries and not final:
            retry_queue.append(task)
            return
        reason = f"failed {task.attempts} time(s); last: {error}"
        log.warning("candidate %s recorded as failed: %s", task.key, reason)
        where = self._where()
        record = failed_record(
            task.key,
            task.genome,
            reason,
            generation=generation,
            attempts=task.attempts,
            provenance=where,
            rung=task.rung,
        )
        self._store(record)  # final, also at a lower fidelity: a failed candidate is not promoted

    def _complete(self, task: _Task, out: dict[str, Any], generation: int) -> None:
        metrics = {**task.cheap, **out["metrics"]}
        where = {**self._where(), "host": out["host"], "pid": out["pid"]}
        record = make_record(
            task.key,
            task.genome,
            metrics,
            self.problem.objectives,
            self.problem.constraints,
            info={**task.cheap_info, **out["info"]},
            generation=generation,
            attempts=task.attempts + 1,
            wall_s=out["wall_s"],
            provenance=where,
            rung=task.rung,
        )
        if task.rung is None:
            self._store(record)
        else:
            journal, results = self.rungs[task.rung]
            journal.append(record)
            results[record.key] = record

    def _store(self, record: EvalRecord) -> None:
        self.journal.append(record)
        self.cache[record.key] = record
        self.recorded += 1
        log.debug("recorded %s: %s", record.key, record.status)

    def _where(self) -> dict[str, Any]:
        return {"backend": self.backend.name, "finished_at": utc_now()}
