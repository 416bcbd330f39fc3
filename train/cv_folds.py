"""Cross-validation folds for final numbers: official folds, speaker-grouped k-fold, leave-one-speaker-out.

Every usable clip is in the test split of exactly one fold. Validation (model selection: the
best epoch) is carved from that fold's training clips, never from its test clips, stratified by
label. With speakers, test folds hold whole speakers; validation clips may share speakers with
training clips (they only pick the epoch).
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold, StratifiedKFold, train_test_split

from common.errors import UserError
from train.splits import Splits

log = logging.getLogger(__name__)


def parse_cv(value: str | int | None) -> str | None:
    """``official``, ``loso`` or a fold count ``K`` >= 2 (as a string); None: no cross-validation.

    Raises:
        ValueError: Anything else.
    """
    if value is None or value == "":
        return None
    text = str(value).strip().lower()
    if text in ("official", "loso"):
        return text
    if text.isdigit() and int(text) >= 2:
        return text
    raise ValueError(f"--cv (baseline.cv) must be 'official' (the dataset's folds), 'loso' (leave one speaker "
                     f"out) or a fold count >= 2, got '{value}'")  # fmt: skip


def cv_splits(
    y: np.ndarray,
    rows: np.ndarray,
    folds: np.ndarray | None,
    speakers: np.ndarray | None,
    cv: str,
    val_fraction: float,
    seed: int,
) -> list[Splits]:
    """One :class:`Splits` per fold.

    Args:
        y: Label index per clip of the dataset.
        rows: The usable clips (row indices).
        folds: Official fold number per clip (None, or -1 for a clip without one).
        speakers: Speaker (or source) per clip, or None.
        cv: From :func:`parse_cv`.
        val_fraction: Validation share of each fold's training clips.
        seed: Seed of the fold assignment and of the validation draw.

    Raises:
        UserError: ``official`` without folds on every clip, ``loso`` without speakers, fewer
            speakers than folds, or a fold too small to give validation clips.
    """
    rows = np.asarray(rows)
    if cv == "official":
        if folds is None or (folds[rows] < 0).any():
            raise UserError("--cv official needs the dataset's official folds on every clip (UrbanSound8K, ESC-50, "
                            "a CSV with a fold column); use --cv K or --cv loso instead")  # fmt: skip
        test_sets = [(f"official fold {f}", rows[folds[rows] == f]) for f in sorted(set(folds[rows].tolist()))]
        name = f"official {len(test_sets)}-fold CV"
    elif cv == "loso":
        if speakers is None:
            raise UserError("--cv loso needs speaker (or source) ids; this dataset records none: use --cv K")
        groups = speakers[rows].astype(str)
        if len(set(groups)) < 2:
            raise UserError(f"--cv loso needs at least 2 speakers; the dataset has {len(set(groups))}")
        test_sets = [(f"speaker {groups[test][0]}", rows[test])
                     for _, test in LeaveOneGroupOut().split(rows, y[rows], groups)]  # fmt: skip
        name = f"leave-one-speaker-out CV ({len(test_sets)} speakers)"
    else:
        k = int(cv)
        if speakers is not None:
            groups = speakers[rows].astype(str)
            if len(set(groups)) < k:
                raise UserError(f"--cv {k} groups whole speakers, but the dataset has {len(set(groups))}; use a "
                                "smaller K or --cv loso")  # fmt: skip
            splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
            parts = splitter.split(rows, y[rows], groups)
            name = f"speaker-grouped {k}-fold CV"
        else:
            counts = np.bincount(y[rows])
            if counts[counts > 0].min() < k:
                raise UserError(f"--cv {k}: a class has only {counts[counts > 0].min()} clip(s), fewer than the folds")
            parts = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(rows, y[rows])
            name = f"stratified {k}-fold CV (the dataset has no speakers)"
            log.warning("--cv %d: no speakers recorded, so the folds are stratified by label, not speaker-independent",
                        k)  # fmt: skip
        test_sets = [(f"fold {i + 1}", rows[test]) for i, (_, test) in enumerate(parts)]
    return [_fold(y, rows, test, f"{name}, {label} as test", val_fraction, seed) for label, test in test_sets]


def _fold(y: np.ndarray, rows: np.ndarray, test: np.ndarray, protocol: str, val_fraction: float, seed: int) -> Splits:
    rest = np.setdiff1d(rows, test)
    n_val = max(1, round(val_fraction * len(rest)))
    if len(rest) - n_val < 1 or len(test) == 0:
        raise UserError(f"{protocol}: too few clips outside the test fold ({len(rest)}) for training and validation")
    counts = np.bincount(y[rest])
    can_stratify = counts[counts > 0].min() >= 2 and min(n_val, len(rest) - n_val) >= (counts > 0).sum()
    stratify = y[rest] if can_stratify else None
    train, val = train_test_split(rest, test_size=n_val, random_state=seed, stratify=stratify)
    missing = sorted(set(y[test].tolist()) - set(y[train].tolist()))
    if missing:
        log.warning("%s: class(es) %s have test clips but no training clip in this fold", protocol, missing)
    return Splits(np.sort(train), np.sort(val), np.sort(test), protocol + "; validation stratified from the rest")
