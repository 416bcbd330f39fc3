"""Drawing the fronts: accuracy against each device's latency and against size, and every pair of objectives.

``pareto_frontier`` has one row of search panels (every candidate faint, the feasible 2-D front as
a step line, the search's Pareto set over all objectives ringed, survivors labelled, constraint
limits shaded; accuracy there is the *proxy validation* accuracy) and, once models were trained,
a row of deployment panels (baselines, survivors and distilled students after full training,
each variant: *test* accuracy against latency measured in ONNX Runtime on the quantization
machine and against the ONNX file's size). The two rows are kept apart because their axes are
different quantities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D

from nas.problem import Constraint, ObjectiveSpec
from reports import style
from reports.fronts import Front2D, candidates_frame, front_2d, objective_pairs, pair_spec, pareto_keys
from reports.label_layout import LabelJob, place_all
from reports.metrics import MetricInfo, constraint_text, metric_info
from reports.run_data import RunData

PANEL_W_IN, PANEL_H_IN = 3.4, 2.7
MAX_COLUMNS = 3
REFERENCE_KIND = "reference"  # model_comparison kind of the linear reference: a line, not a point
REFERENCE_COLOUR = "0.35"
LIMIT_VIEW_FACTOR = 3.0  # a limit this close to the data (ratio) is brought into view


def quality_metric(frame: pd.DataFrame) -> str | None:
    """The quality metric on y: ``accuracy`` when the journal has it, else ``macro_f1``."""
    for name in ("accuracy", "macro_f1"):
        if name in frame and frame[name].notna().any():
            return name
    return None


def cost_metrics(run: RunData, frame: pd.DataFrame) -> list[str]:
    """The x metrics of the search panels: each device's latency, then size (those with values)."""
    names = [*run.latency_metrics, "size_kb"]
    return [n for n in names if n in frame and frame[n].notna().any()]


def _objective(run: RunData, name: str, direction: str) -> ObjectiveSpec:
    for o in run.search.objectives if run.search else []:
        if o.name == name:
            return o
    return pair_spec(name, direction)


def log_if_wide(ax: Axes, axis: str, values: np.ndarray, wanted: bool = True, ratio: float = 20.0) -> None:
    """Log scale when positive ``values`` span more than a factor of ``ratio`` (costs spanning decades)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if wanted and len(values) > 1 and values.max() / values.min() > ratio:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def _bring_into_view(ax: Axes, axis: str, bound: float) -> None:
    """Widen the axis to show a limit that lies just beyond the data (within :data:`LIMIT_VIEW_FACTOR`)."""
    low, high = ax.get_xlim() if axis == "x" else ax.get_ylim()
    if low <= bound <= high:
        return
    log = (ax.get_xscale() if axis == "x" else ax.get_yscale()) == "log"
    if log and bound <= 0:
        return
    if low > 0:  # costs: closeness as a ratio, on linear and log axes alike
        near = bound / high <= LIMIT_VIEW_FACTOR if bound > high else low / bound <= LIMIT_VIEW_FACTOR
    else:
        near = abs(bound - (high if bound > high else low)) <= (LIMIT_VIEW_FACTOR - 1) * (high - low)
    if not near:
        return
    if bound > high:
        high = bound * 1.1 if log else bound + 0.06 * (bound - low)
    else:
        low = bound / 1.1 if log else bound - 0.06 * (high - bound)
    (ax.set_xlim if axis == "x" else ax.set_ylim)(low, high)


def shade_limits(ax: Axes, constraints: Sequence[Constraint], x: MetricInfo, y: MetricInfo, devices: list[str]) -> None:
    """Shade what a constraint on the x or y metric excludes, with a dashed line at the limit."""
    for c in constraints:
        for info, axis in ((x, "x"), (y, "y")):
            if c.metric != info.name:
                continue
            bound = info.display(c.bound)
            _bring_into_view(ax, axis, bound)
            low, high = ax.get_xlim() if axis == "x" else ax.get_ylim()
            span = (bound, max(high, bound)) if c.op == "<=" else (min(low, bound), bound)
            text = constraint_text(c.metric, c.op, c.bound, devices, with_device=False)
            label = f"constraint {text} (shaded: fails it)"
            if axis == "x":
                ax.axvspan(*span, color=style.LIMIT_COLOUR, alpha=0.08, lw=0, zorder=0)
                ax.axvline(bound, color=style.LIMIT_COLOUR, lw=0.9, ls="--", zorder=1, label=label)
                ax.set_xlim(low, high)
            else:
                ax.axhspan(*span, color=style.LIMIT_COLOUR, alpha=0.08, lw=0, zorder=0)
                ax.axhline(bound, color=style.LIMIT_COLOUR, lw=0.9, ls="--", zorder=1, label=label)
                ax.set_ylim(low, high)


def draw_search_panel(
    ax: Axes,
    run: RunData,
    frame: pd.DataFrame,
    x: ObjectiveSpec,
    y: ObjectiveSpec,
    pareto: set[str],
    survivors: dict[str, str],
) -> LabelJob:
    """One panel of candidates on (x, y): faint candidates, the 2-D front's steps, Pareto set, survivors, limits.

    Returns:
        The survivors' labels, to place once the layout is final.
    """
    devices = run.device_names
    measured = run.search.latency_measured if run.search else False
    xi, yi = metric_info(x.name, devices, measured), metric_info(y.name, devices, measured)
    data = frame.dropna(subset=[x.name, y.name])
    feasible = data[data["feasible"]]
    infeasible = data[~data["feasible"]]
    ax.scatter(xi.display(infeasible[x.name]), yi.display(infeasible[y.name]), s=12, marker="x", lw=0.6,
               color=style.CANDIDATE_COLOUR, alpha=0.6, label="infeasible candidate", zorder=2)  # fmt: skip
    ax.scatter(xi.display(feasible[x.name]), yi.display(feasible[y.name]), s=14, color=style.FRONT_COLOUR,
               alpha=0.4, lw=0, label="feasible candidate", zorder=3)  # fmt: skip
    log_if_wide(ax, "x", xi.display(data[x.name].to_numpy(float)), xi.log_scale)
    log_if_wide(ax, "y", yi.display(data[y.name].to_numpy(float)), yi.log_scale)
    ax.margins(0.06)
    ax.autoscale_view()
    shade_limits(ax, run.search.constraints if run.search else [], xi, yi, devices)
    _draw_front(ax, front_2d(run.records, x, y), x, xi, yi)
    if run.search and len(run.search.objectives) > 2:
        ringed = feasible[feasible["key"].isin(pareto)]
        ax.scatter(xi.display(ringed[x.name]), yi.display(ringed[y.name]), s=40, facecolors="none",
                   edgecolors="k", lw=0.7, label="Pareto set (all objectives)", zorder=5)  # fmt: skip
    kept = data[data["key"].isin(survivors)]
    if len(kept):
        ax.scatter(xi.display(kept[x.name]), yi.display(kept[y.name]), s=70, marker="*", color=style.PALETTE[1],
                   edgecolors="k", lw=0.4, label="survivor (trained fully)", zorder=6)  # fmt: skip
    ax.set(xlabel=xi.label, ylabel=yi.label)
    style.plain_ticks(ax, "x")
    style.plain_ticks(ax, "y")
    labels = [(xi.display(r[x.name]), yi.display(r[y.name]), style.plain_label(survivors[r["key"]]))
              for r in kept.to_dict("records")]  # fmt: skip
    others = list(zip(xi.display(feasible[x.name]), yi.display(feasible[y.name]), strict=True))
    return LabelJob(ax, labels, others)


def _draw_front(ax: Axes, front: Front2D, x: ObjectiveSpec, xi: MetricInfo, yi: MetricInfo) -> None:
    """The 2-D front as a staircase, extended to the edge of the panel on the worse side of x."""
    if front.points.empty:
        return
    low, high = ax.get_xlim()
    edge = (high if x.direction == "min" else low) / xi.factor
    xs, ys = front.steps(x.direction, extend_to=edge)
    ax.plot(xi.display(xs), yi.display(ys), drawstyle="steps-post", color=style.FRONT_COLOUR, lw=1.4, zorder=4,
            label="feasible front (this pair)")  # fmt: skip
    ax.scatter(xi.display(front.points["x"]), yi.display(front.points["y"]), s=18, color=style.FRONT_COLOUR,
               zorder=4)  # fmt: skip
    ax.set_xlim(low, high)


def draw_trained_panel(ax: Axes, models: pd.DataFrame, x: str, xlabel: str) -> LabelJob:
    """Fully trained models: test accuracy against ``x``, a colour per kind, a marker per variant, names at fp32.

    Each model's INT8 variants are joined to its fp32 point by thin lines (what quantization changes).
    Where a model was exported, every point is its ONNX file's accuracy (the first seed's model), so
    a line shows the change quantization made to that file, not a seed-to-seed difference.
    """
    data = models.assign(test_accuracy_pct=_file_accuracy(models)).dropna(subset=[x, "test_accuracy_pct"])
    for _, group in data.groupby("model", sort=False):
        colour = style.KIND_COLOURS.get(str(group["kind"].iloc[0]), "0.3")
        base = group[group["variant"] == "fp32"]
        if len(base):
            bx, by = base[x].iloc[0], base["test_accuracy_pct"].iloc[0]
            for row in group[group["variant"] != "fp32"].to_dict("records"):
                ax.plot([bx, row[x]], [by, row["test_accuracy_pct"]], color=colour, lw=0.5, alpha=0.35, zorder=2)
        for row in group.to_dict("records"):
            marker = style.VARIANT_MARKERS.get(str(row["variant"]), "o")
            ax.scatter(row[x], row["test_accuracy_pct"], marker=marker, s=30, color=colour, edgecolors="k",
                       lw=0.4, zorder=3)  # fmt: skip
    log_if_wide(ax, "x", data[x].to_numpy(float), ratio=8.0)
    ax.margins(0.08)
    ax.set(xlabel=xlabel, ylabel="test accuracy (%)")
    style.plain_ticks(ax, "x")
    fp32 = data[data["variant"] == "fp32"]
    labelled = fp32 if len(fp32) else data.drop_duplicates("model")
    labels = [(r[x], r["test_accuracy_pct"], style.plain_label(r["model"], 20)) for r in labelled.to_dict("records")]
    obstacles = list(zip(data[x], data["test_accuracy_pct"], strict=True))
    return LabelJob(ax, labels, obstacles)


def _file_accuracy(models: pd.DataFrame) -> pd.Series:
    """Per row: the ONNX file's test accuracy (%) where measured, else the trained mean."""
    if "onnx_test_accuracy_pct" not in models:
        return models["test_accuracy_pct"]
    return models["onnx_test_accuracy_pct"].astype(float).fillna(models["test_accuracy_pct"])


def draw_reference(ax: Axes, reference: pd.DataFrame) -> None:
    """The linear reference's test accuracy as a dashed horizontal line (it has no latency or ONNX file)."""
    for value in reference["test_accuracy_pct"].astype(float):
        ax.axhline(value, ls="--", lw=0.9, color=REFERENCE_COLOUR, zorder=1)


def trained_legend(models: pd.DataFrame, reference: pd.DataFrame | None = None) -> tuple[list[Line2D], int]:
    """Legend handles laid out in two rows, kinds (colour) above variants (marker), and the column count."""
    kinds = [Line2D([], [], ls="", marker="o", color=style.KIND_COLOURS.get(k, "0.3"), markeredgecolor="k",
                    markeredgewidth=0.4, label=k) for k in dict.fromkeys(models["kind"])]  # fmt: skip
    if reference is not None and len(reference):
        kinds.append(Line2D([], [], ls="--", lw=0.9, color=REFERENCE_COLOUR, label="linear reference"))
    variants = [Line2D([], [], ls="", marker=style.VARIANT_MARKERS.get(v, "o"), color="0.7", markeredgecolor="k",
                       markeredgewidth=0.4, label=v) for v in dict.fromkeys(models["variant"])]  # fmt: skip
    columns = max(len(kinds), len(variants))
    blank = Line2D([], [], ls="", label=" ")
    kinds += [blank] * (columns - len(kinds))
    variants += [blank] * (columns - len(variants))
    return [h for pair in zip(kinds, variants, strict=True) for h in pair], columns  # legends fill column-major


def survivor_names(run: RunData) -> dict[str, str]:
    """Spec -> model name of the survivors kept for full training (``survivors.csv``)."""
    s = run.survivors
    if s is None or not {"spec", "name"} <= set(s.columns):
        return {}
    kept = s[s["kept"].astype(str).str.lower() == "true"] if "kept" in s else s
    return dict(zip(kept["spec"].astype(str), kept["name"].astype(str), strict=True))


def _axes_grid(body: Figure | SubFigure, rows: int, columns: int) -> list[list[Axes]]:
    return [list(r) for r in body.subplots(rows, columns, squeeze=False)]


def _unique_legend(axes: Sequence[Axes]) -> tuple[list, list[str]]:
    handles, labels = [], []
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    return handles, labels


def pareto_frontier(run: RunData, models: pd.DataFrame, footer: list[str]) -> tuple[Figure | None, list[str]]:
    """The front figure (see the module docstring); ``(None, notes)`` when there is nothing to draw."""
    frame = candidates_frame(run.records)
    y_name = quality_metric(frame) if not frame.empty else None
    costs = cost_metrics(run, frame) if y_name else []
    trained = models.dropna(subset=["test_accuracy_pct"]) if len(models) else models
    reference = trained[trained["kind"] == REFERENCE_KIND] if len(trained) else trained
    trained = trained[trained["kind"] != REFERENCE_KIND] if len(trained) else trained
    if not costs and trained.empty:
        return None, ["pareto_frontier: no trained candidate and no trained model yet: nothing to draw"]
    notes = _front_notes(run, frame, y_name)
    panels = _deployment_panels(run, trained) if len(trained) else []
    columns = min(MAX_COLUMNS, max(len(costs), len(panels), 1))
    top_rows = math.ceil(len(costs) / columns) if costs else 0
    rows = top_rows + (1 if len(trained) else 0)
    unscored = frame[(frame["status"] != "ok") & frame[y_name].isna()] if y_name else frame
    precheck = int((unscored["status"] == "precheck_infeasible").sum()) if not frame.empty else 0
    extra = [f"{precheck} candidate(s) rejected before training (no accuracy) are not shown."] if precheck else []
    with style.theme():
        fig, body = style.new_figure(PANEL_W_IN * columns, PANEL_H_IN * rows + 0.5 * rows, [*footer, *extra])
        grid = _axes_grid(body, rows, columns)
        top = [ax for row in grid[:top_rows] for ax in row]
        jobs: list[LabelJob] = []
        if costs:
            y = _objective(run, y_name, "max")
            pareto = set(pareto_keys(run.records, run.search.objectives)) if run.search else set()
            survivors = survivor_names(run)
            for ax, cost in zip(top, costs, strict=False):
                jobs.append(draw_search_panel(ax, run, frame, _objective(run, cost, "min"), y, pareto, survivors))
            for ax in top[len(costs) :]:
                ax.set_visible(False)
            top[0].set_title("search candidates", loc="left", fontweight="bold")
            handles, labels = _unique_legend(top[: len(costs)])
            body.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 3), frameon=False)
        if len(trained):
            measured = any(str(p[0]["latency_source"].iloc[0]).startswith("measured") for p in panels[:-1])
            bottom_notes, bottom_jobs = _bottom_row(run, grid[-1], panels, measured)
            for ax in grid[-1][: len(panels)]:
                draw_reference(ax, reference)
            notes, jobs = notes + bottom_notes, jobs + bottom_jobs
            handles, columns = trained_legend(trained, reference)
            body.legend(handles=handles, loc="outside lower center", ncols=columns, frameon=False)
        place_all(jobs)
    return fig, notes


def _front_notes(run: RunData, frame: pd.DataFrame, y_name: str | None) -> list[str]:
    if frame.empty or not y_name:
        return ["pareto_frontier: no candidate trained yet: only trained models are drawn"]
    feasible = int(frame.dropna(subset=[y_name])["feasible"].sum())
    if feasible == 0:
        return ["pareto_frontier: no feasible candidate yet: no front line drawn"]
    if feasible == 1:
        return ["pareto_frontier: a single feasible candidate: the front is one point"]
    if run.search and len(run.search.objectives) == 1:
        return ["pareto_frontier: a single objective: the 2-D fronts are trade-offs the search did not optimise"]
    return []


def _deployment_panels(run: RunData, trained: pd.DataFrame) -> list[tuple[pd.DataFrame, str, str]]:
    """``(rows, x column, x label)`` of each deployment panel: latency (measured, else predicted) if any, size."""
    measured = trained[trained["latency_source"].astype(str).str.startswith("measured")]
    machine = style.plain_label((run.machine or {}).get("cpu_model", "the quantization machine"), 40)
    panels = []
    if len(measured):
        panels.append((measured, "latency_ms", f"latency (ms), measured in ONNX Runtime\non {machine}"))
    else:
        predicted = trained.dropna(subset=["latency_ms"])
        if len(predicted):
            device = ", ".join(sorted({str(d) for d in predicted["table_device"].dropna()})) or "?"
            panels.append((predicted, "latency_ms", f"latency (ms, table prediction)\n{device}"))
    sized = measured if len(measured) else trained
    panels.append((sized, "size_kb", f"size (KiB, {'ONNX file' if len(measured) else 'fp32 weights'})"))
    return panels


def _measured_where(run: RunData) -> str:
    """Whether the trained models were measured on the CPU of the search's latency table(s)."""
    from latency_tables.device_match import same_cpu
    from reports.provenance import latency_tables_used

    verdicts = [same_cpu(e.get("device"), run.machine) for e in latency_tables_used(run) if e.get("device")]
    if verdicts and all(v is True for v in verdicts):
        return "trained models (measured here, on the table device's CPU)"
    if any(v is False for v in verdicts):
        return "trained models (measured here, not on the table device)"
    return "trained models (measured on the quantization machine)"


def _bottom_row(
    run: RunData, axes: list[Axes], panels: list[tuple[pd.DataFrame, str, str]], measured: bool
) -> tuple[list[str], list[LabelJob]]:
    jobs = [draw_trained_panel(ax, rows, x, label) for ax, (rows, x, label) in zip(axes, panels, strict=False)]
    title = _measured_where(run) if measured else "trained models"
    axes[0].set_title(title, loc="left", fontweight="bold")
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if len(panels) > 1:
        return [], jobs
    return ["pareto_frontier: the trained models have no latency yet (run --mode quantization)"], jobs


def pareto_pairs(run: RunData, footer: list[str]) -> tuple[Figure | None, list[str]]:
    """Every pair of objectives when there are more than two; ``(None, notes)`` otherwise."""
    objectives = run.search.objectives if run.search else []
    if len(objectives) <= 2:
        return None, [f"pareto_pairs: {len(objectives)} objective(s), no pairs beyond the panels of pareto_frontier"]
    frame = candidates_frame(run.records)
    if frame.empty:
        return None, ["pareto_pairs: the journal holds no candidate yet"]
    pairs = objective_pairs(objectives)
    columns = min(MAX_COLUMNS, len(pairs))
    rows = math.ceil(len(pairs) / columns)
    pareto = set(pareto_keys(run.records, objectives))
    survivors = survivor_names(run)
    with style.theme():
        fig, body = style.new_figure(PANEL_W_IN * columns, PANEL_H_IN * rows + 0.5, footer)
        flat = [ax for row in _axes_grid(body, rows, columns) for ax in row]
        jobs = [draw_search_panel(ax, run, frame, x, y, pareto, survivors)
                for ax, (x, y) in zip(flat, pairs, strict=False)]  # fmt: skip
        for ax in flat[len(pairs) :]:
            ax.set_visible(False)
        handles, labels = _unique_legend(flat[: len(pairs)])
        body.legend(handles, labels, loc="outside upper center", ncols=min(len(labels), 3), frameon=False)
        place_all(jobs)
    return fig, []
