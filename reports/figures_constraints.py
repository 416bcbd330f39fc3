"""Drawing feasibility: which share of each generation is feasible, and which constraint binds.

The left panel stacks, per generation of first evaluation, the feasible share and the infeasible
candidates by the constraint each misses by most; the right one counts per constraint how often
it is violated at all and how often it binds.
"""

from __future__ import annotations

import textwrap

import pandas as pd
from matplotlib.figure import Figure

from reports import style
from reports.evolution import feasibility_by_generation, violation_counts
from reports.metrics import constraint_text
from reports.run_data import RunData

FIXED = ("generation", "candidates", "feasible", "feasible_share")


def cause_names(run: RunData) -> dict[str, str]:
    """Constraint label (as in the journal, ``size_kb<=256``) -> readable text (``size ≤ 256 KiB``)."""
    constraints = run.search.constraints if run.search else []
    return {c.label: constraint_text(c.metric, c.op, c.bound, run.device_names) for c in constraints}


def constraint_feasibility(run: RunData, footer: list[str]) -> tuple[Figure | None, list[str]]:
    """Stacked shares per generation and the violation counts per constraint."""
    table = feasibility_by_generation(run)
    if table.empty:
        return None, ["constraint_feasibility: the journal holds no candidate yet"]
    causes = [c for c in table.columns if c not in FIXED]
    names = cause_names(run)
    counts = violation_counts(run)
    notes = []
    if not run.search or not run.search.constraints:
        notes.append("constraint_feasibility: the search has no constraints: infeasible means a failed evaluation")
    with style.theme():
        fig, body = style.new_figure(7.2, 3.3, footer)
        left, right = body.subplots(1, 2, width_ratios=[1.4, 1])
        shares = pd.DataFrame({"feasible": table["feasible"]} | {c: table[c] for c in causes})
        shares = shares.div(table["candidates"], axis=0)
        bottom = pd.Series(0.0, index=table.index)
        colours = [style.PALETTE[2], *[style.PALETTE[(i + 3) % len(style.PALETTE)] for i in range(len(causes))]]
        for column, colour in zip(shares.columns, colours, strict=True):
            label = "feasible" if column == "feasible" else f"misses most: {names.get(column, column)}"
            left.bar(table["generation"], 100 * shares[column], bottom=100 * bottom, color=colour,
                     label=style.plain_label(label, 60), width=0.8, edgecolor="white", lw=0.4)  # fmt: skip
            bottom += shares[column]
        for g, n in zip(table["generation"], table["candidates"], strict=True):
            left.text(g, 101, f"{n}", ha="center", va="bottom", fontsize=6, color="0.3")
        left.set(xlabel="generation first evaluated (number on top: new candidates)",
                 ylabel="share of new candidates (%)", ylim=(0, 110))  # fmt: skip
        if len(table) <= 20:
            left.set_xticks(table["generation"])
        left.set_title("feasibility per generation", loc="left")
        if len(counts):
            x = range(len(counts))
            right.bar([i - 0.2 for i in x], counts["violated"], width=0.38, color="0.75",
                      label="violated (any amount)")  # fmt: skip
            right.bar([i + 0.2 for i in x], counts["binding"], width=0.38, color="0.35",
                      label="binding (missed by most)")  # fmt: skip
            ticks = [textwrap.fill(style.plain_label(names.get(c, c), 60), 24, break_on_hyphens=False)
                     for c in counts["constraint"]]  # fmt: skip
            right.set_xticks(list(x), ticks, fontsize=7)
            right.set(ylabel="candidates")
            right.set_title("which constraint binds", loc="left")
        else:
            right.set_visible(False)
        handles, labels = left.get_legend_handles_labels()
        more_h, more_l = right.get_legend_handles_labels()
        body.legend(handles + more_h, labels + more_l, loc="outside lower center", ncols=2, frameon=False)
    return fig, notes
