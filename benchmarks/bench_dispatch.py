"""Idle workers at the generation barrier: dispatch orders replayed on measured training times.

Usage: python benchmarks/bench_dispatch.py RUN_DIR [RUN_DIR ...] [--workers 2] [--shuffles 200]
       (e.g. the run folders ``bench_fidelity.py`` leaves: runs/bench-fidelity/nsga2-*)

A generation ends when its slowest worker is done, so with few workers and training times that
differ a hundredfold a worker often waits for the last long candidate. This script takes the
measured ``wall_s`` of every candidate the searches in RUN_DIR trained (per generation and
fidelity rung, the batches the search dispatched together; a generation the time budget cut is
left out) and replays each batch on
``--workers`` workers (greedy list scheduling: the next task goes to the first free worker) in
several orders:

* ``proposal``: the order the candidates were bred in, taken as random with respect to their cost
  (mean over ``--shuffles`` shuffles; the search's order before ``cost_metric``);
* ``activations``, ``macs_m``, ``latency``: most expensive first by the precheck's activation
  elements (the audio problem's ``SearchProblem.cost_metric``), its MACs or the first table
  latency: the longest-processing-time rule;
* ``oracle``: most expensive first by the measured time itself;
* ``bound``: no order can beat ``max(longest task, total / workers)``;
* ``no barrier``: the total over all batches divided by the workers, what an evaluation without
  generation barriers (asynchronous, steady-state) could reach at best.

Then, for single-fidelity searches with ``history.csv``, it replays the time budget's question
before each generation g >= 1, "how long will the next generation take?", with both answers the
search has had: the slowest of the last three generations (:func:`nas.search.next_generation_s`)
and the cost model (on ``--cost-metric``) fitted on the candidates of generations < g and applied to generation g's
(:mod:`nas.cost_model`, what the search uses with a ``cost_metric``), against g's measured time.

It prints, per order, the summed batch seconds, the workers' idle share and the evaluations per
hour that order buys relative to ``proposal``; and Spearman's rho between the measured time and
each cost metric over all candidates. The replay uses the training times as measured (they do
not depend on the order); it leaves out the search's own time between batches (precheck,
selection, writing files), which no order changes.
"""

from __future__ import annotations

import argparse
import random
import statistics
from collections import defaultdict
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from nas.cost_model import CostModel, makespan_s
from nas.journal import Journal
from nas.records import EvalRecord
from nas.search import next_generation_s


def _batches(run_dir: Path) -> list[list[EvalRecord]]:
    """The trained candidates of a search folder grouped as dispatched: per generation and fidelity rung."""
    folder = run_dir / "nas"
    records = list(Journal(folder / "journal.jsonl").read())
    for path in sorted(folder.glob("rung*.jsonl")):
        records += list(Journal(path).read())
    history = folder / "history.csv"
    complete = len(pd.read_csv(history)) if history.exists() else 1 << 30  # a generation the budget cut: left out
    groups: dict[tuple, list[EvalRecord]] = defaultdict(list)
    seen: set[tuple] = set()
    for record in records:
        ident = (record.key, record.rung)
        if record.status != "ok" or record.wall_s <= 0 or ident in seen or record.generation >= complete:
            continue  # prechecked-out and failed candidates were never trained; a final copy of a rung result too
        seen.add(ident)
        groups[(record.generation, record.rung)].append(record)
    return list(groups.values())


def _latency(record: EvalRecord) -> float:
    return next((v for k, v in sorted(record.metrics.items()) if k.startswith("latency_ms_")), float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shuffles", type=int, default=200)
    parser.add_argument("--cost-metric", default="activations_m", help="the metric the cost model is fitted on")
    args = parser.parse_args()
    batches = [b for run_dir in args.run_dirs for b in _batches(run_dir)]
    if not batches:
        raise SystemExit(f"no trained candidates in {', '.join(map(str, args.run_dirs))}")
    w, rng = args.workers, random.Random(0)
    orders = {
        "activations": lambda b: sorted(b, key=lambda r: r.metrics.get("activations_m", 0.0), reverse=True),
        "macs_m": lambda b: sorted(b, key=lambda r: r.metrics.get("macs_m", 0.0), reverse=True),
        "latency": lambda b: sorted(b, key=_latency, reverse=True),
        "oracle": lambda b: sorted(b, key=lambda r: r.wall_s, reverse=True),
    }
    total = {name: 0.0 for name in ("proposal", *orders, "bound")}
    for batch in batches:
        times = [r.wall_s for r in batch]
        shuffled = []
        for _ in range(args.shuffles):
            rng.shuffle(times)
            shuffled.append(makespan_s(times, w))
        total["proposal"] += statistics.mean(shuffled)
        for name, order in orders.items():
            total[name] += makespan_s([r.wall_s for r in order(batch)], w)
        total["bound"] += max(max(times), sum(times) / w)
    work = sum(r.wall_s for b in batches for r in b)
    total["no barrier"] = work / w
    every = [r for b in batches for r in b]
    print(f"{len(every)} trainings in {len(batches)} batches from {len(args.run_dirs)} search(es), {w} workers; "
          f"training times {min(r.wall_s for r in every):.1f}..{max(r.wall_s for r in every):.1f} s "
          f"(median {statistics.median(r.wall_s for r in every):.1f})")  # fmt: skip
    for metric, values in (("activations_m", [r.metrics.get("activations_m", 0.0) for r in every]),
                           ("macs_m", [r.metrics.get("macs_m", 0.0) for r in every]),
                           ("latency", [_latency(r) for r in every])):  # fmt: skip
        rho = spearmanr([r.wall_s for r in every], values).statistic
        print(f"  Spearman rho(training s, {metric}) = {rho:.3f}")
    print(f"  {'order':>10} {'batch s':>9} {'idle':>6} {'evals/h vs proposal':>20}")
    for name, seconds in total.items():
        idle = 1 - work / (w * seconds)
        print(f"  {name:>10} {seconds:>9.0f} {idle:>6.1%} {total['proposal'] / seconds:>19.2f}x")
    _prediction_table(args.run_dirs, w, args.cost_metric)


def prediction_rows(run_dir: Path, workers: int, metric: str) -> list[tuple[float, float, float]]:
    """``(actual, slowest-of-3, cost model on metric)`` seconds of each generation g >= 1 of a single-fidelity search.

    Generations the time budget cut (no history row) are left out.
    """
    folder = run_dir / "nas"
    if not (folder / "history.csv").exists() or list(folder.glob("rung*.jsonl")):
        return []
    history = pd.read_csv(folder / "history.csv").to_dict("records")
    trained = [r for r in Journal(folder / "journal.jsonl").read() if r.status == "ok" and r.wall_s > 0]
    rows = []
    for g in range(1, len(history)):
        before = [r for r in trained if r.generation < g]
        model = CostModel.fit([r.metrics.get(metric, float("nan")) for r in before], [r.wall_s for r in before])
        if model is None:
            continue
        batch = [r.metrics.get(metric, float("nan")) for r in trained if r.generation == g]
        actual = float(history[g]["wall_s"])
        rows.append((actual, next_generation_s(history[:g]), model.batch_s(batch, workers)))
    return rows


def _prediction_table(run_dirs: list[Path], workers: int, metric: str) -> None:
    rows = [row for run_dir in run_dirs for row in prediction_rows(run_dir, workers, metric)]
    if not rows:
        return
    print(f"\nnext generation's time, {len(rows)} generations (g >= 1 with >= 3 candidates trained before g)")
    print(f"  {'predictor':>12} {'median |error|':>15} {'under':>6} {'sum predicted / sum actual':>27}")
    actual = [a for a, _, _ in rows]
    for name, i in (("slowest of 3", 1), ("cost model", 2)):
        predicted = [row[i] for row in rows]
        error = statistics.median(abs(p / a - 1) for p, a in zip(predicted, actual, strict=True))
        under = sum(p < a for p, a in zip(predicted, actual, strict=True))
        print(f"  {name:>12} {error:>15.0%} {under:>3}/{len(rows):<2} {sum(predicted) / sum(actual):>27.2f}")


if __name__ == "__main__":
    main()
