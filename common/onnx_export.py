"""Export a torch module to ONNX bytes with the TorchScript exporter, and a clear error when that fails.

Used by the latency tables (batch 1, per-op and whole-model timing) and by ``quantize/`` (dynamic
batch, checked deployment files). The TorchScript exporter (``dynamo=False``) takes about 7 ms per
small module against 1-1.5 s for the dynamo exporter, with the same graph after ORT optimisation,
and keeps every weight inline (no side ``.onnx.data`` file). In eval mode it folds BatchNorm into
the preceding convolution (``do_constant_folding``) and names nodes after the module path
(``/stem/conv/conv/Conv``, ``/head/fc/Gemm``).
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Sequence

import torch
from torch import nn

# The exporter's deprecation notices: the TorchScript exporter is chosen deliberately (see above).
_DEPRECATION_MESSAGES = (
    r"You are using the legacy TorchScript-based ONNX export",
    r"The feature will be removed",
)
_UNSUPPORTED_OP = re.compile(r"Exporting the operator '?([\w:.]+)'? to ONNX opset version \d+ is not supported")
BATCH_AXIS = "batch"


class OnnxExportError(RuntimeError):
    """``torch.onnx.export`` failed; ``op`` names the unsupported operator when the exporter said which.

    Attributes:
        op: The operator the exporter could not convert, e.g. ``aten::fft_rfft``, or None.
        message: The first line of the exporter's own message.
    """

    def __init__(self, op: str | None, message: str) -> None:
        self.op = op
        self.message = message
        what = f"operator '{op}' is not supported by the ONNX exporter" if op else "ONNX export failed"
        super().__init__(f"{what}: {message}")


def export_onnx(
    module: nn.Module,
    *input_shapes: tuple[int, ...],
    opset: int = 17,
    dynamic_batch: bool = False,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> bytes:
    """Export ``module`` (switched to eval mode) to ONNX bytes with all weights inline.

    With the defaults (batch 1, no names given) the bytes are exactly what the latency tables
    have always timed: inputs named ``input`` (or ``input0``, ``input1``, ... for several) and the
    output named by the exporter.

    Args:
        module: The module; its ``forward`` takes one tensor per entry of ``input_shapes``. It is
            left in eval mode.
        input_shapes: Per-example input shapes without batch.
        opset: ONNX opset.
        dynamic_batch: Make axis 0 of every input and output a dynamic axis named ``batch``; the
            output is then named ``logits`` unless ``output_names`` says otherwise.
        input_names: Graph input names (default ``input``, or ``input0``, ``input1``, ...).
        output_names: Graph output names (default: the exporter's own, or ``logits`` with
            ``dynamic_batch``).

    Returns:
        The serialised ``onnx.ModelProto``.

    Raises:
        OnnxExportError: The exporter failed; ``op`` names the unsupported operator when the
            exporter's message does. Callers add which model or spec it was.
    """
    module = module.eval()
    buf = io.BytesIO()
    names = list(input_names) if input_names is not None else _default_input_names(len(input_shapes))
    outputs = list(output_names) if output_names is not None else (["logits"] if dynamic_batch else None)
    axes = {name: {0: BATCH_AXIS} for name in [*names, *(outputs or [])]} if dynamic_batch else None
    with warnings.catch_warnings(), torch.no_grad():
        for message in _DEPRECATION_MESSAGES:
            warnings.filterwarnings("ignore", message=message, category=DeprecationWarning)
        try:
            torch.onnx.export(
                module,
                tuple(torch.zeros(1, *shape) for shape in input_shapes),
                buf,
                dynamo=False,
                opset_version=opset,
                input_names=names,
                output_names=outputs,
                dynamic_axes=axes,
                do_constant_folding=True,
            )
        except Exception as exc:  # the exporter raises many types; all mean "this module does not export"
            raise _export_error(exc) from exc
    return buf.getvalue()


def _default_input_names(n_inputs: int) -> list[str]:
    return ["input"] if n_inputs == 1 else [f"input{i}" for i in range(n_inputs)]


def _export_error(exc: Exception) -> OnnxExportError:
    """An :class:`OnnxExportError` from whatever the exporter raised, naming the op if it can."""
    text = str(exc).strip()
    match = _UNSUPPORTED_OP.search(text)
    first_line = text.splitlines()[0] if text else type(exc).__name__
    return OnnxExportError(match.group(1) if match else None, first_line)
