"""Proxy-training throughput of a ~40k-parameter CNN on the FSDD train split, 1 vs 2 CPU threads.

Usage: python benchmarks/bench_trainer.py [--fsdd PATH] [--epochs 3] [--rounds 3] [--threads 1 2]
    [--batch-sizes 32 64]

Features are extracted once into ``benchmarks/out/cache`` (reused on later runs). Each round
trains the same model once per (batch size, thread count) variant, alternating, in this one
process, so that the variants see the same machine load. Printed per variant (medians over all
epochs of all rounds): seconds per training epoch (optimiser steps only), examples/s, seconds
per epoch including the validation pass, the set-up time per call (loading the normalised
splits into memory) and the best validation macro-F1 reached.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
from pathlib import Path

import torch
from torch import nn

from pipeline.config import build_config
from pipeline.data_stage import prepare_features
from train.train_config import TrainConfig
from train.trainer import train_model

HERE = Path(__file__).resolve().parent
DEFAULT_FSDD = HERE.parents[1] / "shared" / "data" / "fsdd"


def small_cnn(n_classes: int) -> nn.Module:
    """About 40k parameters on (B, 1, 40, 101) log-mel input."""

    def block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]

    return nn.Sequential(
        *block(1, 16, 1),
        *block(16, 32, 2),
        *block(32, 48, 2),
        *block(48, 48, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(48, n_classes),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fsdd", type=Path, default=DEFAULT_FSDD)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    out = HERE / "out"
    overrides = {"data": {"dataset": "fsdd", "path": str(args.fsdd)}, "run": {"cache_dir": str(out / "cache")}}
    features = prepare_features(build_config(None, overrides), out / "run")
    n_params = sum(p.numel() for p in small_cnn(features.n_classes).parameters())
    print(
        f"FSDD train split: {len(features.splits.train)} clips of {features.x.shape[1:]}, CNN {n_params} params, "
        f"{args.epochs} epochs x {args.rounds} rounds, {os.cpu_count()} cores, torch {torch.__version__}"
    )
    variants = list(itertools.product(args.batch_sizes, args.threads))
    samples = {v: {"train_s": [], "epoch_s": [], "setup_s": [], "val_f1": []} for v in variants}
    for _ in range(args.rounds):
        for batch_size, threads in variants:
            cfg = TrainConfig(epochs=args.epochs, batch_size=batch_size, num_threads=threads, progress=False)
            result = train_model(small_cnn(features.n_classes), features, cfg, spec="bench")
            s = samples[(batch_size, threads)]
            s["train_s"] += [row["train_s"] for row in result.history]
            s["epoch_s"] += [row["train_s"] + row["val_s"] for row in result.history]
            s["setup_s"].append(result.wall_s - sum(row["train_s"] + row["val_s"] for row in result.history))
            s["val_f1"].append(result.best_val_macro_f1)
    header = f"{'batch':>5} {'threads':>7} {'train s/epoch':>14} {'examples/s':>11} {'s/epoch incl. val':>18}"
    print(header + f" {'set-up s':>9} {'val macro-F1':>13}")
    for (batch_size, threads), s in samples.items():
        examples = (result.n_train // batch_size) * batch_size  # examples stepped per epoch
        train_s = statistics.median(s["train_s"])
        print(
            f"{batch_size:>5} {threads:>7} {train_s:14.2f} {examples / train_s:11.0f} "
            f"{statistics.median(s['epoch_s']):18.2f} {statistics.median(s['setup_s']):9.2f} "
            f"{statistics.median(s['val_f1']):13.3f}"
        )


if __name__ == "__main__":
    main()
