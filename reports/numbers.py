"""Rounding for humans: the same number reads the same in the LaTeX table, the HTML page and figure labels.

CSV and JSON keep full precision; only what is typeset is rounded, here.
"""

from __future__ import annotations

import math
from typing import Any

DASH = "–"


def is_number(value: Any) -> bool:
    """Whether ``value`` is a finite real number (NaN, None and text are not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def significant(value: Any, digits: int = 3) -> str:
    """``value`` to ``digits`` significant figures without exponent (0.000749 -> 0.000749, 1234.5 -> 1235)."""
    if not is_number(value):
        return DASH
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def fixed(value: Any, decimals: int = 1) -> str:
    """``value`` with ``decimals`` decimals, or a dash."""
    return f"{value:.{decimals}f}" if is_number(value) else DASH


def thousands(value: Any) -> str:
    """A count in thousands with one decimal (124474 -> 124.5)."""
    return f"{value / 1000:.1f}" if is_number(value) else DASH


def size(value: Any) -> str:
    """A size in KiB: one decimal below 100, whole KiB above."""
    if not is_number(value):
        return DASH
    return f"{value:.1f}" if abs(value) < 100 else f"{value:.0f}"


def mean_std(mean: Any, std: Any, decimals: int = 1, separator: str = " ± ") -> str:
    """``mean ± std`` with the same decimals, ``mean`` alone when the spread is unknown."""
    if not is_number(mean):
        return DASH
    if not is_number(std):
        return f"{mean:.{decimals}f}"
    return f"{mean:.{decimals}f}{separator}{std:.{decimals}f}"
