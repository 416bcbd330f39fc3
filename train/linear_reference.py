"""A linear reference: logistic regression on pooled statistics of the cached features.

What a CNN adds is only visible beside what a linear model gets from the same features and the
same train split. Each clip's normalised features (bins x frames) are pooled over time into the
per-band mean, standard deviation and maximum; a standardised multinomial logistic regression
(scikit-learn) is fitted on the train split for each regularisation strength of a small grid,
the one with the best validation accuracy is kept (the smaller ``C`` on a tie), and it is scored
on the test split with the same metrics as the CNNs. It is deterministic and takes seconds.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from train.feature_set import Features
from train.metrics import classification_metrics

C_GRID = (0.01, 0.1, 1.0, 10.0)
STATISTICS = ("mean", "std", "max")
DESCRIPTION = "logistic regression on per-band mean, std and max over time"
_CHUNK_ROWS = 1024  # rows read from the memmap at a time


@dataclass(frozen=True)
class LinearReference:
    """The fitted reference's scores and what it is.

    Attributes:
        test: :func:`train.metrics.classification_metrics` on the test split.
        val_accuracy: Validation accuracy of the kept ``C``.
        c: The kept inverse regularisation strength.
        n_inputs: Pooled statistics per clip (3 x bins).
        params: Weights and biases of the linear layer (the scaler folds into them).
        wall_s: Pooling and fitting time.
    """

    test: dict[str, Any]
    val_accuracy: float
    c: float
    n_inputs: int
    params: int
    wall_s: float

    @property
    def size_kb(self) -> float:
        """fp32 weights and biases, in KiB."""
        return 4 * self.params / 1024

    @property
    def spec(self) -> str:
        """What the model is, in one string (stands where a CNN has its spec)."""
        return f"{DESCRIPTION} ({self.n_inputs} inputs, C={self.c:g})"


def pooled_statistics(features: Features, rows: np.ndarray) -> np.ndarray:
    """Per-band mean, std and max over time of the normalised features of ``rows``: shape (len(rows), 3 x bins)."""
    out = []
    for start in range(0, len(rows), _CHUNK_ROWS):
        x, _ = features.batch(rows[start : start + _CHUNK_ROWS])
        x = x.reshape(len(x), -1, x.shape[-1])  # (n, bins, frames)
        out.append(np.concatenate([x.mean(axis=2), x.std(axis=2), x.max(axis=2)], axis=1))
    return np.concatenate(out) if out else np.empty((0, 0), dtype=np.float32)


def fit_linear_reference(features: Features, max_iter: int = 2000) -> LinearReference:
    """Fit the reference on the train split, choose ``C`` on validation, score on test (see the module docstring).

    Raises:
        ValueError: The features are waveforms (no bands to pool), or a split is empty.
    """
    if features.config.kind == "waveform":
        raise ValueError("the linear reference pools bands over time and needs spectral features (logmel or mfcc)")
    splits = features.splits
    if not (len(splits.train) and len(splits.val) and len(splits.test)):
        raise ValueError("the linear reference needs clips in the train, validation and test splits")
    start = time.perf_counter()
    x = {name: pooled_statistics(features, getattr(splits, name)) for name in ("train", "val", "test")}
    y = {name: features.y[getattr(splits, name)] for name in ("train", "val", "test")}
    with threadpool_limits(1):  # a tiny problem: BLAS threads beside busy cores cost 100x (measured)
        val_accuracy, c, model = _best_c(x, y, max_iter)
    speakers = None if features.speakers is None else features.speakers[splits.test]
    test = classification_metrics(y["test"], model.predict(x["test"]), features.classes, speakers)
    n_inputs = x["train"].shape[1]
    params = int(model[-1].coef_.size + model[-1].intercept_.size)
    return LinearReference(test, val_accuracy, c, n_inputs, params, time.perf_counter() - start)


def _best_c(x: dict[str, np.ndarray], y: dict[str, np.ndarray], max_iter: int) -> tuple[float, float, Any]:
    """(validation accuracy, C, fitted pipeline) of the grid's best C; the smaller C on a tie."""
    best = None
    for c in C_GRID:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter bounds the time; the val score judges
            model.fit(x["train"], y["train"])
        val = float(np.mean(model.predict(x["val"]) == y["val"]))
        if best is None or val > best[0]:
            best = (val, c, model)
    return best
