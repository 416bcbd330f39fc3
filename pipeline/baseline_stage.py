"""The baseline stage: train the fixed baselines fully, evaluate on the test split, tabulate mean +- std."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from joblib import Parallel, delayed

from common.atomic import atomic_write_json
from common.workers import ParentBound, worker_count
from nas.history import write_csv
from pipeline.columns import write_column_legend
from pipeline.config import PipelineConfig
from pipeline.final_training import TrainJob, train_and_test
from search_spaces import get_baseline, profile
from train.feature_set import Features, load_features
from train.linear_reference import C_GRID, fit_linear_reference
from train.metrics import aggregate_metrics
from train.train_config import TrainConfig


def _train_one(run_dir: Path, name: str, k: int, train_cfg: TrainConfig, resume: bool) -> dict[str, Any]:
    """Train and test one (baseline, seed) in a worker process (see :func:`pipeline.final_training.train_and_test`)."""
    return train_and_test(run_dir, TrainJob(name, str(get_baseline(name)), k, train_cfg, "baseline"), resume)


def _write_model_metrics(run_dir: Path, name: str, records: list[dict[str, Any]], cfg: PipelineConfig) -> dict:
    spec = get_baseline(name)
    features = load_features(run_dir)
    prof = profile(spec, features.n_classes, features.input_shape)
    summary = {
        "model": name,
        "kind": "baseline",
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
        "recipe": cfg.train.recipe(),
        "runs": records,
    }
    atomic_write_json(run_dir / "models" / name / "metrics.json", summary)
    return summary


LINEAR = "linear"  # the linear reference's name in the results
PER_SPEAKER_TABLE = "per_speaker_accuracy.csv"

RESULT_COLUMNS = [
    "model", "kind", "dataset", "split", "seeds", "params", "size_kb", "macs_m", "test_accuracy_mean",
    "test_accuracy_std", "test_macro_f1_mean", "test_macro_f1_std", "val_macro_f1_mean", "train_wall_s_mean",
    "epochs", "recipe", "spec",
]  # fmt: skip
PER_SPEAKER_COLUMNS = ["model", "kind", "speaker", "n_test_clips", "test_accuracy_mean", "test_accuracy_std", "seeds"]


def _row(s: dict) -> list[Any]:
    acc, f1 = s["test"]["accuracy"], s["test"]["macro_f1"]
    return [
        s["model"], s["kind"], s["dataset"], s["split_protocol"], len(s["seeds"]), s["params"], round(s["size_kb"], 1),
        round(s["macs_m"], 2), acc["mean"], acc["std"], f1["mean"], f1["std"], s["best_val_macro_f1"]["mean"],
        round(s["train_wall_s"]["mean"], 1), s["epochs"], s.get("recipe", ""), s["spec"],
    ]  # fmt: skip


def _per_speaker_rows(summaries: list[dict]) -> list[dict[str, Any]]:
    """One row per (model, test speaker or source): where each model fails."""
    rows = []
    for s in summaries:
        for speaker, stat in s["test"].get("per_speaker", {}).items():
            acc, n = stat["accuracy"], int(stat["n"]["mean"])
            rows.append({"model": s["model"], "kind": s["kind"], "speaker": speaker, "n_test_clips": n,
                         "test_accuracy_mean": acc["mean"], "test_accuracy_std": acc["std"],
                         "seeds": len(s["seeds"])})  # fmt: skip
    return rows


def linear_summary(features: Features) -> dict[str, Any] | None:
    """The linear reference as a baseline summary (None where it does not apply: waveform features)."""
    try:
        ref = fit_linear_reference(features)
    except ValueError as exc:
        print(f"  linear reference left out: {exc}", flush=True)
        return None
    one = {"accuracy": ref.test["accuracy"], "macro_f1": ref.test["macro_f1"]}
    if "per_speaker" in ref.test:
        one["per_speaker"] = ref.test["per_speaker"]
    return {
        "model": LINEAR, "kind": "reference", "spec": ref.spec, "dataset": features.dataset,
        "split_protocol": features.splits.protocol, "params": ref.params, "size_kb": ref.size_kb,
        "macs_m": ref.params / 1e6, "seeds": [0], "test": aggregate_metrics([one]),
        "train_wall_s": {"mean": ref.wall_s, "std": None}, "best_val_macro_f1": {"mean": None}, "epochs": "",
        "recipe": f"C in {', '.join(f'{c:g}' for c in C_GRID)} chosen on validation",
        "val_accuracy": ref.val_accuracy, "c": ref.c, "test_metrics": ref.test,
    }  # fmt: skip


def _write_linear(run_dir: Path, features: Features) -> dict[str, Any] | None:
    summary = linear_summary(features)
    if summary is not None:
        atomic_write_json(run_dir / "models" / LINEAR / "metrics.json", summary)
        acc = summary["test"]["accuracy"]["mean"]
        print(f"  {LINEAR:>7}: test accuracy {acc:.4f}, macro-F1 {summary['test']['macro_f1']['mean']:.4f} "
              f"(reference: {summary['spec']}, {summary['train_wall_s']['mean']:.1f} s)", flush=True)  # fmt: skip
    return summary


def run_baselines(cfg: PipelineConfig, run_dir: Path, resume: bool = False) -> list[dict]:
    """Train every configured baseline for every seed (in parallel), test, and write the results table.

    Writes ``models/<name>/{best.pt,last.pt,run.json,metrics.json}`` (extra seeds under
    ``models/<name>/seed<k>/``) and ``baseline_results.csv``. With ``resume``, finished runs are
    kept and unfinished ones continue from their ``last.pt``.

    Returns:
        The per-model summaries (as written to ``metrics.json``).
    """
    runs = [(name, k) for name in cfg.baseline.models for k in range(cfg.baseline.seeds)]
    jobs = worker_count(cfg.run.jobs, len(runs), "baseline runs")
    # train.num_threads stays as configured (1 by default): results must not depend on the core count
    train_cfg = replace(cfg.train, progress=cfg.run.progress and jobs == 1)
    task = ParentBound(_train_one)
    tasks = [delayed(task)(run_dir, name, k, replace(train_cfg, seed=cfg.run.seed + k), resume) for name, k in runs]
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
    reference = _write_linear(run_dir, load_features(run_dir)) if cfg.baseline.linear_reference else None
    summaries += [reference] if reference else []
    rows = [dict(zip(RESULT_COLUMNS, _row(s), strict=True)) for s in summaries]
    write_csv(run_dir / "baseline_results.csv", RESULT_COLUMNS, rows)
    per_speaker = _per_speaker_rows(summaries)
    if per_speaker:
        write_csv(run_dir / PER_SPEAKER_TABLE, PER_SPEAKER_COLUMNS, per_speaker)
    write_column_legend(run_dir)
    return summaries


def run(cfg: PipelineConfig, run_dir: Path, resume: bool = False) -> list[dict]:
    """``--mode baseline``: features, then train/test the fixed baselines; returns the per-model summaries."""
    from pipeline.features_stage import features_line
    from pipeline.features_stage import run as run_features

    print(features_line(run_features(cfg, run_dir)), flush=True)
    if cfg.baseline.cv:
        from pipeline.cv_stage import run_cv

        return run_cv(cfg, run_dir, resume=resume)
    print(
        f"training baselines {', '.join(cfg.baseline.models)} for {cfg.train.epochs} epochs x "
        f"{cfg.baseline.seeds} seed(s)",
        flush=True,
    )
    return run_baselines(cfg, run_dir, resume=resume)


def summary(summaries: list[dict], run_dir: Path) -> list[str]:
    """One line per baseline (test accuracy and macro-F1 mean +- std, size, MACs) and where the files are."""
    if summaries and "folds" in summaries[0]:
        from pipeline.cv_stage import cv_summary_lines

        return cv_summary_lines(summaries, run_dir)
    lines = []
    for s in summaries:
        acc, f1 = s["test"]["accuracy"], s["test"]["macro_f1"]
        lines.append(
            f"{s['model']:>7}: test accuracy {acc['mean']:.4f} +- {acc['std'] or 0:.4f}, macro-F1 "
            f"{f1['mean']:.4f} +- {f1['std'] or 0:.4f}, {s['params']} params, {s['size_kb']:.1f} KB, "
            f"{s['macs_m']:.1f} M MACs" + (" (linear reference)" if s.get("kind") == "reference" else "")
        )
    lines += reference_lines(summaries) + worst_speaker_lines(summaries)
    tables = "baseline_results.csv" + (f", {PER_SPEAKER_TABLE}" if (run_dir / PER_SPEAKER_TABLE).is_file() else "")
    return [*lines, f"results in {run_dir}/ ({tables}) and {run_dir}/models/"]


def worst_speaker_lines(summaries: list[dict]) -> list[str]:
    """Each CNN's worst test speaker (or source) where the test split holds more than one."""
    lines = []
    for s in summaries:
        speakers = s["test"].get("per_speaker", {})
        if len(speakers) < 2 or s.get("kind") == "reference":
            continue
        worst = min(speakers, key=lambda k: speakers[k]["accuracy"]["mean"])
        lines.append(f"{s['model']:>7}: worst test speaker {worst} ({100 * speakers[worst]['accuracy']['mean']:.1f}% "
                     f"of {int(speakers[worst]['n']['mean'])} clips)")  # fmt: skip
    return lines


def reference_lines(summaries: list[dict]) -> list[str]:
    """Which CNNs beat the linear reference on mean test accuracy (nothing without a reference)."""
    reference = next((s for s in summaries if s.get("kind") == "reference"), None)
    if reference is None:
        return []
    bar = reference["test"]["accuracy"]["mean"]
    cnns = [s for s in summaries if s.get("kind") != "reference"]
    below = [s["model"] for s in cnns if s["test"]["accuracy"]["mean"] <= bar]
    if not below:
        return [f"every CNN baseline is above the linear reference ({100 * bar:.1f}%)"]
    return [f"at or below the linear reference ({100 * bar:.1f}%): {', '.join(below)}: the CNN adds nothing there "
            "over pooled statistics of the same features"]  # fmt: skip
