"""Command-line entry point: ``python complete_pipeline.py --mode MODE [options]``.

Thin by design: it parses arguments, resolves the config (defaults < ``--config`` file <
flags), prepares the run folder and calls one stage function per mode. Errors a user can fix
are printed as one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from common.errors import UserError

MODES = ("features", "baseline", "nas", "quantization", "reports", "full", "latency-table", "validate-latency")
BUILT_MODES = ("features", "baseline", "nas", "latency-table", "validate-latency")
DEFAULT_MODE = "nas"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept separate so tests and docs can inspect it)."""
    p = argparse.ArgumentParser(
        prog="complete_pipeline.py",
        description="Hardware-aware evolutionary NAS for small, fast audio classifiers.",
    )
    p.add_argument("--mode", choices=MODES, default=DEFAULT_MODE, help=f"stage to run (default: {DEFAULT_MODE})")
    p.add_argument("--config", metavar="FILE", help="YAML/TOML/JSON config file (sections as in config.json)")
    p.add_argument("--out", metavar="DIR", help="run folder (default: runs/<run name or dataset>)")
    p.add_argument("--dataset", metavar="NAME", help="dataset loader name, or 'auto' (default: synthetic)")
    p.add_argument("--dataset-path", metavar="PATH", help="dataset root folder (or CSV manifest)")
    p.add_argument("--split", choices=("official", "stratified", "speaker"), help="split protocol")
    p.add_argument("--seed", type=int, help="seed of training and search")
    p.add_argument("--jobs", type=int, help="worker processes (-1: all cores)")
    p.add_argument("--cache-dir", metavar="DIR", help="where datasets and features are cached")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    search = p.add_argument_group("search")
    search.add_argument("--nas-population", type=int, help="individuals per generation (NSGA-II: multiple of 4)")
    search.add_argument("--nas-generations", type=int, help="generations after the initial population")
    search.add_argument("--strategy", choices=("nsga2", "random"), help="search strategy (random: the baseline)")
    search.add_argument("--objectives", metavar="A,B", help="objectives, e.g. accuracy,latency_ms,size_kb")
    search.add_argument("--latency", choices=("table", "measure"), help="latency from device tables or timed here")
    search.add_argument("--devices", metavar="A,B", help="latency devices (tables) to optimise for")
    search.add_argument("--max-latency-ms", type=float, help="constraint: latency on every device")
    search.add_argument("--max-size-kb", type=float, help="constraint: fp32 model size")
    search.add_argument("--min-accuracy", type=float, help="constraint: proxy validation accuracy")
    search.add_argument("--proxy-epochs", type=int, help="training epochs of the accuracy proxy")
    search.add_argument("--backend", choices=("loky", "dask", "inline"), help="where candidates are evaluated")
    search.add_argument("--scheduler", metavar="ADDRESS", help="dask scheduler address (with --backend dask)")
    base = p.add_argument_group("baseline")
    base.add_argument("--models", metavar="A,B", help="baselines to train, comma-separated (default: all)")
    base.add_argument("--epochs", type=int, help="training epochs")
    base.add_argument("--seeds", type=int, help="training runs per model (mean +- std reported)")
    lat = p.add_argument_group("latency")
    lat.add_argument("--device-name", metavar="NAME", help="device (latency table) to collect, validate or predict for")
    lat.add_argument("--space", metavar="NAME", help="search space to search or collect a table for (default: mel2d)")
    lat.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads for measurement (default: 1)")
    lat.add_argument("--max-minutes", type=float, help="time budget of a table collection (default: 10)")
    lat.add_argument("--n", type=int, help="random specs measured by validate-latency (default: 100)")
    lat.add_argument("--strict", action="store_true", help="refuse interpolated latency-table entries")
    lat.add_argument("--tables-dir", metavar="DIR", help="folder of latency tables to write/read first")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return p


# flags that only some modes read: a flag given to another mode is warned about, not silently ignored
FLAG_MODES = {
    "epochs": ("baseline",),
    "seeds": ("baseline",),
    "models": ("baseline",),
    "nas_population": ("nas",),
    "nas_generations": ("nas",),
    "strategy": ("nas",),
    "objectives": ("nas",),
    "latency": ("nas",),
    "devices": ("nas",),
    "max_latency_ms": ("nas",),
    "max_size_kb": ("nas",),
    "min_accuracy": ("nas",),
    "proxy_epochs": ("nas",),
    "backend": ("nas",),
    "scheduler": ("nas",),
    "max_minutes": ("latency-table",),
    "n": ("validate-latency",),
    "threads": ("latency-table", "validate-latency", "nas"),
    "strict": ("validate-latency", "nas"),
    "tables_dir": ("latency-table", "validate-latency", "nas"),
    "device_name": ("latency-table", "validate-latency", "nas"),
    "space": ("latency-table", "validate-latency", "nas"),
}
HINTS = {("epochs", "nas"): "; the search's accuracy proxy uses --proxy-epochs"}


def warn_inapplicable(args: argparse.Namespace) -> None:
    """Print a warning for every flag the chosen mode does not read."""
    for flag, modes in FLAG_MODES.items():
        value = getattr(args, flag)
        if value not in (None, False) and args.mode not in modes:
            hint = HINTS.get((flag, args.mode), "")
            print(
                f"warning: --{flag.replace('_', '-')} has no effect in --mode {args.mode} "
                f"(it applies to --mode {', '.join(modes)}){hint}",
                file=sys.stderr,
            )
    if args.scheduler and args.backend != "dask":
        print("warning: --scheduler is only used with --backend dask", file=sys.stderr)


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The config values given as flags, as a nested dict (``None`` = not given)."""
    dataset = args.dataset
    if dataset is None and args.dataset_path is not None:
        dataset = "auto"
    return {
        "run": {
            "seed": args.seed,
            "jobs": args.jobs,
            "cache_dir": args.cache_dir,
            "progress": False if args.no_progress else None,
        },
        "data": {"dataset": dataset, "path": args.dataset_path, "split": args.split},
        "train": {"epochs": args.epochs},
        "nas": {
            "population": args.nas_population,
            "generations": args.nas_generations,
            "strategy": args.strategy,
            "objectives": args.objectives.split(",") if args.objectives else None,
            "latency_source": args.latency,
            "devices": args.devices.split(",") if args.devices else None,
            "max_latency_ms": args.max_latency_ms,
            "max_size_kb": args.max_size_kb,
            "min_accuracy": args.min_accuracy,
            "backend": args.backend,
            "scheduler": args.scheduler,
            "proxy": {"epochs": args.proxy_epochs},
            "space": args.space,
        },
        "baseline": {"models": args.models.split(",") if args.models else None, "seeds": args.seeds},
        "latency": {
            "device": args.device_name,
            "space": args.space,
            "max_minutes": args.max_minutes,
            "validate_n": args.n,
            "strict": True if args.strict else None,
            "tables_dir": args.tables_dir,
            "timing": {"threads": args.threads},
        },
    }


def run_features(cfg, run_dir: Path) -> None:
    """``--mode features``: extract (or load cached) features and report the splits."""
    from pipeline.data_stage import prepare_features

    start = time.perf_counter()
    feats = prepare_features(cfg, run_dir)
    sizes = {name: len(feats.splits[name]) for name in ("train", "val", "test")}
    skipped = len(feats.paths) - sum(sizes.values())
    print(
        f"[{feats.dataset}] {sum(sizes.values())} clips, {feats.n_classes} classes, features "
        f"{feats.x.shape[1]}x{feats.x.shape[2]} ({feats.config.kind}); "
        f"train {sizes['train']} / val {sizes['val']} / test {sizes['test']} ({feats.splits.protocol}); "
        f"{skipped} skipped; cache {'hit' if feats.cache_hit else 'written'} "
        f"in {time.perf_counter() - start:.1f} s"
    )
    print(f"results in {run_dir}/ (config.json, data/summary.json, data/clips.csv, skipped_files.csv)")


def run_baseline(cfg, run_dir: Path, resume: bool = False) -> None:
    """``--mode baseline``: features, then train/test the fixed baselines, then the results table."""
    from pipeline.baseline_stage import run_baselines

    run_features(cfg, run_dir)
    print(
        f"training baselines {', '.join(cfg.baseline.models)} for {cfg.train.epochs} epochs x "
        f"{cfg.baseline.seeds} seed(s)"
    )
    summaries = run_baselines(cfg, run_dir, resume=resume)
    for s in summaries:
        acc, f1 = s["test"]["accuracy"], s["test"]["macro_f1"]
        print(
            f"{s['model']:>7}: test accuracy {acc['mean']:.4f} +- {acc['std'] or 0:.4f}, macro-F1 "
            f"{f1['mean']:.4f} +- {f1['std'] or 0:.4f}, {s['params']} params, {s['size_kb']:.1f} KB, "
            f"{s['macs_m']:.1f} M MACs"
        )
    print(f"results in {run_dir}/baseline_results.csv and {run_dir}/models/")


def run_nas(cfg, run_dir: Path, resume: bool = False) -> None:
    """``--mode nas``: features, then the constrained NSGA-II search; prints the Pareto front."""
    from pipeline.nas_stage import run_nas as stage
    from pipeline.nas_summary import print_summary

    print_summary(stage(cfg, run_dir, resume=resume), run_dir)


def run_latency_table(cfg, run_dir: Path) -> None:
    """``--mode latency-table``: collect this device's latency lookup table."""
    from pipeline.latency_stage import run_latency_table as stage

    stage(cfg, run_dir)


def run_validate_latency(cfg, run_dir: Path) -> None:
    """``--mode validate-latency``: measure random specs and compare with the table's predictions."""
    from pipeline.latency_stage import run_validate_latency as stage

    stage(cfg, run_dir)


STAGES = {
    "features": run_features,
    "baseline": run_baseline,
    "nas": run_nas,
    "latency-table": run_latency_table,
    "validate-latency": run_validate_latency,
}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # loky reaps idle workers at shutdown and warns about it; nothing is lost (results are journaled)
    warnings.filterwarnings("ignore", message="A worker stopped while some jobs were given to the executor")
    try:
        from pipeline.config import build_config
        from pipeline.run_folder import check_run_folder, default_run_dir, init_run_folder, record_config

        if args.mode not in BUILT_MODES:
            raise UserError(f"--mode {args.mode} is not built yet; working modes: {', '.join(BUILT_MODES)}")
        warn_inapplicable(args)
        cfg = build_config(args.config, overrides_from_args(args))
        run_dir = Path(args.out) if args.out else default_run_dir(cfg, args.mode)
        check_run_folder(args.mode, run_dir, args.resume)
        init_run_folder(run_dir, cfg, resume=args.resume)
        if args.mode in ("baseline", "nas"):
            STAGES[args.mode](cfg, run_dir, resume=args.resume)
        else:
            STAGES[args.mode](cfg, run_dir)
        record_config(run_dir, cfg)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
