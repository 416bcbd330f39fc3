"""The fp32 deployment file: ONNX with a dynamic batch axis, checked against torch before it is written."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from common.atomic import atomic_write_bytes
from common.onnx_export import export_onnx
from quantize.ort_eval import onnx_logits, open_session

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


class OnnxParityError(RuntimeError):
    """The exported graph computes something else than the torch model (nothing was written)."""


@dataclass(frozen=True)
class ExportResult:
    """An exported, checked fp32 ONNX file.

    Attributes:
        path: The ONNX file (input ``input`` with axis 0 ``batch``, output ``logits``).
        size_kb: File size / 1024.
        max_abs_diff: Largest |torch - ONNX Runtime| logit difference over the sample inputs, at
            batch 1 and at the full sample batch.
        opset: ONNX opset of the file.
    """

    path: Path
    size_kb: float
    max_abs_diff: float
    opset: int


def export_model(
    model: nn.Module,
    input_shape: Sequence[int],
    path: str | os.PathLike,
    *,
    sample_inputs: np.ndarray,
    opset: int = 17,
    atol: float = 1e-4,
) -> ExportResult:
    """Export ``model`` to an fp32 ONNX file with a dynamic batch axis, after checking it against torch.

    The graph is exported (TorchScript exporter, weights inline, BatchNorm folded), run in ONNX
    Runtime on ``sample_inputs`` once as one batch of n and once at batch 1 (so the dynamic axis
    is known to work), and compared with the torch model in eval mode. Only a graph that passes is
    written, atomically.

    Args:
        model: The trained model; it is left in eval mode.
        input_shape: Per-example input shape, e.g. ``(1, 40, 101)``.
        path: Destination ``.onnx`` file (folders are created).
        sample_inputs: A batch of real normalised inputs, shape ``(n, *input_shape)``, n >= 1.
        opset: ONNX opset.
        atol: Allowed difference relative to the logits' scale: the check fails when
            ``max_abs_diff > atol * max(1, max |torch logit|)``, i.e. ``atol`` is absolute for
            logits within +-1 and relative to the largest logit beyond.

    Returns:
        The :class:`ExportResult`.

    Raises:
        ValueError: ``sample_inputs`` has the wrong shape or non-finite values.
        common.onnx_export.OnnxExportError: The exporter cannot convert the model (the caller
            adds which spec it was).
        OnnxParityError: ONNX Runtime's logits differ from torch's beyond the tolerance, or have
            another shape.
    """
    input_shape = tuple(int(d) for d in input_shape)
    x = _check_samples(sample_inputs, input_shape)
    data = export_onnx(model, input_shape, opset=opset, dynamic_batch=True, input_names=[INPUT_NAME])
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).float().numpy()
    session = open_session(data)
    batched = onnx_logits(session, x, batch_size=len(x))
    single = onnx_logits(session, x[:1], batch_size=1)
    if batched.shape != expected.shape or single.shape != expected[:1].shape:
        raise OnnxParityError(
            f"ONNX model for {path} returns shapes {batched.shape} (batch {len(x)}) and {single.shape} (batch 1); "
            f"torch returns {expected.shape}"
        )
    diff = float(max(np.abs(batched - expected).max(), np.abs(single - expected[:1]).max()))
    tolerance = atol * max(1.0, float(np.abs(expected).max()))
    if not diff <= tolerance:
        raise OnnxParityError(
            f"ONNX model for {path} differs from torch by up to {diff:.3g} on {len(x)} sample inputs "
            f"(allowed {tolerance:.3g} = atol {atol:g} x max(1, max |logit|)); the file was not written"
        )
    path = Path(path)
    atomic_write_bytes(path, data)
    return ExportResult(path=path, size_kb=len(data) / 1024, max_abs_diff=diff, opset=opset)


def _check_samples(sample_inputs: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    x = np.ascontiguousarray(sample_inputs, dtype=np.float32)
    if x.ndim != len(input_shape) + 1 or x.shape[1:] != input_shape or len(x) == 0:
        raise ValueError(f"sample_inputs must have shape (n >= 1, {', '.join(map(str, input_shape))}), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("sample_inputs contain NaN or infinite values")
    return x
