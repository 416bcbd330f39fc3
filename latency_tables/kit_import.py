"""Building a device's latency table from a kit's results (``--mode latency-import``).

The device ran ``time_ops.py`` in the kit (:mod:`latency_tables.kit_script`) and wrote
``results/timings.csv`` and ``results/device.json``. This makes ``<device>.csv`` and ``.json`` as
:func:`latency_tables.collect.collect_table` would have: the same rows (an op's latency is its
model's time minus its reference's lowest time, floored at ``FLOOR_MS``; the reference rows as
timed), the same metadata (precision, channel block and device facts as the device recorded them,
the ``collection`` bookkeeping) and the calibration fitted on the device's whole-model timings
against the imported table's summed predictions. When the validation models were timed in both
passes, the comparison is reported as ``--mode validate-latency`` reports it.

Results that do not belong to the kit (another kit id or format, space or input shape), and
timings that are zero, negative or not numbers, are refused with one line. Missing rows are not:
what is there is imported, the gap reported per op kind (prediction interpolates those ops).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.atomic import atomic_write_json, atomic_write_text
from common.errors import UserError
from common.text_files import read_user_json
from latency_tables.calibration import CalibrationPoint, calibration_record, fit_calibration
from latency_tables.collect import op_row, table_channel_block, table_method
from latency_tables.interpolate import FLOOR_MS
from latency_tables.kit import read_manifest
from latency_tables.kit_script import COLUMNS, KIT_FORMAT_VERSION
from latency_tables.table import REFERENCE_KIND, TABLE_COLUMNS, TABLE_FORMAT_VERSION, LatencyTable, load_table
from latency_tables.validate import ValidationReport, compare_passes
from search_spaces import create_search_space

KINDS = ("op", "reference", "calibration", "validation")


@dataclass
class ImportReport:
    """What an import built from a kit's results."""

    device: str
    csv_path: Path
    n_ops: int  # ops the kit holds
    measured: int  # ops with a timing
    missing: dict[str, int] = field(default_factory=dict)  # ops without a timing, by kind
    at_floor: int = 0  # ops whose corrected time was <= 0 and was floored
    references_retimed: int = 0  # references the device timed twice (an op beat them)
    calibration: dict | None = None
    calibration_missing: int = 0  # calibration models without a timing
    validation: ValidationReport | None = None
    validation_missing: int = 0  # validation models without both passes
    failed: list = field(default_factory=list)  # (key, reason) the device recorded


def results_dir(kit_dir: Path) -> tuple[Path, Path]:
    """(kit folder, results folder) from a kit folder or its ``results/`` folder."""
    if (kit_dir / "manifest.json").is_file():
        return kit_dir, kit_dir / "results"
    if (kit_dir.parent / "manifest.json").is_file():
        return kit_dir.parent, kit_dir
    raise UserError(f"{kit_dir} is not a latency kit folder (expected manifest.json from --mode latency-kit)")


def import_results(kit_dir: Path, tables_dir: Path) -> ImportReport:
    """Build ``<tables_dir>/<device>.csv`` and ``.json`` from the kit's device results.

    Args:
        kit_dir: The kit folder (holding ``manifest.json`` and the device's ``results/``), or its
            ``results/`` folder.
        tables_dir: Where the table goes.

    Returns:
        What was imported, what is missing, the calibration and the validation (if measured).

    Raises:
        UserError: No results, results of another kit (id or format), space or input shape,
            timings that are not positive numbers, or a table of that name from elsewhere in
            ``tables_dir``.
    """
    kit_dir, results = results_dir(kit_dir)
    manifest = read_manifest(kit_dir)
    device_facts = _device_json(results, manifest)
    rows = _read_rows(results / "timings.csv", manifest)
    device = manifest["device_name"]
    tables_dir.mkdir(parents=True, exist_ok=True)
    csv_path, meta_path = tables_dir / f"{device}.csv", tables_dir / f"{device}.json"
    _check_target(meta_path, manifest)

    entries = {(e["kind"], e["key"]): e for e in manifest["graphs"]}
    ops = [e for e in manifest["graphs"] if e["kind"] == "op"]
    refs: dict[str, float] = {}
    ref_lines, op_rows, retimed = [], {}, 0
    for r in rows:  # reference rows as collect writes them: the lowest time so far
        if r["kind"] == REFERENCE_KIND:
            retimed += r["key"] in refs
            refs[r["key"]] = min(refs.get(r["key"], math.inf), r["model_ms"])
            ms = round(refs[r["key"]], 6)
            ref_lines.append([r["key"], REFERENCE_KIND, ms, ms, 0.0, "", r["runs"], r["spread_pct"]])
    report = ImportReport(
        device, csv_path, len(ops), 0, references_retimed=retimed, failed=device_facts.get("failed", [])
    )
    for r in rows:
        if r["kind"] != "op":
            continue
        entry = entries[("op", r["key"])]
        ref_key = entry["reference"] or ""
        if ref_key and ref_key not in refs:
            continue  # its reference row was lost (cannot happen with time_ops.py): the op counts as missing
        ref_ms = refs.get(ref_key, 0.0) if ref_key else 0.0
        op_rows[r["key"]], _ = op_row(r["key"], entry["op_kind"], r["model_ms"], ref_key, ref_ms, r["runs"],
                                      r["spread_pct"])  # fmt: skip
    report.measured = len(op_rows)
    report.at_floor = sum(row[2] <= FLOOR_MS for row in op_rows.values())
    for e in ops:
        if e["key"] not in op_rows:
            report.missing[e["op_kind"]] = report.missing.get(e["op_kind"], 0) + 1
    report.missing = dict(sorted(report.missing.items()))
    lines = [",".join(TABLE_COLUMNS)] + [",".join(map(str, r)) for r in [*ref_lines, *op_rows.values()]]
    atomic_write_text(csv_path, "\n".join(lines) + "\n")
    meta = _metadata(manifest, device_facts, report, rows)
    atomic_write_json(meta_path, meta)
    if op_rows:
        meta["calibration"], report.calibration_missing = _calibration(_load(csv_path), manifest, rows)
        report.calibration = meta["calibration"]
        atomic_write_json(meta_path, meta)
        report.validation, report.validation_missing = _validation(_load(csv_path), manifest, rows)
    return report


def _load(csv_path: Path) -> LatencyTable:
    """The table just written; the device's runtime differing from this machine's is expected, not warned about."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"latency table .* was measured with onnxruntime")
        return load_table(csv_path)


def _device_json(results: Path, manifest: dict) -> dict:
    """The device's ``device.json``, checked against the kit's manifest.

    Raises:
        UserError: No results, or results of another kit, format, space, input shape or precision.
    """
    path = results / "device.json"
    if not path.is_file() or not (results / "timings.csv").is_file():
        raise UserError(f"{results} holds no device results (expected device.json and timings.csv written by "
                        "time_ops.py on the device; copy its results/ folder into the kit folder)")  # fmt: skip
    facts = read_user_json(path, "kit results")
    if not isinstance(facts, dict):
        raise UserError(f"{path} must hold a JSON object written by time_ops.py")
    if facts.get("format_version") != KIT_FORMAT_VERSION or manifest.get("format_version") != KIT_FORMAT_VERSION:
        raise UserError(f"{path}: kit format {facts.get('format_version')} (kit {manifest.get('format_version')}); "
                        f"this version imports {KIT_FORMAT_VERSION}: write a new kit and time it again")  # fmt: skip
    if facts.get("kit_id") != manifest.get("kit_id"):
        raise UserError(f"{path} holds results of another kit (kit id {facts.get('kit_id')}, expected "
                        f"{manifest.get('kit_id')} from {results.parent / 'manifest.json'}); import them with the "
                        "kit they were timed from")  # fmt: skip
    for name in ("space", "input_shape", "precision", "device_name"):
        if facts.get(name) != manifest.get(name):
            raise UserError(f"{path} was timed for {name} {facts.get(name)!r}, but the kit is for "
                            f"{manifest.get(name)!r}; import them with the kit they were timed from")  # fmt: skip
    for name in ("device", "channel_block", "threads", "timing"):
        if name not in facts:
            raise UserError(f"{path} lacks '{name}' (expected the device.json time_ops.py writes)")
    return facts


def _read_rows(path: Path, manifest: dict) -> list[dict]:
    """The device's timing rows (a torn last line skipped), each checked.

    Raises:
        UserError: Wrong columns, rows of graphs the kit does not hold, or timings that are not
            positive numbers (how many, and the first).
    """
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]  # a write cut short by a kill; time_ops.py times it again
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text (expected the CSV time_ops.py writes)") from None
    reader = csv.DictReader(text.splitlines())
    if reader.fieldnames != COLUMNS:
        raise UserError(f"{path} has columns {reader.fieldnames}; expected {COLUMNS} (written by time_ops.py)")
    keys = {(e["kind"], e["key"]) for e in manifest["graphs"]}
    rows, bad, unknown = [], [], []
    for line, r in enumerate(reader, start=2):
        if r["kind"] not in KINDS or (r["kind"], r["key"]) not in keys:
            unknown.append(f"line {line} ({r['kind']} {r['key']})")
            continue
        try:
            ms = float(r["model_ms"])
        except (TypeError, ValueError):
            ms = math.nan
        if not (math.isfinite(ms) and ms > 0):
            bad.append(f"line {line} ({r['key']}: {r['model_ms']!r})")
            continue
        rows.append(r | {"model_ms": ms, "runs": int(float(r["runs"] or 0)), "spread_pct": float(r["spread_pct"] or 0),
                         "wall_s": float(r["wall_s"] or 0)})  # fmt: skip
    if unknown:
        raise UserError(f"{path}: {len(unknown)} row(s) for graphs this kit does not hold, first {unknown[0]}; "
                        "expected the results of this kit's time_ops.py")  # fmt: skip
    if bad:
        raise UserError(f"{path}: {len(bad)} row(s) with a zero, negative or non-numeric model_ms, first {bad[0]}; "
                        "expected positive milliseconds: delete those lines and run time_ops.py again on the device "
                        "(it times them anew)")  # fmt: skip
    return rows


def _check_target(meta_path: Path, manifest: dict) -> None:
    """Refuse to overwrite a table of the same name that was not imported from this kit."""
    if not meta_path.is_file():
        return
    try:
        old = read_user_json(meta_path, "latency table metadata")
    except UserError:
        old = None
    if not isinstance(old, dict) or (old.get("kit") or {}).get("kit_id") != manifest["kit_id"]:
        raise UserError(f"{meta_path} is another table named '{manifest['device_name']}' (not imported from this "
                        "kit); import into another --tables-dir or delete that table")  # fmt: skip


def _metadata(manifest: dict, facts: dict, report: ImportReport, rows: list[dict]) -> dict:
    """The table's metadata, field for field as :func:`latency_tables.collect.collect_table` writes it."""
    precision = manifest["precision"]
    wall_s = sum(float(run.get("wall_s", 0.0)) for run in facts.get("runs", []))
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return {
        "format_version": TABLE_FORMAT_VERSION,
        "device_name": manifest["device_name"],
        "precision": precision,
        "space": manifest["space"],
        "input_shape": list(manifest["input_shape"]),
        "n_classes": manifest["n_classes"],
        "units": "ms",
        "threads": facts["threads"],
        "channel_block": table_channel_block(precision, int(facts["channel_block"])),
        "timing": facts["timing"],
        "method": table_method(precision) + "; timed on the device by a kit",
        "device": facts["device"],
        "created": facts.get("started", now),
        "calibration": None,
        "collection": {
            "n_ops": report.n_ops,
            "measured": report.measured,
            "left_out": report.missing,
            "failed": report.failed[:50],
            "last_run_wall_s": round(float((facts.get("runs") or [{}])[-1].get("wall_s", 0.0)), 1),
            "total_wall_s": round(wall_s, 1),
            "updated": now,
        },
        "kit": {
            "kit_id": manifest["kit_id"],
            "format_version": manifest["format_version"],
            "tool": manifest.get("tool"),
            "timings_rows": len(rows),
            "imported": now,
        },
    }


def _calibration(table: LatencyTable, manifest: dict, rows: list[dict]) -> tuple[dict | None, int]:
    """The calibration fitted on the device's whole-model timings (None: fewer than two), and models missing."""
    asked = [e["key"] for e in manifest["graphs"] if e["kind"] == "calibration"]
    measured = {r["key"]: r for r in rows if r["kind"] == "calibration"}
    space = create_search_space(table.space)
    points = []
    for key in asked:
        if key in measured:
            try:
                points.append(
                    CalibrationPoint(key, table.predict(space.parse(key)).summed_ms, measured[key]["model_ms"])
                )
            except UserError:  # a partial table cannot predict every spec: calibrate on those it can
                continue
    missing = len(asked) - len([k for k in asked if k in measured])
    cal = fit_calibration(points)
    if cal.n_models < 2:
        return None, missing
    seconds = float(np.mean([measured[p.spec]["wall_s"] for p in points]))
    return calibration_record(cal, points, len(table.latency_ms), len(asked), seconds), missing


def _validation(table: LatencyTable, manifest: dict, rows: list[dict]) -> tuple[ValidationReport | None, int]:
    """Prediction against the device's two validation passes (None: fewer than two specs in both)."""
    asked = [e["key"] for e in manifest["graphs"] if e["kind"] == "validation"]
    passes: dict[str, dict[str, dict]] = {"A": {}, "B": {}}
    for r in rows:
        if r["kind"] == "validation" and r["pass"] in passes:
            passes[r["pass"]][r["key"]] = r
    both = [k for k in asked if k in passes["A"] and k in passes["B"]]
    if len(both) < 2:
        return None, len(asked) - len(both)
    space = create_search_space(table.space)
    specs = [space.parse(k) for k in both]
    start = time.perf_counter()
    try:
        predictions = [table.predict(s) for s in specs]
    except UserError:  # a table too partial to predict: no validation yet
        return None, len(asked) - len(both)
    predict_ms = 1e3 * (time.perf_counter() - start) / len(specs)
    a = np.array([passes["A"][k]["model_ms"] for k in both])
    b = np.array([passes["B"][k]["model_ms"] for k in both])
    measure_ms = 1e3 * float(np.mean([passes[p][k]["wall_s"] for p in "AB" for k in both]))
    return compare_passes(table, specs, a, b, predict_ms, measure_ms, predictions), len(asked) - len(both)
