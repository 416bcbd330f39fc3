"""Search figures on FSDD: NSGA-II vs random search hypervolume, overhead outside training, evaluations/hour.

Usage: python benchmarks/bench_search.py [--fsdd PATH] [--seeds 3] [--population 16] [--generations 4] [--resume]

With --resume, searches already in --out are continued (a finished one is read back, not re-run);
wall times are then summed over the sessions of each search.

1. For each seed, NSGA-II and random search with the same budget (population x (generations + 1)
   proposals), 2 workers: final hypervolume of the feasible front (same objectives, constraints
   and reference point for both), and the number of feasible candidates.
2. Share of the search's wall time not spent training candidates: 1 - (sum of per-candidate
   training seconds / workers) / wall seconds.
3. Throughput: the same small search with 1 and with 2 workers, trained candidates per hour.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
from pathlib import Path

from nas.journal import Journal
from pipeline.config import build_config
from pipeline.nas_stage import run_nas
from pipeline.run_folder import init_run_folder

DEFAULT_FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"


def search(
    out: Path, fsdd: Path, seed: int, strategy: str, population: int, generations: int, jobs: int, proxy, resume: bool
):
    resume = resume and (out / "nas" / "checkpoint.json").exists()
    if not resume:
        shutil.rmtree(out, ignore_errors=True)
    overrides = {
        "data": {"dataset": "fsdd", "path": str(fsdd)},
        "run": {"seed": seed, "jobs": jobs, "progress": False},
        "nas": {"strategy": strategy, "population": population, "generations": generations, "proxy": proxy},
    }
    cfg = build_config(None, overrides)
    run_dir = init_run_folder(out, cfg, resume=resume)
    result = run_nas(cfg, run_dir, resume=resume)
    records = Journal(run_dir / "nas" / "journal.jsonl").read()
    train_s = sum(float(r.metrics.get("train_s", 0.0)) for r in records if r.status == "ok")
    trained = sum(r.status == "ok" for r in records)
    feasible = sum(bool(r.feasible) for r in records)
    return {
        "hv": float(result.history[-1]["hypervolume"] or 0.0),
        "wall_s": result.wall_s,
        "train_s": train_s,
        "trained": trained,
        "feasible": feasible,
        "outside": 1 - (train_s / jobs) / result.wall_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fsdd", type=Path, default=DEFAULT_FSDD)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--population", type=int, default=16)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--proxy-epochs", type=int, default=3)
    parser.add_argument("--proxy-subset", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-search"))
    parser.add_argument("--resume", action="store_true", help="continue the searches already in --out")
    args = parser.parse_args()
    proxy = {"epochs": args.proxy_epochs, "train_subset": args.proxy_subset}
    results: dict[str, list[dict]] = {"nsga2": [], "random": []}
    for seed in range(args.seeds):
        for strategy in results:
            r = search(
                args.out / f"{strategy}-{seed}",
                args.fsdd,
                seed,
                strategy,
                args.population,
                args.generations,
                2,
                proxy,
                args.resume,
            )
            results[strategy].append(r)
            print(
                json.dumps({"seed": seed, "strategy": strategy, **{k: round(v, 4) for k, v in r.items()}}), flush=True
            )
    budget = args.population * (args.generations + 1)
    print(
        f"\nFSDD, budget {budget} proposals per search, proxy {args.proxy_epochs} epochs on "
        f"{args.proxy_subset:.0%} of train, 2 workers, {args.seeds} seeds"
    )
    for strategy, rows in results.items():
        hv = [r["hv"] for r in rows]
        spread = statistics.stdev(hv) if len(hv) > 1 else 0.0
        per_seed = ", ".join(f"{h:.4f}" for h in hv)
        feasible = statistics.mean(r["feasible"] for r in rows)
        trained = statistics.mean(r["trained"] for r in rows)
        outside = 100 * statistics.mean(r["outside"] for r in rows)
        print(
            f"  {strategy:>6}: hypervolume {statistics.mean(hv):.4f} +- {spread:.4f} (per seed {per_seed}); "
            f"feasible {feasible:.1f}, trained {trained:.1f}; wall time outside training {outside:.1f}%"
        )
    small = max(4, args.population // 2)
    rates = {}
    for jobs in (1, 2):
        r = search(args.out / f"throughput-{jobs}", args.fsdd, 100, "random", small, 1, jobs, proxy, args.resume)
        rates[jobs] = 3600 * r["trained"] / r["wall_s"]
        print(f"  {jobs} worker(s): {r['trained']} trained in {r['wall_s']:.0f} s = {rates[jobs]:.0f} evaluations/hour")
    print(f"  speed-up with 2 workers: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
