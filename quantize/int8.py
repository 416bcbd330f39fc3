"""INT8 post-training quantization with ``onnxruntime.quantization``: static (calibrated QDQ) and dynamic.

Static quantization is the CNN path: QDQ format, per-channel symmetric QInt8 weights, per-tensor
asymmetric **QUInt8 activations** (ORT's default signed activations ran slower than fp32 on this
stack; unsigned ones gave x1.1-2.5 speed-ups and 100 % top-1 agreement, see ENV_NOTES), ranges
from a calibration set of real normalised inputs. Dynamic quantization quantizes weights only and
computes activation ranges at run time (``ConvInteger``/``MatMulInteger``); for CNNs in ORT it
was 8-12x *slower* than fp32, so report it, if at all, as what it is.

On x86 CPUs without VNNI (AVX2 only), ORT's u8 x s8 integer kernels can saturate their int16
intermediate sums: on such a machine a small CNN with 8-bit weights had about 70x the logit error
of the same QDQ graph computed in float, while ``reduce_range=True`` (7-bit weights) matched it.
Where the target is such a CPU, quantize with ``reduce_range=True``; VNNI and ARM targets do not need it.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from onnxruntime.quantization import (
    CalibrationMethod,
    QuantType,
    create_calibrator,
    quantize_dynamic,
    quantize_static,
)
from onnxruntime.quantization.calibrate import save_tensors_data
from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

from common.atomic import atomic_write_bytes
from common.errors import UserError
from quantize.calibration import DEFAULT_MIN_CLIPS, ArrayCalibrationReader, check_calibration
from quantize.onnx_graph import (
    LAYER_OP_TYPES,
    feeding_activations,
    graph_io,
    layer_nodes,
    node_names,
    preprocess,
    read_float_inputs,
)
from quantize.recipe import static_recipe

CALIBRATION_METHODS = {
    "minmax": CalibrationMethod.MinMax,
    "entropy": CalibrationMethod.Entropy,
    "percentile": CalibrationMethod.Percentile,
}
CALIBRATION_BATCH = 32  # clips per calibration run
ENTROPY_BINS = 512  # histogram bins of entropy calibration (4 per quantized level of ORT's 128)
# The op types quantize_static quantizes by default; their tensors are calibrated.
CALIBRATED_OP_TYPES = sorted(set(QDQRegistry) | set(QLinearOpsRegistry))


class StaticQuantizer:
    """Static INT8 quantization of one fp32 model, pre-processed and calibrated once, quantized many times.

    The accuracy-aware search quantizes the same model with many exclusion sets. The model is
    pre-processed and calibrated once, when the quantizer is made, into ORT's calibration cache
    (the ranges do not depend on which nodes are excluded), so each :meth:`quantize` then costs
    tens of milliseconds. Use it as a context manager: it owns a temporary folder.

    Args:
        fp32_path: The fp32 ONNX model (e.g. from :func:`quantize.export.export_model`).
        calibration: Normalised model inputs, shape ``(n, *input_shape)``.
        method: ``minmax``, ``entropy`` (KL-optimal thresholds from a 512-bin histogram) or
            ``percentile`` (ORT's 99.999th percentile of a 2048-bin histogram).
        per_channel: Per-output-channel weight scales (per-tensor when False).
        reduce_range: 7-bit weights, for x86 targets without VNNI (see the module docstring).
        min_clips: Fewest calibration clips accepted.

    Raises:
        UserError: Unknown method, or calibration data of the wrong shape, too short, or not finite.

    Example:
        >>> with StaticQuantizer("small.onnx", calib) as q:
        ...     q.quantize("small.int8.onnx", nodes_to_exclude=["/head/classifier/Gemm"])
    """

    def __init__(
        self,
        fp32_path: str | os.PathLike,
        calibration: np.ndarray,
        *,
        method: str = "minmax",
        per_channel: bool = True,
        reduce_range: bool = False,
        min_clips: int = DEFAULT_MIN_CLIPS,
    ) -> None:
        if method not in CALIBRATION_METHODS:
            raise UserError(f"unknown calibration method '{method}'; choose one of {', '.join(CALIBRATION_METHODS)}")
        self.fp32_path = Path(fp32_path)
        self.io = graph_io(self.fp32_path)
        self.calibration = check_calibration(calibration, self.io.input_shape, min_clips)
        self.method = method
        self.per_channel = per_channel
        self.reduce_range = reduce_range
        self._tmp = tempfile.TemporaryDirectory(prefix="quantize-")
        self._pre = Path(self._tmp.name) / "preprocessed.onnx"
        self._cache = Path(self._tmp.name) / "calibration.json"
        try:
            preprocess(self.fp32_path, self._pre)
            self.nodes = node_names(self._pre)
            self._calibrate()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> StaticQuantizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the temporary folder (pre-processed model, calibration cache)."""
        self._tmp.cleanup()

    def layers(self, op_types: Sequence[str] = LAYER_OP_TYPES) -> list[str]:
        """Names of the pre-processed graph's nodes of ``op_types`` (default: the layers), in graph order."""
        return layer_nodes(self._pre, tuple(op_types))

    def quantize(self, out_path: str | os.PathLike, nodes_to_exclude: Sequence[str] = ()) -> Path:
        """Write the QDQ INT8 model to ``out_path`` atomically, keeping ``nodes_to_exclude`` in fp32.

        An excluded node computes in fp32 with fp32 weights on fp32 inputs (the values its
        producers compute, before any quantization for other readers), here and in the graph
        ONNX Runtime optimises at session start (see :mod:`quantize.onnx_graph`). A quantized
        node that only an excluded node reads then keeps INT8 weights and inputs but produces
        an fp32 output.

        Raises:
            UserError: A name in ``nodes_to_exclude`` is not a node of the pre-processed graph.
        """
        unknown = [n for n in nodes_to_exclude if n not in self.nodes]
        if unknown:
            raise UserError(
                f"nodes_to_exclude names no node of {self.fp32_path}: {', '.join(unknown)}; "
                f"its layers are: {', '.join(self.layers())}"
            )
        excluded = list(dict.fromkeys(nodes_to_exclude))
        with _atomic_output(out_path) as tmp:
            quantize_static(
                self._pre,
                tmp,
                None,  # the ranges come from the calibration cache
                **static_recipe(self.per_channel, self.reduce_range),
                nodes_to_exclude=[*excluded, *feeding_activations(self._pre, excluded)],
                calibrate_method=CALIBRATION_METHODS[self.method],
                calibration_cache_path=self._cache,
            )
            if excluded:
                read_float_inputs(tmp, excluded)
        return Path(out_path)

    def _calibrate(self) -> None:
        """Collect the activation ranges once into ORT's calibration cache (read by every :meth:`quantize`).

        Done here rather than inside ``quantize_static``, which cannot set the histogram size:
        its entropy calibration uses 128 bins for 128 quantized levels, so the only candidate
        threshold is the full range and "entropy" equals "minmax". Here entropy uses 512 bins
        (TensorRT uses 2048, which costs about 30 s per small CNN in ORT's Python search against
        about 3 s for 512, for the same logit error); minmax and percentile keep ORT's defaults
        (percentile 99.999 of a 2048-bin histogram).
        """
        reader = ArrayCalibrationReader(self.calibration, self.io.input_name, self.io.batch_size or CALIBRATION_BATCH)
        options = {"num_bins": ENTROPY_BINS} if self.method == "entropy" else {}
        with contextlib.redirect_stdout(io.StringIO()):  # ORT's histogram calibrators print their progress
            calibrator = create_calibrator(
                self._pre,
                CALIBRATED_OP_TYPES,
                augmented_model_path=Path(self._tmp.name) / "augmented.onnx",
                calibrate_method=CALIBRATION_METHODS[self.method],
                extra_options=options,
            )
            calibrator.collect_data(reader)
            save_tensors_data(calibrator.compute_data(), self._cache)
        del calibrator


def quantize_static_int8(
    fp32_path: str | os.PathLike,
    out_path: str | os.PathLike,
    calibration: np.ndarray,
    *,
    method: str = "minmax",
    nodes_to_exclude: Sequence[str] = (),
    per_channel: bool = True,
    reduce_range: bool = False,
    min_clips: int = DEFAULT_MIN_CLIPS,
) -> Path:
    """Static INT8 (QDQ) quantization of an fp32 ONNX model, calibrated on real inputs.

    ``quant_pre_process`` first (into a temporary file), then ``quantize_static`` with
    per-channel QInt8 weights and QUInt8 activations; the result is written atomically.

    Args:
        fp32_path: The fp32 ONNX model.
        out_path: Destination of the INT8 model.
        calibration: Normalised model inputs, shape ``(n, *input_shape)``, ``n >= min_clips``.
        method: ``minmax``, ``entropy`` or ``percentile``.
        nodes_to_exclude: Nodes kept in fp32 (names from :func:`quantizable_nodes`).
        per_channel: Per-output-channel weight scales.
        reduce_range: 7-bit weights (see :class:`StaticQuantizer`).
        min_clips: Fewest calibration clips accepted.

    Returns:
        ``out_path`` as a Path.

    Raises:
        UserError: Unknown method, unusable calibration data, or an unknown node name.
    """
    with StaticQuantizer(
        fp32_path, calibration, method=method, per_channel=per_channel, reduce_range=reduce_range, min_clips=min_clips
    ) as quantizer:
        return quantizer.quantize(out_path, nodes_to_exclude)


def quantize_dynamic_int8(fp32_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Dynamic INT8 quantization: QInt8 weights, activation ranges computed at run time (no calibration).

    Weights-only in the file: activations are quantized on the fly by ``DynamicQuantizeLinear``
    before every ``ConvInteger``/``MatMulInteger``. It shrinks the file like static quantization,
    but for CNNs in ONNX Runtime it ran 8-12x slower than fp32 (ENV_NOTES): not a deployment path
    for these models. Written atomically.

    Returns:
        ``out_path`` as a Path.
    """
    with tempfile.TemporaryDirectory(prefix="quantize-") as tmp:
        pre = Path(tmp) / "preprocessed.onnx"
        preprocess(fp32_path, pre)
        with _atomic_output(out_path) as tmp_out:
            quantize_dynamic(pre, tmp_out, weight_type=QuantType.QInt8)
    return Path(out_path)


def quantizable_nodes(fp32_path: str | os.PathLike, op_types: Sequence[str] = LAYER_OP_TYPES) -> list[str]:
    """Names of the nodes static quantization turns into INT8 arithmetic, in graph order.

    These are the names ``nodes_to_exclude`` accepts: the nodes of the pre-processed graph (which
    keeps the exporter's names, e.g. ``/stem/conv/conv/Conv``, ``/head/classifier/Gemm``) whose op
    type is in ``op_types``. Value-preserving ops that are also wrapped in QDQ (Relu, MaxPool,
    Flatten, ...) are left out by default.
    """
    with tempfile.TemporaryDirectory(prefix="quantize-") as tmp:
        pre = Path(tmp) / "preprocessed.onnx"
        preprocess(fp32_path, pre)
        return layer_nodes(pre, tuple(op_types))


@contextmanager
def _atomic_output(out_path: str | os.PathLike) -> Iterator[Path]:
    """A temporary file path; what the block writes there replaces ``out_path`` atomically when it succeeds."""
    with tempfile.TemporaryDirectory(prefix="quantize-") as tmp:
        path = Path(tmp) / "model.onnx"
        yield path
        atomic_write_bytes(out_path, path.read_bytes())
