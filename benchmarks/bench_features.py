"""Feature extraction of all FSDD files: first run and cached run, with 1 and all workers.

Usage: python benchmarks/bench_features.py [--fsdd PATH]

Each variant extracts into a fresh temporary cache (first run) and then loads it again
(cached run); wall seconds and files/s are printed side by side.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from train.datasets import load_dataset
from train.feature_cache import extract_features
from train.features import FeatureConfig

DEFAULT_FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fsdd", type=Path, default=DEFAULT_FSDD)
    args = parser.parse_args()
    dataset = load_dataset(args.fsdd, "fsdd")
    cfg = FeatureConfig()
    n = len(dataset.clips)
    print(f"FSDD: {n} files, log-mel {cfg.shape}, {os.cpu_count()} cores")
    print(f"{'workers':>8} {'first run s':>12} {'files/s':>9} {'cached s':>9} {'files/s':>10}")
    for jobs in (1, -1):
        with tempfile.TemporaryDirectory() as cache:
            start = time.perf_counter()
            first = extract_features(dataset, cfg, cache, jobs=jobs, progress=False)
            first_s = time.perf_counter() - start
            start = time.perf_counter()
            cached = extract_features(dataset, cfg, cache, jobs=jobs, progress=False)
            _ = float(np.asarray(cached.x).sum())  # touch every byte of the memmap
            cached_s = time.perf_counter() - start
            assert cached.hit and not first.hit
        label = "all" if jobs == -1 else str(jobs)
        print(f"{label:>8} {first_s:12.2f} {n / first_s:9.0f} {cached_s:9.3f} {n / cached_s:10.0f}")


if __name__ == "__main__":
    main()
