"""The per-device linear calibration: whole models measured end to end against their summed op timings."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random
import time
from dataclasses import dataclass

import numpy as np

from common.errors import UserError
from latency_tables.layout import export_onnx
from latency_tables.ort_timing import TimingConfig, time_model
from latency_tables.precision import deployed_graph
from latency_tables.table import Calibration, LatencyTable
from search_spaces import ArchSpec, create_search_space


@dataclass(frozen=True)
class CalibrationPoint:
    """One whole model: its spec, summed op timings and measured end-to-end latency."""

    spec: str
    summed_ms: float
    measured_ms: float


def random_specs(space_name: str, n: int, seed: int, n_classes: int, input_shape: tuple[int, ...]) -> list[ArchSpec]:
    """``n`` distinct random specs of the space that fit ``input_shape``."""
    space = create_search_space(space_name)
    rng = random.Random(seed)
    specs: dict[str, ArchSpec] = {}
    for _ in range(n * 50):
        spec = space.sample(rng)
        try:
            space.trace(spec, n_classes, input_shape)
        except UserError:
            continue
        specs.setdefault(str(spec), spec)
        if len(specs) == n:
            break
    return list(specs.values())


def spread_by_latency(table: LatencyTable, k: int, seed: int) -> list[ArchSpec]:
    """``k`` random specs at evenly spaced quantiles of their predicted latency (small to large)."""
    pool, summed_list = [], []
    for spec in random_specs(table.space, max(40 * k, 200), seed, table.n_classes, table.input_shape):
        try:
            summed_list.append(table.predict(spec).summed_ms)
        except UserError:  # a partial table cannot predict every spec; calibrate on those it can
            continue
        pool.append(spec)
    if len(pool) < k:
        return pool
    summed = np.array(summed_list)
    order = np.argsort(np.log(summed))
    picks = np.unique(np.linspace(0, len(pool) - 1, k).round().astype(int))
    return [pool[order[i]] for i in picks]


def measure_points(
    table: LatencyTable, specs: list[ArchSpec], timing: TimingConfig, deadline: float | None = None
) -> list[CalibrationPoint]:
    """Measure each spec end to end (ORT, full optimisation) next to its summed op timings.

    Args:
        table: The table whose summed op timings each measurement is paired with.
        specs: The calibration models.
        timing: The timing protocol (its end-to-end variant is used).
        deadline: ``time.monotonic()`` value not to pass: a model whose measurement (the slowest
            so far) would end after it is not started. None: measure every spec.

    Returns:
        The points measured, in ``specs`` order (fewer than ``specs`` when the deadline came first).
    """
    space = create_search_space(table.space)
    points: list[CalibrationPoint] = []
    costs: list[tuple[float, float]] = []  # (seconds it took, its summed op latency) per measured model
    for spec in specs:
        if deadline is not None and time.monotonic() + _expected_s(costs, table.predict(spec).summed_ms) > deadline:
            break
        start = time.monotonic()
        points.append(measure_point(space, table, spec, timing))
        costs.append((time.monotonic() - start, points[-1].summed_ms))
    return points


def _expected_s(costs: list[tuple[float, float]], summed_ms: float) -> float:
    """Seconds the next model's measurement may take: a measured one's, scaled up by a slower latency.

    Calibration models come small to large; the timing runs repeat the model, so a slower model
    costs at most proportionally more than one already measured (never assumed to cost less).
    """
    return max((s * max(1.0, summed_ms / max(ms, 1e-9)) for s, ms in costs), default=0.0)


def measure_point(space, table: LatencyTable, spec: ArchSpec, timing: TimingConfig) -> CalibrationPoint:
    """One calibration model measured end to end beside its summed op timings."""
    model = space.build(spec, table.n_classes, table.input_shape)
    graph = deployed_graph(export_onnx(model, table.input_shape), table.precision)
    measured = time_model(graph, timing.end_to_end()).latency_ms
    return CalibrationPoint(str(spec), table.predict(spec).summed_ms, measured)


def calibration_cost_s(
    space_name: str, n_models: int, n_classes: int, input_shape: tuple[int, ...], timing: TimingConfig, seed: int,
    precision: str = "fp32",
) -> float:  # fmt: skip
    """Seconds the calibration of ``n_models`` models will take here, from one model measured now.

    Calibration models are built, exported and timed end to end; their cost is dominated by the
    timing protocol, so one random model of the space, measured in full, prices them all (with
    a 50% margin for the larger ones). At INT8 each is also quantized with the project's recipe.
    """
    specs = random_specs(space_name, 1, seed, n_classes, input_shape)
    if not specs or n_models <= 0:
        return 0.0
    space = create_search_space(space_name)
    start = time.monotonic()
    model = space.build(specs[0], n_classes, input_shape)
    time_model(deployed_graph(export_onnx(model, input_shape), precision), timing.end_to_end())
    return 1.5 * n_models * (time.monotonic() - start)


def calibration_record(
    cal: Calibration, points: list[CalibrationPoint], fitted_on_ops: int, n_models_asked: int, seconds_per_model: float
) -> dict:
    """A table metadata's ``calibration`` entry: the fit, the models it rests on and its bookkeeping.

    ``n_models_asked`` above ``cal.n_models`` means the calibration was cut short (a time budget,
    models not timed yet); the next collection or import refits.
    """
    return {
        "scale": cal.scale,
        "offset_ms": cal.offset_ms,
        "n_models": cal.n_models,
        "fitted_on_ops": fitted_on_ops,
        "n_models_asked": n_models_asked,
        "seconds_per_model": round(seconds_per_model, 2),
        "models": [dataclasses.asdict(p) for p in points],
        "fitted": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def fit_calibration(points: list[CalibrationPoint]) -> Calibration:
    """Least-squares fit of ``measured = scale * summed + offset`` in relative error.

    Each model's residual is divided by its measured latency, so a 0.05 ms model weighs as much
    as a 50 ms one (the acceptance metric is relative error).
    """
    if len(points) < 2:
        return Calibration()
    summed = np.array([p.summed_ms for p in points])
    measured = np.array([p.measured_ms for p in points])
    design = np.stack([summed, np.ones_like(summed)], axis=1) / measured[:, None]
    (scale, offset), *_ = np.linalg.lstsq(design, np.ones_like(measured), rcond=None)
    if not (math.isfinite(scale) and scale > 0):
        return Calibration()
    return Calibration(float(scale), float(offset), len(points))
