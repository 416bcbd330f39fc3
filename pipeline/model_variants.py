"""One trained model to its deployment variants, each re-measured on the artifact.

Variants: fp32 ONNX, dynamic, static and accuracy-aware INT8 (and QAT); each is measured for
accuracy in ONNX Runtime over the whole test split, file size and latency.

Every variant's measurement is written to ``quantization/<name>.<variant>.json`` with the settings
that produced it; a later run with the same settings reuses it (a killed run redoes only the
variant in flight). ONNX files and their model cards are in ``onnx/<name>.<variant>.{onnx,json}``.

A variant other than fp32 that cannot be made or run (an export the runtime refuses, a parity
check it fails) is recorded as failed, with the reason, in its result file instead of stopping
the stage: the other variants and models go on, and a later run with the same settings does not
try it again (a new ONNX Runtime or other settings does).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from common.atomic import atomic_write_json
from common.errors import UserError
from common.onnx_export import OnnxExportError
from latency_tables.device_info import cpu_flags, cpu_model
from latency_tables.ort_timing import TimingConfig, time_model
from latency_tables.table import LatencyTable
from pipeline.final_training import build_for
from pipeline.quantize_config import QuantizeConfig
from quantize.accuracy_aware import accuracy_aware_static
from quantize.compact import compact_file
from quantize.export import OnnxParityError, export_model
from quantize.int8 import quantize_dynamic_int8, quantize_static_int8
from quantize.model_card import make_card, write_card
from quantize.ort_eval import ORT_ERRORS, evaluate_onnx
from train.checkpoint import load_model_weights
from train.feature_set import Features
from train.train_config import TrainConfig

RESULT_VERSION = 3  # 2: files compacted; 3: a key per variant

#: What making or measuring a variant may raise that fails that variant alone (not the stage).
VARIANT_ERRORS: tuple[type[Exception], ...] = (UserError, OnnxExportError, OnnxParityError, RuntimeError, *ORT_ERRORS)


@dataclass(frozen=True)
class ShipModel:
    """A fully trained model to export: its run's name, kind, spec, checkpoint and training seed."""

    name: str
    kind: str  # baseline | nas | distilled
    spec: str
    checkpoint: Path
    seed: int
    teacher: str | None = None


@dataclass
class _Inputs:
    """Data every variant of every model uses (read once per stage run)."""

    calibration: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    samples: np.ndarray

    @property
    def calibration_sha(self) -> str:
        """A hash of the calibration clips (which clips were drawn, and their values)."""
        return hashlib.sha256(np.ascontiguousarray(self.calibration).tobytes()).hexdigest()[:20]


def stage_inputs(features: Features, cfg: QuantizeConfig, seed: int) -> _Inputs:
    """Calibration clips (a seeded draw from the train split), the validation split and parity samples.

    Too few train clips to calibrate with are refused by the quantizer (``UserError``).
    """
    train = features.splits.train
    n = min(cfg.calibration_clips, len(train))
    rows = np.sort(np.random.default_rng(seed).choice(train, size=n, replace=False))
    calibration, _ = features.batch(rows)
    val_x, val_y = features.batch(features.splits.val)
    return _Inputs(calibration, val_x, val_y, val_x[: min(16, len(val_x))])


def _file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:20]


def _jsonable(obj: Any) -> Any:
    """``obj`` in its JSON form, so a computed key compares equal to a stored copy (tuples become lists)."""
    return json.loads(json.dumps(obj, default=str))


def variant_key(
    variant: str, model: ShipModel, cfg: QuantizeConfig, timing: TimingConfig, train: TrainConfig, data: str,
    inputs: _Inputs, table: LatencyTable | None,
) -> dict[str, Any]:  # fmt: skip
    """What decides one variant's file and measurement; a stored result is reused only when this is equal.

    Every variant depends on the checkpoint, the data, the export (opset, parity tolerance), the
    timing protocol and the machine (CPU, runtime); the fp32 row also on the latency table it
    quotes; the static INT8 variants on the calibration clips, method and weight bits; the
    accuracy-aware one on its bound; QAT on its fine-tuning.
    """
    key: dict[str, Any] = {
        "version": RESULT_VERSION,
        "checkpoint_sha": _file_sha(model.checkpoint),
        "data": data,
        "export": {"opset": cfg.opset, "parity_atol": cfg.parity_atol},
        "timing": dataclasses.asdict(timing),
        "onnxruntime": ort.__version__,
        "cpu": {"model": cpu_model(), "flags": cpu_flags()},
    }
    if variant == "fp32":
        key["table"] = None if table is None else {"name": table.name, "fingerprint": table.fingerprint()}
    if variant in ("int8_static", "int8_static_aa", "int8_qat"):
        key["calibration"] = {"sha": inputs.calibration_sha, "method": cfg.calibration_method,
                              "reduce_range": cfg.resolved_reduce_range()}  # fmt: skip
    if variant == "int8_static_aa":
        key["max_accuracy_drop_pts"] = cfg.max_accuracy_drop_pts
        key["val_clips"] = len(inputs.val_y)  # the bound is at least one of them
    if variant == "int8_qat":
        qat_train = dataclasses.asdict(dataclasses.replace(train, progress=False))
        qat_train.pop("memory_format")  # QAT always trains contiguous (quantize.qat.qat_finetune)
        key["qat"] = {"epochs": cfg.qat_epochs, "lr": cfg.qat_lr, "train": qat_train}
    return _jsonable(key)


class VariantRunner:
    """Exports, quantizes and re-measures the variants of one model (see the module docstring)."""

    def __init__(
        self, run_dir: Path, model: ShipModel, features: Features, cfg: QuantizeConfig, timing: TimingConfig,
        train: TrainConfig, inputs: _Inputs, table: LatencyTable | None,
    ) -> None:  # fmt: skip
        self.run_dir, self.model, self.features, self.cfg, self.timing = run_dir, model, features, cfg, timing
        self.train, self.inputs, self.table = train, inputs, table
        self.reduce_range = cfg.resolved_reduce_range()
        self.failures: dict[str, str] = {}  # variant -> why it could not be made or measured

    def onnx_path(self, variant: str) -> Path:
        """``onnx/<name>.<variant>.onnx``."""
        return self.run_dir / "onnx" / f"{self.model.name}.{variant}.onnx"

    def result_path(self, variant: str) -> Path:
        """``quantization/<name>.<variant>.json``."""
        return self.run_dir / "quantization" / f"{self.model.name}.{variant}.json"

    def run(self) -> list[dict[str, Any]]:
        """Every configured variant's measurement, fp32 first (reused where already measured).

        A variant that failed is left out of the rows; :attr:`failures` says why.
        """
        fp32 = self._variant("fp32", self._export)
        assert fp32 is not None  # an fp32 failure raises
        rows: list[dict[str, Any] | None] = [fp32]
        static = None
        for variant in self.cfg.variants:
            if variant == "int8_dynamic":
                rows.append(self._variant(variant, self._dynamic, fp32))
            elif variant == "int8_static":
                static = self._variant(variant, self._static, fp32)
                rows.append(static)
            elif variant == "int8_static_aa":
                rows.append(self._variant(variant, self._accuracy_aware, fp32))
        if "int8_qat" in self.cfg.variants:  # judged on int8_static, whatever the order in the config
            row = self._qat(fp32, static)
            rows.append(row)
        return [self._same_graph_latency(r, static) for r in rows if r is not None]

    def _same_graph_latency(self, row: dict[str, Any], static: dict[str, Any] | None) -> dict[str, Any]:
        """An accuracy-aware file that kept no layer fp32 is the int8_static file: quote that file's timing.

        Two timings of one file minutes apart differ by up to 40% on a shared 2-core VM; a table
        that shows the same graph at two speeds invites a wrong conclusion.
        """
        if row["variant"] != "int8_static_aa" or static is None or row.get("layers_fp32") != 0:
            return row
        if _digest(self.onnx_path("int8_static_aa")) != _digest(self.onnx_path("int8_static")):
            return row
        shared = {k: static[k] for k in ("latency_ms", "latency_p90_ms", "speedup") if k in static}
        note = "; ".join(x for x in (row.get("note"), "the int8_static graph (no layer kept fp32): its timing") if x)
        return row | shared | {"note": note}

    # -- one variant -------------------------------------------------------------------------

    def _variant(self, variant: str, make, fp32: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The measurement row: stored, or made and measured now; None when it failed (see :attr:`failures`)."""
        path, result = self.onnx_path(variant), self.result_path(variant)
        settings = variant_key(variant, self.model, self.cfg, self.timing, self.train, self.features.fingerprint,
                               self.inputs, self.table)  # fmt: skip
        if result.is_file():
            stored = json.loads(result.read_text())
            if stored.get("settings") == settings and "failed" in stored:
                self.failures[variant] = stored["failed"]
                return None
            if stored.get("settings") == settings and path.is_file():
                return stored["row"]
        if variant == "fp32":
            try:
                return self._make(variant, path, result, settings, make, fp32)
            except ORT_ERRORS as exc:
                raise UserError(f"ONNX Runtime cannot run the fp32 export of {self.model.name} ({self.model.spec}): "
                                f"{_one_line(exc)}") from None  # fmt: skip
        try:
            return self._make(variant, path, result, settings, make, fp32)
        except VARIANT_ERRORS as exc:
            reason = _one_line(exc)
            for leftover in (path, path.with_suffix(".json")):  # a half-made file must not pass for the variant
                leftover.unlink(missing_ok=True)
            atomic_write_json(result, {"settings": settings, "failed": reason})
            self.failures[variant] = reason
            return None

    def _make(
        self, variant: str, path: Path, result: Path, settings: dict[str, Any], make, fp32: dict[str, Any] | None
    ) -> dict[str, Any]:
        """Make the variant's file, compact it, write its card, measure it and store the row."""
        start = time.perf_counter()
        extra = make(path) or {}
        compact_file(path)  # short tensor names: on small INT8 models the names outweigh the weights
        write_card(path, make_card(path, self.features, model_name=self.model.name, spec=self.model.spec,
                                   variant=variant))  # fmt: skip
        row = self._measure(variant, path, fp32) | extra | {"wall_s": round(time.perf_counter() - start, 2)}
        atomic_write_json(result, {"settings": settings, "row": row})
        return row

    def _measure(self, variant: str, path: Path, fp32: dict[str, Any] | None) -> dict[str, Any]:
        test = evaluate_onnx(path, self.features, "test")
        val = evaluate_onnx(path, self.features, "val")
        timing = time_model(str(path), self.timing.end_to_end(), optimization="all")
        size_kb = path.stat().st_size / 1024
        row: dict[str, Any] = {
            "model": self.model.name, "kind": self.model.kind, "variant": variant, "spec": self.model.spec,
            "teacher": self.model.teacher or "", "seed": self.model.seed,
            "test_accuracy": test["accuracy"], "test_macro_f1": test["macro_f1"], "val_accuracy": val["accuracy"],
            "size_kb": size_kb, "latency_ms": timing.latency_ms, "latency_p90_ms": timing.p90_ms,
            "onnx": str(path.relative_to(self.run_dir)),
        }  # fmt: skip
        if variant == self._quoted_variant():
            row.update(self._predicted())
        if fp32 is None:
            row.update({"accuracy_delta_pts": 0.0, "val_accuracy_delta_pts": 0.0, "size_ratio": 1.0, "speedup": 1.0})
        else:
            row["accuracy_delta_pts"] = 100 * (test["accuracy"] - fp32["test_accuracy"])
            row["val_accuracy_delta_pts"] = 100 * (val["accuracy"] - fp32["val_accuracy"])
            row["size_ratio"] = fp32["size_kb"] / size_kb
            row["speedup"] = fp32["latency_ms"] / timing.latency_ms
        return row

    def _quoted_variant(self) -> str:
        """The variant the table's prediction stands beside: fp32, or int8_static for an INT8 table (its recipe)."""
        return "int8_static" if self.table is not None and self.table.precision == "int8" else "fp32"

    def _predicted(self) -> dict[str, Any]:
        """The latency the device table predicts for this spec at the table's precision, where the table applies."""
        if self.table is None:
            return {"predicted_latency_ms": None, "table_device": ""}
        from search_spaces import create_search_space

        space = create_search_space(self.table.space)
        try:
            spec = space.parse(self.model.spec)
            self.table.check_compatible(spec.space, self.features.input_shape)
            pred = self.table.predict(spec, n_classes=self.features.n_classes)
        except UserError as exc:
            return {"predicted_latency_ms": None, "table_device": self.table.name, "table_note": str(exc)[:160]}
        return {"predicted_latency_ms": pred.latency_ms, "table_device": self.table.name}

    # -- how each variant is made ------------------------------------------------------------

    def _export(self, path: Path) -> dict[str, Any]:
        net = self._trained_net()
        try:
            result = export_model(
                net, self.features.input_shape, path, sample_inputs=self.inputs.samples, opset=self.cfg.opset,
                atol=self.cfg.parity_atol,
            )  # fmt: skip
        except OnnxExportError as exc:
            raise UserError(f"ONNX export of {self.model.name} ({self.model.spec}) failed: {exc}") from None
        except OnnxParityError as exc:
            raise UserError(f"{self.model.name} ({self.model.spec}): {exc}") from None
        return {"parity_max_abs_diff": result.max_abs_diff, "opset": result.opset}

    def _trained_net(self):
        net = build_for(self.model.spec, self.features)
        load_model_weights(net, self.model.checkpoint, self.model.spec)
        return net.eval()

    def _dynamic(self, path: Path) -> dict[str, Any]:
        quantize_dynamic_int8(self.onnx_path("fp32"), path)
        return {"note": "weights only: activations quantized at run time"}

    def _static(self, path: Path) -> dict[str, Any]:
        quantize_static_int8(
            self.onnx_path("fp32"), path, self.inputs.calibration, method=self.cfg.calibration_method,
            reduce_range=self.reduce_range,
        )  # fmt: skip
        return {"calibration": self._calibration_note()}

    def _calibration_note(self) -> str:
        bits = "7-bit weights (reduce_range)" if self.reduce_range else "8-bit weights"
        return f"{self.cfg.calibration_method}, {len(self.inputs.calibration)} train clips, {bits}"

    def bound_pts(self) -> tuple[float, str]:
        """The accuracy-drop bound in points, and how it was set.

        A validation split of n clips measures accuracy in steps of 100/n points; a bound below one
        step demands a drop of zero clips and sends every model through the fp32-fallback search
        and QAT over a difference the split cannot resolve. The bound is raised to one clip then,
        and the note says so.
        """
        asked = self.cfg.max_accuracy_drop_pts
        n_val = len(self.inputs.val_y)
        one_clip = 100 / n_val if n_val else 0.0
        if asked >= one_clip:
            return asked, f"bound {asked:g} pts"
        note = f"bound {asked:g} pts raised to one clip of the {n_val}-clip validation split, {one_clip:.2f} pts"
        return one_clip, note

    def _accuracy_aware(self, path: Path) -> dict[str, Any]:
        bound, bound_note = self.bound_pts()
        result = accuracy_aware_static(
            self.onnx_path("fp32"), path, self.inputs.calibration, self.inputs.val_x, self.inputs.val_y,
            max_drop=bound / 100 + 1e-9, method=self.cfg.calibration_method,
            reduce_range=self.reduce_range,
        )  # fmt: skip
        return {
            "calibration": self._calibration_note(),
            "layers_fp32": len(result.kept_fp32),
            "layers_fp32_names": ";".join(result.kept_fp32),
            "bound_met": result.met,
            "note": f"val drop {100 * result.drop:.2f} pts, {bound_note}"
            + ("" if result.met else " (not met even with every layer fp32)"),
        }

    def _qat(self, fp32: dict[str, Any], static: dict[str, Any] | None) -> dict[str, Any] | None:
        """QAT where static PTQ misses the bound (needs the int8_static variant to judge)."""
        if static is None or -static["val_accuracy_delta_pts"] <= self.bound_pts()[0] + 1e-9:
            return None
        return self._variant("int8_qat", self._make_qat, fp32)

    def _make_qat(self, path: Path) -> dict[str, Any]:
        from quantize.qat import export_qat, qat_finetune

        train = dataclasses.replace(self.train, seed=self.model.seed, progress=False)
        fake_quant = qat_finetune(
            self._trained_net(), self.features, train, epochs=self.cfg.qat_epochs, lr=self.cfg.qat_lr,
            calibration_clips=len(self.inputs.calibration), reduce_range=self.reduce_range,
        )  # fmt: skip
        try:
            export_qat(fake_quant, self.features.input_shape, path, sample_inputs=self.inputs.samples,
                       opset=self.cfg.opset)  # fmt: skip
        except (OnnxExportError, OnnxParityError) as exc:
            raise UserError(f"QAT export of {self.model.name} ({self.model.spec}) failed: {exc}") from None
        why = f"because plain static INT8 missed the {self.bound_pts()[1]}"
        return {"calibration": self._calibration_note(), "note": f"fake-quant fine-tuning, {self.cfg.qat_epochs} "
                f"epochs at lr {self.cfg.qat_lr:g}, {why}"}  # fmt: skip


def _one_line(exc: Exception) -> str:
    """An exception as one short line; what is not a ``UserError`` is prefixed with its type."""
    text = " ".join(str(exc).split()) or "no message"
    if not isinstance(exc, UserError):
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= 300 else text[:297] + "..."


def _digest(path: Path) -> str | None:
    """SHA-256 of a file's bytes (None when it is missing)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None
