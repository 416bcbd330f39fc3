"""Proxy training per memory format: channels_last against contiguous, side by side on search candidates.

Usage: python benchmarks/bench_memory_format.py [--fsdd PATH] [--n 12] [--epochs 1] [--max-macs-m 15]
       [--threads 1] [--seed 0]

Draws ``--n`` random ``mel2d`` specs of at most ``--max-macs-m`` million MACs (the candidates a
latency-bounded search trains) and trains each with the search's proxy recipe (``nas.proxy``) for
``--epochs`` epochs once per ``train.memory_format``, in one process, alternating which goes
first from spec to spec so that both see the same machine. Same seed, same data: the two runs
differ only by floating-point rounding, so their accuracies agree up to the noise of one
training. Prints per spec the seconds of each (set-up, training and validation), then the
total and median speed-up and the mean validation accuracy of each format.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
from pathlib import Path

import torch
from bench_proxy import candidate_specs, macs_m  # same directory: the candidates bench_proxy ranks

from pipeline.config import build_config
from pipeline.features_stage import run as run_features_stage
from pipeline.run_folder import init_run_folder
from search_spaces import create_search_space
from train.train_config import MEMORY_FORMATS
from train.trainer import train_model

DEFAULT_FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"
SPACE = "mel2d"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fsdd", type=Path, default=DEFAULT_FSDD)
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-macs-m", type=float, default=15.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-memory-format"))
    args = parser.parse_args()
    cfg = build_config(None, {"data": {"dataset": "fsdd", "path": str(args.fsdd)}, "run": {"progress": False}})
    features = run_features_stage(cfg, init_run_folder(args.out, cfg)).features
    space = create_search_space(SPACE)
    specs = candidate_specs(SPACE, features, args.n, args.max_macs_m, args.seed)
    print(f"FSDD train split {len(features.splits.train)} clips of {features.input_shape}, {len(specs)} random {SPACE} "
          f"specs of <= {args.max_macs_m:g} M MACs, proxy recipe for {args.epochs} epoch(s), {args.threads} thread(s), "
          f"{os.cpu_count()} cores, torch {torch.__version__}")  # fmt: skip
    wall_s = {f: [] for f in MEMORY_FORMATS}
    accuracy = {f: [] for f in MEMORY_FORMATS}
    for i, spec in enumerate(specs):
        order = MEMORY_FORMATS if i % 2 == 0 else MEMORY_FORMATS[::-1]
        for memory_format in order:
            train_cfg = dataclasses.replace(
                cfg.nas.proxy, epochs=args.epochs, num_threads=args.threads, memory_format=memory_format, seed=i
            )
            result = train_model(space.build(spec, features.n_classes, features.input_shape), features, train_cfg)
            wall_s[memory_format].append(result.wall_s)
            accuracy[memory_format].append(result.best_val_accuracy)
        print(f"{i + 1:>2}/{len(specs)} {macs_m(space, spec, features):5.1f} M MACs  "
              + "  ".join(f"{f} {wall_s[f][-1]:6.1f} s ({accuracy[f][-1]:.3f})" for f in MEMORY_FORMATS)
              + f"  x{wall_s['contiguous'][-1] / wall_s['channels_last'][-1]:.2f}", flush=True)  # fmt: skip
    ratios = [a / b for a, b in zip(wall_s["contiguous"], wall_s["channels_last"], strict=True)]
    print(f"\n{'memory format':<15}{'total s':>9}{'mean val acc':>14}")
    for f in MEMORY_FORMATS:
        print(f"{f:<15}{sum(wall_s[f]):>9.1f}{statistics.fmean(accuracy[f]):>14.3f}")
    total = sum(wall_s["contiguous"]) / sum(wall_s["channels_last"])
    median = statistics.median(ratios)
    print(f"channels_last speed-up: x{total:.2f} in total (evaluations per hour), median x{median:.2f}, "
          f"range x{min(ratios):.2f}..x{max(ratios):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
