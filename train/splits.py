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


def _stratified(idx: np.ndarray, labels: np.ndarray, size: int, seed: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Split ``idx`` into (rest, taken, stratified), ``taken`` of ``size`` rows, stratified by label when possible.

    Stratification needs at least 2 clips of every class, and at least one clip per class on each
    side (``size`` and ``len(idx) - size`` both at least the number of classes: sklearn's own
    conditions); otherwise the split is a plain random one with the same seed, as
    :func:`train.trainer.select_train_rows` does for training subsets.

    Args:
        idx: Row indices to split.
        labels: Integer label per row of the dataset.
        size: Number of rows to take, ``0 < size < len(idx)`` (callers check).
        seed: Random seed.
    """
    if not 0 < size < len(idx):
        raise ValueError(f"cannot take {size} of {len(idx)} rows and leave some")  # callers check sizes first
    counts = np.unique(labels[idx], return_counts=True)[1]
    stratify = counts.min() >= 2 and min(size, len(idx) - size) >= len(counts)
    rest, taken = train_test_split(idx, test_size=size, random_state=seed, stratify=labels[idx] if stratify else None)
    return np.sort(rest), np.sort(taken), bool(stratify)


def _stratified_sizes(n: int, cfg: DataConfig) -> tuple[int, int, int]:
    """(train, val, test) sizes of a random split of ``n`` clips."""
    test, val = round(cfg.test_fraction * n), round(cfg.val_fraction * n)
    return n - test - val, val, test


def _check_stratified_sizes(n: int, cfg: DataConfig) -> None:
    """Refuse a random split of ``n`` clips that would leave a split empty, naming the smallest ``n`` that works."""
    sizes = _stratified_sizes(n, cfg)
    if min(sizes) >= 1:
        return
    need = next(m for m in range(n + 1, 1 << 20) if min(_stratified_sizes(m, cfg)) >= 1)
    raise UserError(
        f"dataset too small for a {_percentages(cfg)} split: {n} usable clips give {sizes[0]} train, {sizes[1]} val "
        f"and {sizes[2]} test clips; every split needs at least one, which takes at least {need} usable clips. "
        "Add clips, or change data.val_fraction / data.test_fraction"
    )


def _percentages(cfg: DataConfig) -> str:
    """``70/15/15`` for the default fractions."""
    train = 1 - cfg.val_fraction - cfg.test_fraction
    return "/".join(f"{100 * f:.0f}" for f in (train, cfg.val_fraction, cfg.test_fraction))


def _speaker_disjoint(clips: list[Clip], idx: np.ndarray, cfg: DataConfig) -> Splits:
    """Whole speakers to test, then to val, each until it holds its fraction of the clips; the rest train.

    Every split gets at least one speaker: the test loop stops with 2 speakers left and the val loop
    with 1 left (``pos`` only grows while it is below those bounds), so with at least 3 speakers the
    first speaker of the shuffled order goes to test, the next one to val, and the last one is never
    taken and trains.
    """
    speakers = np.array([clips[i].speaker for i in idx], dtype=object)
    unique = sorted(set(speakers))
    if len(unique) < 3:
        raise UserError(f"a speaker-disjoint split needs at least 3 speakers; the dataset has {len(unique)}")
    order = np.random.default_rng(cfg.seed).permutation(unique)
    counts = {s: int(np.sum(speakers == s)) for s in unique}
    total = len(idx)
    groups: dict[str, list[str]] = {"test": [], "val": []}
    pos = 0
    for name, fraction, keep in (("test", cfg.test_fraction, 2), ("val", cfg.val_fraction, 1)):
        while pos < len(order) - keep and (not groups[name] or sum(counts[s] for s in groups[name]) < fraction * total):
            groups[name].append(order[pos])
            pos += 1
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
            val_size = max(1, round(cfg.val_fraction * len(idx)))
            if val_size >= len(train):
                raise UserError(
                    f"dataset too small: the official lists leave {len(train)} clip(s) outside the test list, and "
                    f"validation ({cfg.val_fraction:.0%} of {len(idx)} clips = {val_size}) must leave at least one "
                    "for training. Add clips, or use data.split=stratified"
                )
            train, val, stratified = _stratified(train, labels, val_size, cfg.seed)
            how = "stratified" if stratified else "random (too few clips per class to stratify)"
            protocol = f"official test list; validation {how} from the rest"
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

    Random splits are stratified by label where the data allows it (at least 2 clips per class, and
    at least as many clips as classes on each side); otherwise they are plain random splits, and the
    protocol string says so.

    Raises:
        UserError: A protocol the dataset cannot support (e.g. speaker split without speakers), or a
            dataset too small to give every split at least one clip.
    """
    idx = np.flatnonzero(usable)
    if cfg.split == "speaker":
        if any(clips[i].speaker is None for i in idx):
            raise UserError("data.split=speaker needs speaker ids; this dataset does not record speakers")
        return _check_nonempty(_speaker_disjoint(clips, idx, cfg))
    if cfg.split == "official":
        official = _official(clips, idx, labels, cfg)
        if official is not None:
            return _check_nonempty(official)
    _check_stratified_sizes(len(idx), cfg)
    _, val_size, test_size = _stratified_sizes(len(idx), cfg)
    rest, test, strat_test = _stratified(idx, labels, test_size, cfg.seed)
    train, val, strat_val = _stratified(rest, labels, val_size, cfg.seed + 1)
    note = "" if cfg.split == "stratified" else " (dataset has no official split)"
    kind = "stratified" if strat_test and strat_val else "random (too few clips per class to stratify)"
    pct = f"{1 - cfg.val_fraction - cfg.test_fraction:.0%}/{cfg.val_fraction:.0%}/{cfg.test_fraction:.0%}"
    return Splits(train, val, test, f"{kind} {pct}, seed {cfg.seed}{note}")


def _check_nonempty(splits: Splits) -> Splits:
    """``splits`` itself, or a UserError when one of them is empty (official lists and folds can leave one empty)."""
    empty = [name for name in SPLITS if len(splits[name]) == 0]
    if empty:
        sizes = ", ".join(f"{len(splits[name])} {name}" for name in SPLITS)
        raise UserError(
            f"the {splits.protocol} split leaves the {' and '.join(empty)} split empty ({sizes} clips); "
            "every split needs at least one clip. Add clips to the dataset's lists or folds, or use "
            "data.split=stratified"
        )
    return splits
