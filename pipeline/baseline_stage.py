"""The baseline stage: train the fixed baselines fully, evaluate on the test split, tabulate mean +- std."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from joblib import Parallel, delayed

from common.atomic import atomic_write_json, atomic_write_text
from pipeline.config import PipelineConfig
from search_spaces import create_search_space, get_baseline, profile
from train.evaluate import evaluate_model
from train.feature_set import load_features
from train.metrics import aggregate_metrics
from train.train_config import TrainConfig
from train.trainer import train_model


def run_dir_of(run_dir: Path, name: str, k: int) -> Path:
    """Folder of one training run: ``models/<name>`` for the first seed, ``models/<name>/seed<k>`` after."""
    base = run_dir / "models" / name
    return base if k == 0 else base / f"seed{k}"


def _train_one(run_dir: Path, name: str, k: int, train_cfg: TrainConfig, resume: bool) -> dict[str, Any]:
    """Train and test one (baseline, seed); runs in a worker process."""
    out = run_dir_of(run_dir, name, k)
    done = out / "run.json"
    if done.is_file():
        return json.loads(done.read_text())
    features = load_features(run_dir)
    spec = get_baseline(name)
    model = create_search_space(spec.space).build(spec, features.n_classes, features.input_shape)
    start = time.perf_counter()
    result = train_model(model, features, train_cfg, out_dir=out, spec=str(spec), resume=resume and out.exists())
    test = evaluate_model(model, features, "test", batch_size=train_cfg.eval_batch_size)
    record = {
        "model": name,
        "seed": train_cfg.seed,
        "spec": str(spec),
        "train": result.to_dict() | {"wall_s": time.perf_counter() - start},
        "test": test,
    }
    atomic_write_json(done, record)
    return record


def _write_model_metrics(run_dir: Path, name: str, records: list[dict[str, Any]], cfg: PipelineConfig) -> dict:
    spec = get_baseline(name)
    features = load_features(run_dir)
    prof = profile(spec, features.n_classes, features.input_shape)
    summary = {
        "model": name,
        "spec": str(spec),
        "dataset": features.dataset,
        "split_protocol": features.splits.protocol,
        "params": prof.params,
        "size_kb": prof.size_kb,
        "macs_m": prof.macs_m,
        "seeds": [r["seed"] for r in records],
        "test": aggregate_metrics([r["test"] for r in records]),
        "train_wall_s": aggregate_metrics([{"wall_s": r["train"]["wall_s"]} for r in records])["wall_s"],
        "best_val_macro_f1": aggregate_metrics([{"f1": r["train"]["best_val_macro_f1"]} for r in records])["f1"],
        "epochs": cfg.train.epochs,
        "runs": records,
    }
    atomic_write_json(run_dir / "models" / name / "metrics.json", summary)
    return summary


RESULT_COLUMNS = [
    "model", "dataset", "split", "seeds", "params", "size_kb", "macs_m", "test_accuracy_mean", "test_accuracy_std",
    "test_macro_f1_mean", "test_macro_f1_std", "val_macro_f1_mean", "train_wall_s_mean", "epochs", "spec",
]  # fmt: skip


def _row(s: dict) -> list[Any]:
    acc, f1 = s["test"]["accuracy"], s["test"]["macro_f1"]
    return [
        s["model"], s["dataset"], s["split_protocol"], len(s["seeds"]), s["params"], round(s["size_kb"], 1),
        round(s["macs_m"], 2), acc["mean"], acc["std"], f1["mean"], f1["std"], s["best_val_macro_f1"]["mean"],
        round(s["train_wall_s"]["mean"], 1), s["epochs"], s["spec"],
    ]  # fmt: skip


def run_baselines(cfg: PipelineConfig, run_dir: Path, resume: bool = False) -> list[dict]:
    """Train every configured baseline for every seed (in parallel), test, and write the results table.

    Writes ``models/<name>/{best.pt,last.pt,run.json,metrics.json}`` (extra seeds under
    ``models/<name>/seed<k>/``) and ``baseline_results.csv``. With ``resume``, finished runs are
    kept and unfinished ones continue from their ``last.pt``.

    Returns:
        The per-model summaries (as written to ``metrics.json``).
    """
    jobs = cfg.run.jobs if cfg.run.jobs > 0 else (os.cpu_count() or 1)
    runs = [(name, k) for name in cfg.baseline.models for k in range(cfg.baseline.seeds)]
    jobs = max(1, min(jobs, len(runs)))
    threads = cfg.train.num_threads if jobs == 1 else max(1, (os.cpu_count() or 1) // jobs)
    train_cfg = replace(cfg.train, num_threads=threads, progress=cfg.run.progress and jobs == 1)
    tasks = [
        delayed(_train_one)(run_dir, name, k, replace(train_cfg, seed=cfg.run.seed + k), resume) for name, k in runs
    ]
    records: dict[str, list[dict]] = {name: [] for name in cfg.baseline.models}
    for record in Parallel(n_jobs=jobs, return_as="generator_unordered")(tasks):
        records[record["model"]].append(record)
        test = record["test"]
        print(
            f"  {record['model']:>7} seed {record['seed']}: test accuracy {test['accuracy']:.4f}, "
            f"macro-F1 {test['macro_f1']:.4f} ({record['train']['wall_s']:.0f} s, "
            f"{record['train']['epochs_run']} epochs)",
            flush=True,
        )
    summaries = [
        _write_model_metrics(run_dir, name, sorted(records[name], key=lambda r: r["seed"]), cfg)
        for name in cfg.baseline.models
    ]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(RESULT_COLUMNS)
    writer.writerows(_row(s) for s in summaries)
    atomic_write_text(run_dir / "baseline_results.csv", buf.getvalue())
    return summaries
