"""A device's latency lookup table: loading with validation, lookup, interpolation, prediction.

A table is two files in a tables folder: ``<device>.csv`` (one row per measured op key, plus the
reference models the op timings were corrected with) and ``<device>.json`` (what it was measured
on and with, the space and input shape, and the per-device linear calibration).

Each op of a prediction is *measured* (in the table), *class-adjusted* (a head for another class
count, from the measured head on the same input: exact but for the classifier's MACs, see
:func:`latency_tables.interpolate.adjust_head_classes`) or *interpolated* (from other ops).
Strict predictions refuse only interpolated ops.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from common.errors import UserError
from common.text_files import read_user_csv, read_user_json
from latency_tables.interpolate import WorkIndex, adjust_head_classes, estimate_from_family, head_mac_cost_ms
from latency_tables.keys import OpKey, parse_op_key, spec_ops
from latency_tables.precision import PRECISIONS, table_precision
from search_spaces import ArchSpec, create_search_space

TABLE_FORMAT_VERSION = 1
TABLE_COLUMNS = ["key", "kind", "latency_ms", "model_ms", "reference_ms", "reference_key", "runs", "spread_pct"]
REFERENCE_KIND = "reference"
FINGERPRINT_VERSION = 1

MEASURED = "measured"
CLASS_ADJUSTED = "class_adjusted"
INTERPOLATED = "interpolated"


@dataclass(frozen=True)
class Calibration:
    """``measured_ms = scale * summed_ms + offset_ms``, fitted on whole models of this device."""

    scale: float = 1.0
    offset_ms: float = 0.0
    n_models: int = 0

    def apply(self, summed_ms: float) -> float:
        """Calibrated latency of a model whose op timings sum to ``summed_ms``."""
        return max(self.scale * summed_ms + self.offset_ms, 1e-4)


@dataclass(frozen=True)
class LatencyPrediction:
    """A predicted latency and how much of it rests on interpolation or class adjustment.

    Attributes:
        latency_ms: Calibrated prediction.
        summed_ms: Sum of the op timings before calibration.
        interpolated_ms: Part of ``summed_ms`` from interpolated (unmeasured) ops.
        n_ops: Ops in the model.
        missing: Keys of the interpolated ops.
        class_adjusted_ms: Part of ``summed_ms`` from heads for another class count than the
            measured one on the same input (counted as measured by strict predictions).
        class_adjusted: Keys of the class-adjusted heads.
    """

    latency_ms: float
    summed_ms: float
    interpolated_ms: float
    n_ops: int
    missing: tuple[str, ...] = ()
    class_adjusted_ms: float = 0.0
    class_adjusted: tuple[str, ...] = ()

    @property
    def interpolated_share(self) -> float:
        """Share of the summed latency that was interpolated (0: fully measured)."""
        return self.interpolated_ms / self.summed_ms if self.summed_ms > 0 else 0.0

    @property
    def class_adjusted_share(self) -> float:
        """Share of the summed latency from class-adjusted heads (0: none)."""
        return self.class_adjusted_ms / self.summed_ms if self.summed_ms > 0 else 0.0


@dataclass
class LatencyTable:
    """Measured op latencies of one device for one search space and input shape."""

    name: str
    meta: dict
    latency_ms: dict[str, float]
    path: Path | None = None
    _families: dict[str, list[tuple[tuple[int, ...], float]]] = field(default_factory=dict, repr=False)
    _kinds: dict[str, list[tuple[OpKey, float]]] = field(default_factory=dict, repr=False)
    _broad: dict[str, list[tuple[OpKey, float]]] = field(default_factory=dict, repr=False)
    _work_index: dict[tuple[str, str], WorkIndex] = field(default_factory=dict, repr=False)
    _heads: dict[tuple[tuple[int, ...], int], list[tuple[OpKey, float]]] = field(default_factory=dict, repr=False)
    _head_mac_ms: float | None = field(default=None, repr=False)

    @property
    def space(self) -> str:
        """Search space the table was collected for."""
        return self.meta["space"]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-example model input shape the table was collected for."""
        return tuple(self.meta["input_shape"])

    @property
    def n_classes(self) -> int:
        """Number of classes of the heads that were measured."""
        return int(self.meta["n_classes"])

    @property
    def precision(self) -> str:
        """The arithmetic the table times: ``fp32``, or ``int8`` (the project's static QDQ recipe)."""
        return table_precision(self.meta)

    def check_precision(self, asked: str | None) -> None:
        """Refuse a table of another precision than ``asked`` (None: any).

        Raises:
            UserError: Naming the table's precision and the command that collects one at ``asked``.
        """
        if asked is not None and asked != self.precision:
            raise UserError(
                f"latency table '{self.name}' times {self.precision} models, not {asked}: a table of one precision "
                f"never stands for the other. Collect one with --mode latency-table --precision {asked} "
                "--device-name NAME, or drop --precision"
            )

    @property
    def channel_block(self) -> int:
        """The runtime's channel block on the device (1 when the table does not record it)."""
        return int(self.meta.get("channel_block", 1))

    @property
    def calibration(self) -> Calibration:
        """The per-device linear calibration (identity if none was fitted)."""
        cal = self.meta.get("calibration") or {}
        return Calibration(cal.get("scale", 1.0), cal.get("offset_ms", 0.0), cal.get("n_models", 0))

    def fingerprint(self) -> str:
        """A stable hash of everything in the table that changes predictions.

        Covers the op latencies (the CSV's op rows, not its reference rows; their values, not
        their formatting or order), the calibration's ``scale`` and ``offset_ms`` (none = the
        identity), ``channel_block`` (none = 1), the space, the input shape and the default class
        count, and the precision when it is not fp32. Timestamps, device facts, timing settings and
        collection bookkeeping in the metadata are left out: a collection run that measures nothing
        keeps the fingerprint.

        Returns:
            The SHA-256 hex digest (64 characters).
        """
        cal = self.calibration
        payload = {
            "fingerprint_version": FINGERPRINT_VERSION,
            "space": self.space,
            "input_shape": [int(d) for d in self.input_shape],
            "n_classes": self.n_classes,
            "channel_block": self.channel_block,
            "calibration": [float(cal.scale), float(cal.offset_ms)],
            "ops": sorted((key, float(ms)) for key, ms in self.latency_ms.items()),
        }
        if self.precision != "fp32":  # fp32 tables keep the fingerprints they had before precisions existed
            payload["precision"] = self.precision
        text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
        return hashlib.sha256(text.encode()).hexdigest()

    def families(self) -> dict[str, list[tuple[tuple[int, ...], float]]]:
        """Measured ops grouped by family (built once, with the other lookup indexes)."""
        if not self._families:
            families: dict[str, list[tuple[tuple[int, ...], float]]] = defaultdict(list)
            kinds: dict[str, list[tuple[OpKey, float]]] = defaultdict(list)
            broad: dict[str, list[tuple[OpKey, float]]] = defaultdict(list)
            heads: dict[tuple[tuple[int, ...], int], list[tuple[OpKey, float]]] = defaultdict(list)
            for key, ms in self.latency_ms.items():
                op = parse_op_key(key)
                families[op.family].append((op.channel_fields, ms))
                kinds[_kind_group(op)].append((op, ms))
                broad[_broad_group(op)].append((op, ms))
                if op.kind == "head":
                    heads[(op.in_shape, op.hidden)].append((op, ms))
            self._families, self._kinds, self._broad = dict(families), dict(kinds), dict(broad)
            self._heads = dict(heads)
            self._head_mac_ms = head_mac_cost_ms([m for members in heads.values() for m in members])
        return self._families

    @property
    def head_mac_ms(self) -> float | None:
        """The table's measured cost of one head ``Gemm`` MAC (ms); None if no two heads show it.

        See :func:`latency_tables.interpolate.head_mac_cost_ms`.
        """
        self.families()
        return self._head_mac_ms

    def resolve(self, op: OpKey) -> tuple[float, str]:
        """(latency_ms, source) of one op; source is :data:`MEASURED`, :data:`CLASS_ADJUSTED` or :data:`INTERPOLATED`.

        Measured if the table has it. A head the table has only for other class counts is
        class-adjusted from the measured head on the same input with the same hidden width
        (nearest class count). Otherwise interpolated in its family; else scaled by work from the
        most similar measured op of its kind, kernel, stride and activation; else from any
        measured op of its kind (see :mod:`latency_tables.interpolate`). An interpolated head for
        a class count the table has no head for is interpolated at the nearest measured class
        count, then class-adjusted.

        Raises:
            KeyError: No measured op of the same kind at all.
        """
        if op.key in self.latency_ms:
            return self.latency_ms[op.key], MEASURED
        self.families()
        if op.kind != "head":
            return self._interpolate(op), INTERPOLATED
        same_body = self._heads.get((op.in_shape, op.hidden))
        if same_body:
            base, base_ms = min(same_body, key=lambda m: (abs(m[0].out_channels - op.out_channels), m[0].out_channels))
            return adjust_head_classes(base, base_ms, op.out_channels, self.head_mac_ms), CLASS_ADJUSTED
        counts = sorted({m[0].out_channels for members in self._heads.values() for m in members})
        nearest = min(counts, key=lambda n: (abs(n - op.out_channels), n)) if counts else op.out_channels
        if nearest == op.out_channels:
            return self._interpolate(op), INTERPOLATED
        base = dataclasses.replace(op, out_channels=nearest)
        return adjust_head_classes(base, self._interpolate(base), op.out_channels, self.head_mac_ms), INTERPOLATED

    def _interpolate(self, op: OpKey) -> float:
        members = self.families().get(op.family)
        if members:
            return estimate_from_family(op.channel_fields, members, self.channel_block, op.blocked_fields)
        group = ("kind", _kind_group(op)) if self._kinds.get(_kind_group(op)) else ("broad", _broad_group(op))
        if group not in self._work_index:
            similar = (self._kinds if group[0] == "kind" else self._broad).get(group[1])
            if not similar:
                raise KeyError(op.key)
            self._work_index[group] = WorkIndex(similar, self.channel_block)
        return self._work_index[group].estimate(op)

    def predict_ops(self, ops: Sequence[OpKey], strict: bool = False) -> LatencyPrediction:
        """Predicted latency of a model made of ``ops`` (in any order).

        Args:
            ops: The model's op keys (:func:`latency_tables.keys.spec_ops`).
            strict: Refuse to interpolate: an interpolated op raises instead (class-adjusted heads
                count as measured, see :meth:`resolve`).

        Raises:
            UserError: In strict mode an op is interpolated, or an op's kind has no measured
                op at all; the message names the keys and the command that measures them.
        """
        total = interpolated = adjusted = 0.0
        missing: list[str] = []
        class_adjusted: list[str] = []
        unknown: list[str] = []
        for op in ops:
            try:
                ms, source = self.resolve(op)
            except KeyError:
                unknown.append(op.key)
                continue
            total += ms
            if source == INTERPOLATED:
                interpolated += ms
                missing.append(op.key)
            elif source == CLASS_ADJUSTED:
                adjusted += ms
                class_adjusted.append(op.key)
        if unknown or (strict and missing):
            keys = unknown or missing
            raise UserError(
                f"latency table '{self.name}' lacks {len(keys)} op(s), e.g. {', '.join(keys[:3])}; measure them "
                f"on the device with: python complete_pipeline.py --mode latency-table --device-name {self.name} "
                f"--space {self.space}"
            )
        return LatencyPrediction(
            self.calibration.apply(total),
            total,
            interpolated,
            len(ops),
            tuple(missing),
            adjusted,
            tuple(class_adjusted),
        )

    def predict(self, spec: ArchSpec, strict: bool = False, n_classes: int | None = None) -> LatencyPrediction:
        """Predicted latency of ``spec`` on this device (its ops walked stem -> blocks -> head).

        Args:
            spec: A spec of the table's search space.
            strict: Refuse interpolated ops (see :meth:`predict_ops`).
            n_classes: Classes of the model's head (default: the table's).

        Raises:
            UserError: The spec is from another space, or see :meth:`predict_ops`.
        """
        if spec.space != self.space:
            raise UserError(
                f"latency table '{self.name}' was collected for search space '{self.space}', "
                f"not '{spec.space}': collect one with --mode latency-table --space {spec.space}"
            )
        space = create_search_space(self.space)
        ops = spec_ops(space, spec, n_classes or self.n_classes, self.input_shape)
        return self.predict_ops(ops, strict)

    def check_compatible(self, space: str, input_shape: Sequence[int]) -> None:
        """Refuse a table from another space or input shape (it would mis-predict).

        Raises:
            UserError: Naming what the table was collected for and how to collect the right one.
        """
        shape = tuple(int(d) for d in input_shape)
        if space != self.space or shape != self.input_shape:
            raise UserError(
                f"latency table '{self.name}' was collected for space '{self.space}' with input shape "
                f"{self.input_shape}; this run needs space '{space}' with input shape {shape}. Collect a table "
                f"for it on the device with --mode latency-table --device-name NAME --space {space}"
            )


def _kind_group(op: OpKey) -> str:
    return f"{op.kind}|{op.kernel}|{op.stride}|{op.act}|{op.fused_sum}|{bool(op.hidden)}|{len(op.in_shape)}"


def _broad_group(op: OpKey) -> str:
    return f"{op.kind}|{op.act}|{op.fused_sum}|{bool(op.hidden)}|{len(op.in_shape)}"


def read_table_rows(csv_path: Path) -> pd.DataFrame:
    """The rows of a table file, validated (columns, keys, positive finite timings).

    Raises:
        UserError: Not UTF-8 CSV, wrong columns, an invalid key, or a non-positive/non-finite
            timing (the message names the file, the row and the value).
    """
    frame = read_user_csv(
        csv_path, "latency table", dtype={"key": str, "kind": str, "reference_key": str}, keep_default_na=False
    )
    missing = [c for c in TABLE_COLUMNS if c not in frame.columns]
    if missing:
        raise UserError(
            f"latency table {csv_path} lacks column(s) {', '.join(missing)}; "
            f"expected columns: {', '.join(TABLE_COLUMNS)}"
        )
    for column in ("latency_ms", "model_ms"):
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame.index[~(values > 0) | ~values.map(math.isfinite)]
        if len(bad):
            row = int(bad[0])
            raise UserError(
                f"latency table {csv_path}, row {row + 2} ({frame.at[row, 'key']}): {column} must be a positive "
                f"number of milliseconds, got '{frame.at[row, column]}'"
            )
        frame[column] = values
    return frame


def load_table(csv_path: str | Path) -> LatencyTable:
    """Load and validate ``<device>.csv`` and its ``<device>.json`` metadata.

    Raises:
        UserError: Missing files, wrong columns/units/keys, non-positive timings, or metadata that
            is not UTF-8 JSON, lacks a field, holds a value of the wrong type or range (the message
            names the field), or is of another format version. A runtime version other than the
            installed one only warns.
    """
    csv_path = Path(csv_path)
    meta_path = csv_path.with_suffix(".json")
    if not csv_path.is_file() or not meta_path.is_file():
        raise UserError(f"latency table needs both {csv_path.name} and {meta_path.name} in {csv_path.parent}")
    meta = read_user_json(meta_path, "latency table metadata")
    check_table_meta(meta, meta_path)
    frame = read_table_rows(csv_path)
    ops = frame[frame["kind"] != REFERENCE_KIND]
    latency = {}
    for row in ops.itertuples(index=False):
        try:
            parse_op_key(row.key)
        except ValueError as exc:
            raise UserError(f"latency table {csv_path}: {exc}") from None
        latency[row.key] = float(row.latency_ms)
    _warn_runtime(meta, meta_path)
    return LatencyTable(csv_path.stem, meta, latency, csv_path)


def check_table_meta(meta: Any, meta_path: Path) -> None:
    """Validate a table's metadata on load, so that a bad value is named here and not met mid-search.

    Raises:
        UserError: ``meta`` is not an object, lacks a required field, or a field has the wrong type
            or range (``space``, ``input_shape``, ``n_classes``, ``units``, ``format_version``, and
            when present ``channel_block``, ``calibration.scale``/``offset_ms``/``n_models``,
            ``device``); the message names the file and the field.
    """
    if not isinstance(meta, dict):
        raise UserError(f"latency table metadata {meta_path} must hold a JSON object, got {type(meta).__name__}")
    for name in ("space", "input_shape", "n_classes", "units", "format_version"):
        if name not in meta:
            raise UserError(f"latency table metadata {meta_path} lacks '{name}'")
    if not _is_int(meta["format_version"]) or meta["format_version"] != TABLE_FORMAT_VERSION:
        raise UserError(
            f"latency table {meta_path} has format version {meta['format_version']!r}; this version reads "
            f"{TABLE_FORMAT_VERSION}: re-collect it"
        )
    if meta["units"] != "ms":
        raise UserError(f"latency table {meta_path}: units must be 'ms', got {meta['units']!r}")
    _meta_field(meta_path, "space", meta["space"], isinstance(meta["space"], str) and bool(meta["space"]),
                "a search space name")  # fmt: skip
    shape = meta["input_shape"]
    ok = isinstance(shape, list) and bool(shape) and all(_is_int(d) and d > 0 for d in shape)
    _meta_field(meta_path, "input_shape", shape, ok, "a list of positive whole numbers, e.g. [1, 40, 101]")
    _meta_field(meta_path, "n_classes", meta["n_classes"], _is_int(meta["n_classes"]) and meta["n_classes"] >= 2,
                "a whole number >= 2")  # fmt: skip
    block = meta.get("channel_block", 1)
    _meta_field(meta_path, "channel_block", block, _is_int(block) and block >= 1, "a whole number >= 1")
    precision = meta.get("precision", "fp32")
    _meta_field(meta_path, "precision", precision, precision in PRECISIONS, f"one of {', '.join(PRECISIONS)}")
    device = meta.get("device")
    _meta_field(meta_path, "device", device, device is None or isinstance(device, dict), "an object")
    _check_calibration(meta.get("calibration"), meta_path)


def _check_calibration(cal: Any, meta_path: Path) -> None:
    _meta_field(meta_path, "calibration", cal, cal is None or isinstance(cal, dict), "an object or null")
    if not cal:
        return
    scale, offset, n_models = cal.get("scale", 1.0), cal.get("offset_ms", 0.0), cal.get("n_models", 0)
    _meta_field(meta_path, "calibration.scale", scale, _is_number(scale) and scale > 0, "a finite number > 0")
    _meta_field(meta_path, "calibration.offset_ms", offset, _is_number(offset), "a finite number of milliseconds")
    _meta_field(meta_path, "calibration.n_models", n_models, _is_int(n_models) and n_models >= 0,
                "a whole number >= 0")  # fmt: skip


def _meta_field(meta_path: Path, name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        raise UserError(
            f"latency table metadata {meta_path}: '{name}' must be {expected}, got {json.dumps(value)}; fix the "
            "field or re-collect the table with --mode latency-table"
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _warn_runtime(meta: dict, meta_path: Path) -> None:
    import onnxruntime as ort

    measured = (meta.get("device") or {}).get("onnxruntime")
    if measured and measured != ort.__version__:
        warnings.warn(
            f"latency table {meta_path.name} was measured with onnxruntime {measured}; {ort.__version__} is "
            "installed here (fine for prediction; re-measure the device if its runtime changed)",
            stacklevel=3,
        )
