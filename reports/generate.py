"""The reports of a run folder: figures (PDF + PNG), tables (CSV, LaTeX, JSON), one offline HTML page.

::

    from reports.generate import generate_reports
    result = generate_reports(Path("runs/fsdd"), compare=[Path("runs/fsdd-random")])
    result.figures["pareto_frontier"]   # [.../pareto_frontier.pdf, .../pareto_frontier.png]
    result.missing                      # what the folder lacks, each with the mode that makes it

Only the run folder is read: nothing is trained or measured and torch is not imported. A run
still in progress or interrupted is reported as far as it got; what is absent is listed in
``missing``, and figures that cannot be drawn as designed degrade with a line in ``notes``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from common.atomic import atomic_write_json, atomic_write_text
from reports import (
    figures_constraints,
    figures_evolution,
    figures_pareto,
    figures_quantization,
    figures_validation,
)
from reports.evolution import HypervolumeCurves, hypervolume_curves
from reports.html import HtmlTable, write_index
from reports.jsonable import frame_records, json_safe
from reports.latex import latex_table
from reports.metrics import STRATEGY_NAMES
from reports.provenance import provenance
from reports.run_data import RunData, generations_done, load_run, missing_parts
from reports.style import save
from reports.summary import key_facts, search_summary
from reports.tables import column_legend, history_legend, machine_text, model_caption, model_comparison, nas_history

log = logging.getLogger(__name__)

FIGURES = ("pareto_frontier", "pareto_pairs", "nas_evolution", "quantization_comparison", "constraint_feasibility",
           "latency_validation", "proxy_fidelity")  # fmt: skip
TABLE_FILES = ("model_comparison.csv", "model_comparison.tex", "nas_history.csv", "nas_history.json")
CAPTIONS = {
    "pareto_frontier": "top: every evaluated candidate (proxy validation accuracy against each device's table "
    "latency and against fp32 size), the feasible 2-D front as a step line, survivors starred, constraint limits "
    "shaded; bottom: fully trained models and their INT8 variants (test accuracy against latency measured in ONNX "
    "Runtime on the quantization machine, and against ONNX file size)",
    "pareto_pairs": "every pair of objectives: candidates, the pair's feasible front and the Pareto set over all "
    "objectives",
    "nas_evolution": "hypervolume of the feasible front per generation (per strategy; mean ± std band over runs) "
    "and the candidates of each generation",
    "quantization_comparison": "test accuracy, ONNX file size and measured latency per model and deployment variant",
    "constraint_feasibility": "share of each generation's new candidates that is feasible, the constraint each "
    "infeasible one misses by most, and how often each constraint is violated or binds",
    "latency_validation": "table-predicted against measured latency on random specs, with the ±10 % band and the "
    "noise floor (two measurement passes against each other)",
    "proxy_fidelity": "survivors' proxy validation accuracy against their fully trained validation and test "
    "accuracy, with Kendall tau",
}


@dataclass
class ReportResult:
    """What :func:`generate_reports` wrote.

    Attributes:
        out_dir: The report folder.
        figures: Figure name -> ``[pdf, png]``.
        tables: Table file stem (``model_comparison.csv`` ...) -> path.
        html: The offline page.
        missing: What the run folder lacks, each with the mode that makes it.
        notes: Graceful degradations and damaged files, one line each.
    """

    out_dir: Path
    figures: dict[str, list[Path]] = field(default_factory=dict)
    tables: dict[str, Path] = field(default_factory=dict)
    html: Path | None = None
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def footer_lines(run: RunData) -> dict[str, str]:
    """Lines figures state under their panels: ``data``, ``search``, ``reference`` (hypervolume), ``trained``."""
    lines = {"data": f"Data: {run.protocol_text()}."}
    if run.search:
        s = run.search
        proxy = s.proxy  # as the search recorded it: config.json is rewritten by every later mode
        epochs, subset = proxy.get("epochs"), float(proxy.get("train_subset") or 1.0)
        proxy_text = f"; proxy training: {epochs} epoch(s) on {subset:.0%} of the train split" if epochs else ""
        done = generations_done(run)
        plan = f", {done} of {s.generations + 1} generations run" if s.generations is not None else ""
        lines["search"] = (f"Search: {STRATEGY_NAMES.get(s.strategy, s.strategy)}, population {s.population}{plan}"
                           f"{proxy_text}; search accuracy = proxy validation accuracy.")  # fmt: skip
        lines["reference"] = f"Hypervolume reference point (each objective's worst value): {s.reference_text()}."
    machine = machine_text(run)
    if machine:
        lines["trained"] = (f"Trained models: test split, accuracy of each exported ONNX file (first seed); latency "
                            f"measured in ONNX Runtime on {machine}.")  # fmt: skip
    return lines


def _draw_all(run: RunData, models: pd.DataFrame, curves: HypervolumeCurves, out_dir: Path,
              result: ReportResult) -> None:  # fmt: skip
    lines = footer_lines(run)

    def footer(*names: str) -> list[str]:
        return [lines[n] for n in names if n in lines]

    builders: dict[str, Callable[[], tuple[Figure | None, list[str]]]] = {
        "pareto_frontier": lambda: figures_pareto.pareto_frontier(
            run, models, footer("data", "search", "reference", "trained")
        ),
        "pareto_pairs": lambda: figures_pareto.pareto_pairs(run, footer("data", "search", "reference")),
        "nas_evolution": lambda: figures_evolution.nas_evolution(run, curves, footer("data", "search", "reference")),
        "quantization_comparison": lambda: figures_quantization.quantization_comparison(run, footer("data", "trained")),
        "constraint_feasibility": lambda: figures_constraints.constraint_feasibility(run, footer("data", "search")),
        "latency_validation": lambda: figures_validation.latency_validation(run, footer("data")),
        "proxy_fidelity": lambda: figures_validation.proxy_fidelity(run, footer("data", "search")),
    }
    if not run.has_search:
        builders = {k: v for k, v in builders.items() if k not in ("pareto_pairs", "nas_evolution",
                                                                   "constraint_feasibility")}  # fmt: skip
    for name, build in builders.items():
        try:
            fig, notes = build()
            if fig is not None:
                result.figures[name] = save(fig, out_dir, name)
        except Exception as exc:  # a figure must never cost the rest of the report
            log.exception("figure %s failed", name)
            fig, notes = None, [f"{name}: not drawn ({type(exc).__name__}: {exc}); the other outputs are complete"]
        result.notes += notes
    for name in FIGURES:
        if name not in result.figures:
            for suffix in (".pdf", ".png"):
                (out_dir / f"{name}{suffix}").unlink(missing_ok=True)  # a stale figure of an earlier report


def _write_tables(run: RunData, runs: list[RunData], models: pd.DataFrame, curves: HypervolumeCurves,
                  out_dir: Path, result: ReportResult) -> list[HtmlTable]:  # fmt: skip
    html_tables = []
    legend = column_legend(run)
    if len(models):
        caption = model_caption(run, models)
        path = out_dir / "model_comparison.csv"
        atomic_write_text(path, models.to_csv(index=False))
        tex = out_dir / "model_comparison.tex"
        atomic_write_text(tex, latex_table(models, caption))
        result.tables |= {"model_comparison.csv": path, "model_comparison.tex": tex}
        html_tables.append(HtmlTable("model_comparison", "Model comparison", models, legend, caption,
                                     ("model_comparison.csv", "model_comparison.tex")))  # fmt: skip
    else:
        result.notes.append("model_comparison: no trained model yet (run --mode baseline or --mode quantization)")
    history = nas_history(runs, curves)
    if len(history):
        path = out_dir / "nas_history.csv"
        atomic_write_text(path, history.to_csv(index=False))
        json_path = out_dir / "nas_history.json"
        atomic_write_json(json_path, json_safe({
            "reference": curves.reference, "left_out": curves.left_out, "columns": history_legend(run),
            "by_strategy": frame_records(curves.by_strategy), "rows": frame_records(history),
        }))  # fmt: skip
        result.tables |= {"nas_history.csv": path, "nas_history.json": json_path}
        html_tables.append(HtmlTable("nas_history", "Search history per generation", history, history_legend(run),
                                     f"Hypervolume reference: {curves.reference}",
                                     ("nas_history.csv", "nas_history.json")))  # fmt: skip
    for name in TABLE_FILES:
        if name not in result.tables:
            (out_dir / name).unlink(missing_ok=True)  # a stale table of an earlier report
    return html_tables


def generate_reports(run_dir: Path, compare: Sequence[Path] = (), out_dir: Path | None = None) -> ReportResult:
    """Write every figure, table and the HTML page of ``run_dir`` (see the module docstring).

    Args:
        run_dir: The run folder.
        compare: Other run folders of the same problem (e.g. ``--strategy random``, other seeds) whose
            hypervolume per generation is drawn beside this run's.
        out_dir: Where the report goes (default ``<run_dir>/reports``).

    Returns:
        The files written, what is missing, and the notes.

    Raises:
        UserError: ``run_dir`` or a compare folder does not exist or is not a run folder.
    """
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    compared = [load_run(Path(p)) for p in compare]
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ReportResult(out_dir=out_dir, missing=missing_parts(run), notes=list(run.notes))
    for other in compared:
        result.notes += [f"compare run {other.name}: {note}" for note in other.notes]
    models = model_comparison(run)
    curves = hypervolume_curves([run, *compared])
    _draw_all(run, models, curves, out_dir, result)
    html_tables = _write_tables(run, [run, *compared], models, curves, out_dir, result)
    prov = json_safe(provenance(run, compared))
    search = search_summary(run)
    everything = {
        "format_version": 1,
        "provenance": prov,
        "missing": result.missing,
        "notes": result.notes,
        "search": search,
        "model_comparison": {"columns": column_legend(run), "rows": frame_records(models)},
        "hypervolume_by_strategy": frame_records(curves.by_strategy),
        "proxy_fidelity": (run.quantization_meta or {}).get("proxy_fidelity"),
        "latency_validation": run.latency_validation_meta,
        "figures": {name: [p.name for p in paths] for name, paths in result.figures.items()},
    }
    all_results = out_dir / "all_results.json"
    atomic_write_text(all_results, json.dumps(json_safe(everything), indent=2, sort_keys=False, allow_nan=False))
    result.tables["all_results.json"] = all_results
    result.html = write_index(
        out_dir / "index.html", f"Report: {run.name}", run.protocol_text(), result.figures, CAPTIONS, html_tables,
        prov, result.missing, result.notes, key_facts(run, models, search),
    )  # fmt: skip
    return result
