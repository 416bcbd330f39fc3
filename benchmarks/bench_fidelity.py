"""The real problem at equal wall clock: NSGA-II with and without multi-fidelity, random search, Optuna NSGA-II.

Usage: python benchmarks/bench_fidelity.py [--fsdd PATH] [--minutes 20] [--seeds 3] [--first-seed 0] [--population 8]
       [--variants nsga2 nsga2-mf nsga2-uniform nsga2-step random optuna] [--promote 0.25] [--low-epochs 1]
       [--out runs/bench-fidelity]
       [--dataset synthetic --proxy-epochs 2]  (a quick check of the script on the built-in data)

Every contestant searches FSDD's mel2d space for the same objectives (proxy validation accuracy,
latency on the shipped table, size), constraint (latency <= 1 ms) and hypervolume reference, with
2 workers and the default 4-epoch proxy, for ``--minutes`` of wall clock:

* ``nsga2``: this search (``--mode nas`` with ``--max-minutes``);
* ``nsga2-mf``: the same with ``--promote`` (every new candidate trained ``--low-epochs`` first, the
  best share on to the full proxy);
* ``nsga2-uniform``, ``nsga2-step``: the same with the other variation operators
  (``nas.search.variation``; the default is ``sbx``);
* ``random``: this search's random strategy, same budget;
* ``optuna``: Optuna's ``NSGAIISampler`` (population ``--population``, its defaults otherwise) driving
  the same evaluation function (``AudioProblem.precheck`` then ``evaluate``), ``suggest_int`` per
  gene, constraints through ``Trial.set_constraint``, candidates that break the table-latency bound
  before training not trained (as in this search), repeats of a key read back (also those the other
  process trained), and ``timeout`` = the budget. It runs as 2 processes sharing a journal file
  (``JournalStorage``), each with its own sampler seed: Optuna's documented way to run in parallel;
  ``n_jobs=2`` would run two trainings as threads of one process, where they contend for the GIL.

Hypervolume is computed here for all from the records with one function
(:func:`nas.hypervolume.hypervolume`, the search's own normalised box), twice: ``hv@budget`` over
the records finished by the deadline (start + ``--minutes``, from each record's ``finished_at``),
the figure to compare, and ``hv`` over all records at the end. The contestants stop differently:
this search stops at the deadline, mid-generation if need be (its trainings in flight are
stopped), Optuna stops starting trials at the deadline and finishes the ones in flight;
``hv@budget`` ignores what Optuna did after the deadline. For ``nsga2-mf`` it is
given twice: over the front as the search reports it (candidates that were not promoted keep their
1-epoch accuracy, a pessimistic estimate) and over the fully trained candidates only.
``evals/h``: candidates trained per hour of wall clock (any fidelity), ``full/h``: at the full proxy.

Needs the ``bench`` extra (``pip install -e .[bench]``) for Optuna.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from nas.backends import utc_now
from nas.hypervolume import hypervolume, pareto_front
from nas.journal import Journal
from nas.records import EvalRecord, constraint_violations, make_record
from pipeline.config import build_config
from pipeline.data_stage import prepare_features
from pipeline.nas_stage import build_problem, run_nas
from pipeline.run_folder import init_run_folder

DEFAULT_FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"
VARIANTS = ("nsga2", "nsga2-mf", "nsga2-uniform", "nsga2-step", "random", "optuna")


def config(fsdd: Path, seed: int, variant: str, args: argparse.Namespace):
    nas: dict[str, Any] = {
        "strategy": "random" if variant == "random" else "nsga2",
        "population": args.population,
        "generations": 1000,  # the wall clock ends the search
        "max_minutes": args.minutes,
    }
    if variant == "nsga2-mf":
        nas["search"] = {"promote": args.promote}
        nas["low_epochs"] = args.low_epochs
    if variant in ("nsga2-uniform", "nsga2-step"):
        nas["search"] = {"variation": variant.removeprefix("nsga2-")}
    if args.proxy_epochs is not None:
        nas["proxy"] = {"epochs": args.proxy_epochs}
    data = {"dataset": "fsdd", "path": str(fsdd)} if args.dataset == "fsdd" else {"dataset": args.dataset}
    overrides = {
        "data": data,
        "run": {"seed": seed, "jobs": 2, "progress": False},
        "nas": nas,
    }
    return build_config(None, overrides)


def _finished_by(records: list[EvalRecord], deadline: datetime.datetime) -> list[EvalRecord]:
    """The records whose ``provenance.finished_at`` (ISO 8601, UTC) is at or before ``deadline``."""
    return [r for r in records if datetime.datetime.fromisoformat(r.provenance["finished_at"]) <= deadline]


def scores(
    records: list[EvalRecord], objectives, wall_s: float, started: datetime.datetime, minutes: float
) -> dict[str, float]:
    trained = [r for r in records if r.status == "ok"]
    full = [r for r in trained if r.rung is None]
    in_time = _finished_by(records, started + datetime.timedelta(minutes=minutes))
    return {
        "hv_at_budget": hypervolume(pareto_front(in_time, objectives), objectives),
        "trained_at_budget": sum(r.status == "ok" for r in in_time),
        "hv": hypervolume(pareto_front(records, objectives), objectives),
        "hv_full_only": hypervolume(pareto_front(full, objectives), objectives),
        "wall_s": wall_s,
        "trained": len(trained),
        "full": len(full),
        "evals_per_h": 3600 * len(trained) / wall_s,
        "full_per_h": 3600 * len(full) / wall_s,
        "feasible": sum(bool(r.feasible) for r in records),
    }


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)  # finished_at has whole seconds


def run_engine(out: Path, cfg, minutes: float) -> dict[str, float]:
    run_dir = init_run_folder(out, cfg, resume=False)
    features = prepare_features(cfg, run_dir)  # before the clock starts, as for Optuna
    objectives = build_problem(cfg, run_dir, features.n_classes, features.fingerprint).objectives
    started, start = _now(), time.monotonic()
    result = run_nas(cfg, run_dir)
    wall_s = time.monotonic() - start
    records = list(Journal(run_dir / "nas" / "journal.jsonl").read())
    row = scores(records, objectives, wall_s, started, minutes)  # the search's own objectives and reference box
    row["generations"] = len(result.history)
    return row


def _optuna_objective(problem, records_dir: Path, own: Path):
    """Optuna's objective for this process: precheck, then train unless infeasible or already trained."""
    import optuna

    objectives, constraints = problem.objectives, problem.constraints
    worst = tuple(o.worst for o in objectives)
    seen: dict[str, tuple[tuple[float, ...], float]] = {}  # key -> (values, violation), this process and the other

    def known(key: str) -> tuple[tuple[float, ...], float] | None:
        if key not in seen:  # the other process may have trained it: read its records
            for path in records_dir.glob("records-*.jsonl"):
                for line in path.read_text().splitlines():
                    record = EvalRecord.from_json(json.loads(line))
                    seen.setdefault(record.key, _values(record, objectives, worst))
        return seen.get(key)

    def objective(trial: optuna.Trial) -> tuple[float, ...]:
        genome = [trial.suggest_int(f"g{i}", 0, bound) for i, bound in enumerate(problem.gene_bounds)]  # inclusive
        genome = problem.canonical(genome)
        key = problem.key(genome)
        found = known(key)
        if found is None:
            cheap = {k: v for k, v in problem.precheck(genome).items() if isinstance(v, int | float)}
            violation = float(sum(constraint_violations(cheap, constraints).values()))
            if violation > 0 or any(v != v for v in cheap.values()):  # never trained, as in the search
                found = (worst, violation if violation > 0 else 1.0)
            else:
                outputs = {k: v for k, v in problem.evaluate(genome).items() if isinstance(v, int | float)}
                record = make_record(key, genome, {**cheap, **outputs}, objectives, constraints, generation=0,
                                     provenance={"finished_at": utc_now()})  # fmt: skip
                with own.open("a") as f:
                    f.write(json.dumps(record.to_json()) + "\n")
                found = _values(record, objectives, worst)
            seen[key] = found
        trial.set_constraint("violation", found[1])  # feasible when <= 0
        return found[0]

    return objective


def _values(record: EvalRecord, objectives, worst) -> tuple[tuple[float, ...], float]:
    values = record.objective_values(objectives)
    values = tuple(w if v != v else v for v, w in zip(values, worst, strict=True))  # NaN: the worst
    return values, min(float(record.violation), 1e9)  # inf (diverged) as a large violation


def _optuna_worker(problem, storage_file: str, seed: int, timeout_s: float, population: int, rank: int) -> None:
    """One of the study's processes: its own sampler seed, the shared journal storage."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    records_dir = Path(storage_file).parent
    sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=1_000 * seed + rank)
    storage = JournalStorage(JournalFileBackend(storage_file))
    study = optuna.load_study(study_name="bench", storage=storage, sampler=sampler)
    study.optimize(_optuna_objective(problem, records_dir, records_dir / f"records-{rank}.jsonl"), timeout=timeout_s)


def run_optuna(out: Path, cfg, seed: int, minutes: float, population: int) -> dict[str, float]:
    """Optuna's NSGAIISampler in 2 processes sharing a journal file (Optuna's documented parallel set-up)."""
    import multiprocessing

    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    run_dir = init_run_folder(out, cfg, resume=False)
    features = prepare_features(cfg, run_dir)
    problem = build_problem(cfg, run_dir, features.n_classes, features.fingerprint)
    objectives = problem.objectives
    storage_file = str(run_dir / "optuna.journal")
    storage = JournalStorage(JournalFileBackend(storage_file))
    study = optuna.create_study(study_name="bench", storage=storage,
                                directions=[o.direction + "imize" for o in objectives])  # fmt: skip
    context = multiprocessing.get_context("spawn")
    started, start = _now(), time.monotonic()
    workers = [context.Process(target=_optuna_worker, args=(problem, storage_file, seed, 60 * minutes, population, r))
               for r in range(2)]  # fmt: skip
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall_s = time.monotonic() - start
    if any(worker.exitcode != 0 for worker in workers):
        raise RuntimeError(f"an Optuna worker failed (exit codes {[w.exitcode for w in workers]})")
    records: dict[str, EvalRecord] = {}
    for path in sorted(run_dir.glob("records-*.jsonl")):
        for line in path.read_text().splitlines():
            record = EvalRecord.from_json(json.loads(line))
            records.setdefault(record.key, record)  # a key both processes trained at once counts once
    row = scores(list(records.values()), objectives, wall_s, started, minutes)
    row["trials"] = len(study.get_trials(deepcopy=False))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fsdd", type=Path, default=DEFAULT_FSDD)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--promote", type=float, default=0.25)
    parser.add_argument("--low-epochs", type=int, nargs="+", default=[1])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-fidelity"))
    parser.add_argument("--dataset", default="fsdd", help="fsdd, or synthetic for a quick check of the script")
    parser.add_argument("--proxy-epochs", type=int, default=None, help="default: the search's (4)")
    args = parser.parse_args()
    results: dict[str, list[dict]] = {v: [] for v in args.variants}
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for variant in args.variants:
            out = args.out / f"{variant}-{seed}"
            shutil.rmtree(out, ignore_errors=True)
            cfg = config(args.fsdd, seed, variant, args)
            if variant == "optuna":
                row = run_optuna(out, cfg, seed, args.minutes, args.population)
            else:
                row = run_engine(out, cfg, args.minutes)
            results[variant].append(row)
            print(json.dumps({"seed": seed, "variant": variant, **{k: round(v, 4) for k, v in row.items()}}),
                  flush=True)  # fmt: skip
    proxy_epochs = config(args.fsdd, 0, "nsga2", args).nas.proxy.epochs
    print(
        f"\n{args.dataset} mel2d, {args.minutes:g} min of wall clock per search, population {args.population}, "
        f"2 workers, proxy {proxy_epochs} epochs (nsga2-mf: {','.join(map(str, args.low_epochs))} epoch(s) first, "
        f"best {args.promote:.0%} promoted), {args.seeds} seed(s)"
    )
    print(f"  {'variant':>9} {'hv@budget':>18} {'hv at end':>18} {'full-only hv':>13} {'evals/h':>8} {'full/h':>7} "
          f"{'wall s':>7}")  # fmt: skip
    for variant, rows in results.items():
        at_budget, hv = [r["hv_at_budget"] for r in rows], [r["hv"] for r in rows]
        print(
            f"  {variant:>9} {_mean_std(at_budget):>18} {_mean_std(hv):>18} "
            f"{statistics.mean(r['hv_full_only'] for r in rows):>13.4f} "
            f"{statistics.mean(r['evals_per_h'] for r in rows):>8.0f} "
            f"{statistics.mean(r['full_per_h'] for r in rows):>7.0f} "
            f"{statistics.mean(r['wall_s'] for r in rows):>7.0f}   hv@budget per seed: "
            f"{', '.join(f'{h:.4f}' for h in at_budget)}"
        )


def _mean_std(values: list[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} +- {spread:.4f}"


if __name__ == "__main__":
    main()
