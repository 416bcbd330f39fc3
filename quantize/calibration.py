"""Calibration data for static INT8 quantization: validated clips, fed to ONNX Runtime in batches."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from common.errors import UserError

DEFAULT_MIN_CLIPS = 8


def check_calibration(
    x: np.ndarray, input_shape: Sequence[int], min_clips: int = DEFAULT_MIN_CLIPS, what: str = "calibration data"
) -> np.ndarray:
    """``x`` as a contiguous float32 array after checking that it can calibrate a model.

    Args:
        x: Normalised model inputs, shape ``(n, *input_shape)``.
        input_shape: The model's per-example input shape.
        min_clips: Fewest clips accepted: activation ranges from a handful of clips do not
            represent the data.
        what: Name of the data in messages.

    Raises:
        UserError: Wrong shape, fewer than ``min_clips`` clips, or NaN/infinite values; the
            message says what was expected.
    """
    expected = tuple(int(d) for d in input_shape)
    arr = np.asarray(x)
    shown = f"(n, {', '.join(map(str, expected))})"
    if arr.ndim != len(expected) + 1 or arr.shape[1:] != expected:
        raise UserError(f"{what} must have shape {shown} (the model's input per clip, stacked), got {arr.shape}")
    if len(arr) < min_clips:
        raise UserError(f"{what} has {len(arr)} clips; at least {min_clips} are needed to calibrate activation ranges")
    if not np.issubdtype(arr.dtype, np.number):
        raise UserError(f"{what} must be numeric, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    bad = int((~np.isfinite(arr)).reshape(len(arr), -1).any(axis=1).sum())
    if bad:
        raise UserError(
            f"{what} has NaN or infinite values in {bad} of {len(arr)} clips; pass finite, normalised inputs"
        )
    return arr


class ArrayCalibrationReader(CalibrationDataReader):
    """Feeds the rows of an array to ONNX Runtime's calibrator, ``batch_size`` clips per run.

    Args:
        x: Validated inputs (see :func:`check_calibration`).
        input_name: Name of the model's graph input.
        batch_size: Clips per calibration run (the model's fixed batch size if it has one).
    """

    def __init__(self, x: np.ndarray, input_name: str, batch_size: int = 32) -> None:
        self._x = x
        self._input_name = input_name
        self._batch_size = batch_size
        self._start, self._end = 0, len(x)

    def get_next(self) -> dict[str, np.ndarray] | None:
        """The next batch as an ORT feed, or None when the data is used up."""
        if self._start >= self._end:
            return None
        stop = min(self._start + self._batch_size, self._end)
        feed = {self._input_name: self._x[self._start : stop]}
        self._start = stop
        return feed

    def __len__(self) -> int:
        return len(self._x)

    def set_range(self, start_index: int, end_index: int) -> None:
        """Restrict the reader to rows ``start_index:end_index`` (ORT's strided calibration)."""
        self._start, self._end = start_index, min(end_index, len(self._x))
