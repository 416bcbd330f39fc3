"""Classification metrics as plain-data dicts (ready for JSON), and their mean ± std over seeds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, classes: Sequence[str], speakers: np.ndarray | None = None
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class scores, confusion matrix and (optionally) per-speaker accuracy.

    Args:
        y_true: True class index per example.
        y_pred: Predicted class index per example.
        classes: Class names; index ``i`` names class ``i``.
        speakers: Speaker id per example, or None when the dataset has no speakers.

    Returns:
        ``{"n", "accuracy", "macro_f1", "per_class": {name: {"precision", "recall", "f1",
        "support"}}, "confusion_matrix": {"labels", "matrix"}}`` plus ``"per_speaker": {speaker:
        {"accuracy", "n"}}`` when speakers are given, and ``"absent_classes"``: the classes with no
        example here. Macro-F1 averages every class that has an example in ``y_true``, whatever the
        predictions: models scored on the same split always average over the same classes (a model
        that predicts an absent class is not averaged over more of them than one that does not);
        the confusion matrix has true classes as rows, predictions as columns.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or len(y_true) == 0:
        raise ValueError(f"need two equal, non-empty 1-D label arrays, got shapes {y_true.shape} and {y_pred.shape}")
    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    out: dict[str, Any] = {
        "n": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1[support > 0].mean()) if (support > 0).any() else 0.0,
        "absent_classes": [name for name, s in zip(classes, support, strict=True) if s == 0],
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f_), "support": int(s)}
            for name, p, r, f_, s in zip(classes, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": {
            "labels": list(classes),
            "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        },
    }
    if speakers is not None:
        out["per_speaker"] = per_speaker_accuracy(y_true, y_pred, speakers)
    return out


def per_speaker_accuracy(y_true: np.ndarray, y_pred: np.ndarray, speakers: np.ndarray) -> dict[str, dict[str, Any]]:
    """Accuracy of each speaker's examples: ``{speaker: {"accuracy", "n"}}``, sorted by speaker."""
    speakers = np.asarray(speakers).astype(str)
    out = {}
    for speaker in sorted(set(speakers.tolist())):
        mask = speakers == speaker
        out[speaker] = {"accuracy": float(accuracy_score(y_true[mask], y_pred[mask])), "n": int(mask.sum())}
    return out


def aggregate_metrics(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation of every numeric entry over several runs (e.g. seeds).

    Nested dicts are aggregated key by key; lists (the confusion matrix), strings and dicts
    without numbers are left out. The standard deviation is the sample one (``ddof=1``), 0.0 for a single run.

    Args:
        runs: Metric dicts of the same structure, one per run.

    Returns:
        The same nesting with ``{"mean", "std", "n"}`` at each numeric leaf, and ``"n_runs"`` at the top.

    Example:
        >>> aggregate_metrics([{"accuracy": 0.8}, {"accuracy": 0.9}])["accuracy"]["mean"]
        0.85
    """
    if not runs:
        raise ValueError("aggregate_metrics needs at least one run")
    return {"n_runs": len(runs), **_aggregate(list(runs))}


def _aggregate(dicts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    keys = list(dict.fromkeys(key for d in dicts for key in d))  # first-seen order
    for key in keys:
        values = [d[key] for d in dicts if key in d]
        if all(isinstance(v, dict) for v in values):
            nested = _aggregate(values)
            if nested:
                out[key] = nested
        elif all(isinstance(v, Real) and not isinstance(v, bool) for v in values):
            arr = np.asarray(values, dtype=np.float64)
            std = float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
            out[key] = {"mean": _round(float(arr.mean())), "std": _round(std), "n": len(arr)}
    return out


def _round(value: float) -> float:
    """Round away float noise (e.g. 0.8500000000000001) so reports print clean numbers."""
    return value if not math.isfinite(value) else round(value, 12)
