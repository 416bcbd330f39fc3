"""FSDD baselines under the protocols papers report: leave-one-speaker-out and speaker-grouped k-fold CV.

Usage: python benchmarks/bench_cv.py [--fsdd PATH] [--models tiny,small,medium,dscnn] [--epochs 10]
       [--protocols single,loso,5] [--jobs 2] [--jobs-compare tiny] [--out runs/bench-cv]

Each protocol runs ``--mode baseline`` in its own folder under ``--out`` (resumable: a second call
reuses every finished fold x model run): ``single`` is the one held-out speaker of
``--split speaker`` (the protocol before cross-validation), ``loso`` leaves each of the six
speakers out in turn, and a number K is speaker-grouped K-fold CV. The table gives each CNN's
test accuracy (mean +- std over folds; the single split has one fold) beside the linear reference,
and each protocol's wall time. ``--jobs-compare MODEL`` also times the K-fold CV of that one model
with 1 and then 2 worker processes, from empty folders, side by side.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from pipeline.baseline_stage import run_baselines
from pipeline.config import build_config
from pipeline.cv_stage import run_cv
from pipeline.features_stage import run as run_features_stage
from pipeline.run_folder import init_run_folder

DEFAULT_FSDD = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd"


def run_protocol(fsdd: Path, protocol: str, models: list[str], epochs: int, jobs: int, out: Path) -> dict[str, Any]:
    """One protocol's baseline run; returns {model: (mean, std)}, the protocol in words and the wall time."""
    cv = None if protocol == "single" else protocol
    overrides = {
        "data": {"dataset": "fsdd", "path": str(fsdd), "split": "speaker"},
        "train": {"epochs": epochs},
        "baseline": {"models": models, "cv": cv},
        "run": {"progress": False, "jobs": jobs},
    }
    cfg = build_config(None, overrides)
    run_dir = init_run_folder(out, cfg)
    features = run_features_stage(cfg, run_dir).features
    start = time.perf_counter()
    if cv is None:
        summaries = run_baselines(cfg, run_dir, resume=True)
        scores = {s["model"]: (s["test"]["accuracy"]["mean"], 0.0) for s in summaries}
        words = f"single split, {features.splits.protocol}"
    else:
        summaries = run_cv(cfg, run_dir, resume=True)
        scores = {s["model"]: (s["test_accuracy_mean"], s["test_accuracy_std"] or 0.0) for s in summaries}
        words = summaries[0]["protocol"]
    return {"scores": scores, "protocol": words, "wall_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fsdd", type=Path, default=DEFAULT_FSDD)
    parser.add_argument("--models", default="tiny,small,medium,dscnn")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--protocols", default="single,loso,5")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--jobs-compare", default="", help="a model whose K-fold CV is timed with 1 and 2 jobs")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-cv"))
    args = parser.parse_args()
    models = args.models.split(",")
    rows = {}
    for protocol in args.protocols.split(","):
        rows[protocol] = run_protocol(args.fsdd, protocol, models, args.epochs, args.jobs, args.out / protocol)
        print(f"{protocol}: {rows[protocol]['protocol']} ({rows[protocol]['wall_s']:.0f} s)", flush=True)
    names = [*models, "linear"]
    print(f"\nFSDD test accuracy %, {args.epochs} epochs, 1 seed per fold, {args.jobs} job(s); mean +- std over folds")
    print(f"{'protocol':<10}" + "".join(f"{n:>15}" for n in names) + f"{'wall s':>8}")
    for protocol, row in rows.items():
        cells = [row["scores"].get(n) for n in names]
        print(f"{protocol:<10}" + "".join(f"{100 * c[0]:>8.1f} +-{100 * c[1]:>4.1f}" if c else f"{'-':>15}"
                                          for c in cells) + f"{row['wall_s']:>8.0f}")  # fmt: skip
    if args.jobs_compare:
        k = next((p for p in args.protocols.split(",") if p.isdigit()), "5")
        walls = {}
        for jobs in (1, 2):
            out = args.out / f"jobs{jobs}-{int(time.time())}"  # from empty folders: nothing reused
            walls[jobs] = run_protocol(args.fsdd, k, [args.jobs_compare], args.epochs, jobs, out)["wall_s"]
        print(f"\n{k}-fold CV of {args.jobs_compare}: 1 job {walls[1]:.0f} s, 2 jobs {walls[2]:.0f} s "
              f"(x{walls[1] / walls[2]:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
