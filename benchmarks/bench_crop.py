"""Crop policies (features.crop) on clips longer than the clip length: test accuracy of the linear reference.

Usage: python benchmarks/bench_crop.py [--fsdd PATH] [--clip-seconds 0.4] [--split speaker]
       [--out runs/bench-crop]

FSDD recordings are 0.14-2.3 s (median 0.42 s); with ``--clip-seconds 0.4`` about half of them
are cropped, so the policy decides what the model sees. For each of ``centre``, ``start`` and
``onset`` the features stage extracts the dataset (cached per policy) and the linear reference
of the baseline stage is fitted on the train split, C chosen on validation. It prints the clips
cropped, the extraction time and the test accuracy per policy.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from pipeline.baseline_stage import linear_summary
from pipeline.config import build_config
from pipeline.features_stage import run as run_features_stage
from pipeline.run_folder import init_run_folder
from train.audio_io import CROPS

DEFAULT_FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fsdd", type=Path, default=DEFAULT_FSDD)
    parser.add_argument("--clip-seconds", type=float, default=0.4)
    parser.add_argument("--split", default="speaker", choices=("speaker", "official"))
    parser.add_argument("--out", type=Path, default=Path("runs/bench-crop"))
    args = parser.parse_args()
    print(f"{'crop':<8}{'cropped':>10}{'extract s':>11}{'linear test acc %':>19}")
    for crop in CROPS:
        overrides = {
            "data": {"dataset": "fsdd", "path": str(args.fsdd), "split": args.split},
            "features": {"clip_seconds": args.clip_seconds, "crop": crop},
            "run": {"progress": False},
        }
        cfg = build_config(None, overrides)
        run_dir = init_run_folder(args.out / f"{args.split}-{args.clip_seconds:g}s" / crop, cfg)
        start = time.perf_counter()
        features = run_features_stage(cfg, run_dir).features
        extract_s = time.perf_counter() - start
        cropped = json.loads((run_dir / "data" / "summary.json").read_text())["durations"]["n_cropped"]
        summary = linear_summary(features)
        acc = 100 * summary["test"]["accuracy"]["mean"] if summary else float("nan")
        print(f"{crop:<8}{cropped:>10}{extract_s:>11.1f}{acc:>19.1f}", flush=True)


if __name__ == "__main__":
    main()
