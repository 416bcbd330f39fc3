"""Baselines on FSDD: test accuracy, macro-F1, params, size, MACs and training time, mean +- std over seeds.

Usage: python benchmarks/bench_baselines.py [--fsdd PATH] [--epochs 10] [--seeds 3] [--out runs/bench-baselines]

Runs the ``baseline`` stage twice: on the conventional split (takes 0-4 are test) and on the
speaker-disjoint split (whole speakers held out), and prints one table per split. For reference,
a linear classifier on log-mel reaches 96.7% (conventional) and about 60% (speaker-disjoint).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pipeline.baseline_stage import run_baselines
from pipeline.config import build_config
from pipeline.data_stage import prepare_features
from pipeline.run_folder import init_run_folder

DEFAULT_FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"


def _pm(stat: dict, scale: float = 100.0, digits: int = 2) -> str:
    return f"{scale * stat['mean']:.{digits}f} +- {scale * (stat['std'] or 0):.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fsdd", type=Path, default=DEFAULT_FSDD)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-baselines"))
    args = parser.parse_args()
    for split in ("official", "speaker"):
        overrides = {
            "data": {"dataset": "fsdd", "path": str(args.fsdd), "split": split},
            "train": {"epochs": args.epochs},
            "baseline": {"seeds": args.seeds},
            "run": {"progress": False},
        }
        cfg = build_config(None, overrides)
        run_dir = init_run_folder(args.out / split, cfg)
        features = prepare_features(cfg, run_dir)
        start = time.perf_counter()
        summaries = run_baselines(cfg, run_dir, resume=True)
        print(
            f"\nFSDD, {features.splits.protocol}: {args.epochs} epochs x {args.seeds} seeds "
            f"({time.perf_counter() - start:.0f} s wall, 2 runs in parallel)"
        )
        print(
            f"{'model':>7} {'test acc %':>16} {'macro-F1 %':>16} {'params':>8} {'size_kb':>8} {'MACs M':>7} "
            f"{'train s':>14}"
        )
        for s in summaries:
            wall = s["train_wall_s"]
            print(
                f"{s['model']:>7} {_pm(s['test']['accuracy']):>16} {_pm(s['test']['macro_f1']):>16} "
                f"{s['params']:>8} {s['size_kb']:>8.1f} {s['macs_m']:>7.1f} {_pm(wall, 1, 0):>14}"
            )


if __name__ == "__main__":
    main()
