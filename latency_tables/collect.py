"""Collecting a device's latency table: every op the search space can emit, timed in context.

Run once on the target device (it needs only torch, onnx and onnxruntime there). Ops are timed
in a seeded random order, so slow drift of the machine spreads over all op kinds instead of
biasing one, and each finished op is appended to ``<device>.csv`` at once (written through to
the operating system, so a killed process loses none; fsynced every 2 s, so a power cut loses at
most the last 2 s, which the next run measures again): an interrupted collection resumes where
it stopped and never re-measures an op. An op's context (the reference) that some op measured
faster than is timed once more; a lower time replaces it and the op rows behind it are appended
again, corrected (the last row per key wins). A resume on another CPU or runtime version, with another
channel block or other timing settings is refused. The collection stops at the time budget and
reports what it left out (prediction interpolates those ops and says so). At the end a few whole
models are measured end to end to fit the per-device linear calibration, again whenever the
number of measured ops differs from the one the calibration was fitted on (which also repairs a
run killed during calibration).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import os
import random
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from common.atomic import atomic_write_json, cut_torn_tail
from common.errors import UserError
from common.progress import progress as progress_bar
from common.text_files import read_user_json
from latency_tables.calibration import (
    calibration_cost_s,
    calibration_record,
    fit_calibration,
    measure_points,
    spread_by_latency,
)
from latency_tables.config import LatencyConfig
from latency_tables.device_info import device_metadata
from latency_tables.interpolate import FLOOR_MS
from latency_tables.keys import OpKey, parse_op_key, space_ops
from latency_tables.layout import channel_block_size
from latency_tables.op_models import prepare, reference_key
from latency_tables.ort_timing import Timing, TimingConfig, time_model
from latency_tables.precision import table_precision
from latency_tables.table import (
    REFERENCE_KIND,
    TABLE_COLUMNS,
    TABLE_FORMAT_VERSION,
    check_table_meta,
    load_table,
    read_table_rows,
)
from search_spaces import create_search_space

METHOD = (
    "op in network context: behind a depthwise-1x1 producer (SE: between producer and consumer), ORT-optimised "
    "(ORT_ENABLE_ALL), boundary layout reorders stripped, minus the same context without the op; latency = min "
    "over fresh sessions of the per-session median; batch 1, CPU provider, sequential execution"
)
METHOD_INT8 = (
    "INT8: the op graphs statically quantized with the project's recipe (QDQ, per-channel QInt8 weights, QUInt8 "
    "activations) before ORT optimisation; the quantize/transpose at an op's input and transpose/dequantize at its "
    "output stripped like layout reorders, except the stem's input and the head's output. "
)
_LATENCY, _MODEL, _REF_MS, _REF_KEY = (
    TABLE_COLUMNS.index(c) for c in ("latency_ms", "model_ms", "reference_ms", "reference_key")
)
FSYNC_EVERY_S = 2.0  # rows reach the OS at once; the disk at least this often
# metadata that must match for a resume: what the rows were measured on and with (dotted: nested keys)
RESUME_FIELDS = (
    "precision",
    "space",
    "input_shape",
    "n_classes",
    "threads",
    "channel_block",
    "device.cpu_model",
    "device.onnxruntime",
    "timing.sessions",
    "timing.target_ms",
    "timing.min_runs",
    "timing.runs",
    "timing.threads",
)


@dataclass
class CollectionReport:
    """What one collection run did."""

    device: str
    csv_path: Path
    n_ops: int  # ops the space can emit for this input shape
    measured_before: int  # ops already in the table when the run started
    measured_now: int  # ops measured by this run
    left_out: dict[str, int] = field(default_factory=dict)  # unmeasured ops by kind
    failed: list[tuple[str, str]] = field(default_factory=list)  # (op key, reason)
    at_floor: int = 0  # ops whose corrected time was <= 0 and was floored
    references_rechecked: list[str] = field(default_factory=list)  # contexts timed again (an op came out below)
    rows_corrected: int = 0  # op rows re-appended with a lower reference time
    wall_s: float = 0.0
    calibration: dict | None = None

    @property
    def coverage(self) -> float:
        """Share of the space's ops that are measured."""
        return (self.measured_before + self.measured_now) / max(self.n_ops, 1)


def check_continuable(cfg: LatencyConfig, device: str, input_shape: tuple[int, ...], tables_dir: Path) -> None:
    """Refuse, before anything is measured or written, a table in ``tables_dir`` a collection could not continue.

    Raises:
        UserError: The existing table's metadata or rows do not load, or it was collected with
            other settings (see :func:`collect_table`).
    """
    csv_path, meta_path = tables_dir / f"{device}.csv", tables_dir / f"{device}.json"
    old_meta = _existing_meta(csv_path, meta_path)
    if old_meta:
        _check_resumable(old_meta, _metadata(cfg, device, input_shape, old_meta), meta_path)
    if csv_path.is_file():
        read_table_rows(csv_path)


def _existing_meta(csv_path: Path, meta_path: Path) -> dict | None:
    """The metadata of the table a collection continues, validated (None: no table yet).

    Raises:
        UserError: The metadata is not UTF-8 JSON or a field is invalid (see :func:`check_table_meta`).
    """
    if not (meta_path.is_file() and csv_path.is_file()):
        return None
    meta = read_user_json(meta_path, "latency table metadata")
    check_table_meta(meta, meta_path)
    return meta


def _existing(csv_path: Path) -> tuple[dict[str, list], dict[str, float], set[str]]:
    """What a table file holds so far.

    Returns:
        Op rows (last row per key wins, as when the table is read), reference timings (the lowest
        per key) and re-timed references (those with a second row).
    """
    if not csv_path.is_file():
        return {}, {}, set()
    torn = cut_torn_tail(csv_path)
    if torn:
        print(f"{csv_path.name}: dropped a torn last line ({len(torn)} bytes) left by an interrupted write")
    frame = read_table_rows(csv_path)
    refs = frame[frame["kind"] == REFERENCE_KIND]
    ops = frame[frame["kind"] != REFERENCE_KIND]
    rows = {row[0]: list(row) for row in ops[TABLE_COLUMNS].itertuples(index=False, name=None)}
    lowest = refs.groupby("key")["model_ms"].min().astype(float)
    retimed = {str(k) for k, n in refs["key"].value_counts().items() if n > 1}
    return rows, {str(k): float(v) for k, v in lowest.items()}, retimed


def _suspect_references(rows: dict[str, list], refs: dict[str, float]) -> list[str]:
    """References some op measured faster than: a whole model cannot beat its own context alone.

    One slow measurement of a reference (another process on the machine, a frequency dip)
    otherwise skews every op timed against it.
    """
    return sorted({row[_REF_KEY] for row in rows.values() if float(row[_MODEL]) < refs.get(row[_REF_KEY], 0.0)})


def _metadata(cfg: LatencyConfig, device: str, input_shape: tuple[int, ...], old: dict | None) -> dict:
    """This run's metadata.

    ``old`` is the metadata of the table this run resumes (None: a new table); its creation date,
    calibration and collection bookkeeping carry over.
    """
    precision = cfg.collect_precision
    meta = {
        "format_version": TABLE_FORMAT_VERSION,
        "device_name": device,
        "precision": precision,
        "space": cfg.space,
        "input_shape": list(input_shape),
        "n_classes": cfg.n_classes,
        "units": "ms",
        "threads": cfg.timing.threads,
        "channel_block": table_channel_block(precision, channel_block_size()),
        "timing": dataclasses.asdict(cfg.timing),
        "method": table_method(precision),
        "device": device_metadata(),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    if old:
        meta["created"] = old.get("created", meta["created"])
        meta["calibration"] = old.get("calibration")
        meta["collection"] = old.get("collection", {})
    return meta


def _field(meta: dict, name: str) -> Any:
    if name == "precision":
        return table_precision(meta)
    value: Any = meta
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _check_resumable(old: dict, new: dict, meta_path: Path) -> None:
    """Refuse to add rows measured on another machine or runtime, or with another statistic.

    Raises:
        UserError: Naming each differing field (:data:`RESUME_FIELDS`) with the table's and this run's value.
    """
    changed = [f for f in RESUME_FIELDS if _field(old, f) != _field(new, f)]
    if changed:
        detail = ", ".join(f"{f}: table {_field(old, f)} vs now {_field(new, f)}" for f in changed)
        raise UserError(
            f"the existing table {meta_path} was collected with other settings ({detail}); "
            "use another --device-name or delete the table files to start over"
        )


def _fitted_on_ops(meta: dict | None) -> int | None:
    """Measured ops the table's calibration was fitted on (None: no calibration).

    Tables written before calibrations recorded it: the op count of their last finished run.
    """
    cal = (meta or {}).get("calibration")
    if not cal:
        return None
    if "fitted_on_ops" in cal:
        return int(cal["fitted_on_ops"])
    measured = ((meta or {}).get("collection") or {}).get("measured")
    return int(measured) if measured is not None else None


def _spread_pct(timing: Timing) -> float:
    return round(100 * (max(timing.session_medians_ms) / min(timing.session_medians_ms) - 1), 2)


def _row(key: str, kind: str, timing: Timing, ref_key: str | None, ref_ms: float) -> tuple[list, bool]:
    """A table row of an op timed here (see :func:`op_row`)."""
    return op_row(key, kind, timing.latency_ms, ref_key, ref_ms, len(timing.session_medians_ms), _spread_pct(timing))


def op_row(key: str, kind: str, model_ms: float, ref_key: str | None, ref_ms: float, runs: int,
           spread_pct: float) -> tuple[list, bool]:  # fmt: skip
    """A table row: the op's latency is the model's minus its context's (floored at FLOOR_MS).

    Returns:
        The row (:data:`TABLE_COLUMNS`) and whether the latency was floored.
    """
    latency = model_ms - ref_ms
    row = [key, kind, round(max(latency, FLOOR_MS), 6), round(model_ms, 6), round(ref_ms, 6), ref_key or "", runs,
           spread_pct]  # fmt: skip
    return row, latency <= FLOOR_MS


def table_method(precision: str) -> str:
    """The ``method`` a table's metadata records for ``precision``."""
    return METHOD if precision == "fp32" else METHOD_INT8 + METHOD


def table_channel_block(precision: str, measured_block: int) -> int:
    """The channel block a table records: the runtime's at fp32; 1 at INT8 (NHWC, unpadded)."""
    return measured_block if precision == "fp32" else 1


def _corrected(row: list, ref_ms: float) -> tuple[list, bool]:
    """``row`` with a new reference time (same model timing, runs and spread)."""
    latency = float(row[_MODEL]) - ref_ms
    fixed = list(row)
    fixed[_LATENCY], fixed[_REF_MS] = round(max(latency, FLOOR_MS), 6), round(ref_ms, 6)
    return fixed, latency <= FLOOR_MS


def collect_table(
    cfg: LatencyConfig,
    device: str,
    input_shape: tuple[int, ...],
    tables_dir: Path,
    progress: bool = True,
    ops: list[OpKey] | None = None,
) -> CollectionReport:
    """Measure every op of ``cfg.space`` on this machine into ``<tables_dir>/<device>.csv``.

    Args:
        cfg: Space, classes, timing, time budget, calibration size and seed.
        device: Name of the device (the table's file stem).
        input_shape: Per-example model input shape, e.g. (1, 40, 101).
        tables_dir: Folder of the table files.
        progress: Show a progress bar with ETA.
        ops: Measure only these ops instead of every op of the space (for tests and top-ups).

    Returns:
        What was measured, left out or failed, and the fitted calibration.
    """
    start = time.monotonic()
    deadline = start + cfg.max_minutes * 60
    csv_path, meta_path = tables_dir / f"{device}.csv", tables_dir / f"{device}.json"
    old_meta = _existing_meta(csv_path, meta_path)
    meta = _metadata(cfg, device, input_shape, old_meta)
    if old_meta:
        _check_resumable(old_meta, meta, meta_path)
    rows, refs, retimed = _existing(csv_path)  # a table that does not load is refused before it is touched
    atomic_write_json(meta_path, meta)

    if ops is None:
        ops = list(space_ops(create_search_space(cfg.space), cfg.n_classes, input_shape))
    ops = sorted(set(ops), key=lambda o: o.key)
    todo = [op for op in ops if op.key not in rows]
    random.Random(cfg.seed).shuffle(todo)
    report = CollectionReport(device, csv_path, len(ops), len(ops) - len(todo), 0)
    reserve = _calibration_reserve_s(cfg, input_shape, old_meta, bool(todo))
    _measure_ops(cfg.timing, todo, rows, refs, retimed, csv_path, deadline - reserve, report, progress,
                 meta["precision"])  # fmt: skip
    report.left_out = _count_kinds(todo[report.measured_now + len(report.failed) :])

    n_measured = len(rows)  # op rows in the table now
    # Not refitted for corrected rows: they change a few sums by microseconds, while a refit on a
    # drifting machine (several % over minutes on a shared VM) would move every prediction.
    if cfg.calibration_models and (_fitted_on_ops(old_meta) != n_measured or _calibration_short(cfg, old_meta)):
        report.calibration = _calibrate(cfg, csv_path, meta, deadline)
    else:
        report.calibration = meta.get("calibration")
    report.wall_s = time.monotonic() - start
    meta["collection"] = {
        "n_ops": report.n_ops,
        "measured": report.measured_before + report.measured_now,
        "left_out": report.left_out,
        "failed": report.failed[:50],
        "last_run_wall_s": round(report.wall_s, 1),
        "total_wall_s": round((meta.get("collection") or {}).get("total_wall_s", 0.0) + report.wall_s, 1),
        "updated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    atomic_write_json(meta_path, meta)
    return report


def _measure_ops(
    timing: TimingConfig,
    todo: list[OpKey],
    rows: dict[str, list],
    refs: dict[str, float],
    rechecked: set[str],
    csv_path: Path,
    deadline: float,
    report: CollectionReport,
    progress: bool,
    precision: str = "fp32",
) -> None:
    """Time ``todo`` into the table; ``rows``, ``refs`` and ``rechecked`` are updated with what is written.

    A reference some op beat is timed once more (:func:`_suspect_references`), at most once over
    all runs of the table (``rechecked``; a re-timed reference has a second row in the file, so
    this survives a killed run). When the new time is lower it replaces the old one, and
    at the end every op row timed against an outdated reference time is appended again with the
    corrected latency (a table's last row per key wins), so the file stays append-only.
    """
    users = {row[_REF_KEY]: key for key, row in rows.items() if row[_REF_KEY]}  # an op per reference (its graph)
    bar = progress_bar(total=len(todo), desc="latency table", unit="op", disable=not progress)
    with _RowJournal(csv_path, TABLE_COLUMNS) as journal:

        def recheck(ref_key: str, reference: bytes) -> None:
            """Time a reference again; its second row (the lower time) also marks it as re-timed."""
            again = time_model(reference, timing, "disable")
            refs[ref_key] = min(refs[ref_key], again.latency_ms)
            journal.append(_reference_row(ref_key, again, refs[ref_key]))
            rechecked.add(ref_key)
            report.references_rechecked.append(ref_key)

        for ref_key in _suspect_references(rows, refs):
            if ref_key not in rechecked and time.monotonic() < deadline:
                try:
                    recheck(ref_key, prepare(parse_op_key(users[ref_key]), precision=precision).reference)
                except Exception as exc:  # recorded like a failed op (tried again next run), never fatal
                    rechecked.add(ref_key)
                    report.failed.append((ref_key, f"re-timing: {type(exc).__name__}: {exc}"[:300]))
        for op in todo:
            if time.monotonic() >= deadline:
                break
            try:
                graphs = prepare(op, with_reference=reference_key(op) not in refs, precision=precision)
                ref_key = graphs.reference_key
                if ref_key and ref_key not in refs:
                    ref = time_model(graphs.reference, timing, "disable")
                    refs[ref_key] = ref.latency_ms
                    journal.append(_reference_row(ref_key, ref, ref.latency_ms))
                result = time_model(graphs.model, timing, "disable")
                if ref_key and result.latency_ms < refs[ref_key] and ref_key not in rechecked:
                    recheck(ref_key, graphs.reference or prepare(op, precision=precision).reference)
            except Exception as exc:  # an op that fails to export or run: record it, keep going
                reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else traceback.format_exc(0)}"
                report.failed.append((op.key, reason[:300]))
                bar.update(1)
                continue
            row, floored = _row(op.key, op.kind, result, ref_key, refs.get(ref_key, 0.0) if ref_key else 0.0)
            journal.append(row)
            rows[op.key] = row
            report.measured_now += 1
            report.at_floor += floored
            bar.update(1)
        for key, row in list(rows.items()):
            ref_key = row[_REF_KEY]
            if ref_key in refs and round(refs[ref_key], 6) < float(row[_REF_MS]):
                rows[key], _ = _corrected(row, refs[ref_key])
                journal.append(rows[key])
                report.rows_corrected += 1
    bar.close()


def _reference_row(ref_key: str, timing: Timing, kept_ms: float) -> list:
    """A reference's row: the time kept (the lowest so far), with the runs and spread of ``timing``."""
    ms = round(kept_ms, 6)
    return [ref_key, REFERENCE_KIND, ms, ms, 0.0, "", len(timing.session_medians_ms), _spread_pct(timing)]


class _RowJournal:
    """The table's CSV, open for appending one row at a time.

    Each row is written through to the operating system as it comes (one ``write`` per row, so a
    killed process leaves whole rows and at most a torn last line), and fsynced at most
    :data:`FSYNC_EVERY_S` apart and on close. An fsync per row would cost about 4 ms on the CI
    machine, some 10 % of an average op's measurement.
    """

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        is_new = not path.exists() or path.stat().st_size == 0
        self._file = open(path, "a", encoding="utf-8", newline="")  # noqa: SIM115 (closed in __exit__)
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._synced = time.monotonic()
        if is_new:
            self.append(list(header))

    def append(self, row: Sequence[object]) -> None:
        """Write one row through to the OS; fsync if the last fsync is :data:`FSYNC_EVERY_S` old."""
        self._writer.writerow(row)
        self._file.flush()
        if time.monotonic() - self._synced >= FSYNC_EVERY_S:
            os.fsync(self._file.fileno())
            self._synced = time.monotonic()

    def __enter__(self) -> _RowJournal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()


def _count_kinds(ops: list[OpKey]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in ops:
        counts[op.kind] = counts.get(op.kind, 0) + 1
    return dict(sorted(counts.items()))


def _calibration_reserve_s(cfg: LatencyConfig, input_shape: tuple[int, ...], old_meta: dict | None,
                           ops_left: bool) -> float:  # fmt: skip
    """Seconds kept for the calibration at the end of the budget: measured here, at most half the budget.

    A table that already holds a calibration's per-model times reuses them; otherwise one model is
    measured now (:func:`latency_tables.calibration.calibration_cost_s`).
    """
    if not cfg.calibration_models or not ops_left:
        return 0.0
    budget_s = cfg.max_minutes * 60
    previous = ((old_meta or {}).get("calibration") or {}).get("seconds_per_model")
    if previous:
        cost = 1.5 * cfg.calibration_models * float(previous)
    else:
        cost = calibration_cost_s(cfg.space, cfg.calibration_models, cfg.n_classes, input_shape, cfg.timing, cfg.seed,
                                  cfg.collect_precision)  # fmt: skip
    return min(cost, 0.5 * budget_s)


def _calibration_short(cfg: LatencyConfig, meta: dict | None) -> bool:
    """Whether the recorded calibration was cut short by a time budget (fewer models than asked)."""
    cal = (meta or {}).get("calibration") or {}
    return bool(cal) and int(cal.get("n_models_asked", cal.get("n_models", 0))) > int(cal.get("n_models", 0))


def _calibrate(cfg: LatencyConfig, csv_path: Path, meta: dict, deadline: float | None = None) -> dict:
    table = load_table(csv_path)
    specs = spread_by_latency(table, cfg.calibration_models, cfg.seed)
    start = time.monotonic()
    points = measure_points(table, specs, cfg.timing, deadline=deadline)
    seconds_per_model = (time.monotonic() - start) / max(1, len(points))
    cal = fit_calibration(points)
    old = meta.get("calibration") or {}
    if cal.n_models < 2 and int(old.get("n_models", 0)) >= 2:  # cut short before a fit: keep the last good one
        meta["calibration"] = old | {"n_models_asked": len(specs), "seconds_per_model": round(seconds_per_model, 2)}
        return meta["calibration"]
    meta["calibration"] = calibration_record(cal, points, len(table.latency_ms), len(specs), seconds_per_model)
    return meta["calibration"]
