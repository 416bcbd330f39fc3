"""Summaries of a run: the search in numbers (for ``all_results.json``) and the key facts atop the HTML page."""

from __future__ import annotations

from typing import Any

import pandas as pd

from reports import numbers
from reports.fronts import pareto_keys
from reports.metrics import STRATEGY_NAMES
from reports.run_data import RunData


def search_summary(run: RunData) -> dict[str, Any] | None:
    """The search in numbers: settings, counts, final hypervolume and the Pareto set (None without a search)."""
    if not run.search:
        return None
    s = run.search
    keys = set(pareto_keys(run.records, s.objectives))
    pareto = [{"key": r.key, "generation": r.generation, **{o.name: r.metrics.get(o.name) for o in s.objectives}}
              for r in run.records if r.key in keys]  # fmt: skip
    last = run.history.iloc[-1].to_dict() if run.history is not None and len(run.history) else {}
    return {
        "strategy": s.strategy, "seed": s.seed, "population": s.population, "generations_planned": s.generations,
        "objectives": [{"name": o.name, "direction": o.direction, "best": o.best, "worst": o.worst}
                       for o in s.objectives],
        "constraints": [{"metric": c.metric, "op": c.op, "bound": c.bound} for c in s.constraints],
        "hv_reference": s.reference, "inferred_from_journal": s.inferred, "devices": s.devices,
        "candidates": len(run.records), "feasible": sum(r.feasible for r in run.records),
        "trained": sum(r.status == "ok" for r in run.records),
        "precheck_rejected": sum(r.status == "precheck_infeasible" for r in run.records),
        "failed": sum(r.status == "failed" for r in run.records),
        "final_hypervolume": last.get("hypervolume"), "generations_done": int(last["generation"]) + 1 if last else 0,
        "pareto_set": pareto,
    }  # fmt: skip


def key_facts(run: RunData, models: pd.DataFrame, search: dict[str, Any] | None) -> dict[str, str]:
    """Key facts for the top of the page."""
    facts = {"data": run.protocol_text()}
    if search:
        planned = search["generations_planned"]
        of = f" of {planned + 1}" if planned is not None else ""
        facts["search"] = (
            f"{STRATEGY_NAMES.get(search['strategy'], search['strategy'])}: {search['generations_done']}{of} "
            f"generations, {search['candidates']} candidates ({search['trained']} trained, "
            f"{search['precheck_rejected']} rejected before training, {search['failed']} failed), "
            f"{search['feasible']} feasible"
        )
        hv = search["final_hypervolume"]
        reference = run.search.reference_text() if run.search else ""
        facts["hypervolume"] = f"{hv:.4f} (reference point: {reference})" if numbers.is_number(hv) else "–"
        facts["Pareto set"] = f"{len(search['pareto_set'])} architecture(s), all objectives"
    fp32 = models[models["variant"] == "fp32"].dropna(subset=["test_accuracy_pct"]) if len(models) else models
    if len(fp32):
        best = fp32.loc[fp32["test_accuracy_pct"].idxmax()]
        accuracy = numbers.mean_std(best["test_accuracy_pct"], best["test_accuracy_std_pct"])
        facts["most accurate model"] = (
            f"{best['model']} ({best['kind']}): {accuracy} % test accuracy over {best['seeds']} seed(s), "
            f"{numbers.significant(best['latency_ms'])} ms ({best['latency_source']})"
        )
    measured = models[models["latency_source"].astype(str).str.startswith("measured")] if len(models) else models
    if len(measured):
        fast = measured.loc[measured["latency_ms"].idxmin()]
        facts["fastest variant"] = (f"{fast['model']} {fast['variant']}: {numbers.significant(fast['latency_ms'])} ms, "
                                    f"{numbers.fixed(fast['test_accuracy_pct'])} % test accuracy")  # fmt: skip
    validation = run.latency_validation_meta or {}
    if validation.get("prediction"):
        p, noise = validation["prediction"], validation.get("noise_floor") or {}
        facts["latency table"] = (f"{validation.get('device')}: {numbers.fixed(p.get('within_10_pct'), 0)} % of "
                                  f"{p.get('n')} specs within ±10 % (noise floor "
                                  f"{numbers.fixed(noise.get('within_10_pct'), 0)} %)")  # fmt: skip
    fidelity = (run.quantization_meta or {}).get("proxy_fidelity") or {}
    if fidelity:
        parts = []
        for split in ("val", "test"):
            tau, p = (fidelity.get(split) or {}).get("tau"), (fidelity.get(split) or {}).get("p_value")
            parts.append(f"{split} {tau:.2f} (p {p:.2f})" if numbers.is_number(tau) else f"{split} undefined")
        facts["proxy fidelity"] = (f"Kendall tau of proxy vs full accuracy over {fidelity.get('n')} survivor(s): "
                                   f"{', '.join(parts)}; {fidelity.get('note', '')}")  # fmt: skip
    return facts
