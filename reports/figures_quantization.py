"""Drawing deployment variants: test accuracy, ONNX file size and measured latency per model and variant.

Every value is re-measured on the variant's ONNX file (``quantization_results.csv``): accuracy in
ONNX Runtime on the whole test split (the first seed's model), file size on disk, latency in ONNX
Runtime on the machine recorded in ``quantization_results.json``. Accuracy and size are bars from
zero; latency, which spans decades (dynamic INT8 is slow for CNNs), is a dot per variant on a log axis.
"""

from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from reports import style
from reports.figures_pareto import log_if_wide
from reports.run_data import RunData
from reports.tables import KIND_ORDER, VARIANT_ORDER

PANELS = [
    ("test_accuracy_pct", "test accuracy (%)"),
    ("size_kb", "ONNX file size (KiB)"),
    ("latency_ms", "latency (ms, measured)"),
]


def variants_frame(run: RunData) -> pd.DataFrame:
    """The quantization rows to draw, in table order, accuracy in percent."""
    q = run.quantization
    if q is None or q.empty or not {"model", "variant", "test_accuracy"} <= set(q.columns):
        return pd.DataFrame()
    frame = q.copy()
    frame["test_accuracy_pct"] = 100 * frame["test_accuracy"]
    frame["_kind"] = frame["kind"].map(KIND_ORDER).fillna(len(KIND_ORDER)) if "kind" in frame else 0
    frame = frame.sort_values(["_kind", "model"], kind="stable")
    frame["model"] = frame["model"].map(lambda m: style.plain_label(m, 24))
    return frame.drop(columns="_kind")


def _wide(values: pd.Series, ratio: float = 20.0) -> bool:
    """Whether positive ``values`` span more than ``ratio``: linear bars would hide the small ones."""
    v = values.astype(float)
    v = v[v > 0]
    return len(v) > 1 and v.max() / v.min() > ratio


def slower_than_fp32(frame: pd.DataFrame) -> str | None:
    """A footer line naming the INT8 variants measured slower than their model's fp32, or None when none is.

    Dynamic quantization runs convolutions as ONNX Runtime's ``ConvInteger`` with the activations
    quantized at run time, slower than fp32 for small CNNs on x86; static INT8 can lose on the
    smallest models, where the quantize/dequantize steps cost more than the integer kernels save.
    A reader seeing a slower INT8 model should know it was measured, not miscomputed.
    """
    fp32 = frame[frame["variant"] == "fp32"].set_index("model")["latency_ms"].dropna()
    parts = []
    for variant, rows in frame[frame["variant"] != "fp32"].groupby("variant", sort=False):
        paired = rows.dropna(subset=["latency_ms"]).set_index("model")["latency_ms"]
        paired = paired[paired.index.isin(fp32.index)]
        slow = paired[paired > fp32.reindex(paired.index)]
        if len(slow) == len(paired) or len(slow) > 3:
            parts.append(f"{variant} for {len(slow)} of {len(paired)} model(s)")
        elif len(slow):
            parts.append(f"{variant} for {', '.join(slow.index)}")
    if not parts:
        return None
    return (f"Slower than fp32, as measured: {'; '.join(parts)}. Dynamic INT8 runs convolutions as ConvInteger "
            "with activations quantized at run time; static INT8 loses where its quantize/dequantize steps cost "
            "more than its integer kernels save (small models).")  # fmt: skip


def quantization_comparison(run: RunData, footer: list[str]) -> tuple[Figure | None, list[str]]:
    """Three panels sharing the model axis; a colour per variant (a variant that failed is named in a note)."""
    frame = variants_frame(run)
    failed = [f"quantization_comparison: {f.get('variant')} of {f.get('model')} failed and is left out: "
              f"{f.get('reason')}" for f in (run.quantization_meta or {}).get("failed_variants", [])]  # fmt: skip
    if frame.empty:
        return None, failed
    variants = [v for v in VARIANT_ORDER if v in set(frame["variant"])]
    variants += sorted(set(frame["variant"]) - set(VARIANT_ORDER))
    models = list(dict.fromkeys(frame["model"]))
    palette = dict(zip(variants, sns.color_palette("colorblind", len(variants)), strict=True))
    height = max(2.4, 0.09 * len(models) * len(variants) + 1.4)
    notes = failed
    slower = slower_than_fp32(frame)
    with style.theme():
        fig, body = style.new_figure(7.4, height, [*footer, *([slower] if slower else [])])
        axes = body.subplots(1, 3, sharey=True)
        for ax, (column, label) in zip(axes, PANELS, strict=True):
            data = frame.dropna(subset=[column])
            if data.empty:
                notes.append(f"quantization_comparison: no {column} values")
                continue
            if column == "latency_ms" or (column == "size_kb" and _wide(data[column])):  # dots on a log axis
                sns.stripplot(data=data, y="model", x=column, hue="variant", hue_order=variants, order=models,
                              palette=palette, ax=ax, orient="h", dodge=True, jitter=False, size=4.5,
                              marker="o", linewidth=0.4, edgecolor="k", legend=False)  # fmt: skip
                log_if_wide(ax, "x", data[column].to_numpy(float))
                style.plain_ticks(ax, "x")
            else:
                sns.barplot(data=data, y="model", x=column, hue="variant", hue_order=variants, order=models,
                            palette=palette, ax=ax, orient="h", errorbar=None, saturation=0.9,
                            legend=False)  # fmt: skip
            ax.set(xlabel=label, ylabel="")
            for boundary in range(1, len(models)):
                ax.axhline(boundary - 0.5, color="0.85", lw=0.6)
        handles = [style.patch(palette[v], v) for v in variants]
        body.legend(handles=handles, title="variant", loc="outside upper center", ncols=len(variants),
                    frameon=False)  # fmt: skip
    return fig, notes
