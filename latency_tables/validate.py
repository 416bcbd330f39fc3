"""Validating predictions against end-to-end measurement on random specs, read against the noise floor.

Each spec is measured in two independent passes (A, then B, so the passes are spread in time);
the reference latency is the better of the two (the same minimum-of-sessions statistic the table
uses). The *noise floor* compares pass A with pass B: prediction error can only be read as far
as measurement itself agrees with itself.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from common.atomic import atomic_write_json, atomic_write_text
from common.progress import progress as progress_bar
from latency_tables.calibration import random_specs
from latency_tables.layout import export_onnx
from latency_tables.ort_timing import TimingConfig, time_model
from latency_tables.precision import deployed_graph
from latency_tables.table import LatencyTable
from search_spaces import ArchSpec, create_search_space


@dataclass(frozen=True)
class AgreementStats:
    """How well one latency column agrees with a reference column."""

    n: int
    mape_pct: float
    within_5_pct: float  # share of specs within +-5 %, in percent
    within_10_pct: float
    kendall_tau: float
    bias_pct: float  # mean signed error

    @classmethod
    def of(cls, estimate: np.ndarray, reference: np.ndarray) -> AgreementStats:
        """Agreement of ``estimate`` with ``reference`` (errors relative to the reference)."""
        err = estimate / reference - 1
        tau = float(kendalltau(estimate, reference).statistic) if len(err) > 1 else float("nan")
        return cls(
            n=len(err),
            mape_pct=float(100 * np.mean(np.abs(err))),
            within_5_pct=float(100 * np.mean(np.abs(err) <= 0.05)),
            within_10_pct=float(100 * np.mean(np.abs(err) <= 0.10)),
            kendall_tau=tau,
            bias_pct=float(100 * np.mean(err)),
        )

    def line(self) -> str:
        """One printable line."""
        return (
            f"within +-10%: {self.within_10_pct:.1f}%, within +-5%: {self.within_5_pct:.1f}%, "
            f"MAPE {self.mape_pct:.2f}%, Kendall tau {self.kendall_tau:.3f}, bias {self.bias_pct:+.2f}% (n={self.n})"
        )


@dataclass(frozen=True)
class ValidationReport:
    """Prediction against measurement, the noise floor, and costs."""

    prediction: AgreementStats
    prediction_uncalibrated: AgreementStats
    noise_floor: AgreementStats
    above_0_1ms: AgreementStats | None
    predict_ms_per_spec: float
    measure_ms_per_spec: float
    frame: pd.DataFrame
    precision: str = "fp32"  # what was measured: fp32 models, or INT8 ones quantized with the project's recipe


def validate_table(
    table: LatencyTable,
    n: int,
    seed: int,
    timing: TimingConfig,
    progress: bool = True,
    specs: list[ArchSpec] | None = None,
) -> ValidationReport:
    """Measure ``n`` random specs twice and compare with the table's predictions.

    Args:
        table: The device table (this machine must be that device).
        n: Number of random specs of the table's space.
        seed: Seed of the spec sample (distinct from the calibration's).
        timing: How each pass measures: ``sessions`` fresh sessions of at least 50 timed runs each.
        progress: Show progress bars.
        specs: Validate these specs instead of ``n`` random ones.
    """
    space = create_search_space(table.space)
    if specs is None:
        specs = random_specs(table.space, n, seed + 10_007, table.n_classes, table.input_shape)
    start = time.perf_counter()
    predictions = [table.predict(spec) for spec in specs]
    predict_s = time.perf_counter() - start
    shape, precision = table.input_shape, table.precision
    models = [deployed_graph(export_onnx(space.build(s, table.n_classes, shape), shape), precision) for s in specs]
    passes, measure_s = [], 0.0
    for label in ("A", "B"):
        start = time.perf_counter()
        bar = progress_bar(models, desc=f"measure pass {label}", unit="model", disable=not progress)
        passes.append(np.array([time_model(m, timing.end_to_end()).latency_ms for m in bar]))
        measure_s += time.perf_counter() - start
    return compare_passes(table, specs, passes[0], passes[1], 1e3 * predict_s / len(specs),
                          1e3 * measure_s / (2 * len(specs)), predictions)  # fmt: skip


def compare_passes(
    table: LatencyTable,
    specs: list[ArchSpec],
    pass_a_ms: np.ndarray,
    pass_b_ms: np.ndarray,
    predict_ms_per_spec: float,
    measure_ms_per_spec: float,
    predictions: list | None = None,
) -> ValidationReport:
    """The report of two measurement passes of ``specs`` against the table's predictions.

    Also used for passes measured elsewhere (a device kit's validation models).

    Args:
        table: The device table.
        specs: The measured specs.
        pass_a_ms: Pass A's latency per spec.
        pass_b_ms: Pass B's latency per spec.
        predict_ms_per_spec: Cost of one prediction, for the report.
        measure_ms_per_spec: Cost of one measurement, for the report.
        predictions: The table's predictions of ``specs`` (None: made here).
    """
    if predictions is None:
        predictions = [table.predict(spec) for spec in specs]
    passes = [np.asarray(pass_a_ms, dtype=float), np.asarray(pass_b_ms, dtype=float)]
    measured = np.minimum(*passes)
    frame = pd.DataFrame(
        {
            "spec": [str(s) for s in specs],
            "predicted_ms": [p.latency_ms for p in predictions],
            "summed_ms": [p.summed_ms for p in predictions],
            "measured_ms": measured,
            "measured_a_ms": passes[0],
            "measured_b_ms": passes[1],
            "interpolated_share": [p.interpolated_share for p in predictions],
        }
    )
    frame["error_pct"] = 100 * (frame["predicted_ms"] / frame["measured_ms"] - 1)
    predicted = frame["predicted_ms"].to_numpy()
    big = measured >= 0.1
    return ValidationReport(
        prediction=AgreementStats.of(predicted, measured),
        prediction_uncalibrated=AgreementStats.of(frame["summed_ms"].to_numpy(), measured),
        noise_floor=AgreementStats.of(passes[1], passes[0]),
        above_0_1ms=AgreementStats.of(predicted[big], measured[big]) if big.sum() > 1 else None,
        predict_ms_per_spec=predict_ms_per_spec,
        measure_ms_per_spec=measure_ms_per_spec,
        frame=frame,
        precision=table.precision,
    )


def write_validation(report: ValidationReport, out_dir: Path, device: str) -> None:
    """Write ``latency_validation.csv``, ``latency_validation.json`` and a scatter plot into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "latency_validation.csv", report.frame.to_csv(index=False))
    summary = {
        name: dataclasses.asdict(getattr(report, name))
        for name in ("prediction", "prediction_uncalibrated", "noise_floor", "above_0_1ms")
        if getattr(report, name) is not None
    }
    summary |= {
        "device": device,
        "precision": report.precision,
        "predict_ms_per_spec": report.predict_ms_per_spec,
        "measure_ms_per_spec": report.measure_ms_per_spec,
    }
    atomic_write_json(out_dir / "latency_validation.json", summary)
    _scatter(report, out_dir / "latency_validation.png", device)


def _scatter(report: ValidationReport, path: Path, device: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = report.frame
    fig, ax = plt.subplots(figsize=(5, 5), dpi=120)
    ax.scatter(frame["measured_ms"], frame["predicted_ms"], s=12, alpha=0.8, label="prediction")
    low, high = (
        frame[["measured_ms", "predicted_ms"]].min().min() * 0.8,
        frame[["measured_ms", "predicted_ms"]].max().max() * 1.25,
    )
    line = np.geomspace(low, high, 50)
    ax.plot(line, line, "k-", lw=0.8)
    ax.fill_between(line, line * 0.9, line * 1.1, color="grey", alpha=0.2, label="+-10%")
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="measured latency (ms)",
        ylabel="predicted latency (ms)",
        title=f"{device} ({report.precision}): {report.prediction.within_10_pct:.0f}% within +-10%",
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
