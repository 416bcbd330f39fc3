"""Drawing the search over time: hypervolume per generation and the candidates of each generation.

Hypervolume is drawn per strategy (one line per run, or mean ± std over runs of a strategy); the
candidates are drawn in objective space, coloured by the generation that first evaluated them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure

from reports import style
from reports.evolution import HypervolumeCurves
from reports.figures_pareto import cost_metrics, log_if_wide, quality_metric
from reports.fronts import candidates_frame
from reports.metrics import metric_info
from reports.run_data import RunData


def draw_hypervolume(ax: Axes, curves: HypervolumeCurves) -> list[str]:
    """Hypervolume per generation: one line per run, or mean ± std band per strategy over several runs."""
    notes = []
    for strategy in curves.strategies:
        colour = style.STRATEGY_COLOURS.get(strategy, "0.3")
        name = style.STRATEGY_NAMES.get(strategy, strategy)
        runs = curves.runs[curves.runs["strategy"] == strategy]
        stats = curves.by_strategy[curves.by_strategy["strategy"] == strategy].sort_values("generation")
        n = runs["run"].nunique()
        if n > 1:
            for _, one in runs.groupby("run"):
                ax.plot(one["generation"], one["hypervolume"], color=colour, lw=0.6, alpha=0.35)
            ax.plot(stats["generation"], stats["mean"], color=colour, lw=1.8, marker="o", ms=3,
                    label=f"{name}: mean ± std over {n} runs")  # fmt: skip
            ax.fill_between(stats["generation"], stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                            color=colour, alpha=0.18, lw=0)  # fmt: skip
            uneven = stats["n_runs"].nunique() > 1
            if uneven:
                notes.append(f"nas_evolution: {name} runs have different lengths; later generations average fewer runs")
        else:
            label = f"{name} ({runs['run'].iloc[0]})"
            ax.plot(runs["generation"], runs["hypervolume"], color=colour, lw=1.8, marker="o", ms=3,
                    label=style.plain_label(label, 48))  # fmt: skip
    ax.set(xlabel="generation (0 = initial population)", ylabel="hypervolume (share of the box)")
    ax.set_ylim(bottom=0)
    generations = curves.runs["generation"]
    if len(generations) and generations.max() <= 12:
        ax.set_xticks(range(int(generations.min()), int(generations.max()) + 1))
    ax.legend(loc="lower right", frameon=True, framealpha=0.85)
    ax.set_title("hypervolume of the feasible front", loc="left")
    return notes


def draw_population(ax: Axes, run: RunData) -> bool:
    """Trained candidates in (first latency or size, accuracy), coloured by generation; False if none."""
    frame = candidates_frame(run.records)
    y = quality_metric(frame) if not frame.empty else None
    costs = cost_metrics(run, frame) if y else []
    if not costs:
        return False
    x = costs[0]
    data = frame.dropna(subset=[x, y]).sort_values("generation")
    xi, yi = metric_info(x, run.device_names), metric_info(y, run.device_names)
    generations = np.arange(int(data["generation"].min()), int(data["generation"].max()) + 2) - 0.5
    cmap = colormaps["viridis"]
    norm = BoundaryNorm(generations, cmap.N)
    points = ax.scatter(xi.display(data[x]), yi.display(data[y]), c=data["generation"], cmap=cmap, norm=norm,
                        s=np.where(data["feasible"], 22, 12), marker="o", edgecolors="none", alpha=0.85)  # fmt: skip
    bar = ax.get_figure().colorbar(points, ax=ax, pad=0.01)
    bar.set_label("generation first evaluated")
    if len(generations) <= 13:
        bar.set_ticks(generations[:-1] + 0.5)
    log_if_wide(ax, "x", xi.display(data[x].to_numpy(float)), xi.log_scale)
    ax.set(xlabel=xi.label, ylabel=yi.label)
    style.plain_ticks(ax, "x")
    ax.set_title("trained candidates (large: feasible)", loc="left")
    return True


def nas_evolution(run: RunData, curves: HypervolumeCurves, footer: list[str]) -> tuple[Figure | None, list[str]]:
    """Hypervolume per generation beside the population per generation."""
    notes = [f"nas_evolution: {why}; left out of the comparison" for why in curves.left_out if why]
    if curves.runs.empty:
        return None, [*notes, "nas_evolution: no nas/history.csv rows yet: nothing to draw"]
    strategies = curves.strategies
    if len(strategies) == 1:
        other = "random" if strategies[0] == "nsga2" else "nsga2"
        notes.append(f"nas_evolution: only {style.STRATEGY_NAMES.get(strategies[0], strategies[0])} runs; pass a "
                     f"--strategy {other} run of the same problem as a compare run to draw both")  # fmt: skip
    with style.theme():
        fig, body = style.new_figure(7.2, 3.3, footer)
        left, right = body.subplots(1, 2, width_ratios=[1, 1.2])
        notes += draw_hypervolume(left, curves)
        if not draw_population(right, run):
            right.set_visible(False)
            notes.append("nas_evolution: no trained candidate: the population panel is left out")
    if pd.Series(curves.runs["generation"]).nunique() == 1:
        notes.append("nas_evolution: a single generation: hypervolume is one point per run")
    return fig, notes
