"""Evaluating a model on one split of the cached features.

Model selection uses ``val``; ``test`` is for the final evaluation only, and only a caller that
asks for it by name gets it (the trainer never reads the test split).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from train.device import autocast, resolve_amp, resolve_device
from train.feature_set import Features
from train.loader import SplitData
from train.metrics import classification_metrics


@torch.inference_mode()
def predict_logits(model: nn.Module, data: SplitData, batch_size: int, amp_dtype: torch.dtype | None) -> torch.Tensor:
    """Float32 logits (n, n_classes) of every row of ``data``, in order, computed in eval mode.

    The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    try:
        outs = []
        for x, _ in data.batches(batch_size):
            with autocast(data.device, amp_dtype):
                outs.append(model(x).float())
        return torch.cat(outs)
    finally:
        model.train(was_training)


def split_metrics(model: nn.Module, data: SplitData, batch_size: int, amp_dtype: torch.dtype | None) -> dict[str, Any]:
    """:func:`train.metrics.classification_metrics` of ``data`` plus the mean cross-entropy ``loss``."""
    logits = predict_logits(model, data, batch_size, amp_dtype)
    loss = float(F.cross_entropy(logits, data.y))
    y_pred = logits.argmax(dim=1).cpu().numpy()
    speakers = None if data.features.speakers is None else data.features.speakers[data.rows]
    metrics = classification_metrics(data.y.cpu().numpy(), y_pred, data.features.classes, speakers)
    return {**metrics, "loss": loss}


def evaluate_model(
    model: nn.Module,
    features: Features,
    split: str = "val",
    *,
    batch_size: int = 512,
    device: str | None = None,
    amp: str = "off",
    in_memory_max_mb: float = 1024,
) -> dict[str, Any]:
    """Metrics of ``model`` on one split: accuracy, macro-F1, per-class scores, confusion matrix, loss.

    Args:
        model: A trained classifier taking (batch, 1, n_bins, n_frames) inputs.
        features: The cached features.
        split: ``val`` for model selection; ``test`` only for the final evaluation.
        batch_size: Examples per forward pass.
        device: ``cpu``, ``cuda`` or ``auto``; None evaluates where the model's parameters are.
        amp: Autocast mode as in :class:`train.train_config.TrainConfig`; ``off`` by default, so
            final scores are full-precision ones.
        in_memory_max_mb: Largest split loaded as one tensor; larger splits are streamed.

    Returns:
        The dict of :func:`train.metrics.classification_metrics` (with ``per_speaker`` when the
        dataset records speakers), plus ``"loss"`` and ``"split"``.

    Example:
        >>> final = evaluate_model(model, features, "test")  # after selection on "val"
    """
    if device is None:
        param = next(model.parameters(), None)
        dev = param.device if param is not None else torch.device("cpu")
    else:
        dev = resolve_device(device)
    model.to(dev)
    data = SplitData(features, features.splits[split], dev, in_memory_max_mb)
    return {**split_metrics(model, data, batch_size, resolve_amp(amp, dev)), "split": split}
