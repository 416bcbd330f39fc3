"""Proxy fidelity: does the search's short proxy training rank the survivors as full training does?

Kendall's tau (scipy, tau-b: ties handled) between the survivors' proxy validation accuracy and
their fully trained validation and test accuracy (mean over seeds), with its two-sided p-value.
With few survivors the p-value is weak evidence either way; it is reported, never hidden.
"""

from __future__ import annotations

import math
from typing import Any

from scipy.stats import kendalltau

MIN_PAIRS = 3  # fewer points give no meaningful rank correlation


def _tau(x: list[float], y: list[float]) -> dict[str, float | None]:
    if len(x) < MIN_PAIRS or len(set(x)) < 2 or len(set(y)) < 2:
        return {"tau": None, "p_value": None}
    result = kendalltau(x, y)
    tau, p = float(result.statistic), float(result.pvalue)
    return {"tau": tau if math.isfinite(tau) else None, "p_value": p if math.isfinite(p) else None}


def proxy_fidelity(pairs: list[dict[str, Any]], metric: str = "accuracy") -> dict[str, Any]:
    """Rank agreement of proxy and full training over the survivors.

    Args:
        pairs: One dict per survivor: ``name``, ``proxy`` (proxy validation score), ``val`` and
            ``test`` (fully trained scores, mean over seeds).
        metric: What the scores are (for the record).

    Returns:
        ``n``, ``metric``, ``val`` and ``test`` (each ``{"tau", "p_value"}``, None when fewer than
        three survivors or a constant ranking make tau undefined), ``pairs`` and a ``note``.
    """
    usable = [p for p in pairs if all(isinstance(p.get(k), (int, float)) for k in ("proxy", "val", "test"))]
    proxy = [float(p["proxy"]) for p in usable]
    out = {
        "metric": metric,
        "n": len(usable),
        "val": _tau(proxy, [float(p["val"]) for p in usable]),
        "test": _tau(proxy, [float(p["test"]) for p in usable]),
        "pairs": usable,
    }
    if len(usable) < MIN_PAIRS:
        out["note"] = f"needs >= {MIN_PAIRS} survivors with proxy and full scores (have {len(usable)})"
    elif out["val"]["tau"] is None:
        out["note"] = "a ranking is constant: tau is undefined"
    else:
        out["note"] = "tau-b; p-value two-sided (scipy.stats.kendalltau)"
    return out


def fidelity_line(fidelity: dict[str, Any]) -> str:
    """One printable line, e.g. ``proxy fidelity over 5 survivors: Kendall tau val 0.60 (p 0.23), test 0.40 ...``."""

    def fmt(part: dict[str, float | None]) -> str:
        if part["tau"] is None:
            return "undefined"
        return f"{part['tau']:.2f} (p {part['p_value']:.2f})"

    return (
        f"proxy fidelity over {fidelity['n']} survivor(s): Kendall tau proxy-vs-full {fidelity['metric']} "
        f"val {fmt(fidelity['val'])}, test {fmt(fidelity['test'])}"
        + ("" if fidelity["val"]["tau"] is not None else f" ({fidelity['note']})")
    )
