"""The public entry point: :func:`run_search`, a resumable, crash-safe search loop.

Per generation: propose (the only random step, on the search's own stream), evaluate through
the journal-backed cache, select, then write ``history.csv``, ``pareto.csv`` and
``checkpoint.json`` (each atomically). Every finished evaluation was already journaled when it
arrived.

Resume and recovery. The search is a deterministic function of (seed, settings, results), and
results are looked up by key in the journal. A resume therefore either

* continues from the checkpoint (population, crowding, counters, history, RNG states), or
* when the checkpoint is missing, unreadable, written for a later generation than requested, or
  refers to results the journal lost, replays from generation 0 with the journal as cache:
  journaled candidates cost nothing, and the replay reaches the same state.

Either way the final front and history equal an uninterrupted run's (timing columns aside), and
no journaled candidate is evaluated again.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.atomic import atomic_write_json
from common.errors import UserError
from common.progress import progress as progress_bar
from nas.backends import make_backend
from nas.checkpoint import CheckpointError, load_checkpoint, save_checkpoint, write_settings
from nas.config import SearchConfig
from nas.evaluation import DeadlineReached, Evaluator
from nas.ga import build_toolbox
from nas.history import column_legend, history_columns, pareto_columns, pareto_rows, write_csv
from nas.hypervolume import normalisation_json, pareto_front
from nas.journal import Journal
from nas.loop_state import LoopState
from nas.nsga2 import NSGA2
from nas.precheck_memo import PrecheckMemo
from nas.problem import SearchProblem, problem_signature, validate_problem
from nas.random_search import RandomSearch
from nas.result import SearchResult
from nas.rng import SearchRandom, global_rng_states, restore_global_rng_states, seed_global_rngs
from nas.runfolder import SearchPaths, check_start, folder_lock

log = logging.getLogger(__name__)

GenerationCallback = Callable[[dict[str, Any]], "bool | None"]
NEXT_WALL_WINDOW = 3  # generations whose slowest sets the expected time of the next one


def next_generation_s(history: list[dict[str, Any]], window: int = NEXT_WALL_WINDOW) -> float:
    """Seconds to expect the next generation to take: the slowest of the last ``window`` generations.

    A generation's time follows the sizes of the models its offspring train, not their count: in
    the built-in first run the five generations took 80, 194, 129, 69 and 162 s, so the last
    generation alone (69 s) predicted the next one (162 s) 2.3x too short and the search overran
    its budget. The slowest recent generation errs on the safe side (a budget stops a generation
    early rather than late).

    Args:
        history: The search's history rows so far (each with ``wall_s``).
        window: How many of the last generations to look at.

    Returns:
        The expected seconds (0.0 before the first generation).
    """
    return max((float(row["wall_s"]) for row in history[-window:]), default=0.0)


def run_search(
    problem: SearchProblem,
    config: SearchConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    on_generation: GenerationCallback | None = None,
    before_generation: GenerationCallback | None = None,
    budget_s: float | None = None,
) -> SearchResult:
    """Run (or resume) a search and write its files under ``<run_dir>/nas/``.

    Args:
        problem: What to search (see :class:`nas.problem.SearchProblem`).
        config: How to search.
        run_dir: The run folder; ``nas/`` inside it holds journal, checkpoint, history and Pareto set.
        resume: Continue the search in ``run_dir`` (also to extend it after raising ``generations``).
        progress: Show a tqdm bar per generation.
        on_generation: Called with each new history row after its checkpoint is written; returning
            True stops the search there (it can be resumed later). The row it gets also holds
            ``next_wall_s``, the time a budget should keep for the next generation: the next batch is
            bred first and, with ``problem.cost_metric``, its candidates' costs go through the cost
            model fitted on the evaluations so far (:meth:`Evaluator.expected_s`); otherwise, or
            before enough evaluations, the slowest recent generation's (:func:`next_generation_s`).
        before_generation: Called with the last history row (an empty dict before generation 0)
            before each generation, with ``next_wall_s`` too; returning True stops the search without
            running it (a resumed session whose time budget is already spent).
        budget_s: Seconds of search across sessions (``None``: no budget). At the deadline the
            search stops where it is, mid-generation if need be: nothing more is started, the
            trainings in flight are stopped (loky; on dask, tasks already running finish on the
            cluster and their results are dropped), every finished one is journaled and
            put on the front (``pareto.csv``), and the checkpoint keeps the time spent, so that
            ``resume=True`` with a larger budget continues that generation exactly and with the same
            budget stops at once. The last generation's dispatch goes cheapest first when the
            cost model expects it to end after the deadline.

    Returns:
        The Pareto set, history and counts.

    Raises:
        UserError: Resume without a search, a new search over an existing one, changed settings on
            resume, an unreachable dask scheduler, a ``UserError`` from ``evaluate``, or every
            evaluation of generation 0 failed (a broken ``evaluate`` or environment).
        ValueError: An invalid problem definition.
        TypeError: A problem that cannot be pickled for a process backend.
        ProblemContractError: ``evaluate``/``precheck``/``key`` returned something unusable.
    """
    validate_problem(problem)
    if budget_s is not None and (
        isinstance(budget_s, bool) or not isinstance(budget_s, int | float) or not 0 < budget_s < math.inf
    ):
        raise ValueError(f"budget_s must be None (no budget) or a number of seconds > 0, got {budget_s!r}")
    if config.promote is not None and not problem.fidelities:
        raise ValueError(
            f"promote={config.promote} (multi-fidelity) needs a problem with lower fidelities: "
            f"{type(problem).__name__}.fidelities is empty"
        )
    if config.backend != "inline":
        _check_picklable(problem, config.backend)
    paths = SearchPaths(Path(run_dir))
    settings = {"config": config.relevant(), "problem": problem_signature(problem)}
    notes = check_start(paths, settings, resume)
    backend = make_backend(config)  # connect first: an unreachable scheduler leaves no files behind
    try:
        with folder_lock(paths):
            if not resume or notes:
                write_settings(paths.settings, settings, config.to_dict())
            journal = Journal(paths.journal)
            cache, journal_notes = journal.load()
            rungs = []
            for rung in range(len(problem.fidelities) if config.promote is not None else 0):
                rung_journal = Journal(paths.rung_journal(rung))
                results, rung_notes = rung_journal.load()
                rungs.append((rung_journal, results))
                journal_notes += rung_notes
            memo = PrecheckMemo(problem, paths.prechecks, resume)
            loop = _Loop(problem, config, paths, settings, cache, notes + journal_notes, memo)
            loop.restore(resume)
            evaluator = Evaluator(problem, config, journal, cache, backend, rungs, memo)
            completed = loop.run(evaluator, progress, on_generation, before_generation, budget_s)
    except BaseException as exc:
        backend.close(abort=True)
        if isinstance(exc, KeyboardInterrupt):
            log.warning("search interrupted; finished evaluations are journaled: resume with --resume")
        raise
    backend.close(abort=loop.partial is not None)  # trainings cut by the deadline are stopped, not awaited
    return loop.result(completed)


def _check_picklable(problem: SearchProblem, backend: str) -> None:
    try:
        import cloudpickle as pickler  # what loky and dask use
    except ImportError:  # pragma: no cover
        import pickle as pickler
    try:
        pickler.dumps(problem)
    except Exception as exc:
        raise TypeError(
            f"backend {backend!r} sends the problem to worker processes, but it cannot be pickled "
            f"({type(exc).__name__}: {exc}); keep only plain data on it (paths, settings) or use backend 'inline'"
        ) from None


class _Loop:
    """The generation loop over a :class:`LoopState`."""

    def __init__(
        self,
        problem: SearchProblem,
        config: SearchConfig,
        paths: SearchPaths,
        settings: dict[str, Any],
        cache: dict,
        notes: list[str],
        memo: PrecheckMemo,
    ) -> None:
        self.problem, self.config, self.paths, self.settings = problem, config, paths, settings
        self.cache, self.notes = cache, notes
        self.rng = SearchRandom(config.seed)
        toolbox = build_toolbox(problem, config)
        toolbox.register("feasible", lambda ind: memo.passes(ind.key, problem.canonical(list(ind))))
        self.strategy = (
            NSGA2(toolbox, config, problem.objectives, problem.constraints)
            if config.strategy == "nsga2"
            else RandomSearch(toolbox, config)
        )
        self.loop = LoopState(problem, cache)
        self.fidelities = list(problem.fidelities) if config.promote is not None else None
        self.evaluate_calls = 0
        self.warnings: list[str] = []
        self.partial: dict[str, int] | None = None  # the generation the deadline cut: finished / proposed
        self.budget_stop = False
        self._saved_rng: dict[str, Any] = {}  # the RNG states the checkpoint holds (before the next proposal)
        self._bred_s = 0.0  # seconds the last breeding took

    def restore(self, resume: bool) -> None:
        """Continue from the checkpoint when it is usable, else start at generation 0 (replay)."""
        if resume:
            try:
                state, rng = load_checkpoint(self.paths.checkpoint, self.settings)
                if state.next_generation > self.config.generations + 1:
                    done = state.next_generation - 1
                    raise UserError(
                        f"--resume: the search in {self.paths.run_dir} has run generations 0..{done}, more than the "
                        f"{self.config.generations} asked for; nothing was run or rewritten (its outputs stay as they "
                        f"are): ask for more than {done} generations to extend it"
                    )
                self.loop.adopt(state)
                self.rng.load_json(rng["python"])
                restore_global_rng_states(rng)
                self._saved_rng = self._rng_json()
                return
            except CheckpointError as exc:
                if self.paths.checkpoint.exists():
                    self._note(f"{exc}: replaying the search from generation 0 with the journal as cache")
        self.loop.reset()
        seed_global_rngs(self.config.seed)
        self._saved_rng = self._rng_json()

    def _note(self, text: str) -> None:
        log.warning(text)
        self.notes.append(text)

    def run(
        self,
        evaluator: Evaluator,
        progress: bool,
        on_generation: GenerationCallback | None,
        before_generation: GenerationCallback | None = None,
        budget_s: float | None = None,
    ) -> bool:
        """Run generations until ``config.generations``; False if stopped by a callback or the budget."""
        total = self.config.generations + 1
        state = self.loop.state
        session_start, elapsed_before = time.monotonic(), state.elapsed_s
        if budget_s is not None:
            evaluator.deadline_s = session_start + budget_s - elapsed_before
        bar = progress_bar(total=total, initial=state.next_generation, disable=not progress, unit="gen", desc="nas")
        with bar:
            offspring = self._propose() if state.next_generation < total else []
            while state.next_generation < total:
                if evaluator.deadline_s is not None and time.monotonic() >= evaluator.deadline_s:
                    # a resumed session whose budget is spent: the bred batch shows what its cut left finished
                    self._stop_for_budget(offspring, elapsed_before + time.monotonic() - session_start)
                    return False
                if before_generation is not None and before_generation(self._with_next_wall(evaluator, offspring)):
                    self._write_outputs()
                    return False
                try:
                    row = self._generation(evaluator, offspring)
                except DeadlineReached:
                    self._stop_for_budget(offspring, elapsed_before + time.monotonic() - session_start)
                    return False
                bar.update(1)
                bar.set_postfix(hv=f"{row['hypervolume']:.4f}", feasible=row["feasible_total"], refresh=False)
                # the next batch is bred now (after the checkpoint, so a resume breeds it again the same way):
                # its candidates' costs predict the next generation's time for the callback
                offspring = self._propose() if state.next_generation < total else []
                if on_generation is not None and on_generation(self._with_next_wall(evaluator, offspring)):
                    return state.next_generation >= total
        self._write_outputs()
        return True

    def _stop_for_budget(self, offspring: list, elapsed_s: float) -> None:
        """The deadline came: keep the time spent and what finished, as a kill would (``offspring``: the cut batch).

        The checkpoint is written again at the same generation boundary (population, counters,
        RNG states as before the next generation was bred) with the session's whole time added,
        so that a resume with the same budget stops at once and one with a larger budget
        continues the generation from the journal. The finished candidates of a cut generation
        join the front in ``pareto.csv``; the generation gets no history row until it is complete.
        """
        state = self.loop.state
        state.elapsed_s = elapsed_s
        self.budget_stop = True
        keys = list(dict.fromkeys(ind.key for ind in offspring))
        finished = [k for k in keys if k in self.cache and k not in self.loop.seen]
        if keys:
            self.partial = {"generation": state.next_generation, "finished": len(finished), "proposed": len(keys)}
            records = [*self.loop.records(), *(self.cache[k] for k in finished)]
            self.loop.front = pareto_front(records, self.problem.objectives)
            log.warning(
                "time budget reached in generation %d: %d of its %d candidates recorded (journaled, on the front); "
                "the rest were stopped. --resume with a larger budget continues the generation",
                state.next_generation,
                len(finished),
                len(keys),
            )
        self._write_outputs()
        save_checkpoint(
            self.paths.checkpoint, state, self.settings, self._saved_rng, normalisation_json(self.problem.objectives)
        )

    def _propose(self) -> list:
        """The next generation's offspring (the only step that draws from the search's random stream).

        Its time (prechecks included) is counted in that generation's ``wall_s``.
        """
        state, start = self.loop.state, time.perf_counter()
        with self.rng.active():
            offspring = self.strategy.propose(state.population, self.cache, self.loop.seen, state.next_generation)
        self._bred_s = time.perf_counter() - start
        return offspring

    def _with_next_wall(self, evaluator: Evaluator, offspring: list) -> dict[str, Any]:
        """The last history row with ``next_wall_s``: the offspring's expected time, else :func:`next_generation_s`.

        An empty dict before generation 0.
        """
        history = self.loop.state.history
        if not history:
            return {}
        expected = evaluator.expected_s(offspring, [ind.key for ind in offspring], self.loop.seen)
        next_wall_s = next_generation_s(history) if expected is None else expected
        return dict(history[-1]) | {"next_wall_s": next_wall_s, "elapsed_s": self.loop.state.elapsed_s}

    def _generation(self, evaluator: Evaluator, offspring: list) -> dict[str, Any]:
        state, g = self.loop.state, self.loop.state.next_generation
        start = time.perf_counter() - self._bred_s  # breeding, done before the budget was asked, counts too
        keys = [ind.key for ind in offspring]
        self._report_repeats(g, [ind for ind in offspring if ind.repeated])
        journaled = {k for k in keys if k in self.cache}
        calls_before = evaluator.submitted
        try:
            evaluator.evaluate(offspring, keys, g, self.loop.seen)
        finally:  # also when the deadline cuts the generation
            self.evaluate_calls += evaluator.submitted - calls_before
        self.loop.record(keys, journaled)
        for warning in self.loop.box_warnings():
            self._warn(warning)
        self._check_first_generation(g)
        state.population = self.strategy.survive(state.population, offspring, self.cache)
        wall = time.perf_counter() - start
        row = self.loop.finish_generation(g, wall)
        self._write_outputs()
        self._saved_rng = self._rng_json()
        save_checkpoint(
            self.paths.checkpoint, state, self.settings, self._saved_rng, normalisation_json(self.problem.objectives)
        )
        return row

    def _report_repeats(self, generation: int, repeated: list) -> None:
        """Say when proposals are spent on candidates already recorded although every novelty retry was used."""
        if not repeated:
            return
        self._warn(
            f"generation {generation}: {len(repeated)} proposal(s) still repeated a recorded candidate after "
            f"{self.config.novelty_retries} novelty retries (e.g. {repeated[0].key}): they reuse its result and spend "
            "budget without a new evaluation (history column cache_hits). The population may have converged or the "
            "space be nearly exhausted; a larger novelty_retries or mut_indpb explores further"
        )

    def _warn(self, text: str) -> None:
        log.warning(text)
        self.warnings.append(text)

    def _rng_json(self) -> dict[str, Any]:
        return {"python": self.rng.to_json(), **global_rng_states()}

    def _check_first_generation(self, generation: int) -> None:
        if generation != 0:
            return
        counters = self.loop.state.counters
        if counters["full_evaluations"] >= 2 and counters["failed"] == counters["full_evaluations"]:
            first = next(r.reason for r in self.loop.records() if r.status == "failed")
            raise UserError(
                f"every evaluation of generation 0 failed ({counters['failed']} candidates; first: {first}). "
                f"Fix the evaluation, then start a new run folder (the failures are journaled in {self.paths.journal})"
            )
        if counters["feasible"] == 0:
            log.warning(self.loop.infeasibility_report())

    def _write_outputs(self) -> None:
        objectives, constraints = self.problem.objectives, self.problem.constraints
        descriptions, fidelities = dict(self.problem.metric_descriptions()), self.fidelities
        write_csv(self.paths.history, history_columns(objectives), self.loop.state.history)
        columns = pareto_columns(objectives, constraints, list(descriptions), fidelities)
        write_csv(self.paths.pareto, columns, self.pareto())
        legend = column_legend(objectives, constraints, descriptions, fidelities)
        atomic_write_json(self.paths.folder / "columns.json", legend)

    def pareto(self) -> list[dict[str, Any]]:
        """Rows of ``pareto.csv``."""
        reported = list(self.problem.metric_descriptions())
        objectives, constraints = self.problem.objectives, self.problem.constraints
        return pareto_rows(self.loop.front, objectives, constraints, reported, self.fidelities)

    def result(self, completed: bool) -> SearchResult:
        """The :class:`SearchResult` of this session."""
        state = self.loop.state
        return SearchResult(
            run_dir=self.paths.run_dir,
            pareto=self.pareto(),
            history=[dict(row) for row in state.history],
            n_evaluations=state.counters["evaluations"],
            n_full_evaluations=state.counters["full_evaluations"],
            n_cache_hits=state.counters["cache_hits"],
            n_replayed=self.loop.replayed,
            n_evaluate_calls=self.evaluate_calls,
            wall_s=state.elapsed_s,
            completed=completed,
            budget_stop=self.budget_stop,
            partial_generation=self.partial,
            recovery=list(self.notes),
            warnings=list(self.warnings),
        )
