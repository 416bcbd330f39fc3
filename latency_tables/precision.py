"""The arithmetic a latency table times: fp32, or INT8 as the project's static recipe makes it.

An INT8 table times every op graph in the form the recipe the quantization stage applies to
trained models (:func:`quantize.recipe.static_recipe`) gives it: written directly by
:mod:`latency_tables.int8_graphs`, checked against the recipe node for node. ONNX Runtime turns
the QDQ pairs into integer kernels (``QLinearConv``, ``QLinearAdd``, ``QLinearGlobalAveragePool``,
``QLinearMul``, ``QGemm``) that run in NHWC, so a graph gains a ``QuantizeLinear`` and a
``Transpose`` at its input and a ``Transpose`` and a ``DequantizeLinear`` at its output; those at
an op's boundary are stripped as the fp32 table strips layout reorders
(:func:`latency_tables.layout.strip_boundaries`), except where the whole model pays them: the
stem keeps the model input's quantization, the head its output's dequantization. Whole models
(calibration, validation) are quantized with the recipe itself (:func:`deployed_graph`), with
ranges from random inputs: the integer kernels' speed does not depend on the ranges.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx

PRECISIONS = ("fp32", "int8")
DEFAULT_PRECISION = "fp32"
CALIBRATION_INPUTS = 2  # random inputs that set the (timing-irrelevant) ranges of a whole model


def table_precision(meta: dict) -> str:
    """The precision a table's metadata records (tables written before the field are fp32)."""
    return str(meta.get("precision", DEFAULT_PRECISION))


def check_precision(value: str | None, name: str = "latency.precision (--precision)") -> None:
    """Refuse an unknown precision.

    Raises:
        ValueError: Naming the field and the precisions there are.
    """
    if value is not None and value not in PRECISIONS:
        raise ValueError(f"{name} must be one of {', '.join(PRECISIONS)}, got '{value}'")


def quantize_graph(model: bytes) -> bytes:
    """``model`` pre-processed and statically quantized with the project's recipe, calibrated on random inputs.

    Args:
        model: A serialised fp32 ONNX model with fixed input shapes.

    Returns:
        The serialised QDQ model.
    """
    from onnxruntime.quantization import CalibrationDataReader, quantize_static

    from quantize.onnx_graph import preprocess as pre_process
    from quantize.recipe import static_recipe

    graph = onnx.ModelProto.FromString(model).graph
    weights = {i.name for i in graph.initializer}
    shapes = {i.name: [d.dim_value or 1 for d in i.type.tensor_type.shape.dim] for i in graph.input}
    rng = np.random.default_rng(0)
    feeds = [
        {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items() if name not in weights}
        for _ in range(CALIBRATION_INPUTS)
    ]

    class _Random(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds = iter(feeds)

        def get_next(self) -> dict | None:
            return next(self._feeds, None)

    with tempfile.TemporaryDirectory(prefix="int8-graph-") as tmp, _quiet():
        source, pre, out = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(model)
        pre_process(source, pre)  # as the quantization stage does for trained models
        quantize_static(pre, out, _Random(), **static_recipe())
        return out.read_bytes()


def deployed_graph(model: bytes, precision: str) -> bytes:
    """A whole fp32 model as it ships at ``precision`` (INT8: pre-processed and quantized with the recipe)."""
    check_precision(precision)
    return model if precision == "fp32" else quantize_graph(model)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence ORT's quantization tool, which logs advice on the root logger for every graph."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
