"""Run folders for the report tests, written with the pipeline's own writers and formats.

A real search comes from the CLI (see ``tests/test_reports.py``); the files of later modes
(baselines, full training, quantization, latency validation) and the degenerate searches
(torn journal, single candidate, random only, several devices) are written here directly,
column for column as the stages write them, so the tests stay fast.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from common.atomic import atomic_write_json
from nas.history import best_values, history_columns, write_csv
from nas.hypervolume import hypervolume, pareto_front, reference_description
from nas.journal import Journal
from nas.problem import Constraint, ObjectiveSpec
from nas.records import EvalRecord, make_record, precheck_record
from pipeline.baseline_stage import RESULT_COLUMNS as BASELINE_COLUMNS
from pipeline.proxy_fidelity import proxy_fidelity
from pipeline.quantize_stage import RESULT_COLUMNS
from pipeline.training_table import TRAINING_COLUMNS

DEVICE = "epyc-avx512-2c_ort_fp32_t1"
VARIANTS = ("fp32", "int8_dynamic", "int8_static", "int8_static_aa")
MACHINE = {"cpu_count": 2, "cpu_flags": ["avx2"], "cpu_model": "AMD EPYC", "machine": "x86_64", "onnx": "1.23.2",
           "onnxruntime": "1.32.0", "os": "Linux", "python": "3.11.7", "torch": "2.13.0"}  # fmt: skip


def latency_name(device: str) -> str:
    """The journal's metric name of a device's latency."""
    return "latency_ms_" + re.sub(r"[^A-Za-z0-9_]", "_", device)


def write_base(run_dir: Path, dataset: str = "synthetic") -> None:
    """``config.json`` and ``data/summary.json`` as a features stage leaves them (the parts reports read)."""
    (run_dir / "data").mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "config.json", {"data": {"dataset": dataset, "split": "stratified"},
                                                "run": {"seed": 0}, "baseline": {"seeds": 2},
                                                "quantize": {"seeds": 2}})  # fmt: skip
    atomic_write_json(run_dir / "data" / "summary.json", {
        "dataset": dataset, "classes": ["a", "b", "c"], "n_files": 300, "n_skipped": 0,
        "split_protocol": "stratified 70%/15%/15%, seed 0", "split_sizes": {"train": 210, "val": 45, "test": 45},
        "data_fingerprint": "0123456789abcdef0123",
    })  # fmt: skip


def candidate(
    key: str,
    generation: int,
    metrics: dict[str, float],
    objectives: Sequence[ObjectiveSpec],
    constraints: Sequence[Constraint],
    trained: bool = True,
) -> EvalRecord:
    """A journal record built by the search's own constructors (``ok``, or ``precheck_infeasible``)."""
    genome = [generation, len(key)]
    if trained:
        return make_record(key, genome, dict(metrics), objectives, constraints, generation=generation, attempts=1,
                           provenance={"finished_at": f"2026-01-01T00:0{generation}:00+00:00"})  # fmt: skip
    return precheck_record(key, genome, dict(metrics), constraints, generation=generation)


def write_search(
    run_dir: Path,
    records: Sequence[EvalRecord],
    objectives: Sequence[ObjectiveSpec],
    constraints: Sequence[Constraint] = (),
    *,
    strategy: str = "nsga2",
    seed: int = 0,
    population: int = 4,
    generations: int = 1,
    devices: Sequence[str] = (DEVICE,),
    history_until: int | None = None,
) -> None:
    """``nas/search.json``, ``journal.jsonl`` and ``history.csv`` (hypervolume by :mod:`nas.hypervolume`).

    Args:
        history_until: Last generation written to the history (default: every generation of ``records``),
            to make a search that stopped early.
    """
    nas = run_dir / "nas"
    nas.mkdir(parents=True, exist_ok=True)
    problem = {
        "objectives": [{"name": o.name, "direction": o.direction, "best": o.best, "worst": o.worst}
                       for o in objectives],
        "constraints": [{"metric": c.metric, "op": c.op, "bound": c.bound, "scale": c.scale} for c in constraints],
        "describe": {"devices": [{"name": d, "fingerprint": "f" * 64} for d in devices], "space": "mel2d",
                     "proxy": {"epochs": 1, "train_subset": 0.5}, "versions": {"torch": "2.13.0"}, "measure": None},
    }  # fmt: skip
    settings = {"config": {"strategy": strategy, "seed": seed, "population": population}, "problem": problem}
    atomic_write_json(nas / "search.json", {"config": {"generations": generations, "strategy": strategy,
                                                       "seed": seed, "population": population},
                                            "settings": settings, "format_version": 1})  # fmt: skip
    journal = Journal(nas / "journal.jsonl")
    journal.path.touch()
    for record in records:
        journal.append(record)
    last = max((r.generation for r in records), default=-1) if history_until is None else history_until
    rows = []
    for g in range(last + 1):
        seen = [r for r in records if r.generation <= g]
        feasible = [r for r in seen if r.feasible]
        rows.append({
            "generation": g, "evaluations": len(seen), "full_evaluations": sum(r.status == "ok" for r in seen),
            "precheck_rejected": sum(r.status == "precheck_infeasible" for r in seen),
            "failed": sum(r.status == "failed" for r in seen), "cache_hits": 0,
            "pop_feasible": sum(r.feasible for r in seen if r.generation == g), "feasible_total": len(feasible),
            "front_size": len(pareto_front(feasible, objectives)), "hypervolume": hypervolume(feasible, objectives),
            **best_values(feasible, objectives), "min_violation": min((r.violation for r in seen), default=0.0),
            "wall_s": 1.0, "elapsed_s": float(g + 1), "hv_reference": reference_description(objectives),
        })  # fmt: skip
    write_csv(nas / "history.csv", history_columns(objectives), rows)


def standard_problem(
    max_latency_ms: float = 1.0, devices: Sequence[str] = (DEVICE,), size: bool = True
) -> tuple[list, list]:
    """Objectives accuracy, each device's latency and (``size``) size; latency constraints on every device."""
    objectives = [ObjectiveSpec("accuracy", "max", 1.0, 0.0)]
    objectives += [ObjectiveSpec(latency_name(d), "min", 0.0, max_latency_ms) for d in devices]
    if size:
        objectives.append(ObjectiveSpec("size_kb", "min", 0.0, 2769.29))
    constraints = [Constraint.at_most(latency_name(d), max_latency_ms) for d in devices]
    return objectives, constraints


def random_records(n: int, generations: int, objectives, constraints, seed: int = 0, keys: Sequence[str] = ()) -> list:
    """``n`` candidates spread over ``generations``; those over the latency bound are rejected before training."""
    rng = np.random.default_rng(seed)
    latencies = [o.name for o in objectives if o.name.startswith("latency_ms_")]
    records = []
    for i in range(n):
        key = keys[i] if i < len(keys) else f"c{8 + 4 * i}k3s1-ds{16 + i}k3s1-h0d20"
        base = float(rng.lognormal(-1.0, 1.0))
        metrics = {name: base * (1 + 0.5 * j) for j, name in enumerate(latencies)}
        metrics |= {"size_kb": float(rng.uniform(20, 1200)), "macs_m": float(rng.uniform(5, 300)),
                    "params": int(rng.integers(5_000, 300_000))}  # fmt: skip
        trained = all(metrics[name] <= constraints[0].bound for name in latencies)  # else rejected by precheck
        if trained:
            metrics |= {"accuracy": float(rng.uniform(0.4, 0.95)), "macro_f1": float(rng.uniform(0.3, 0.9))}
        records.append(candidate(key, i * generations // n, metrics, objectives, constraints, trained=trained))
    return records


def write_trained(
    run_dir: Path,
    models: Sequence[dict[str, Any]],
    *,
    variants: Sequence[str] = VARIANTS,
    seeds: int = 2,
    machine: dict[str, Any] | None = None,
    linear: float | None = None,
) -> None:
    """The files of ``--mode baseline`` and ``--mode quantization`` for ``models``.

    Each model is ``{"name", "kind" (baseline|nas|distilled), "spec", "accuracy", "proxy" (nas only)}``;
    the numbers of every variant follow from ``accuracy`` so that tests can recompute them.
    ``linear``: the linear reference's test accuracy, a ``baseline_results.csv`` row of its own.
    """
    baselines, training, variant_rows, pairs = [], [], [], []
    for i, m in enumerate(models):
        acc, params, macs, size = m["accuracy"], 10_000 * (i + 2), 5.0 * (i + 1), 40.0 * (i + 1)
        row = {"model": m["name"], "kind": m["kind"], "seeds": seeds, "test_accuracy_mean": acc,
               "test_accuracy_std": 0.01 * (i + 1), "test_macro_f1_mean": acc - 0.05, "test_macro_f1_std": 0.01,
               "val_accuracy_mean": acc + 0.01, "val_accuracy_std": 0.01, "proxy_accuracy": m.get("proxy"),
               "teacher": "tiny" if m["kind"] == "distilled" else "", "epochs": 2, "params": params,
               "size_kb": size, "macs_m": macs, "spec": m["spec"]}  # fmt: skip
        training.append(row)
        if m["kind"] == "baseline":
            baselines.append({"model": m["name"], "kind": "baseline", "dataset": "synthetic", "split": "stratified",
                              "seeds": seeds, "params": params, "size_kb": size, "macs_m": macs,
                              "test_accuracy_mean": acc, "test_accuracy_std": 0.01 * (i + 1),
                              "test_macro_f1_mean": acc - 0.05,
                              "test_macro_f1_std": 0.01, "val_macro_f1_mean": acc - 0.04, "train_wall_s_mean": 3.0,
                              "epochs": 2, "spec": m["spec"]})  # fmt: skip
        if m["kind"] == "nas" and m.get("proxy") is not None:
            pairs.append({"name": m["name"], "proxy": m["proxy"], "val": acc + 0.01, "test": acc})
        for j, variant in enumerate(variants):
            quantized = variant != "fp32"
            variant_rows.append({
                "model": m["name"], "kind": m["kind"], "variant": variant, "test_accuracy": acc - 0.01 * j,
                "test_macro_f1": acc - 0.05 - 0.01 * j, "accuracy_delta_pts": -1.0 * j, "val_accuracy": acc,
                "val_accuracy_delta_pts": 0.0, "size_kb": size * (0.3 if quantized else 1.02),
                "size_ratio": 3.3 if quantized else 1.0, "latency_ms": 0.5 * (i + 1) * (8 if j == 1 else 1 - 0.1 * j),
                "latency_p90_ms": 0.6 * (i + 1), "speedup": 1.0, "seed": 0, "spec": m["spec"],
                "predicted_latency_ms": 0.45 * (i + 1) if not quantized else "",
                "table_device": DEVICE if not quantized else "", "onnx": f"onnx/{m['name']}.{variant}.onnx",
            })  # fmt: skip
    if linear is not None:
        baselines.append({"model": "linear", "kind": "reference", "dataset": "synthetic", "split": "stratified",
                          "seeds": 1, "params": 490, "size_kb": 1.9, "macs_m": 0.0005, "test_accuracy_mean": linear,
                          "test_accuracy_std": 0.0, "test_macro_f1_mean": linear - 0.05, "test_macro_f1_std": 0.0,
                          "train_wall_s_mean": 0.3, "epochs": "",
                          "spec": "logistic regression on per-band mean, std and max over time"})  # fmt: skip
    if baselines:
        pd.DataFrame(baselines, columns=BASELINE_COLUMNS).to_csv(run_dir / "baseline_results.csv", index=False)
    write_csv(run_dir / "training_results.csv", TRAINING_COLUMNS, [{c: r.get(c, "") for c in TRAINING_COLUMNS}
                                                                   for r in training])  # fmt: skip
    write_csv(run_dir / "quantization_results.csv", RESULT_COLUMNS,
              [{c: r.get(c, "") for c in RESULT_COLUMNS} for r in variant_rows])  # fmt: skip
    atomic_write_json(run_dir / "quantization_results.json", {
        "machine": machine or MACHINE, "timing": {"threads": 1}, "proxy_fidelity": proxy_fidelity(pairs),
        "teacher": {"name": "tiny", "checkpoint": "models/tiny/best.pt"}, "variants": variant_rows,
    })  # fmt: skip


def write_survivors(run_dir: Path, survivors: Sequence[tuple[str, str]]) -> None:
    """``survivors.csv`` with every given ``(name, spec)`` kept."""
    rows = [{"name": n, "spec": s, "kept": True, "reason": "best accuracy on the front"} for n, s in survivors]
    pd.DataFrame(rows, columns=["name", "spec", "kept", "reason"]).to_csv(run_dir / "survivors.csv", index=False)


def write_latency_validation(run_dir: Path, n: int = 12, seed: int = 0) -> None:
    """``latency/latency_validation.csv``/``.json`` through the validation's own writer (synthetic timings)."""
    from latency_tables.validate import AgreementStats, ValidationReport, write_validation

    rng = np.random.default_rng(seed)
    a = np.exp(rng.uniform(np.log(0.05), np.log(50), n))
    b = a * rng.normal(1.0, 0.03, n)
    measured = np.minimum(a, b)
    predicted = measured * rng.normal(1.0, 0.05, n)
    frame = pd.DataFrame({"spec": [f"c{8 + i}k3s1-h0d0" for i in range(n)], "predicted_ms": predicted,
                          "summed_ms": predicted, "measured_ms": measured, "measured_a_ms": a, "measured_b_ms": b,
                          "interpolated_share": 0.0})  # fmt: skip
    frame["error_pct"] = 100 * (frame["predicted_ms"] / frame["measured_ms"] - 1)
    stats = AgreementStats.of(predicted, measured)
    report = ValidationReport(stats, stats, AgreementStats.of(b, a), None, 0.1, 900.0, frame)
    write_validation(report, run_dir / "latency", DEVICE)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file's object."""
    return json.loads(path.read_text(encoding="utf-8"))


def finite(value: Any) -> bool:
    """Whether ``value`` is a finite number."""
    return isinstance(value, (int, float)) and math.isfinite(value)
