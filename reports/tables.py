"""The report's tables as DataFrames: every final model x variant, and the search history of every run.

``model_comparison``: one row per fully trained model (baselines, survivors ``nas-*``, distilled
students ``*-kd``) and deployment variant (``fp32``, ``int8_dynamic``, ``int8_static``,
``int8_static_aa``, ``int8_qat``). Sources, best first:

* ``quantization_results.csv``: every variant re-measured on its ONNX file (test accuracy in ONNX
  Runtime of the first seed's model, file size, latency measured in ONNX Runtime on the machine in
  ``quantization_results.json``, table prediction beside fp32);
* ``training_results.csv``: test accuracy mean +- std over seeds (fp32, PyTorch), params, MACs;
* ``baseline_results.csv``: the same for baselines when quantization has not run;
* the journal: table-predicted latency of a searched spec that has no measurement.

Accuracies are in percent; :func:`column_legend` says what each column is.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from reports.evolution import HypervolumeCurves
from reports.metrics import latency_metric, metric_info
from reports.run_data import RunData

VARIANT_ORDER = ["fp32", "int8_dynamic", "int8_static", "int8_static_aa", "int8_qat"]
KIND_ORDER = {"reference": -1, "baseline": 0, "nas": 1, "distilled": 2}  # reference: the linear reference
MODEL_COLUMNS = [
    "model", "kind", "variant", "seeds", "test_accuracy_pct", "test_accuracy_std_pct", "test_macro_f1_pct",
    "accuracy_delta_pts", "accuracy_source", "onnx_test_accuracy_pct", "val_accuracy_pct", "proxy_val_accuracy_pct",
    "params", "macs_m", "size_kb", "size_source", "latency_ms", "latency_p90_ms", "latency_source", "table_latency_ms",
    "table_device", "spec",
]  # fmt: skip


def machine_text(run: RunData) -> str | None:
    """The machine the variants were measured on, e.g. ``AMD EPYC (2 cores, x86_64), ONNX Runtime 1.32.0, 1 thread``."""
    machine = run.machine
    if not machine:
        return None
    threads = ((run.quantization_meta or {}).get("timing") or {}).get("threads")
    parts = [f"{machine.get('cpu_model', 'unknown CPU')} ({machine.get('cpu_count', '?')} cores, "
             f"{machine.get('machine', '?')})", f"ONNX Runtime {machine.get('onnxruntime', '?')}"]  # fmt: skip
    if threads:
        parts.append(f"{threads} thread{'s' if threads != 1 else ''}")
    return ", ".join(parts)


def column_legend(run: RunData) -> dict[str, str]:
    """What every column of ``model_comparison`` holds, with units and devices."""
    machine = machine_text(run) or "the quantization machine"
    return {
        "model": "model name: baselines by name, search survivors nas-<hash of the spec>, distilled students <name>-kd",
        "kind": "reference (the linear reference: logistic regression on per-band mean/std/max of the same "
        "features), baseline, nas (a survivor of the search, trained from scratch) or distilled (trained from a "
        "teacher)",
        "variant": "deployment variant: fp32 ONNX, or INT8 (dynamic: weights only; static: QDQ with calibration; "
        "static_aa: accuracy-aware, some layers kept fp32; qat: quantization-aware fine-tuning)",
        "seeds": "training seeds behind the accuracy (INT8 variants: the first seed's model only)",
        "test_accuracy_pct": "test-split accuracy after full training (%): fp32 = mean over seeds in PyTorch, "
        "INT8 = the variant's ONNX file in ONNX Runtime",
        "test_accuracy_std_pct": "standard deviation of the test accuracy over seeds (percentage points; "
        "empty for one seed)",
        "test_macro_f1_pct": "test-split macro-F1 (%), same source as the accuracy",
        "accuracy_delta_pts": "test accuracy of this variant minus fp32 of the same seed, both in ONNX Runtime "
        "(percentage points)",
        "accuracy_source": "where the test accuracy comes from",
        "onnx_test_accuracy_pct": "test-split accuracy (%) of this variant's ONNX file (the first seed's model) in "
        "ONNX Runtime; the figures plot it, so fp32 and INT8 of one model are compared on the same seed",
        "val_accuracy_pct": "validation accuracy (%) of the variant (INT8) or best validation epoch (fp32)",
        "proxy_val_accuracy_pct": "proxy validation accuracy (%) the search saw: short proxy training, not "
        "comparable with the test accuracy",
        "params": "trainable parameters",
        "macs_m": "multiply-accumulates per clip (millions)",
        "size_kb": "size in KiB: the variant's ONNX file where it was exported, else fp32 weights after BN folding",
        "size_source": "what size_kb measures",
        "latency_ms": f"latency per clip (ms, batch 1): measured in ONNX Runtime on {machine} where measured, "
        "else the table prediction for table_device",
        "latency_p90_ms": "90th percentile of the measured latency (ms), same session",
        "latency_source": "where latency_ms comes from (measured, and on which machine, or predicted, for which "
        "device)",
        "table_latency_ms": "latency predicted by the latency table of table_device (ms; on the row of the variant the "
        "table times: fp32, or int8_static for an INT8 table)",
        "table_device": "device whose latency table gave table_latency_ms",
        "spec": "architecture string (ArchSpec) of the model",
    }


def _pct(value: Any) -> float:
    return 100.0 * float(value) if _finite(value) else math.nan


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _by_model(frame: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    if frame is None or "model" not in frame:
        return {}
    return {str(row["model"]): row for row in frame.to_dict("records")}


def _journal_latency(run: RunData, spec: Any) -> tuple[float, str | None]:
    """Table-predicted latency of ``spec`` on the search's first device, from the journal."""
    devices = run.search.devices if run.search else []
    for record in run.records:
        if record.key == spec:
            for device in devices:
                value = record.metrics.get(latency_metric(device))
                if _finite(value):
                    return float(value), device
    return math.nan, None


def _measured_row(run: RunData, q: dict[str, Any], trained: dict[str, Any], machine: str) -> dict[str, Any]:
    fp32 = q["variant"] == "fp32"
    seeds = int(trained["seeds"]) if fp32 and _finite(trained.get("seeds")) else 1
    if fp32 and _finite(trained.get("test_accuracy_mean")):
        acc, std, f1 = trained["test_accuracy_mean"], trained.get("test_accuracy_std"), trained["test_macro_f1_mean"]
        source = f"PyTorch, mean over {seeds} seed(s)"
        val = trained.get("val_accuracy_mean")
    else:
        acc, std, f1, val = q["test_accuracy"], math.nan, q["test_macro_f1"], q.get("val_accuracy")
        source = f"ONNX Runtime, {q['variant']} file of seed {q.get('seed', 0)}"
    std = std if seeds > 1 else math.nan
    table_device = q.get("table_device") if isinstance(q.get("table_device"), str) else None
    return {
        "model": q["model"], "kind": q["kind"], "variant": q["variant"], "seeds": seeds,
        "test_accuracy_pct": _pct(acc), "test_accuracy_std_pct": _pct(std), "test_macro_f1_pct": _pct(f1),
        "accuracy_delta_pts": q.get("accuracy_delta_pts"), "accuracy_source": source,
        "onnx_test_accuracy_pct": _pct(q.get("test_accuracy")), "val_accuracy_pct": _pct(val),
        "proxy_val_accuracy_pct": _pct(trained.get("proxy_accuracy")), "params": trained.get("params"),
        "macs_m": trained.get("macs_m"), "size_kb": q.get("size_kb"), "size_source": f"ONNX file ({q['variant']})",
        "latency_ms": q.get("latency_ms"), "latency_p90_ms": q.get("latency_p90_ms"),
        "latency_source": f"measured: {machine}",
        "table_latency_ms": q.get("predicted_latency_ms") if table_device else math.nan,
        "table_device": table_device, "spec": q.get("spec"),
    }  # fmt: skip


def _trained_row(run: RunData, trained: dict[str, Any], kind: str) -> dict[str, Any]:
    seeds = int(trained["seeds"]) if _finite(trained.get("seeds")) else 1
    latency, device = _journal_latency(run, trained.get("spec"))
    return {
        "model": trained["model"], "kind": trained["kind"] if isinstance(trained.get("kind"), str) else kind,
        "variant": "fp32", "seeds": seeds,
        "test_accuracy_pct": _pct(trained.get("test_accuracy_mean")),
        "test_accuracy_std_pct": _pct(trained.get("test_accuracy_std")) if seeds > 1 else math.nan,
        "test_macro_f1_pct": _pct(trained.get("test_macro_f1_mean")), "accuracy_delta_pts": math.nan,
        "accuracy_source": f"PyTorch, mean over {seeds} seed(s)", "onnx_test_accuracy_pct": math.nan,
        "val_accuracy_pct": _pct(trained.get("val_accuracy_mean")),
        "proxy_val_accuracy_pct": _pct(trained.get("proxy_accuracy")), "params": trained.get("params"),
        "macs_m": trained.get("macs_m"), "size_kb": trained.get("size_kb"),
        "size_source": "fp32 weights after BN folding", "latency_ms": latency, "latency_p90_ms": math.nan,
        "latency_source": f"table prediction: {device}" if device else _unmeasured(trained),
        "table_latency_ms": latency, "table_device": device, "spec": trained.get("spec"),
    }  # fmt: skip


def _unmeasured(trained: dict[str, Any]) -> str:
    if trained.get("kind") == "reference":
        return "none: the linear reference is not exported"
    return "not measured"


def model_comparison(run: RunData) -> pd.DataFrame:
    """One row per final model x variant (see the module docstring and :func:`column_legend`)."""
    trained = _by_model(run.baselines) | _by_model(run.training)
    machine = machine_text(run) or "ONNX Runtime (machine not recorded)"
    rows, done = [], set()
    if run.quantization is not None and "variant" in run.quantization:
        for q in run.quantization.to_dict("records"):
            rows.append(_measured_row(run, q, trained.get(str(q["model"]), {}), machine))
            done.add(str(q["model"]))
    for name, row in trained.items():
        if name not in done:
            rows.append(_trained_row(run, row, "baseline"))
    frame = pd.DataFrame(rows, columns=MODEL_COLUMNS)
    if frame.empty:
        return frame
    # baselines in their own order (tiny, small, medium, dscnn), then survivors, then distilled students
    first_seen = {name: i for i, name in enumerate(dict.fromkeys([*trained, *frame["model"]]))}
    frame["_kind"] = frame["kind"].map(KIND_ORDER).fillna(len(KIND_ORDER))
    frame["_model"] = frame["model"].map(first_seen)
    frame["_variant"] = frame["variant"].map({v: i for i, v in enumerate(VARIANT_ORDER)}).fillna(len(VARIANT_ORDER))
    order = ["_kind", "_model", "_variant"]
    return frame.sort_values(order, kind="stable").drop(columns=order).reset_index(drop=True)


def nas_history(runs: list[RunData], curves: HypervolumeCurves) -> pd.DataFrame:
    """Every comparable run's ``history.csv``, one row per run and generation, with run, strategy and seed first."""
    keep = set(curves.runs["run"]) if len(curves.runs) else set()
    frames = []
    for run in runs:
        if run.name in keep and run.history is not None:
            frame = run.history.copy()
            frame.insert(0, "seed", run.search.seed if run.search else None)
            frame.insert(0, "strategy", run.search.strategy if run.search else "unknown")
            frame.insert(0, "run", run.name)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run", "strategy", "seed"])


def history_legend(run: RunData) -> dict[str, str]:
    """What the columns of ``nas_history`` hold."""
    legend = {
        "run": "run folder name", "strategy": "search strategy (nsga2 or random)", "seed": "search seed",
        "generation": "generation (0 = initial population)",
        "evaluations": "distinct candidates recorded so far (cumulative)",
        "full_evaluations": "candidates trained by the proxy so far (cumulative)",
        "precheck_rejected": "candidates rejected before training by a cheap constraint (cumulative)",
        "failed": "candidates whose evaluation failed (cumulative)",
        "cache_hits": "proposals whose architecture was already recorded (cumulative)",
        "pop_feasible": "feasible members of the current population (random search: of the batch)",
        "feasible_total": "feasible candidates so far", "front_size": "size of the feasible Pareto set so far",
        "hypervolume": "hypervolume of the feasible front so far, in the normalised box against hv_reference "
        "(0 = nothing dominated, 1 = the whole box)",
        "min_violation": "smallest total constraint violation in the population (0 = a feasible member)",
        "wall_s": "wall time of this generation (s)", "elapsed_s": "wall time since the search started (s)",
        "hv_reference": "hypervolume reference point in original units (each objective's worst value)",
    }  # fmt: skip
    devices = run.search.devices if run.search else []
    for o in run.search.objectives if run.search else []:
        info = metric_info(o.name, devices, run.search.latency_measured)
        stored = ", stored as a fraction" if info.factor != 1 else ""
        legend[f"best_{o.name}"] = f"best {o.name} over feasible candidates so far: {info.label}{stored}"
    return legend


def model_caption(run: RunData, frame: pd.DataFrame) -> str:
    """Plain-text caption of the model comparison: split, what accuracy and size are, where latency comes from."""
    sizes = run.split_sizes
    test = f", {sizes['test']} test clips" if "test" in sizes else ""
    fp32 = frame[frame["variant"] == "fp32"] if len(frame) else frame
    seeds = sorted({int(s) for s in fp32["seeds"] if _finite(s)}) if len(fp32) else []
    if not seeds:
        seed_text = "seeds"
    elif len(seeds) == 1:
        seed_text = f"{seeds[0]} seed{'s' if seeds[0] != 1 else ''}"
    else:
        seed_text = f"{seeds[0]}–{seeds[-1]} seeds"
    quantized = len(frame) > 0 and (frame["variant"] != "fp32").any()
    int8 = "; INT8 rows the first seed's INT8 ONNX file in ONNX Runtime" if quantized else ""
    exported = len(frame) > 0 and frame["size_source"].astype(str).str.startswith("ONNX").any()
    parts = [
        f"Final models on {run.dataset} ({run.split_protocol}{test}).",
        f"Test accuracy: fp32 rows mean ± std over {seed_text} (PyTorch){int8}.",
        "Size: the variant's ONNX file where exported, else fp32 weights." if exported
        else "Size: fp32 weights after BatchNorm folding.",
    ]  # fmt: skip
    measured = frame["latency_source"].astype(str).str.startswith("measured") if len(frame) else pd.Series([])
    machine = machine_text(run)
    if measured.any():
        parts.append(f"Latency: batch 1, measured in ONNX Runtime on {machine or 'the quantization machine'}.")
    predicted = sorted({str(d) for d in frame.loc[~measured, "table_device"].dropna()}) if len(frame) else []
    if predicted:
        mark = "Latency marked † is" if measured.any() else "Latency:"
        parts.append(f"{mark} predicted by the latency table of {', '.join(predicted)}.")
    parts.append("Best value per column in bold.")
    return " ".join(parts)
