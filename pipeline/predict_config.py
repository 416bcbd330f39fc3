"""Typed settings of ``--mode predict``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PredictConfig:
    """What to classify, and with which exported model."""

    model: str | None = None  # an ONNX file written by --mode quantization (its model card beside it)
    inputs: tuple[str, ...] = ()  # audio files and/or folders (searched recursively for audio files)
    batch_size: int = 64  # clips per ONNX Runtime call

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"predict.batch_size must be >= 1, got {self.batch_size}")
