"""``index.html``: one self-contained page (no network, no script, figures embedded as base64 PNG).

Every figure, every table with a legend of its columns, what is missing and which mode makes it,
the notes on graceful degradations, and the provenance: readable offline, from the file alone.
"""

from __future__ import annotations

import base64
import html
import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from common.atomic import atomic_write_text
from reports import numbers
from reports.style import PNG_DPI

SCREEN_SCALE = 1.4  # figures are sized for print (a 7-inch page width); a screen shows them larger
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1200px;
padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.protocol{color:#444}figure{margin:1.2rem 0}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9rem;color:#444}table{border-collapse:collapse;font-size:.8rem;margin:.6rem 0}
th,td{border-bottom:1px solid #ddd;padding:.2rem .45rem;text-align:right;vertical-align:top;white-space:nowrap}
th{background:#f4f4f4;position:sticky;top:0}td.text,th.text{text-align:left}
.scroll{overflow-x:auto;max-height:36rem}dl.legend{font-size:.85rem;columns:2;column-gap:2rem}
dl.legend dt{font-family:monospace;font-weight:600}dl.legend dd{margin:0 0 .4rem 1rem;break-inside:avoid}
pre{background:#f7f7f7;padding:.8rem;white-space:pre-wrap;font-size:.78rem}ul.missing li{color:#8a4b00}
nav a{margin-right:.9rem}dl.summary{display:grid;grid-template-columns:max-content auto;gap:.15rem 1rem}
dl.summary dt{font-weight:600}dl.summary dd{margin:0}
"""


@dataclass(frozen=True)
class HtmlTable:
    """A table for the page.

    Attributes:
        name: Anchor and file stem (e.g. ``model_comparison``).
        title: Heading.
        frame: The rows (full precision; formatted here).
        legend: Column name -> what it holds.
        caption: Text above the table.
        files: File names of the table's downloads in the report folder.
    """

    name: str
    title: str
    frame: pd.DataFrame
    legend: Mapping[str, str]
    caption: str = ""
    files: tuple[str, ...] = ()


def cell(column: str, value: Any) -> str:
    """A table cell as text: numbers rounded for reading by column kind, text as is, a dash when empty."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, float)) and not numbers.is_number(value):
        return numbers.DASH
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return numbers.DASH
    if isinstance(value, (int, float)):
        if column.endswith(("_pct", "_pts")) or column in ("hypervolume", "feasible_share"):
            return numbers.fixed(value, 4 if column == "hypervolume" else 2)
        if column.endswith("_ms"):
            return numbers.significant(value, 4)
        if column.endswith(("_kb", "_m", "_s")):
            return numbers.fixed(value, 2)
        if float(value).is_integer():
            return str(int(value))
        return numbers.significant(value, 4)
    return str(value)


def _table_html(table: HtmlTable) -> str:
    frame = table.frame
    text_columns = {c for c in frame.columns if frame[c].dtype == object or str(frame[c].dtype) in ("str", "string")}
    head = "".join(
        f'<th class="{"text" if c in text_columns else "num"}" title="{html.escape(table.legend.get(c, ""))}">'
        f"{html.escape(str(c))}</th>"
        for c in frame.columns
    )
    body = []
    for row in frame.to_dict("records"):
        cells = "".join(
            f'<td class="{"text" if c in text_columns else "num"}">{html.escape(cell(str(c), row[c]))}</td>'
            for c in frame.columns
        )
        body.append(f"<tr>{cells}</tr>")
    legend = "".join(
        f"<dt>{html.escape(str(c))}</dt><dd>{html.escape(table.legend[c])}</dd>"
        for c in frame.columns
        if c in table.legend
    )
    files = " · ".join(f'<a href="{html.escape(f)}">{html.escape(f)}</a>' for f in table.files)
    return (
        f'<section id="{html.escape(table.name)}"><h2>{html.escape(table.title)}</h2>'
        + (f"<p>{html.escape(table.caption)}</p>" if table.caption else "")
        + (f"<p>Files: {files}</p>" if files else "")
        + f'<div class="scroll"><table id="table-{html.escape(table.name)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
        + (f'<h3>Columns</h3><dl class="legend">{legend}</dl>' if legend else "")
        + "</section>"
    )


def _css_width_px(png: bytes, dpi: int = PNG_DPI) -> int:
    """The figure's width on screen (CSS pixels), from the PNG header: its printed size, enlarged for reading."""
    width = struct.unpack(">I", png[16:20])[0] if png[:8] == b"\x89PNG\r\n\x1a\n" else 0
    return round(width / dpi * 96 * SCREEN_SCALE) if width else 0


def _figure_html(name: str, paths: list[Path], caption: str) -> str:
    png = next(p for p in paths if p.suffix == ".png")
    raw = png.read_bytes()
    data = base64.b64encode(raw).decode("ascii")
    width = _css_width_px(raw)
    size = f' style="width:{width}px"' if width else ""
    pdf = next((p.name for p in paths if p.suffix == ".pdf"), None)
    link = f' (<a href="{html.escape(pdf)}">vector PDF</a>)' if pdf else ""
    return (
        f'<figure id="figure-{html.escape(name)}"><img{size} src="data:image/png;base64,{data}" '
        f'alt="{html.escape(name)}: {html.escape(caption)}">'
        f"<figcaption><strong>{html.escape(name)}</strong>: {html.escape(caption)}{link}</figcaption></figure>"
    )


def _pretty(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _list(items: list[str], css: str = "") -> str:
    if not items:
        return "<p>None.</p>"
    return f'<ul class="{css}">' + "".join(f"<li>{html.escape(i)}</li>" for i in items) + "</ul>"


def write_index(
    path: Path,
    title: str,
    protocol: str,
    figures: Mapping[str, list[Path]],
    captions: Mapping[str, str],
    tables: list[HtmlTable],
    provenance: dict[str, Any],
    missing: list[str],
    notes: list[str],
    summary: Mapping[str, str] | None = None,
) -> Path:
    """Write the page to ``path`` and return it (``summary``: key facts shown first)."""
    nav = [("summary", "Summary")] if summary else []
    nav += [("figures", "Figures"), *((t.name, t.title) for t in tables), ("provenance", "Provenance")]
    facts = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in (summary or {}).items())
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="protocol">{html.escape(protocol)}</p>',
        "<nav>" + "".join(f'<a href="#{html.escape(a)}">{html.escape(t)}</a>' for a, t in nav) + "</nav>",
        f'<section id="summary"><h2>Summary</h2><dl class="summary">{facts}</dl></section>' if facts else "",
        "<h2>Not in this run folder yet</h2>",
        _list(missing, "missing"),
        "<h2>Notes</h2>",
        _list(notes),
        '<section id="figures"><h2>Figures</h2>',
        *(_figure_html(name, paths, captions.get(name, "")) for name, paths in figures.items()),
        "</section>",
        *(_table_html(t) for t in tables),
        '<section id="provenance"><h2>Provenance</h2>',
        f"<pre>{html.escape(_pretty(provenance))}</pre></section>",
        "</body></html>",
    ]
    atomic_write_text(path, "\n".join(parts))
    return path
