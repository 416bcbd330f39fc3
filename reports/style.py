"""One look for every figure: seaborn's paper style, colour-blind palette, markers per variant, the footer.

Figures are :class:`matplotlib.figure.Figure` objects on an explicit Agg canvas (no pyplot, no
global backend switch) drawn inside :func:`theme`, an rc context, so making a report changes no
matplotlib setting of the caller (a notebook keeps its backend).
Each figure is saved as a vector PDF (fonts embedded as TrueType) and a 300-dpi PNG.
"""

from __future__ import annotations

import contextlib
import math
import textwrap
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import matplotlib.font_manager
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, SubFigure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullFormatter

from reports.metrics import STRATEGY_NAMES  # noqa: F401  (re-exported for the figures)

PNG_DPI = 300
FOOTER_FONT_PT = 6.5
PALETTE = sns.color_palette("colorblind")
VARIANT_MARKERS = {"fp32": "o", "int8_dynamic": "v", "int8_static": "s", "int8_static_aa": "D", "int8_qat": "P"}
KIND_COLOURS = {"baseline": PALETTE[3], "nas": PALETTE[0], "distilled": PALETTE[2]}
STRATEGY_COLOURS = {"nsga2": PALETTE[0], "random": PALETTE[1]}
CANDIDATE_COLOUR = "0.55"
FRONT_COLOUR = PALETTE[0]
LIMIT_COLOUR = PALETTE[3]
MAX_LABEL_CHARS = 28


def _rc() -> dict:
    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("paper", font_scale=1.15)}
    rc |= {
        "pdf.fonttype": 42,
        "ps.fonttype": 42,
        "savefig.dpi": PNG_DPI,
        "figure.dpi": 100,
        "axes.titlesize": 10,
        "axes.labelsize": 9,
        "legend.fontsize": 7.5,
        "legend.title_fontsize": 8,
        "xtick.labelsize": 8,
        "ytick.labelsize": 8,
        "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans"],
        "axes.formatter.useoffset": False,
    }
    return rc


@contextlib.contextmanager
def theme() -> Iterator[None]:
    """The report's style for everything drawn inside the block."""
    with matplotlib.rc_context(_rc()):
        yield


def new_figure(width_in: float, body_height_in: float, footer: list[str]) -> tuple[Figure, Figure | SubFigure]:
    """A figure of ``body_height_in`` for the panels plus a footer band for ``footer`` (call inside :func:`theme`).

    The panels go on the returned body (a subfigure with constrained layout, legends placed "outside" it
    included); the footer lines (protocol, reference point, sources) are wrapped to the width below it.

    Returns:
        ``(figure, body)``: save the figure, draw on the body.
    """
    chars = max(40, int(width_in * 20))
    wrapped = [part for line in footer if line for part in textwrap.wrap(line, chars)]
    footer_in = (len(wrapped) * FOOTER_FONT_PT * 1.4 + 8) / 72 if wrapped else 0.0
    fig = Figure(figsize=(width_in, body_height_in + footer_in), layout="constrained")
    FigureCanvasAgg(fig)
    if not wrapped:
        return fig, fig
    body, foot = fig.subfigures(2, 1, height_ratios=[body_height_in, footer_in])
    foot.text(0.005, 0.5, "\n".join(wrapped), ha="left", va="center", fontsize=FOOTER_FONT_PT, color="0.25",
              linespacing=1.35)  # fmt: skip
    return fig, body


def plain_ticks(ax: Axes, axis: str = "x") -> None:
    """Tick labels of a log axis as plain numbers (0.5, 1, 10) instead of powers of ten."""
    target = ax.xaxis if axis == "x" else ax.yaxis
    if target.get_scale() != "log":
        return
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    target.set_major_formatter(plain)
    low, high = ax.get_xlim() if axis == "x" else ax.get_ylim()
    few_decades = low > 0 and high / low < 30
    target.set_minor_formatter(FuncFormatter(_two_and_five) if few_decades else NullFormatter())


def _two_and_five(value: float, _: object) -> str:
    """Minor log ticks labelled at 2 and 5 times a power of ten only."""
    if value <= 0:
        return ""
    leading = round(value / 10 ** math.floor(math.log10(value)))
    return f"{value:g}" if leading in (2, 5) else ""


def save(fig: Figure, out_dir: Path, name: str) -> list[Path]:
    """Write ``<name>.pdf`` (fonts embedded as TrueType) and ``<name>.png`` (300 dpi); returns both paths.

    Saving runs inside :func:`theme` (the PDF font type is read at save time). The layout computed for
    the PDF is kept for the PNG: it is in inches, so both files show the same figure.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.pdf", out_dir / f"{name}.png"]
    with theme():
        fig.savefig(paths[0])
        fig.set_layout_engine("none")
        fig.savefig(paths[1], dpi=PNG_DPI)
    return paths


def _has_glyph(char: str) -> bool:
    font = matplotlib.font_manager.get_font(matplotlib.font_manager.findfont("DejaVu Sans"))
    return font.get_char_index(ord(char)) != 0


def plain_label(text: object, limit: int = MAX_LABEL_CHARS) -> str:
    """A label safe to draw: mathtext ``$`` escaped, characters the font lacks as ``?``, long text shortened."""
    text = str(text)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = "".join(c if c.isascii() or _has_glyph(c) else "?" for c in text)
    return text.replace("$", r"\$")


def patch(colour: object, label: str) -> Patch:
    """A legend swatch."""
    return Patch(facecolor=colour, edgecolor="none", label=label)
