"""``--mode quantization``: the run's baselines and search survivors to trained, distilled, INT8 ONNX models.

Steps, each resumable (finished work is reused, a killed run continues where it stopped):

1. survivors: the search's feasible front thinned by crowding distance (``survivors.csv``);
2. full training of every survivor for ``quantize.seeds`` seeds (baselines trained by
   ``--mode baseline`` are used as they are), tested once;
3. proxy fidelity: Kendall tau of proxy vs full accuracy over the survivors;
4. distillation of the students from the teacher, with the same seeds as the plain runs;
5. every model (first seed) exported and quantized, each variant re-measured on the artifact.

Outputs: ``training_results.csv``, ``quantization_results.csv`` and ``quantization_results.json``
(everything, incl. the machine and the proxy fidelity), ``models/<name>/``, ``onnx/``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from joblib import Parallel, delayed

from common.atomic import atomic_write_json
from common.errors import UserError
from common.workers import ParentBound, worker_count
from latency_tables.device_info import device_metadata
from nas.history import write_csv
from nas.runfolder import SearchPaths
from pipeline.columns import write_column_legend
from pipeline.config import PipelineConfig
from pipeline.final_training import TeacherRef, TrainJob, checkpoint_of, finished_runs, train_and_test
from pipeline.model_variants import ShipModel, VariantRunner, stage_inputs
from pipeline.proxy_fidelity import fidelity_line, proxy_fidelity
from pipeline.survivors import Survivor, select_survivors, write_survivors
from pipeline.teacher_choice import choose_teacher, students
from pipeline.training_table import TRAINING_COLUMNS, training_rows
from search_spaces import list_baselines
from train.feature_set import Features, load_features

RESULT_COLUMNS = [
    "model", "kind", "variant", "test_accuracy", "test_macro_f1", "accuracy_delta_pts", "val_accuracy",
    "val_accuracy_delta_pts", "size_kb", "size_ratio", "latency_ms", "latency_p90_ms", "speedup",
    "predicted_latency_ms", "table_device", "layers_fp32", "layers_fp32_names", "bound_met", "parity_max_abs_diff",
    "table_note", "teacher", "seed", "spec", "onnx", "calibration", "note",
]  # fmt: skip


@dataclass
class QuantizationResult:
    """What the stage produced (the files in the run folder hold the same)."""

    survivors: list[Survivor]
    training: list[dict[str, Any]]
    teacher: TeacherRef | None
    fidelity: dict[str, Any]
    rows: list[dict[str, Any]]
    machine: dict[str, Any]
    failed: list[dict[str, str]] = dataclasses.field(default_factory=list)  # model, variant, reason


def check_folder(run_dir: Path, resume: bool) -> None:
    """Refuse a folder without the features a model needs (say which mode makes them)."""
    if not (run_dir / "data" / "summary.json").is_file():
        raise UserError(
            f"{run_dir} holds no features (data/summary.json): run --mode baseline and/or --mode nas with "
            f"--out {run_dir} first"
        )


def _features(run_dir: Path) -> Features:
    try:
        return load_features(run_dir)
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise UserError(f"the features of {run_dir} cannot be loaded ({exc}); re-run --mode features with the "
                        "run's settings (the feature cache may have been removed)") from None  # fmt: skip


def _trained_baselines(run_dir: Path) -> list[str]:
    return [name for name in list_baselines() if finished_runs(run_dir, name)]


def _train(run_dir: Path, jobs: list[TrainJob], cfg: PipelineConfig, resume: bool, what: str) -> None:
    if not jobs:
        return
    n_jobs = worker_count(cfg.run.jobs, len(jobs), "training runs")
    print(f"training {what}: {len(jobs)} run(s) of {cfg.train.epochs} epochs, {n_jobs} worker(s)", flush=True)
    task = ParentBound(train_and_test)
    tasks = [delayed(task)(run_dir, job, resume) for job in jobs]
    for record in Parallel(n_jobs=n_jobs, return_as="generator_unordered")(tasks):
        test = record["test"]
        print(
            f"  {record['model']:>14} seed {record['seed']}: test accuracy {test['accuracy']:.4f}, "
            f"macro-F1 {test['macro_f1']:.4f} ({record['train']['wall_s']:.0f} s, "
            f"{record['train']['epochs_run']} epochs)",
            flush=True,
        )


def _jobs(names: list[tuple[str, str]], kind: str, cfg: PipelineConfig, teacher: TeacherRef | None) -> list[TrainJob]:
    q = cfg.quantize
    train = replace(cfg.train, progress=False)
    suffix = "-kd" if teacher is not None else ""
    return [
        TrainJob(name + suffix, spec, k, replace(train, seed=cfg.run.seed + k), kind, teacher)
        for name, spec in names
        for k in range(q.seeds)
    ]


def _ship_models(run_dir: Path, trained: dict[str, list[dict[str, Any]]]) -> list[ShipModel]:
    """The first seed of every trained model, in table order: baselines, survivors, distilled students."""
    order = {"baseline": 0, "nas": 1, "distilled": 2}
    models = []
    for name, runs in trained.items():
        first = runs[0]  # the lowest finished seed index
        kind = first.get("kind", "baseline")
        models.append(ShipModel(name, kind, first["spec"], checkpoint_of(run_dir, first), first["seed"],
                                first.get("teacher")))  # fmt: skip
    return sorted(models, key=lambda m: (order.get(m.kind, 3), m.name))


def _table(cfg: PipelineConfig):
    """The latency table whose fp32 prediction is quoted beside each measurement.

    ``--device-name``, else the search's first device, else the shipped default; a table that
    cannot be used is said so (one warning line), not fatal.
    """
    from pipeline.latency_stage import resolve_table

    device = cfg.latency.device or (cfg.nas.devices[0] if cfg.nas.devices else None)
    try:
        return resolve_table(cfg, device)
    except UserError as exc:
        print(f"warning: no table prediction beside the measured latencies: {exc}", flush=True)
        return None


def run(cfg: PipelineConfig, run_dir: Path, resume: bool = False) -> QuantizationResult:
    """Run the stage (see the module docstring); returns what it wrote.

    Raises:
        UserError: The folder holds neither trained baselines nor a search, or a step's input is unusable.
    """
    q = cfg.quantize
    features = _features(run_dir)
    survivors, front_rows = select_survivors(run_dir, q.survivors, only=q.survivor_specs)
    has_search = SearchPaths(run_dir).has_search()
    if has_search:
        write_survivors(run_dir, front_rows)
    baselines = _trained_baselines(run_dir)
    if not survivors and not baselines:
        if has_search and not front_rows:
            raise UserError(
                f"the search in {run_dir} found no feasible candidate (see nas/history.csv) and the folder holds no "
                "trained baselines: relax the constraints and resume the search, or run --mode baseline there"
            )
        if has_search:
            raise UserError(f"--survivors {q.survivors} keeps no search survivor and {run_dir} holds no trained "
                            "baselines: use --survivors 1 or more")  # fmt: skip
        raise UserError(
            f"{run_dir} holds no trained baselines and no search front: run --mode baseline (trained models) "
            f"and/or --mode nas (a search) with --out {run_dir} first"
        )
    print(
        f"[{features.dataset}] quantization of {len(baselines)} baseline(s) ({', '.join(baselines) or '-'}) and "
        f"{len(survivors)} survivor(s) of the search", flush=True,
    )  # fmt: skip
    _train(run_dir, _jobs([(s.name, s.spec) for s in survivors], "nas", cfg, None), cfg, resume, "survivors")
    trained = {name: finished_runs(run_dir, name) for name in [*baselines, *(s.name for s in survivors)]}
    fidelity = proxy_fidelity(
        [{"name": s.name, "proxy": s.proxy.get("accuracy"), **_mean_scores(trained[s.name])} for s in survivors]
    )
    teacher = None
    if q.distill.students != "none":
        teacher = choose_teacher(q.distill, trained, run_dir, features)
        names = students(q.distill, list(trained), [s.name for s in survivors], teacher)
        specs = [(name, trained[name][0]["spec"]) for name in names]
        print(f"distilling {len(names)} student(s) from {teacher.name} (T={teacher.distill.temperature:g}, "
              f"alpha={teacher.distill.alpha:g})", flush=True)  # fmt: skip
        _train(run_dir, _jobs(specs, "distilled", cfg, teacher), cfg, resume, "distilled students")
        trained |= {f"{name}-kd": finished_runs(run_dir, f"{name}-kd") for name in names}
    training = training_rows(trained, features, {s.name: s for s in survivors})
    write_csv(run_dir / "training_results.csv", TRAINING_COLUMNS, training)
    rows, failed = _variants(run_dir, cfg, features, trained)
    write_csv(run_dir / "quantization_results.csv", RESULT_COLUMNS, [{c: r.get(c, "") for c in RESULT_COLUMNS}
                                                                     for r in rows])  # fmt: skip
    write_column_legend(run_dir)
    machine = device_metadata()
    result = QuantizationResult(survivors, training, teacher, fidelity, rows, machine, failed)
    atomic_write_json(run_dir / "quantization_results.json", _to_json(result, cfg))
    return result


def _mean_scores(runs: list[dict[str, Any]]) -> dict[str, float]:
    if not runs:
        return {}
    return {
        "val": sum(r["train"]["best_val_accuracy"] for r in runs) / len(runs),
        "test": sum(r["test"]["accuracy"] for r in runs) / len(runs),
    }


def _variants(
    run_dir: Path, cfg: PipelineConfig, features: Features, trained: dict
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Every model's variant rows, and the variants that failed (model, variant, reason)."""
    models = _ship_models(run_dir, {k: v for k, v in trained.items() if v})
    inputs = stage_inputs(features, cfg.quantize, cfg.run.seed)
    table = _table(cfg)
    timing = cfg.latency.timing
    print(f"exporting and quantizing {len(models)} model(s): {', '.join(cfg.quantize.variants)}; latency in ONNX "
          f"Runtime, {timing.threads} thread(s)", flush=True)  # fmt: skip
    rows, failed = [], []
    for model in models:
        runner = VariantRunner(run_dir, model, features, cfg.quantize, timing, cfg.train, inputs, table)
        variant_rows = runner.run()
        rows += variant_rows
        failed += [{"model": model.name, "variant": v, "reason": why} for v, why in runner.failures.items()]
        line = _model_line(variant_rows, cfg.quantize.variants, runner.bound_pts()[0], runner.failures)
        print("  " + line, flush=True)
        for variant in runner.failures:
            print(f"    {variant} of {model.name} failed; to try it again, delete "
                  f"{runner.result_path(variant).relative_to(run_dir)}", flush=True)  # fmt: skip
    return rows, failed


def _model_line(
    rows: list[dict[str, Any]], variants: tuple[str, ...] = (), bound_pts: float = 0.0,
    failures: dict[str, str] | None = None,
) -> str:  # fmt: skip
    """The summary line of one model: fp32 accuracy, size and latency, then per variant.

    Each variant: test-accuracy change, size ratio and speed-up (fp32 latency / variant latency;
    below 1 is slower); a variant that failed gives its reason; a QAT that was not needed says so.
    """
    failures = failures or {}
    fp32 = rows[0]
    parts = [f"{fp32['model']}: fp32 {100 * fp32['test_accuracy']:.1f}% {fp32['size_kb']:.0f} KiB "
             f"{fp32['latency_ms']:.3f} ms"]  # fmt: skip
    for r in rows[1:]:
        parts.append(f"{r['variant']} {r['accuracy_delta_pts']:+.1f} pts x{r['size_ratio']:.1f} smaller "
                     f"speed-up x{r['speedup']:.2f}")  # fmt: skip
    parts += [f"{variant} FAILED ({why})" for variant, why in failures.items()]
    if "int8_qat" in variants and "int8_qat" not in failures and not any(r["variant"] == "int8_qat" for r in rows):
        if "int8_static" in failures:
            parts.append("int8_qat not tried (it is judged on int8_static, which failed)")
        else:
            parts.append(f"int8_qat not needed (int8_static within {bound_pts:.2g} pts on validation)")
    return "; ".join(parts)


def _to_json(result: QuantizationResult, cfg: PipelineConfig) -> dict[str, Any]:
    return {
        "machine": result.machine,
        "quantize": dataclasses.asdict(cfg.quantize),
        "train": dataclasses.asdict(cfg.train),
        "timing": dataclasses.asdict(cfg.latency.timing),
        "survivors": [dataclasses.asdict(s) for s in result.survivors],
        "teacher": None if result.teacher is None else dataclasses.asdict(result.teacher),
        "proxy_fidelity": result.fidelity,
        "training": result.training,
        "variants": result.rows,
        "failed_variants": result.failed,
    }


def summary(result: QuantizationResult, run_dir: Path) -> list[str]:
    """The proxy fidelity, the distillation ablation and where the files are."""
    lines = [fidelity_line(result.fidelity)]
    for row in result.training:
        if row.get("kind") == "distilled" and row.get("delta_test_accuracy_pts") is not None:
            lines.append(
                f"distilled {row['plain_model']}: test accuracy {row['delta_test_accuracy_pts']:+.2f} pts vs plain "
                f"training over {row['paired_seeds']} paired seed(s)"
            )
    lines.append(
        f"results in {run_dir}/ (quantization_results.csv/.json, training_results.csv, survivors.csv, onnx/, models/)"
    )
    return lines
