"""Training checkpoints (``best.pt``, ``last.pt``): plain data and tensors, written atomically.

A checkpoint is one dict (format version 1)::

    {
        "format_version": 1,
        "spec": "c16k3s2-...",          # canonical ArchSpec string of the model
        "epoch": 7,                     # epochs completed
        "finished": False,              # all epochs run, stopped early, or diverged
        "stopped_early": False,
        "diverged": False,
        "model": state_dict, "optimizer": state_dict, "scheduler": state_dict, "scaler": state_dict,
        "best": {"epoch": 5, "val_macro_f1": 0.93, "val_accuracy": 0.94},
        "history": [{"epoch": 1, "lr": ..., "train_loss": ..., "val_macro_f1": ..., ...}, ...],
        "rng": {"numpy": bit_generator.state, "torch": ByteTensor, "cuda": ByteTensor | None},
        "config": {"train": asdict(TrainConfig), "data": {"fingerprint", "classes", "input_shape", "n_train"},
                   "distill": None or {"teacher", "temperature", "alpha"}},
    }

Files are read with ``torch.load(weights_only=True)``, so they can hold nothing but tensors and
plain Python values, and loading one never runs code. ``best.pt`` is the same dict at the epoch
of the best validation macro-F1.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common.atomic import atomic_write_bytes
from common.errors import UserError

FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "spec", "epoch", "model", "best", "history", "config")


def save_checkpoint(state: dict[str, Any], *paths: str | os.PathLike) -> None:
    """Serialise ``state`` once and write it atomically (temp file + ``os.replace``) to each path."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    for path in paths:
        atomic_write_bytes(path, data)


def load_checkpoint(path: str | os.PathLike, spec: str | None = None) -> dict[str, Any]:
    """Read a training checkpoint onto the CPU, checking its format and architecture.

    Args:
        path: A ``best.pt`` or ``last.pt`` file.
        spec: The architecture string the checkpoint must belong to; None skips the check.

    Returns:
        The checkpoint dict (see the module docstring).

    Raises:
        UserError: The file is missing, truncated or corrupt, not a checkpoint of this tool, of an
            unknown format version, or of another architecture than ``spec``.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for bad files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(
            f"checkpoint {path} is corrupt or truncated and cannot be read ({reason[:200]}); "
            "delete it to train from scratch, or restore an intact copy"
        ) from None
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        raise UserError(f"{path} is not a training checkpoint of edge-audio-nas (expected keys {list(REQUIRED_KEYS)})")
    if state["format_version"] != FORMAT_VERSION:
        raise UserError(
            f"checkpoint {path} has format_version {state['format_version']!r}; "
            f"this version reads format_version {FORMAT_VERSION}"
        )
    if spec is not None and state["spec"] != spec:
        raise UserError(
            f"checkpoint {path} belongs to architecture '{state['spec']}', but '{spec}' was expected; "
            "use that architecture's checkpoint or another output folder"
        )
    return state


def load_model_weights(model: nn.Module, path: str | os.PathLike, spec: str | None = None) -> dict[str, Any]:
    """Load a checkpoint's weights into ``model`` (e.g. ``best.pt`` before the final evaluation).

    Returns:
        The checkpoint dict, for its epoch, metrics and configs.

    Raises:
        UserError: As :func:`load_checkpoint`, or the weights do not fit the model.
    """
    state = load_checkpoint(path, spec)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise UserError(f"checkpoint {path} does not fit the given model of spec '{spec}': {first}") from None
    return state


def capture_rng(rng: np.random.Generator, device: torch.device) -> dict[str, Any]:
    """The trainer's random states: its numpy generator, torch's CPU generator and the CUDA one."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return {"numpy": rng.bit_generator.state, "torch": torch.get_rng_state(), "cuda": cuda}


def restore_rng(rng: np.random.Generator, saved: dict[str, Any], device: torch.device) -> None:
    """Inverse of :func:`capture_rng` (the CUDA state only when training on CUDA again)."""
    rng.bit_generator.state = saved["numpy"]
    torch.set_rng_state(saved["torch"])
    if device.type == "cuda" and saved.get("cuda") is not None:
        torch.cuda.set_rng_state(saved["cuda"], device)
