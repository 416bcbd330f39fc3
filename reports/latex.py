r"""The model comparison as a booktabs LaTeX table, ready for ``\\input{}`` (needs ``\\usepackage{booktabs}``).

Numbers are rounded for reading (see :mod:`reports.numbers`), the best value of each column is in
bold (ties all bold, judged on the rounded values shown), text is escaped, spec strings are left
out (they are in the CSV) and long model names are shortened. The caption says what each column
is, on which split, and where each latency comes from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from reports import numbers

_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}  # fmt: skip
MAX_NAME_CHARS = 24
PREDICTED_MARK = r"\textsuperscript{\dag}"
PER_MODEL = ("params", "macs_m")  # equal for every variant of a model


@dataclass(frozen=True)
class LatexColumn:
    """One column of the table: header, how a row's cell is formatted, and which way is best.

    Attributes:
        header: Header text (LaTeX, already escaped).
        align: ``l`` or ``r``.
        cell: Formats a row's value(s) as display text.
        key: Column whose (rounded) value decides the best cell; None: never bold.
        best: ``max`` or ``min``.
    """

    header: str
    align: str
    cell: Callable[[dict], str]
    key: str | None = None
    best: str = "max"


def escape(text: object) -> str:
    """``text`` with LaTeX's special characters escaped (non-ASCII kept: utf8 input is the default since 2018)."""
    escaped = re.sub(r"[\\&%$#_{}~^]", lambda m: _SPECIAL[m.group()], str(text))
    return escaped.replace("±", r"$\pm$").replace("–", "--").replace("†", PREDICTED_MARK)


def name_cell(text: str, limit: int = MAX_NAME_CHARS) -> str:
    r"""``text`` escaped, cut to ``limit`` characters with ``\ldots`` when longer."""
    return escape(text) if len(text) <= limit else escape(text[: limit - 1]) + r"\ldots{}"


def _accuracy(row: dict) -> str:
    shown = numbers.mean_std(row["test_accuracy_pct"], row["test_accuracy_std_pct"], 1, separator=r"\,$\pm$\,")
    return shown


def columns() -> list[LatexColumn]:
    """The table's columns, in order."""
    return [
        LatexColumn("Model", "l", lambda r: name_cell(str(r["model"]))),
        LatexColumn("Variant", "l", lambda r: escape(str(r["variant"]))),
        LatexColumn("Test acc.\\ (\\%)", "r", _accuracy, "test_accuracy_pct", "max"),
        LatexColumn("Macro-F1 (\\%)", "r", lambda r: numbers.fixed(r["test_macro_f1_pct"], 1), "test_macro_f1_pct"),
        LatexColumn("Params (k)", "r", lambda r: numbers.thousands(r["params"]), "params", "min"),
        LatexColumn("MACs (M)", "r", lambda r: numbers.fixed(r["macs_m"], 1), "macs_m", "min"),
        LatexColumn("Size (KiB)", "r", lambda r: numbers.size(r["size_kb"]), "size_kb", "min"),
        LatexColumn("Latency (ms)", "r", lambda r: numbers.significant(r["latency_ms"], 3), "latency_ms", "min"),
    ]


def _shown_value(column: LatexColumn, row: dict) -> float:
    """The rounded value the cell shows (NaN for a dash), so bold marks what the reader sees as best."""
    text = column.cell(row)
    match = re.match(r"-?\d+(\.\d+)?", text)
    return float(match.group()) if match else math.nan


def _best_rows(column: LatexColumn, rows: list[dict], eligible: list[bool]) -> set[int]:
    values = [_shown_value(column, r) if ok else math.nan for r, ok in zip(rows, eligible, strict=True)]
    finite = [v for v in values if math.isfinite(v)]
    if column.key is None or len(finite) < 2:
        return set()
    target = max(finite) if column.best == "max" else min(finite)
    return {i for i, v in enumerate(values) if v == target}


def _is_measured(row: dict) -> bool:
    return str(row.get("latency_source", "")).startswith("measured")


def latex_table(frame: pd.DataFrame, caption: str, label: str = "tab:model_comparison") -> str:
    """The booktabs table for ``frame`` (rows of :func:`reports.tables.model_comparison`).

    A model's parameters and MACs are the same for every variant, so they are shown on its first
    row only; a rule separates the kinds (linear reference, baselines, survivors, distilled), a small
    gap the models. The linear reference is never set in bold: it is the yardstick.

    Args:
        frame: Model comparison rows, already in table order.
        caption: Plain-text caption (escaped here).
        label: LaTeX label of the table.
    """
    rows = frame.to_dict("records")
    cols = [c for c in columns() if c.key is None or any(c.cell(r) != numbers.DASH for r in rows)]  # no empty column
    measured = [_is_measured(r) for r in rows]
    any_measured = any(measured)
    first = [i == 0 or rows[i - 1]["model"] != r["model"] for i, r in enumerate(rows)]
    models = [r.get("kind") != "reference" for r in rows]  # the linear reference is a yardstick, not a contender
    eligible = {c.key: list(models) for c in cols}
    eligible["latency_ms"] = [m == any_measured and k for m, k in zip(measured, models, strict=True)]
    eligible["params"] = eligible["macs_m"] = [f and k for f, k in zip(first, models, strict=True)]
    best = {c.header: _best_rows(c, rows, eligible.get(c.key, models)) for c in cols}
    lines = [
        "% Generated by edge-audio-nas reports; needs \\usepackage{booktabs}",
        "\\begin{table}[t]",
        "\\centering",
        "\\small",
        f"\\caption{{{escape(caption)}}}",
        f"\\label{{{label}}}",
        f"\\begin{{tabular}}{{{''.join(c.align for c in cols)}}}",
        "\\toprule",
        " & ".join(c.header for c in cols) + " \\\\",
        "\\midrule",
    ]
    for i, row in enumerate(rows):
        if i and row.get("kind") != rows[i - 1].get("kind"):
            lines.append("\\midrule")
        elif i and first[i]:
            lines.append("\\addlinespace[2pt]")
        cells = []
        for c in cols:
            text = c.cell(row).replace(numbers.DASH, "--")
            if c.key in PER_MODEL and not first[i]:
                text = ""
            if c.key == "latency_ms" and any_measured and not measured[i] and text != "--":
                text += PREDICTED_MARK
            cells.append(f"\\textbf{{{text}}}" if i in best[c.header] and text else text)
        lines.append(" & ".join(cells) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(lines)
