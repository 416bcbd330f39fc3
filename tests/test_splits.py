"""Split protocols: stratified 70/15/15, official lists and folds, speaker-disjoint."""

from __future__ import annotations

import numpy as np
import pytest
from audio_trees import make_esc50, make_speech_commands

from common.errors import UserError
from train.data_config import DataConfig
from train.datasets import load_dataset
from train.datasets.base import Clip
from train.splits import make_splits


def _clips(n_classes=4, per_class=40, speakers=8):
    clips = [
        Clip(path=f"/x/{c}_{k}.wav", label=f"c{c}", speaker=f"s{k % speakers}")
        for c in range(n_classes)
        for k in range(per_class)
    ]
    labels = np.array([int(c.label[1:]) for c in clips])
    return clips, labels


def _check_partition(splits, n):
    allrows = np.concatenate([splits.train, splits.val, splits.test])
    assert len(allrows) == len(set(allrows.tolist())) == n


def test_stratified_70_15_15_and_deterministic():
    clips, labels = _clips()
    cfg = DataConfig(split="stratified", seed=3)
    a = make_splits(clips, labels, np.ones(len(clips), bool), cfg)
    b = make_splits(clips, labels, np.ones(len(clips), bool), cfg)
    _check_partition(a, len(clips))
    assert (len(a.train), len(a.val), len(a.test)) == (112, 24, 24)
    for rows in (a.val, a.test):  # stratified: every class equally represented
        assert set(np.bincount(labels[rows]).tolist()) == {6}
    assert all(np.array_equal(a[s], b[s]) for s in ("train", "val", "test"))
    c = make_splits(clips, labels, np.ones(len(clips), bool), DataConfig(split="stratified", seed=4))
    assert not np.array_equal(a.test, c.test)


def test_unusable_rows_are_in_no_split():
    clips, labels = _clips()
    usable = np.ones(len(clips), bool)
    usable[[0, 5, 77]] = False
    s = make_splits(clips, labels, usable, DataConfig(split="stratified"))
    _check_partition(s, len(clips) - 3)
    assert not set(np.concatenate([s.train, s.val, s.test]).tolist()) & {0, 5, 77}


def test_speaker_disjoint_holds_out_whole_speakers():
    clips, labels = _clips()
    s = make_splits(clips, labels, np.ones(len(clips), bool), DataConfig(split="speaker", seed=1))
    _check_partition(s, len(clips))
    spk = np.array([c.speaker for c in clips])
    groups = [set(spk[s[name]]) for name in ("train", "val", "test")]
    assert not (groups[0] & groups[1]) and not (groups[0] & groups[2]) and not (groups[1] & groups[2])
    assert "speaker-disjoint" in s.protocol


def test_speaker_split_without_speakers_is_refused():
    clips = [Clip(path=f"/x/{k}.wav", label=f"c{k % 2}") for k in range(20)]
    with pytest.raises(UserError, match="needs speaker ids"):
        make_splits(clips, np.arange(20) % 2, np.ones(20, bool), DataConfig(split="speaker"))


def test_official_folds_default_and_chosen(tmp_path):
    ds = load_dataset(make_esc50(tmp_path), "esc50")
    labels = np.array([ds.classes.index(c.label) for c in ds.clips])
    usable = np.ones(len(ds.clips), bool)
    s = make_splits(ds.clips, labels, usable, DataConfig())
    folds = np.array([c.fold for c in ds.clips])
    assert set(folds[s.test]) == {5} and set(folds[s.val]) == {4} and set(folds[s.train]) == {1, 2, 3}
    s2 = make_splits(ds.clips, labels, usable, DataConfig(test_fold=1, val_fold=2))
    assert set(folds[s2.test]) == {1} and set(folds[s2.val]) == {2}
    with pytest.raises(UserError, match="not a fold"):
        make_splits(ds.clips, labels, usable, DataConfig(test_fold=9))


def test_official_lists(tmp_path):
    ds = load_dataset(make_speech_commands(tmp_path), "speech_commands")
    labels = np.array([ds.classes.index(c.label) for c in ds.clips])
    s = make_splits(ds.clips, labels, np.ones(len(ds.clips), bool), DataConfig())
    assert (len(s.train), len(s.val), len(s.test)) == (6, 3, 3)
    assert all(ds.clips[i].split == "test" for i in s.test)


def test_fsdd_conventional_and_speaker_split(fsdd_path):
    ds = load_dataset(fsdd_path, "fsdd")
    labels = np.array([ds.classes.index(c.label) for c in ds.clips])
    usable = np.ones(len(ds.clips), bool)
    s = make_splits(ds.clips, labels, usable, DataConfig())
    assert len(s.test) == 300 and len(s.train) + len(s.val) == 2700
    takes = np.array([int(c.path.stem.split("_")[2]) for c in ds.clips])
    assert takes[s.test].max() == 4 and takes[s.train].min() == 5
    sp = make_splits(ds.clips, labels, usable, DataConfig(split="speaker"))
    speakers = np.array([c.speaker for c in ds.clips])
    assert len(set(speakers[sp.test])) == 1 and not set(speakers[sp.test]) & set(speakers[sp.train])
