"""Device, mixed-precision and determinism choices of training and evaluation."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

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

    ``auto`` means bf16 on CUDA devices with native bf16 (compute capability >= 8.0: Ampere, Ada,
    Hopper), fp16 on older CUDA devices, and fp32 on the CPU (CPU autocast would make the proxy
    slower and results thread-dependent).

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
    # Native bf16 needs compute capability 8.0 (Ampere); is_bf16_supported() also says True where
    # torch only emulates it (T4, V100), which is slow and lacks cuDNN bf16 convolutions.
    bf16_ok = torch.cuda.get_device_capability(device) >= (8, 0)
    if mode == "bf16" and not bf16_ok:
        raise UserError(f"train.amp=bf16 is not supported by {torch.cuda.get_device_name(device)}; use fp16 or auto")
    return torch.bfloat16 if bf16_ok else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for ``dtype``, or a no-op context when ``dtype`` is None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


CUBLAS_WORKSPACE_CONFIG = ":4096:8"  # what cuBLAS needs for deterministic results (CUDA >= 10.2)


@contextlib.contextmanager
def cuda_determinism(enabled: bool, device: torch.device) -> Iterator[None]:
    """Deterministic GPU kernels for the duration of the block, when training on CUDA.

    On a CUDA ``device`` with ``enabled``: sets ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` unless the
    environment already sets it (``os.environ.setdefault``; it is left set afterwards), then
    ``torch.backends.cudnn.deterministic = True``, ``torch.backends.cudnn.benchmark = False`` and
    ``torch.use_deterministic_algorithms(True, warn_only=True)``; the three torch settings are
    restored on exit, also on an error. Elsewhere (CPU, or ``enabled`` False) it changes nothing:
    CPU kernels are deterministic for a fixed thread count anyway.

    Limitations:
        * cuBLAS reads ``CUBLAS_WORKSPACE_CONFIG`` when the process first uses it (PyTorch fixes
          its cuBLAS workspace then). Set here, it takes effect only if nothing in this process ran
          a CUDA matmul before the block; a caller that did (e.g. moved a model to the GPU and ran
          it) must export ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` before starting Python.
        * ``warn_only=True``: an op without a deterministic CUDA kernel warns instead of failing.
          The backward of adaptive average pooling (the head and SE gates of every search-space
          model) is such an op, so GPU runs are much closer to repeatable, not bit-identical.
        * The settings are process-wide: another thread training on the GPU at the same time sees
          them too.

    Args:
        enabled: ``TrainConfig.deterministic``.
        device: The training device.
    """
    if not enabled or device.type != "cuda":
        yield
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE_CONFIG)
    cudnn = torch.backends.cudnn
    saved = (
        cudnn.deterministic,
        cudnn.benchmark,
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    cudnn.deterministic, cudnn.benchmark = True, False
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = saved[0], saved[1]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])
