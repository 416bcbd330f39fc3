"""Train/val/test splits: official lists and folds, stratified random, or speaker-disjoint.

The test split is for final evaluation only: the search and all model selection use train and
val. Every split is deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from common.errors import UserError
from train.data_config import DataConfig
from train.datasets.base import Clip

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Splits:
    """Row indices (into the dataset's clip list) of each split, plus how they were made."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    protocol: str  # what was actually used, e.g. "official (folds: test=10, val=9)"

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise KeyError(f"unknown split '{name}'; splits: {', '.join(SPLITS)}")
        return getattr(self, name)

    def name_of(self, n_rows: int) -> np.ndarray:
        """Split name per row (``""`` for rows in no split, e.g. unreadable files)."""
        names = np.full(n_rows, "", dtype=object)
        for name in SPLITS:
            names[self[name]] = name
        return names


def _stratified(idx: np.ndarray, labels: np.ndarray, size: float | int, seed: int):
    """Split ``idx`` into (rest, taken) with ``taken`` stratified by label where possible."""
    counts = np.unique(labels[idx], return_counts=True)[1]
    stratify = labels[idx] if counts.min() >= 2 else None
    rest, taken = train_test_split(idx, test_size=size, random_state=seed, stratify=stratify)
    return np.sort(rest), np.sort(taken)


def _speaker_disjoint(clips: list[Clip], idx: np.ndarray, cfg: DataConfig) -> Splits:
    speakers = np.array([clips[i].speaker for i in idx], dtype=object)
    unique = sorted(set(speakers))
    if len(unique) < 3:
        raise UserError(f"a speaker-disjoint split needs at least 3 speakers; the dataset has {len(unique)}")
    order = np.random.default_rng(cfg.seed).permutation(unique)
    counts = {s: int(np.sum(speakers == s)) for s in unique}
    total = len(idx)
    groups: dict[str, list[str]] = {"test": [], "val": []}
    pos = 0
    for name, fraction in (("test", cfg.test_fraction), ("val", cfg.val_fraction)):
        while pos < len(order) - 1 and (not groups[name] or sum(counts[s] for s in groups[name]) < fraction * total):
            groups[name].append(order[pos])
            pos += 1
    if pos >= len(order):
        raise UserError("a speaker-disjoint split left no speaker for training; lower data.val_fraction")
    test = idx[np.isin(speakers, groups["test"])]
    val = idx[np.isin(speakers, groups["val"])]
    train = idx[~np.isin(speakers, groups["test"] + groups["val"])]
    protocol = f"speaker-disjoint (test: {', '.join(groups['test'])}; val: {', '.join(groups['val'])})"
    return Splits(train, val, test, protocol)


def _official(clips: list[Clip], idx: np.ndarray, labels: np.ndarray, cfg: DataConfig) -> Splits | None:
    split = np.array([clips[i].split for i in idx], dtype=object)
    if any(s is not None for s in split):
        test = idx[split == "test"]
        val = idx[split == "val"]
        train = idx[(split != "test") & (split != "val")]
        protocol = "official (lists)"
        if len(val) == 0:
            val_size = round(cfg.val_fraction * len(idx))
            train, val = _stratified(train, labels, val_size, cfg.seed)
            protocol = "official test list; validation stratified from the rest"
        return Splits(train, val, test, protocol)
    folds = np.array([clips[i].fold if clips[i].fold is not None else -1 for i in idx])
    if (folds >= 0).all():
        known = sorted(set(folds.tolist()))
        test_fold = cfg.test_fold if cfg.test_fold is not None else known[-1]
        if test_fold not in known:
            raise UserError(f"data.test_fold={test_fold} is not a fold of this dataset; folds: {known}")
        val_fold = cfg.val_fold if cfg.val_fold is not None else known[known.index(test_fold) - 1]
        if val_fold not in known:
            raise UserError(f"data.val_fold={val_fold} is not a fold of this dataset; folds: {known}")
        if test_fold == val_fold:
            raise UserError("data.test_fold and data.val_fold must differ")
        train = idx[(folds != test_fold) & (folds != val_fold)]
        return Splits(
            train,
            idx[folds == val_fold],
            idx[folds == test_fold],
            f"official (folds: test={test_fold}, val={val_fold})",
        )
    return None


def make_splits(clips: list[Clip], labels: np.ndarray, usable: np.ndarray, cfg: DataConfig) -> Splits:
    """Assign each usable clip to train, val or test.

    Args:
        clips: The dataset's clips.
        labels: Integer label per clip.
        usable: Boolean mask of clips that have features (unreadable files are left out).
        cfg: Split protocol, fractions, folds and seed.

    Raises:
        UserError: A protocol the dataset cannot support (e.g. speaker split without speakers).
    """
    idx = np.flatnonzero(usable)
    if cfg.split == "speaker":
        if any(clips[i].speaker is None for i in idx):
            raise UserError("data.split=speaker needs speaker ids; this dataset does not record speakers")
        return _speaker_disjoint(clips, idx, cfg)
    if cfg.split == "official":
        official = _official(clips, idx, labels, cfg)
        if official is not None:
            return official
    test_size = round(cfg.test_fraction * len(idx))
    val_size = round(cfg.val_fraction * len(idx))
    rest, test = _stratified(idx, labels, test_size, cfg.seed)
    train, val = _stratified(rest, labels, val_size, cfg.seed + 1)
    note = "" if cfg.split == "stratified" else " (dataset has no official split)"
    pct = f"{1 - cfg.val_fraction - cfg.test_fraction:.0%}/{cfg.val_fraction:.0%}/{cfg.test_fraction:.0%}"
    return Splits(train, val, test, f"stratified {pct}, seed {cfg.seed}{note}")
