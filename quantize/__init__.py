"""Quantization: ONNX export, INT8 post-training quantization and re-measured accuracy, size and latency."""
