"""Quantization: ONNX export, INT8 post-training quantization and re-measured accuracy, size and latency.

Modules (one concept each):

- :mod:`quantize.export`: the checked fp32 ONNX file (dynamic batch, torch vs ORT parity).
- :mod:`quantize.int8`: static (calibrated QDQ) and dynamic INT8 with ``onnxruntime.quantization``.
- :mod:`quantize.accuracy_aware`: static INT8 that keeps the most harmful layers fp32 until a bound holds.
- :mod:`quantize.qat`: quantization-aware fine-tuning and its QDQ export.
- :mod:`quantize.model_card`: the JSON beside each ONNX file that tells a device how to feed it.
- :mod:`quantize.ort_eval`: logits and split metrics measured in ONNX Runtime.
- :mod:`quantize.calibration`, :mod:`quantize.onnx_graph`: calibration data checks, graph reading/rewrites.

The ONNX exporter itself is :func:`common.onnx_export.export_onnx`, shared with the latency tables.
"""
