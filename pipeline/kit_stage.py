"""The device-kit stages: write a kit for a device without torch, and import the table it timed there."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from common.atomic import atomic_write_json
from common.errors import UserError
from common.folders import check_writable_folder
from latency_tables.kit import KitReport, kit_summary, write_kit
from latency_tables.kit_import import ImportReport, import_results
from latency_tables.registry import user_tables_dir
from latency_tables.validate import write_validation
from pipeline.config import PipelineConfig
from pipeline.latency_stage import model_input_shape, validation_summary


def run_latency_kit(cfg: PipelineConfig, run_dir: Path | None, resume: bool = False) -> KitReport:
    """``--mode latency-kit``: write the kit folder (``--kit-dir``, else ``<--out>/kit``).

    Raises:
        UserError: No ``--device-name``, no folder to write to, or a kit folder that is not empty.
    """
    lat = cfg.latency
    if not lat.device:
        raise UserError("--mode latency-kit needs --device-name NAME (the name the device's table is saved under)")
    if lat.kit_dir:
        kit_dir = Path(lat.kit_dir)
    elif run_dir is not None:
        kit_dir = run_dir / "kit"
    else:
        raise UserError("--mode latency-kit needs --kit-dir DIR (or --out DIR: the kit goes to DIR/kit)")
    check_writable_folder(kit_dir.parent, "--kit-dir", "kit folder's parent")
    shape = model_input_shape(lat.space, cfg)
    print(f"writing a {lat.collect_precision} latency kit for '{lat.device}' (space {lat.space}, input {shape}, "
          f"{lat.timing.threads} thread(s)) -> {kit_dir}", flush=True)  # fmt: skip
    return write_kit(lat, lat.device, shape, kit_dir, progress=cfg.run.progress)


def kit_lines(report: KitReport, run_dir: Path | None) -> list[str]:
    """What the kit holds, and the commands that use it."""
    return [
        kit_summary(report),
        "on the device (Python with numpy and onnxruntime): copy the folder, then inside it: python time_ops.py "
        "[--max-minutes M] (resumable)",
        f"back here, with its results/ in the kit: python complete_pipeline.py --mode latency-import "
        f"--kit-dir {report.kit_dir}",
    ]


def run_latency_import(cfg: PipelineConfig, run_dir: Path, resume: bool = False) -> ImportReport:
    """``--mode latency-import``: the table from the device's results, and its validation if measured.

    The table goes to ``--tables-dir`` (default: the user tables folder); the validation outputs
    to ``<run>/latency/`` as ``--mode validate-latency`` writes them.
    """
    if not cfg.latency.kit_dir:
        raise UserError("--mode latency-import needs --kit-dir KIT (the kit folder, with the device's results/ inside)")
    tables_dir = Path(cfg.latency.tables_dir) if cfg.latency.tables_dir else user_tables_dir()
    check_writable_folder(tables_dir, "--tables-dir", "latency tables folder")
    report = import_results(Path(cfg.latency.kit_dir), tables_dir)
    summary = dataclasses.asdict(report) | {"csv_path": str(report.csv_path)}
    summary.pop("validation")
    atomic_write_json(run_dir / "latency_import_report.json", summary)
    if report.validation is not None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
        write_validation(report.validation, run_dir / "latency" / "validations" / f"{report.device}-{stamp}",
                         report.device)  # fmt: skip
        write_validation(report.validation, run_dir / "latency", report.device)
    return report


def import_lines(report: ImportReport, run_dir: Path) -> list[str]:
    """What was imported, what is missing, the calibration and the validation."""
    lines = [f"table '{report.device}' -> {report.csv_path}: {report.measured}/{report.n_ops} ops timed on the device"]
    if report.missing:
        gap = ", ".join(f"{kind}: {n}" for kind, n in report.missing.items())
        lines.append(f"missing (predictions interpolate them; run time_ops.py again on the device, then import): {gap}")
    if report.references_retimed:
        lines.append(f"{report.references_retimed} op context(s) timed twice on the device (an op came out faster)")
    if report.failed:
        lines.append(f"{len(report.failed)} graph(s) failed on the device, e.g. {report.failed[0][0]}: "
                     f"{report.failed[0][1]}")  # fmt: skip
    if report.calibration:
        cal = report.calibration
        lines.append(f"calibration on {cal['n_models']} whole models: measured = {cal['scale']:.4f} x summed "
                     f"{cal['offset_ms']:+.4f} ms")  # fmt: skip
    else:
        lines.append(f"no calibration yet ({report.calibration_missing} calibration model(s) not timed)")
    if report.validation is not None:
        lines += validation_summary(report.validation, run_dir)
        if report.validation_missing:
            lines.append(f"{report.validation_missing} validation model(s) not timed in both passes yet")
    return lines
