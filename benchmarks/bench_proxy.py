"""How well the search's accuracy proxy ranks candidates: Kendall tau with a longer training, per fidelity.

Usage: python benchmarks/bench_proxy.py [--fsdd PATH] [--n 12] [--long-epochs 12] [--max-macs-m 30]
       [--split official] [--top-db DB] [--out runs/bench-proxy]

Draws ``--n`` random specs of the ``mel2d`` space (distinct, fitting the input, at most
``--max-macs-m`` million MACs: the size a latency-bounded search trains; unbounded random specs
reach a billion MACs and hours per candidate on a CPU) and trains each
three ways on FSDD's features: the multi-fidelity low rung (``--promote``'s 1 epoch), the search's
proxy (``nas.proxy``: 4 epochs, as the search trains it, same seed per spec), and a longer
training with the full-training recipe (``train``: label smoothing, ``--long-epochs`` epochs),
each scored by its best validation accuracy, as the search scores candidates. It prints Kendall's
tau-b (scipy) between each fidelity and the long training, the seconds per evaluation of each,
and so the evaluations per hour each buys. Results are appended per spec to
``<out>/proxy_rank.jsonl``; a rerun reuses them (delete the file to start over).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from scipy.stats import kendalltau

from common.hashing import seed_from_string
from latency_tables.calibration import random_specs
from pipeline.config import build_config
from pipeline.features_stage import run as run_features_stage
from pipeline.run_folder import init_run_folder
from search_spaces import create_search_space
from train.trainer import train_model

DEFAULT_FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"
SPACE = "mel2d"


def macs_m(space, spec, features) -> float:
    """Million MACs of ``spec`` on ``features``' input, from the space's traced units."""
    return sum(unit.macs for unit in space.trace(spec, features.n_classes, features.input_shape)) / 1e6


def candidate_specs(space_name: str, features, n: int, max_macs_m: float, seed: int) -> list:
    """``n`` distinct random specs of at most ``max_macs_m`` million MACs (a latency-bounded search's candidates)."""
    space = create_search_space(space_name)
    pool = random_specs(space_name, 50 * n, 1_000 + seed, features.n_classes, features.input_shape)
    return [s for s in pool if macs_m(space, s, features) <= max_macs_m][:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fsdd", type=Path, default=DEFAULT_FSDD)
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--long-epochs", type=int, default=12)
    parser.add_argument("--split", default="official", choices=("official", "speaker"))
    parser.add_argument("--max-macs-m", type=float, default=30.0)
    parser.add_argument("--top-db", type=float, default=None, help="features.top_db (default: the tool's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-proxy"))
    args = parser.parse_args()
    overrides = {"data": {"dataset": "fsdd", "path": str(args.fsdd), "split": args.split}, "run": {"progress": False}}
    if args.top_db is not None:
        overrides["features"] = {"top_db": args.top_db}
    cfg = build_config(None, overrides)
    run_dir = init_run_folder(args.out, cfg)
    features = run_features_stage(cfg, run_dir).features
    space = create_search_space(SPACE)
    specs = candidate_specs(SPACE, features, args.n, args.max_macs_m, args.seed)
    fidelities = {
        "low rung (1 epoch)": dataclasses.replace(cfg.nas.proxy, epochs=1),
        f"proxy ({cfg.nas.proxy.epochs} epochs)": cfg.nas.proxy,
        f"long ({args.long_epochs} epochs, full recipe)": dataclasses.replace(
            cfg.train, epochs=args.long_epochs, progress=False, num_threads=1
        ),
    }
    journal = args.out / "proxy_rank.jsonl"
    done = {}
    if journal.is_file():
        done = {r["spec"]: r for r in map(json.loads, journal.read_text().splitlines()) if r.get("spec")}
    for i, spec in enumerate(specs, start=1):
        if str(spec) in done:
            continue
        row = {"spec": str(spec)}
        for name, train_cfg in fidelities.items():
            model = space.build(spec, features.n_classes, features.input_shape)
            seed = seed_from_string(f"{cfg.run.seed}:{spec}")  # as the search seeds a candidate
            result = train_model(model, features, dataclasses.replace(train_cfg, seed=seed))
            row[name] = {"val_accuracy": result.best_val_accuracy, "wall_s": result.wall_s}
        with journal.open("a") as f:
            f.write(json.dumps(row) + "\n")
        done[str(spec)] = row
        print(f"{i}/{len(specs)} " + ", ".join(f"{n}: {row[n]['val_accuracy']:.3f} ({row[n]['wall_s']:.0f} s)"
                                               for n in fidelities), flush=True)  # fmt: skip
    rows = [done[str(s)] for s in specs]
    long_name = list(fidelities)[-1]
    long = [r[long_name]["val_accuracy"] for r in rows]
    print(f"\nFSDD ({features.splits.protocol}), {len(rows)} random {SPACE} specs of <= {args.max_macs_m:g} M MACs; "
          "validation accuracy ranked")  # fmt: skip
    print(f"{'fidelity':<34}{'tau vs long':>12}{'p':>8}{'s/eval':>9}{'evals/h':>9}")
    for name in fidelities:
        accuracy = [r[name]["val_accuracy"] for r in rows]
        wall_s = sum(r[name]["wall_s"] for r in rows) / len(rows)
        tau = kendalltau(accuracy, long)
        print(f"{name:<34}{tau.statistic:>12.3f}{tau.pvalue:>8.3f}{wall_s:>9.1f}{3600 / wall_s:>9.0f}")


if __name__ == "__main__":
    main()
