"""Drawing the checks of the search's two cheap estimates: table latency and proxy accuracy.

``latency_validation``: table-predicted against measured latency, with the ±10 % band and the
noise floor (two measurement passes against each other). ``proxy_fidelity``: the survivors'
proxy accuracy against their fully trained accuracy, with Kendall tau.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from reports import style
from reports.label_layout import place_labels
from reports.run_data import RunData

BAND = 0.10


def _stats_text(stats: dict[str, Any] | None) -> str:
    if not stats:
        return ""
    within, mape = stats.get("within_10_pct", math.nan), stats.get("mape_pct", math.nan)
    return f"{within:.0f}% within ±10%, MAPE {mape:.1f}%, τ {stats.get('kendall_tau', math.nan):.3f}"


def latency_validation(run: RunData, footer: list[str]) -> tuple[Figure | None, list[str]]:
    """Predicted against measured latency (log-log) and the relative error against latency."""
    frame = run.latency_validation
    if frame is None or frame.empty or not {"predicted_ms", "measured_ms"} <= set(frame.columns):
        return None, []
    meta = run.latency_validation_meta or {}
    device = style.plain_label(meta.get("device", "the table's device"), 48)
    noise = {"measured_a_ms", "measured_b_ms"} <= set(frame.columns)
    data = frame[(frame["measured_ms"] > 0) & (frame["predicted_ms"] > 0)]
    with style.theme():
        fig, body = style.new_figure(7.2, 3.6, footer)
        left, right = body.subplots(1, 2)
        low = float(np.nanmin(data[["measured_ms", "predicted_ms"]].to_numpy())) * 0.7
        high = float(np.nanmax(data[["measured_ms", "predicted_ms"]].to_numpy())) * 1.4
        line = np.geomspace(low, high, 64)
        left.fill_between(line, line * (1 - BAND), line * (1 + BAND), color="0.5", alpha=0.18, lw=0,
                          label="±10% band")  # fmt: skip
        left.plot(line, line, color="0.2", lw=0.8)
        if noise:
            label = f"noise floor: pass B vs A ({_stats_text(meta.get('noise_floor'))})"
            left.scatter(data["measured_a_ms"], data["measured_b_ms"], s=10, marker="x", color=style.PALETTE[1],
                         lw=0.7, label=label)  # fmt: skip
        left.scatter(data["measured_ms"], data["predicted_ms"], s=14, color=style.PALETTE[0],
                     label=f"table prediction ({_stats_text(meta.get('prediction'))})")  # fmt: skip
        left.set(xscale="log", yscale="log", xlim=(low, high), ylim=(low, high), xlabel="measured latency (ms)",
                 ylabel="predicted / pass-B latency (ms)")  # fmt: skip
        body.legend(*left.get_legend_handles_labels(), loc="outside lower center", ncols=1, frameon=False)
        left.set_title(f"{device}: {len(data)} random specs", loc="left")
        right.axhspan(-100 * BAND, 100 * BAND, color="0.5", alpha=0.18, lw=0)
        right.axhline(0, color="0.2", lw=0.8)
        if noise:
            right.scatter(data["measured_a_ms"], 100 * (data["measured_b_ms"] / data["measured_a_ms"] - 1), s=10,
                          marker="x", color=style.PALETTE[1], lw=0.7)  # fmt: skip
        right.scatter(data["measured_ms"], 100 * (data["predicted_ms"] / data["measured_ms"] - 1), s=14,
                      color=style.PALETTE[0])  # fmt: skip
        right.set(xscale="log", xlabel="measured latency (ms)", ylabel="relative error (%)")
        right.set_title("error of prediction and of re-measurement", loc="left")
        for ax in (left, right):
            style.plain_ticks(ax, "x")
        style.plain_ticks(left, "y")
    notes = [] if noise else ["latency_validation: no second measurement pass: the noise floor is not drawn"]
    return fig, notes


def _tau_text(part: dict[str, Any] | None) -> str:
    if not part or part.get("tau") is None:
        return "τ undefined"
    return f"Kendall τ {part['tau']:.2f} (p {part['p_value']:.2f})"


def proxy_fidelity(run: RunData, footer: list[str]) -> tuple[Figure | None, list[str]]:
    """Survivors' proxy validation accuracy against their fully trained validation and test accuracy."""
    fidelity = (run.quantization_meta or {}).get("proxy_fidelity")
    if not fidelity:
        return None, []
    wanted = ("proxy", "val", "test")
    pairs = [p for p in fidelity.get("pairs", []) if all(isinstance(p.get(k), (int, float)) for k in wanted)]
    if not pairs:
        return None, ["proxy_fidelity: no survivor has both a proxy and a full score"]
    notes = []
    if fidelity.get("val", {}).get("tau") is None:
        notes.append(f"proxy_fidelity: Kendall tau undefined ({fidelity.get('note', 'too few survivors')})")
    with style.theme():
        fig, body = style.new_figure(4.4, 3.6, footer)
        ax = body.subplots()
        proxy = [100 * p["proxy"] for p in pairs]
        ax.scatter(proxy, [100 * p["val"] for p in pairs], s=42, facecolors="none", edgecolors=style.PALETTE[0],
                   lw=1.2, label=f"validation: {_tau_text(fidelity.get('val'))}", zorder=3)  # fmt: skip
        ax.scatter(proxy, [100 * p["test"] for p in pairs], s=18, marker="s", color=style.PALETTE[1],
                   label=f"test: {_tau_text(fidelity.get('test'))}", zorder=4)  # fmt: skip
        ax.set(xlabel="proxy validation accuracy (%, short training in the search)",
               ylabel="accuracy after full training\n(%, mean over seeds)")  # fmt: skip
        ax.margins(0.15)
        body.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=1, frameon=False)
        ax.set_title(f"proxy fidelity over {len(pairs)} survivor(s)", loc="left")
        if fidelity.get("val", {}).get("tau") is None and fidelity.get("note"):
            ax.text(0.02, 0.97, style.plain_label(fidelity["note"], 90), transform=ax.transAxes, ha="left", va="top",
                    fontsize=6.5, color="0.3")  # fmt: skip
        labels = [(100 * p["proxy"], 100 * p["test"], style.plain_label(p.get("name", ""), 20)) for p in pairs]
        obstacles = [(100 * p["proxy"], 100 * p["val"]) for p in pairs]
        place_labels(ax, labels, fontsize=6.5, obstacles=obstacles)
    return fig, notes
