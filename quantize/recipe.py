"""The project's static INT8 recipe as ``quantize_static`` arguments: one definition for models and latency tables.

QDQ format, per-channel symmetric QInt8 weights and per-tensor asymmetric QUInt8 activations (see
:mod:`quantize.int8` for why unsigned activations). The quantization stage quantizes trained
models with it (:class:`quantize.int8.StaticQuantizer`); an INT8 latency table times its op
graphs quantized with the same arguments, so the table describes the models that ship.
"""

from __future__ import annotations

from typing import Any

from onnxruntime.quantization import QuantFormat, QuantType


def static_recipe(per_channel: bool = True, reduce_range: bool = False) -> dict[str, Any]:
    """Keyword arguments of ``onnxruntime.quantization.quantize_static`` for the project's recipe.

    Args:
        per_channel: Per-output-channel weight scales (per-tensor when False).
        reduce_range: 7-bit weights, for x86 targets without VNNI (see :mod:`quantize.int8`).
    """
    return {
        "quant_format": QuantFormat.QDQ,
        "per_channel": per_channel,
        "reduce_range": reduce_range,
        "activation_type": QuantType.QUInt8,
        "weight_type": QuantType.QInt8,
    }
