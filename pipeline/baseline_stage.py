"""The baseline stage: train the fixed baselines fully, evaluate on the test split, tabulate mean +- std."""

from __future__ import annotations

import csv
import io
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from joblib import Parallel, delayed

from common.atomic import atomic_write_json, atomic_write_text
from common.errors import UserError
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


def _settings(name: str, train_cfg: TrainConfig, data: str) -> dict[str, Any]:
    """What decides a training run's result (progress display aside)."""
    return {"spec": str(get_baseline(name)), "train": asdict(replace(train_cfg, progress=False)), "data": data}


def _check_same(folder: Path, stored: dict[str, Any], settings: dict[str, Any]) -> None:
    changed = [f"{section}: {stored.get(section)!r} -> {settings[section]!r}" for section in ("spec", "data")
               if stored.get(section) != settings[section]]  # fmt: skip
    old_train, new_train = stored.get("train", {}), settings["train"]
    changed += [f"train.{k}: {old_train.get(k)!r} -> {v!r}" for k, v in new_train.items() if old_train.get(k) != v]
    if changed:
        raise UserError(
            f"{folder} holds a run trained with other settings ({'; '.join(changed[:4])}); "
            "use another --out, or delete that folder to train it again"
        )


def _train_one(run_dir: Path, name: str, k: int, train_cfg: TrainConfig, resume: bool) -> dict[str, Any]:
    """Train and test one (baseline, seed); runs in a worker process.

    A finished run with the same settings is reused; one with other settings is refused. An
    unfinished one continues from its ``last.pt`` under ``resume``, else starts over.
    """
    out = run_dir_of(run_dir, name, k)
    features = load_features(run_dir)
    settings = _settings(name, train_cfg, features.fingerprint)
    done, started = out / "run.json", out / "settings.json"
    if done.is_file():
        record = json.loads(done.read_text())
        _check_same(out, record.get("settings", {}), settings)
        return record
    if resume and started.is_file():
        _check_same(out, json.loads(started.read_text()), settings)
    atomic_write_json(started, settings)
    spec = get_baseline(name)
    model = create_search_space(spec.space).build(spec, features.n_classes, features.input_shape)
    start = time.perf_counter()
    result = train_model(model, features, train_cfg, out_dir=out, spec=str(spec), resume=resume and out.exists())
    test = evaluate_model(model, features, "test", batch_size=train_cfg.eval_batch_size)
    record = {
        "model": name,
        "seed": train_cfg.seed,
        "spec": str(spec),
        "settings": settings,
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
    runs = [(name, k) for name in cfg.baseline.models for k in range(cfg.baseline.seeds)]
    jobs = max(1, min(cfg.run.resolved_jobs, len(runs)))
    # train.num_threads stays as configured (1 by default): results must not depend on the core count
    train_cfg = replace(cfg.train, progress=cfg.run.progress and jobs == 1)
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


def run(cfg: PipelineConfig, run_dir: Path, resume: bool = False) -> list[dict]:
    """``--mode baseline``: features, then train/test the fixed baselines; returns the per-model summaries."""
    from pipeline.features_stage import features_line
    from pipeline.features_stage import run as run_features

    print(features_line(run_features(cfg, run_dir)), flush=True)
    print(
        f"training baselines {', '.join(cfg.baseline.models)} for {cfg.train.epochs} epochs x "
        f"{cfg.baseline.seeds} seed(s)",
        flush=True,
    )
    return run_baselines(cfg, run_dir, resume=resume)


def summary(summaries: list[dict], run_dir: Path) -> list[str]:
    """One line per baseline (test accuracy and macro-F1 mean +- std, size, MACs) and where the files are."""
    lines = []
    for s in summaries:
        acc, f1 = s["test"]["accuracy"], s["test"]["macro_f1"]
        lines.append(
            f"{s['model']:>7}: test accuracy {acc['mean']:.4f} +- {acc['std'] or 0:.4f}, macro-F1 "
            f"{f1['mean']:.4f} +- {f1['std'] or 0:.4f}, {s['params']} params, {s['size_kb']:.1f} KB, "
            f"{s['macs_m']:.1f} M MACs"
        )
    return [*lines, f"results in {run_dir}/baseline_results.csv and {run_dir}/models/"]
