"""What each metric of a run is, for axes and legends: label, unit, display factor, direction, device.

Journal metrics are stored in their natural units (accuracy as a fraction, latency in ms, size in
KiB). Reports show accuracies in percent; every other metric keeps its unit. A latency metric is
``latency_ms_<device>`` with the device name's non-identifier characters written as ``_``
(see ``pipeline.nas_problem.latency_metric``); :func:`device_of` maps it back to the table name.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

LATENCY_PREFIX = "latency_ms_"
LOCAL_DEVICE = "local"
STRATEGY_NAMES = {"nsga2": "NSGA-II", "random": "random search"}


@dataclass(frozen=True)
class MetricInfo:
    """How one metric is shown.

    Attributes:
        name: The metric's name in the journal (``accuracy``, ``latency_ms_<device>``, ``size_kb``).
        label: Axis label with unit, e.g. ``proxy validation accuracy (%)``.
        short: Short label for small panels and table headers, e.g. ``accuracy (%)``.
        factor: Multiply stored values by this for display (100 for fractions shown in percent).
        direction: ``max`` or ``min`` (what is better).
        device: The latency table's device for latency metrics, else None.
        log_scale: Whether an axis of this metric reads better on a log scale (costs span decades).
    """

    name: str
    label: str
    short: str
    factor: float
    direction: str
    device: str | None = None
    log_scale: bool = False

    def display(self, value: float) -> float:
        """``value`` in display units."""
        return value * self.factor


def latency_metric(device: str) -> str:
    """``latency_ms_<device>`` with non-identifier characters as ``_`` (as the search names it)."""
    return LATENCY_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", device)


def is_latency(name: str) -> bool:
    """Whether ``name`` is a per-device latency metric."""
    return name.startswith(LATENCY_PREFIX)


def device_of(metric: str, devices: Sequence[str] = ()) -> str:
    """The device (table) name behind a latency metric; the metric's suffix when no device matches."""
    for device in devices:
        if latency_metric(device) == metric:
            return device
    return metric.removeprefix(LATENCY_PREFIX)


def metric_info(name: str, devices: Sequence[str] = (), measured_here: bool = False) -> MetricInfo:
    """Display information of a search metric.

    Args:
        name: Metric name as in the journal.
        devices: Device (table) names of the run, to name latency axes.
        measured_here: Whether latency was timed during the search (``--latency measure``) rather than
            predicted from a table.
    """
    if name in ("accuracy", "macro_f1"):
        what = "accuracy" if name == "accuracy" else "macro-F1"
        return MetricInfo(name, f"proxy validation {what} (%)", f"{what} (%)", 100.0, "max")
    if is_latency(name):
        device = device_of(name, devices)
        how = "measured during the search" if measured_here or device == LOCAL_DEVICE else "table prediction"
        return MetricInfo(name, f"latency (ms, {how})\n{device}", f"latency {device} (ms)", 1.0, "min", device, True)
    known = {
        "size_kb": ("size (KiB, fp32 weights, BN folded)", "size (KiB)", True),
        "macs_m": ("multiply-accumulates (millions)", "MACs (M)", True),
        "params": ("parameters", "params", True),
    }
    if name in known:
        label, short, log = known[name]
        return MetricInfo(name, label, short, 1.0, "min", log_scale=log)
    return MetricInfo(name, name, name, 1.0, "min")


def constraint_text(metric: str, op: str, bound: float, devices: Sequence[str] = (), with_device: bool = True) -> str:
    """A constraint as a reader says it, e.g. ``latency ≤ 0.5 ms (rpi4)`` or ``accuracy ≥ 80 %``."""
    sign = "≤" if op == "<=" else "≥"
    if is_latency(metric):
        device = f" ({device_of(metric, devices)})" if with_device else ""
        return f"latency {sign} {bound:g} ms{device}"
    info = metric_info(metric, devices)
    unit = {"size_kb": " KiB", "macs_m": " M MACs"}.get(metric, " %" if info.factor == 100 else "")
    name = {"size_kb": "size", "macs_m": "MACs"}.get(metric, metric.replace("_", " "))
    return f"{name} {sign} {info.display(bound):g}{unit}"
