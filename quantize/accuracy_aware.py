"""Accuracy-aware static INT8: keep the layers that cost the most accuracy in fp32 until the drop is within bounds.

The idea of OpenVINO's AccuracyAwareQuantization and Intel Neural Compressor's tuning loop,
on ONNX Runtime's static quantization:

1. Quantize every layer; measure accuracy on the validation set in ORT, against the fp32 model
   also measured in ORT. Done if the drop is within ``max_drop``.
2. Rank the layers still quantized by what keeping each one alone in fp32 (on top of those
   already kept) recovers: accuracy first, then the logit mean squared error against fp32 (on
   a small validation set accuracy moves in coarse steps, the logit error always moves).
3. Keep the top layer in fp32; its ranking measurement is the new state. Continue down the
   ranking while each layer kept helps (accuracy up, or equal with a lower logit error); when
   one does not, rank the remaining layers again in the new context. Stop when the drop is
   within bounds, every layer is fp32, or ``max_steps`` layers are kept.

Calibration runs once (see :class:`quantize.int8.StaticQuantizer`); each trial is a quantization
from cached ranges plus an ORT pass over the validation set.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import UserError
from quantize.calibration import DEFAULT_MIN_CLIPS, check_calibration
from quantize.int8 import StaticQuantizer
from quantize.ort_eval import onnx_logits


@dataclass(frozen=True)
class AccuracyAwareResult:
    """Outcome of :func:`accuracy_aware_static`.

    Attributes:
        path: The written INT8 model (with ``kept_fp32`` excluded from quantization).
        kept_fp32: Layers kept in fp32, in the order they were chosen.
        fp32_accuracy: Accuracy of the fp32 model on the validation data (ORT).
        int8_accuracy: Accuracy of the written model on the same data (ORT).
        drop: ``fp32_accuracy - int8_accuracy`` as a fraction (0.005 = 0.5 points).
        met: Whether ``drop <= max_drop``.
        steps: Every measurement, in order: ``{"step", "action"`` (``quantize_all``, ``rank`` or
            ``keep_fp32``), ``"node"``, ``"kept_fp32"``, ``"accuracy"``, ``"drop"``, ``"logit_mse"}``.
    """

    path: Path
    kept_fp32: list[str]
    fp32_accuracy: float
    int8_accuracy: float
    drop: float
    met: bool
    steps: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _Trial:
    kept: tuple[str, ...]
    accuracy: float
    logit_mse: float

    def better_than(self, other: _Trial) -> bool:
        return (self.accuracy, -self.logit_mse) > (other.accuracy, -other.logit_mse)


def accuracy_aware_static(
    fp32_path: str | os.PathLike,
    out_path: str | os.PathLike,
    calibration: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    *,
    max_drop: float,
    method: str = "minmax",
    max_steps: int | None = None,
    per_channel: bool = True,
    reduce_range: bool = False,
    min_clips: int = DEFAULT_MIN_CLIPS,
    batch_size: int = 256,
) -> AccuracyAwareResult:
    """Static INT8 quantization that keeps the most harmful layers in fp32 until the accuracy drop is within bounds.

    Args:
        fp32_path: The fp32 ONNX model.
        out_path: Destination of the INT8 model (written atomically, whether or not the bound is met).
        calibration: Calibration inputs, shape ``(n, *input_shape)`` (see :class:`~quantize.int8.StaticQuantizer`).
        val_x: Validation inputs, shape ``(m, *input_shape)``; keep them apart from the test split.
        val_y: Validation labels (class indices), shape ``(m,)``.
        max_drop: Largest accepted accuracy drop as a fraction (0.005 = 0.5 points); >= 0.
        method: Calibration method: ``minmax``, ``entropy`` or ``percentile``.
        max_steps: Most layers kept in fp32 (None: no limit).
        per_channel: Per-channel weight scales.
        reduce_range: 7-bit weights (for x86 targets without VNNI).
        min_clips: Fewest calibration clips accepted.
        batch_size: Validation rows per ORT call.

    Returns:
        The :class:`AccuracyAwareResult`; ``met`` is False when ``max_steps`` ran out first.

    Raises:
        UserError: ``max_drop`` < 0, ``max_steps`` < 0, validation data that does not fit the
            model, or unusable calibration data.
    """
    if not (isinstance(max_drop, (int, float)) and math.isfinite(max_drop) and max_drop >= 0):
        raise UserError(f"max_drop must be an accuracy drop >= 0 as a fraction (0.005 = 0.5 points), got {max_drop}")
    if max_steps is not None and max_steps < 0:
        raise UserError(f"max_steps must be >= 0 or None, got {max_steps}")
    with StaticQuantizer(
        fp32_path, calibration, method=method, per_channel=per_channel, reduce_range=reduce_range, min_clips=min_clips
    ) as quantizer:
        val_x, val_y = _check_validation(val_x, val_y, quantizer.io.input_shape)
        reference = onnx_logits(fp32_path, val_x, batch_size)
        search = _Search(quantizer, val_x, val_y, reference, batch_size)
        final = search.run(max_drop, max_steps)
        quantizer.quantize(out_path, final.kept)
    return AccuracyAwareResult(
        path=Path(out_path),
        kept_fp32=list(final.kept),
        fp32_accuracy=search.fp32_accuracy,
        int8_accuracy=final.accuracy,
        drop=search.drop(final),
        met=search.drop(final) <= max_drop,
        steps=search.steps,
    )


class _Search:
    """The ranking loop; every trial quantizes into a scratch folder and is recorded in ``steps``."""

    def __init__(
        self, quantizer: StaticQuantizer, x: np.ndarray, y: np.ndarray, reference: np.ndarray, batch_size: int
    ) -> None:
        self.quantizer, self.x, self.y, self.reference, self.batch_size = quantizer, x, y, reference, batch_size
        self.fp32_accuracy = float(np.mean(reference.argmax(axis=1) == y))
        self.layers = quantizer.layers()
        self.steps: list[dict[str, Any]] = []
        self._scratch = tempfile.TemporaryDirectory(prefix="accuracy-aware-")

    def drop(self, trial: _Trial) -> float:
        return self.fp32_accuracy - trial.accuracy

    def run(self, max_drop: float, max_steps: int | None) -> _Trial:
        """Search from "everything quantized" until the drop is within ``max_drop``; the final state."""
        limit = len(self.layers) if max_steps is None else min(max_steps, len(self.layers))
        try:
            state = self._measure((), "quantize_all", None)
            queue: list[str] = []  # the rest of the current ranking, best first
            while self.drop(state) > max_drop and len(state.kept) < limit:
                if queue:
                    node = queue.pop(0)
                    trial = self._measure((*state.kept, node), "keep_fp32", node)
                else:
                    ranked = self._rank(state)
                    trial, queue = ranked[0], [t.kept[-1] for t in ranked[1:]]
                    self._record(trial, "keep_fp32", trial.kept[-1])  # measured while ranking
                if not trial.better_than(state):
                    queue = []  # keeping layers in this order stopped helping: rank again next time
                state = trial
            return state
        finally:
            self._scratch.cleanup()

    def _rank(self, state: _Trial) -> list[_Trial]:
        """Every still-quantized layer kept fp32 on top of ``state``, most accuracy recovered first."""
        trials = [self._measure((*state.kept, node), "rank", node) for node in self.layers if node not in state.kept]
        return sorted(trials, key=lambda t: (-t.accuracy, t.logit_mse))

    def _measure(self, kept: tuple[str, ...], action: str, node: str | None) -> _Trial:
        path = Path(self._scratch.name) / "trial.onnx"
        self.quantizer.quantize(path, kept)
        logits = onnx_logits(path, self.x, self.batch_size)
        accuracy = float(np.mean(logits.argmax(axis=1) == self.y))
        trial = _Trial(kept, accuracy, float(np.mean((logits - self.reference) ** 2)))
        self._record(trial, action, node)
        return trial

    def _record(self, trial: _Trial, action: str, node: str | None) -> None:
        self.steps.append(
            {
                "step": len(self.steps),
                "action": action,
                "node": node,
                "kept_fp32": list(trial.kept),
                "accuracy": trial.accuracy,
                "drop": self.drop(trial),
                "logit_mse": trial.logit_mse,
            }
        )


def _check_validation(x: np.ndarray, y: np.ndarray, input_shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    x = check_calibration(x, input_shape, min_clips=1, what="validation data")
    y = np.asarray(y)
    if y.shape != (len(x),) or not np.issubdtype(y.dtype, np.integer):
        raise UserError(
            f"validation labels must be {len(x)} class indices (one per validation clip), got shape {y.shape}"
        )
    return x, y.astype(np.int64)
