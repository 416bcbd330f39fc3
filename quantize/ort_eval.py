"""Running an ONNX classifier in ONNX Runtime: logits in batches, and metrics on a split of the features.

Sessions use the CPU provider, full graph optimisation, sequential execution and one intra-op
thread by default: results then do not depend on the machine's core count (ORT's reductions are
not bit-identical across thread counts) and evaluation does not compete with parallel workers.
Pass ``threads`` to go faster on an idle machine.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import onnxruntime as ort

from latency_tables.ort_timing import make_session
from train.feature_set import Features
from train.metrics import classification_metrics

ModelSource = str | os.PathLike | bytes | ort.InferenceSession

#: What ONNX Runtime raises when it refuses or fails to run a model (its pybind11 exceptions derive
#: from ``Exception`` alone, so they need naming to be caught without catching every bug).
ORT_ERRORS: tuple[type[Exception], ...] = tuple(
    getattr(ort.capi.onnxruntime_pybind11_state, name)
    for name in ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NotImplemented", "RuntimeException",
                 "NoSuchFile", "NoModel", "EPFail")
    if hasattr(ort.capi.onnxruntime_pybind11_state, name)
)  # fmt: skip


def open_session(model: ModelSource, threads: int = 1) -> ort.InferenceSession:
    """A CPU session for a model path or serialised model (an existing session is returned as is)."""
    if isinstance(model, ort.InferenceSession):
        return model
    return make_session(model if isinstance(model, bytes) else os.fspath(model), threads, "all")


def onnx_logits(model: ModelSource, x: np.ndarray, batch_size: int = 256, threads: int = 1) -> np.ndarray:
    """Outputs of the model's first output for every row of ``x``, computed ``batch_size`` rows at a time.

    Args:
        model: An ONNX file, its bytes, or an open session (``threads`` is then ignored).
        x: Inputs of shape (n, *per-example input shape), converted to float32.
        batch_size: Rows per ``session.run``; a model whose batch axis is fixed (e.g. exported at
            batch 1) is run at that batch size instead.
        threads: ORT intra-op threads of a new session.

    Returns:
        float32 array of shape (n, n_outputs).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    session = open_session(model, threads)
    graph_input = session.get_inputs()[0]
    fixed = graph_input.shape[0] if graph_input.shape else None
    step = fixed if isinstance(fixed, int) and fixed > 0 else batch_size
    x = np.ascontiguousarray(x, dtype=np.float32)
    outs = [session.run(None, {graph_input.name: x[i : i + step]})[0] for i in range(0, len(x), step)]
    return np.concatenate(outs).astype(np.float32, copy=False)


def evaluate_onnx(
    path: str | os.PathLike, features: Features, split: str = "val", batch_size: int = 256, threads: int = 1
) -> dict[str, Any]:
    """Metrics of an ONNX classifier on one split, measured by running it in ONNX Runtime over the whole split.

    Args:
        path: The ONNX file (fp32 or quantized); its input is the normalised features of
            ``features.batch`` and its first output the logits.
        features: The cached features.
        split: ``val`` for selection; ``test`` only for the final evaluation.
        batch_size: Clips read from the cache and run per call.
        threads: ORT intra-op threads.

    Returns:
        :func:`train.metrics.classification_metrics` (accuracy, macro_f1, per-class scores,
        confusion matrix, and per-speaker accuracy when the dataset records speakers), plus ``"split"``.
    """
    rows = features.splits[split]
    session = open_session(path, threads)
    preds, labels = [], []
    for start in range(0, len(rows), batch_size):
        x, y = features.batch(rows[start : start + batch_size])
        preds.append(onnx_logits(session, x, batch_size).argmax(axis=1))
        labels.append(y)
    speakers = None if features.speakers is None else features.speakers[rows]
    metrics = classification_metrics(np.concatenate(labels), np.concatenate(preds), features.classes, speakers)
    return {**metrics, "split": split}
