"""The latency stages: collect a device's lookup table, and validate its predictions on this machine."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from common.atomic import atomic_write_json
from common.errors import UserError
from common.folders import check_writable_folder
from latency_tables.collect import CollectionReport, check_continuable, collect_table
from latency_tables.device_match import match_this_machine
from latency_tables.registry import cached_table, load_device, table_path, user_tables_dir
from latency_tables.table import LatencyTable
from latency_tables.validate import ValidationReport, validate_table, write_validation
from pipeline.config import PipelineConfig
from search_spaces import create_search_space

DEFAULT_DEVICE = "epyc-avx512-2c_ort_fp32_t1"  # the shipped table of the CI machine class


def model_input_shape(space_name: str, cfg: PipelineConfig) -> tuple[int, ...]:
    """Per-example model input shape of ``space_name`` under the configured features."""
    space = create_search_space(space_name)
    features = cfg.features
    if space.input_kind == "waveform":
        if features.kind != "waveform":
            raise UserError(f"search space '{space_name}' takes raw waveforms; set features.kind to waveform")
        return (1, features.n_samples)
    if features.kind == "waveform":
        raise UserError(f"search space '{space_name}' takes log-mel input; set features.kind to logmel or mfcc")
    return (1, *features.shape)


def resolve_table(cfg: PipelineConfig, device: str | None = None) -> LatencyTable:
    """A device's table: ``latency.tables_dir`` first, then the registry.

    Args:
        cfg: The pipeline config (``latency.tables_dir``, ``latency.device``).
        device: Device name (default: ``latency.device``, else the shipped table).

    Raises:
        UserError: Unknown device (listing the known ones) or an invalid table.
    """
    device = device or cfg.latency.device or DEFAULT_DEVICE
    if cfg.latency.tables_dir:
        local = Path(cfg.latency.tables_dir) / f"{device}.csv"
        if local.is_file():
            return cached_table(local)
    table_path(device)  # unknown device: a message listing the known ones
    return load_device(device)


def run_latency_table(cfg: PipelineConfig, run_dir: Path, resume: bool = False) -> CollectionReport:
    """``--mode latency-table``: measure this device's ops into ``<tables_dir>/<device>.csv``.

    A collection always continues what the table holds (``resume`` changes nothing).
    """
    if not cfg.latency.device:
        raise UserError("--mode latency-table needs --device-name NAME (the name the table is saved and found under)")
    tables_dir = Path(cfg.latency.tables_dir) if cfg.latency.tables_dir else user_tables_dir()
    check_writable_folder(tables_dir, "--tables-dir", "latency tables folder")
    shape = model_input_shape(cfg.latency.space, cfg)
    check_continuable(cfg.latency, cfg.latency.device, shape, tables_dir)
    print(
        f"collecting {cfg.latency.collect_precision} latency table '{cfg.latency.device}' for space "
        f"{cfg.latency.space}, input {shape}, "
        f"{cfg.latency.timing.threads} thread(s), budget {cfg.latency.max_minutes:g} min -> {tables_dir}",
        flush=True,
    )
    report = collect_table(cfg.latency, cfg.latency.device, shape, tables_dir, progress=cfg.run.progress)
    summary = dataclasses.asdict(report) | {"csv_path": str(report.csv_path), "coverage": report.coverage}
    atomic_write_json(run_dir / "latency_table_report.json", summary)
    return report


def table_summary(report: CollectionReport, run_dir: Path) -> list[str]:
    """What a collection measured, left out, re-timed and calibrated."""
    lines = [
        f"measured {report.measured_now} new op(s) in {report.wall_s:.0f} s; coverage "
        f"{report.measured_before + report.measured_now}/{report.n_ops} ({report.coverage:.1%})"
    ]
    if report.left_out:
        left = ", ".join(f"{k}: {v}" for k, v in report.left_out.items())
        lines.append(
            f"left out (time budget; predictions interpolate them): {left}. Run the same command again to continue."
        )
    if report.references_rechecked:
        lines.append(
            f"timed {len(report.references_rechecked)} op context(s) again that some op had measured faster than; "
            f"{report.rows_corrected} op row(s) corrected"
        )
    if report.failed:
        lines.append(
            f"{len(report.failed)} op(s) failed to export or run, e.g. {report.failed[0][0]}: {report.failed[0][1]}"
        )
    if report.calibration:
        cal = report.calibration
        lines.append(
            f"calibration on {cal['n_models']} whole models: measured = {cal['scale']:.4f} x summed "
            f"{cal['offset_ms']:+.4f} ms"
        )
    return lines


def run_validate_latency(cfg: PipelineConfig, run_dir: Path, resume: bool = False) -> ValidationReport:
    """``--mode validate-latency``: measure random specs here and compare with the table's predictions."""
    table = resolve_table(cfg)
    table.check_compatible(cfg.latency.space, model_input_shape(cfg.latency.space, cfg))
    table.check_precision(cfg.latency.precision)
    check_same_machine(table)
    print(
        f"validating {table.precision} table '{table.name}' on {cfg.latency.validate_n} random {table.space} specs "
        f"(two measurement passes, {cfg.latency.timing.sessions} sessions each, {table.meta.get('threads', 1)} "
        "thread(s) as the table)",
        flush=True,
    )
    # measured as the table was: with its thread count (a table per thread count; --threads picks none here)
    timing = dataclasses.replace(cfg.latency.timing, threads=int(table.meta.get("threads", 1)))
    report = validate_table(table, cfg.latency.validate_n, cfg.latency.seed, timing, cfg.run.progress)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    write_validation(report, run_dir / "latency" / "validations" / f"{table.name}-{stamp}", table.name)  # kept
    write_validation(report, run_dir / "latency", table.name)  # the newest, where the reports look
    return report


def check_same_machine(table: LatencyTable) -> None:
    """Refuse to validate a table measured on another CPU: the comparison would measure the CPUs' difference.

    Raises:
        UserError: Naming both machines and the command that collects a table for this one.
    """
    match = match_this_machine(table.meta)
    if match.known and not match.same:
        raise UserError(
            f"table '{table.name}' was measured on {match.table_cpu}; this machine is {match.here_cpu}: validating "
            "it here would measure the difference between the CPUs. Validate it on that device, or collect a table "
            "for this machine: python complete_pipeline.py --mode latency-table --device-name NAME --max-minutes 15"
        )


def validation_summary(report: ValidationReport, run_dir: Path) -> list[str]:
    """Prediction error against measurement, beside the measurement's own noise floor."""
    lines = [f"prediction:     {report.prediction.line()}"]
    if report.above_0_1ms:
        lines.append(f"  >= 0.1 ms:    {report.above_0_1ms.line()}")
    lines += [
        f"uncalibrated:   {report.prediction_uncalibrated.line()}",
        f"noise floor:    {report.noise_floor.line()}  (pass A vs pass B)",
        f"cost per spec: prediction {report.predict_ms_per_spec:.2f} ms, "
        f"measurement {report.measure_ms_per_spec:.1f} ms",
        f"results in {run_dir / 'latency'}/ (latency_validation.csv, .json, .png; every validation also in "
        "latency/validations/)",
    ]
    return lines
