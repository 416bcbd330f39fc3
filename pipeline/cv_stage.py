"""``--mode baseline --cv ...``: the baselines, and the search's survivors, cross-validated as papers report them.

``--models tiny,survivors`` adds the survivors of the run folder's search (the architectures
``--mode quantization`` trains, same ``nas-<hash>`` names); their rows say in ``protocol`` that
the architecture was chosen on the run's single split.

Each fold is a folder ``cv/fold<i>/`` holding its own data record (``data/clips.csv`` with that
fold's split, ``data/summary.json`` with normalisation statistics of its training clips, over
the run's feature cache) and its models, so every fold x model x seed is one resumable training
run (:func:`pipeline.final_training.train_and_test`). Outputs:

- ``cv_results.csv``: one row per model x fold x seed (test accuracy and macro-F1);
- ``cv_summary.csv``: one row per model: mean +- std over folds (and seeds), the protocol in
  words, and the paired difference to the reference model (the first of ``--models``) over the
  same folds and seeds, with the Wilcoxon signed-rank p-value; and, with ``baseline.linear_reference``,
  the linear reference (:mod:`train.linear_reference`, fitted on each fold's train split: it is
  deterministic, so one seed) as a row ``linear``, and each CNN's paired difference to it, fold by
  fold (a CNN's seeds averaged within the fold), with its Wilcoxon p-value.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed

from common.atomic import atomic_write_json, atomic_write_text
from common.errors import UserError
from common.workers import ParentBound, worker_count
from nas.history import write_csv
from pipeline.baseline_config import SURVIVORS
from pipeline.columns import write_column_legend
from pipeline.config import PipelineConfig
from pipeline.data_stage import same_record
from pipeline.final_training import TrainJob, train_and_test
from pipeline.search_data import search_read_rows
from pipeline.survivors import select_survivors
from search_spaces import get_baseline
from train.cv_folds import cv_splits
from train.feature_set import Features, load_features
from train.linear_reference import fit_linear_reference
from train.metrics import aggregate_metrics
from train.normalization import compute_normalization
from train.splits import Splits

RESULT_COLUMNS = ["model", "fold", "seed", "test_accuracy", "test_macro_f1", "search_read_test_pct", "protocol"]
SUMMARY_COLUMNS = [
    "model", "folds", "seeds", "test_accuracy_mean", "test_accuracy_std", "test_macro_f1_mean", "test_macro_f1_std",
    "reference", "delta_accuracy_pts_mean", "wilcoxon_p", "delta_vs_linear_pts_mean", "wilcoxon_p_vs_linear",
    "search_read_test_pct", "unread_folds", "test_accuracy_unread_folds_mean", "protocol",
]  # fmt: skip
LINEAR = "linear"
SEARCHED_NOTE = (
    "architecture chosen by the search on the run's single split: its validation clips are test clips of some "
    "folds, so its mean is slightly optimistic against the baselines'"
)  # when the run has no record of the search's data (nas/search_data.json, written since 2026-12)


@dataclass(frozen=True)
class CvFold:
    """One fold: its folder (``cv/fold<i>/``, with its own data record) and its split."""

    number: int
    folder: Path
    split: Splits


def write_folds(cfg: PipelineConfig, run_dir: Path, features: Features) -> list[CvFold]:
    """Write (or keep) each fold's data record under ``cv/fold<i>/``; returns the folds."""
    clips = _read_clips(run_dir)
    fold_of = np.array([int(f) if f not in ("", None) else -1 for f in clips["fold"]])
    rows = np.flatnonzero(clips["split"] != "")
    splits = cv_splits(features.y, rows, fold_of if (fold_of >= 0).any() else None, features.speakers,
                       cfg.baseline.cv, cfg.data.val_fraction, cfg.data.seed)  # fmt: skip
    folds = []
    for i, split in enumerate(splits, start=1):
        folder = run_dir / "cv" / f"fold{i}"
        _write_fold(run_dir, folder, clips, features, split)
        folds.append(CvFold(i, folder, split))
    return folds


def _read_clips(run_dir: Path):
    import pandas as pd

    return pd.read_csv(run_dir / "data" / "clips.csv", dtype=str, keep_default_na=False)


def _write_fold(run_dir: Path, folder: Path, clips, features: Features, split) -> None:
    fold_clips = clips.copy()
    fold_clips["split"] = split.name_of(len(fold_clips))
    summary = json.loads((run_dir / "data" / "summary.json").read_text())
    norm = compute_normalization(features.x, split.train)
    fold_features = dataclasses.replace(features, splits=split, normalization=norm)
    summary |= {
        "split_protocol": split.protocol,
        "split_sizes": {name: len(split[name]) for name in ("train", "val", "test")},
        "normalization": norm.to_dict(),
        "data_fingerprint": fold_features.fingerprint,
    }
    path = folder / "data" / "summary.json"
    if path.is_file() and same_record(json.loads(path.read_text()), summary):
        return  # the same fold record as before (models are keyed on the fingerprint, not on paths)
    buf = io.StringIO()
    fold_clips.to_csv(buf, index=False, lineterminator="\n")
    atomic_write_text(folder / "data" / "clips.csv", buf.getvalue())
    atomic_write_json(path, summary)


def _train(folder: str, fold: int, model: CvModel, k: int, train_cfg, resume: bool) -> dict[str, Any]:
    record = train_and_test(Path(folder), TrainJob(model.name, model.spec, k, train_cfg, model.kind), resume)
    return record | {"fold": fold}


@dataclass(frozen=True)
class CvModel:
    """One architecture to cross-validate: its folder name, canonical spec and kind (``baseline`` or ``nas``)."""

    name: str
    spec: str
    kind: str


def cv_models(cfg: PipelineConfig, run_dir: Path) -> list[CvModel]:
    """The baselines named in ``baseline.models``, with ``survivors`` replaced by the run's search survivors.

    The survivors are those ``--mode quantization`` trains (``quantize.survivors``, thinned by
    crowding distance, or ``quantize.survivor_specs``), under the same ``nas-<hash>`` names.

    Raises:
        UserError: ``survivors`` asked for in a folder without a search that has a feasible front.
    """
    models = []
    for name in cfg.baseline.models:
        if name != SURVIVORS:
            models.append(CvModel(name, str(get_baseline(name)), "baseline"))
            continue
        survivors, _ = select_survivors(run_dir, cfg.quantize.survivors, only=cfg.quantize.survivor_specs)
        if not survivors:
            raise UserError(
                f"--models {SURVIVORS}: {run_dir} holds no search with a feasible front to take survivors from; "
                f"run --mode nas --out {run_dir} first (the same --out), then --mode baseline --cv"
            )
        models += [CvModel(s.name, s.spec, "nas") for s in survivors]
    return list({m.name: m for m in models}.values())


def run_cv(cfg: PipelineConfig, run_dir: Path, resume: bool = False) -> list[dict[str, Any]]:
    """Train every baseline on every fold for every seed, then write the CV tables; returns the summary rows."""
    models = cv_models(cfg, run_dir)
    names = [m.name for m in models]
    features = load_features(run_dir)
    folds = write_folds(cfg, run_dir, features)
    units = [(fold, model, k) for fold in folds for model in models for k in range(cfg.baseline.seeds)]
    jobs = worker_count(cfg.run.jobs, len(units), "fold x model x seed runs")
    train_cfg = replace(cfg.train, progress=cfg.run.progress and jobs == 1)
    protocol = folds[0].split.protocol.split(",")[0]
    print(f"cross-validation: {protocol}; {len(folds)} folds x {len(models)} model(s) x "
          f"{cfg.baseline.seeds} seed(s) = {len(units)} training runs, {jobs} worker(s)", flush=True)  # fmt: skip
    searched = [m.name for m in models if m.kind == "nas"]
    read_pct = _search_read_pct(run_dir, features, folds) if searched else {}
    if searched:
        print(f"  {', '.join(searched)}: the search's survivors; {_searched_note(read_pct)}", flush=True)
    task = ParentBound(_train)
    tasks = [delayed(task)(str(fold.folder), fold.number, model, k, replace(train_cfg, seed=cfg.run.seed + k), resume)
             for fold, model, k in units]  # fmt: skip
    results = []
    for record in Parallel(n_jobs=jobs, return_as="generator_unordered")(tasks):
        test = record["test"]
        read = read_pct.get(record["fold"], "") if record["model"] in searched else ""
        results.append({"model": record["model"], "fold": record["fold"], "seed": record["seed"],
                        "test_accuracy": test["accuracy"], "test_macro_f1": test["macro_f1"],
                        "search_read_test_pct": read})  # fmt: skip
        print(f"  {record['model']:>7} fold {record['fold']} seed {record['seed']}: test accuracy "
              f"{test['accuracy']:.4f}, macro-F1 {test['macro_f1']:.4f}", flush=True)  # fmt: skip
    results.sort(key=lambda r: (names.index(r["model"]), r["fold"], r["seed"]))
    if cfg.baseline.linear_reference:
        results += _linear_folds([fold.folder for fold in folds])
    for r in results:
        r["protocol"] = protocol
    summaries = summarise(results, names, protocol)
    for row in summaries:
        _add_search_read(row, [r for r in results if r["model"] == row["model"]], read_pct, row["model"] in searched)
    write_csv(run_dir / "cv_results.csv", RESULT_COLUMNS, results)
    write_csv(run_dir / "cv_summary.csv", SUMMARY_COLUMNS, summaries)
    write_column_legend(run_dir)
    return summaries


def _search_read_pct(run_dir: Path, features: Features, folds: list[CvFold]) -> dict[int, float]:
    """Per fold, the share (%) of its test clips the search read; empty when the run has no record of them."""
    read = search_read_rows(run_dir, features)
    if read is None:
        return {}
    return {fold.number: float(100 * read[fold.split.test].mean()) for fold in folds}


def _searched_note(read_pct: dict[int, float]) -> str:
    """What the survivors' CV numbers are worth: how much of the folds' test clips the search read."""
    if not read_pct:
        return SEARCHED_NOTE
    unread = [f for f, pct in read_pct.items() if pct == 0]
    mean_pct = float(np.mean(list(read_pct.values())))
    many = len(unread) > 1
    where = (f"fold{'s' * many} {', '.join(map(str, unread))} hold{'s' * (not many)} none of them: the "
             "models' means over those folds alone are free of selection bias" if unread
             else "no fold is free of them: the mean is optimistic against the baselines'")  # fmt: skip
    return (f"architecture chosen by the search on the run's single split, which trained or validated on "
            f"{mean_pct:.1f}% of each fold's test clips on average ({where})")  # fmt: skip


def _add_search_read(
    row: dict[str, Any], results: list[dict[str, Any]], read_pct: dict[int, float], searched: bool
) -> None:
    """A summary row with survivors in the CV: the mean over the folds the search never read, for every model.

    A survivor's row also gets the share of the folds' test clips the search read, and the note
    on what its mean is worth in ``protocol``.
    """
    if searched:
        row["protocol"] += f"; {_searched_note(read_pct)}"
    if not read_pct:
        return
    unread = {f for f, pct in read_pct.items() if pct == 0}
    if searched:
        row["search_read_test_pct"] = float(np.mean(list(read_pct.values())))
        row["unread_folds"] = len(unread)
    accuracies = [r["test_accuracy"] for r in results if r["fold"] in unread]
    row["test_accuracy_unread_folds_mean"] = float(np.mean(accuracies)) if accuracies else None


def _linear_folds(dirs: list[Path]) -> list[dict[str, Any]]:
    """The linear reference on each fold (fitted on its train split, C chosen on its validation split)."""
    rows = []
    for fold, folder in enumerate(dirs, start=1):
        try:
            ref = fit_linear_reference(load_features(folder))
        except ValueError as exc:
            print(f"  linear reference left out: {exc}", flush=True)
            return []
        rows.append({"model": LINEAR, "fold": fold, "seed": "", "test_accuracy": ref.test["accuracy"],
                     "test_macro_f1": ref.test["macro_f1"]})  # fmt: skip
        print(f"  {LINEAR:>7} fold {fold}: test accuracy {ref.test['accuracy']:.4f}, macro-F1 "
              f"{ref.test['macro_f1']:.4f} (reference, C={ref.c:g})", flush=True)  # fmt: skip
    return rows


def _paired_p(delta: np.ndarray) -> float | None:
    """Two-sided Wilcoxon signed-rank p-value; None with fewer than 2 pairs or when every difference is 0."""
    from scipy.stats import wilcoxon

    return float(wilcoxon(delta).pvalue) if len(delta) >= 2 and np.any(delta != 0) else None


def _vs_linear(units: dict[tuple, dict[str, Any]], linear: dict[int, float]) -> tuple[float | None, float | None]:
    """Mean paired difference (points) to the linear reference over folds, a model's seeds averaged per fold."""
    folds = sorted({fold for fold, _ in units} & set(linear))
    if not folds:
        return None, None
    delta = np.array([np.mean([u["test_accuracy"] for (f, _), u in units.items() if f == fold]) - linear[fold]
                      for fold in folds])  # fmt: skip
    return float(100 * delta.mean()), _paired_p(delta)


def summarise(results: list[dict[str, Any]], models: list[str], protocol: str) -> list[dict[str, Any]]:
    """Mean +- std over folds and seeds per model, and the paired comparisons with the first model and the linear one.

    The paired difference to the first model is taken unit by unit (same fold, same seed); the one
    to the linear reference (rows of model ``linear``, one per fold, where present) fold by fold.
    Wilcoxon signed-rank p-values are two-sided, None with fewer than 2 pairs or when every
    difference is 0.
    """
    by = {m: {(r["fold"], r["seed"]): r for r in results if r["model"] == m} for m in models}
    linear = {int(r["fold"]): r["test_accuracy"] for r in results if r["model"] == LINEAR}
    reference = models[0]
    rows = []
    for model in models:
        units = by[model]
        stats = aggregate_metrics([{"accuracy": u["test_accuracy"], "macro_f1": u["test_macro_f1"]}
                                   for u in units.values()])  # fmt: skip
        shared = sorted(set(units) & set(by[reference]))
        delta = np.array([units[u]["test_accuracy"] - by[reference][u]["test_accuracy"] for u in shared])
        p = _paired_p(delta) if model != reference else None
        vs_linear, p_linear = _vs_linear(units, linear)
        rows.append({
            "model": model, "folds": len({u[0] for u in units}), "seeds": len({u[1] for u in units}),
            "test_accuracy_mean": stats["accuracy"]["mean"], "test_accuracy_std": stats["accuracy"]["std"],
            "test_macro_f1_mean": stats["macro_f1"]["mean"], "test_macro_f1_std": stats["macro_f1"]["std"],
            "reference": reference, "delta_accuracy_pts_mean": float(100 * delta.mean()) if len(delta) else None,
            "wilcoxon_p": p, "delta_vs_linear_pts_mean": vs_linear, "wilcoxon_p_vs_linear": p_linear,
            "protocol": f"{protocol}, mean +- std over folds and seeds",
        })  # fmt: skip
    if linear:
        rows.append(_linear_row(results, protocol))
    return rows


def _linear_row(results: list[dict[str, Any]], protocol: str) -> dict[str, Any]:
    units = [r for r in results if r["model"] == LINEAR]
    stats = aggregate_metrics([{"accuracy": u["test_accuracy"], "macro_f1": u["test_macro_f1"]} for u in units])
    return {
        "model": LINEAR, "folds": len(units), "seeds": 1, "test_accuracy_mean": stats["accuracy"]["mean"],
        "test_accuracy_std": stats["accuracy"]["std"], "test_macro_f1_mean": stats["macro_f1"]["mean"],
        "test_macro_f1_std": stats["macro_f1"]["std"], "reference": "", "delta_accuracy_pts_mean": None,
        "wilcoxon_p": None, "delta_vs_linear_pts_mean": None, "wilcoxon_p_vs_linear": None,
        "protocol": f"{protocol}, mean +- std over folds; linear reference (deterministic)",
    }  # fmt: skip


def cv_summary_lines(summaries: list[dict[str, Any]], run_dir: Path) -> list[str]:
    """One line per model and where the tables are."""
    lines = []
    for s in summaries:
        paired = ""
        if s["model"] != s["reference"] and s["delta_accuracy_pts_mean"] is not None:
            p = "n/a" if s["wilcoxon_p"] is None else f"{s['wilcoxon_p']:.3g}"
            paired = f"; vs {s['reference']} {s['delta_accuracy_pts_mean']:+.2f} pts (Wilcoxon p {p})"
        if s.get("delta_vs_linear_pts_mean") is not None:
            p = "n/a" if s["wilcoxon_p_vs_linear"] is None else f"{s['wilcoxon_p_vs_linear']:.3g}"
            paired += f"; vs linear {s['delta_vs_linear_pts_mean']:+.2f} pts (p {p})"
        if s.get("search_read_test_pct") is not None:
            paired += f"; the search read {s['search_read_test_pct']:.1f}% of each fold's test clips on average"
        if s.get("test_accuracy_unread_folds_mean") is not None:
            paired += (f"; on the fold(s) the search never read: test accuracy "
                       f"{s['test_accuracy_unread_folds_mean']:.4f}")  # fmt: skip
        lines.append(f"{s['model']:>7}: test accuracy {s['test_accuracy_mean']:.4f} +- {s['test_accuracy_std']:.4f}, "
                     f"macro-F1 {s['test_macro_f1_mean']:.4f} +- {s['test_macro_f1_std']:.4f} over "
                     f"{s['folds']} fold(s) x {s['seeds']} seed(s){paired}")  # fmt: skip
    if summaries:
        lines.append(f"protocol: {summaries[0]['protocol']}")
    return [*lines, f"results in {run_dir}/cv_summary.csv, cv_results.csv and {run_dir}/cv/"]
