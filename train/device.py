"""Device and mixed-precision choices of training and evaluation."""

from __future__ import annotations

import contextlib

import torch

from common.errors import UserError


def resolve_device(name: str) -> torch.device:
    """The torch device for ``auto`` (CUDA when available), ``cpu`` or ``cuda``.

    Raises:
        UserError: ``cuda`` was asked for on a machine without a usable CUDA device.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("train.device=cuda, but no CUDA device is available; use device=cpu or auto")
    return torch.device(name)


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``mode`` on ``device``, or None for full fp32.

    ``auto`` means bf16 on CUDA devices that support it, fp16 on other CUDA devices, and fp32 on
    the CPU (CPU autocast would make the proxy slower and results thread-dependent).

    Raises:
        UserError: ``fp16``/``bf16`` asked for on the CPU, or ``bf16`` on a GPU without it.
    """
    if mode == "off":
        return None
    if device.type != "cuda":
        if mode == "auto":
            return None
        raise UserError(f"train.amp={mode} needs a CUDA device; training runs on {device}. Use amp=auto or off")
    if mode == "fp16":
        return torch.float16
    bf16_ok = torch.cuda.is_bf16_supported()
    if mode == "bf16" and not bf16_ok:
        raise UserError(f"train.amp=bf16 is not supported by {torch.cuda.get_device_name(device)}; use fp16 or auto")
    return torch.bfloat16 if bf16_ok else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``dtype``, or a no-op context when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
