"""Split protocols: stratified 70/15/15, official lists and folds, speaker-disjoint."""

from __future__ import annotations

import re

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


def _split_all(clips, labels, **cfg):
    return make_splits(clips, labels, np.ones(len(clips), bool), DataConfig(**cfg))


def test_too_few_clips_per_class_to_stratify_falls_back_to_random():
    clips, labels = _clips(n_classes=12, per_class=5)  # 60 clips: test 9 < 12 classes
    s = _split_all(clips, labels, split="stratified")
    _check_partition(s, 60)
    assert (len(s.train), len(s.val), len(s.test)) == (42, 9, 9)
    assert s.protocol.startswith("random (too few clips per class to stratify) 70%/15%/15%, seed 0")
    assert np.array_equal(s.test, _split_all(clips, labels, split="stratified").test)  # still deterministic
    singles, single_labels = _clips(n_classes=3, per_class=1)  # one clip per class: cannot stratify at all
    singles += [Clip(path=f"/y/{k}.wav", label="c0") for k in range(10)]
    s = _split_all(singles, np.concatenate([single_labels, np.zeros(10, int)]), split="stratified")
    _check_partition(s, 13)
    assert min(len(s.train), len(s.val), len(s.test)) >= 1


def test_enough_clips_stay_stratified():
    clips, labels = _clips(n_classes=12, per_class=20)  # 240 clips: test 36 >= 12 classes
    s = _split_all(clips, labels, split="stratified")
    assert s.protocol.startswith("stratified 70%/15%/15%")
    assert set(np.bincount(labels[s.test]).tolist()) == {3}


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_a_split_that_would_be_empty_is_a_user_error(n):
    clips, labels = _clips(n_classes=1, per_class=n)
    with pytest.raises(UserError, match=rf"dataset too small for a 70/15/15 split: {n} usable clips give .* need"):
        _split_all(clips, labels, split="stratified")


def test_smallest_dataset_the_error_names_is_enough():
    clips, labels = _clips(n_classes=1, per_class=3)
    with pytest.raises(UserError, match=r"which takes at least \d+ usable clips") as info:
        _split_all(clips, labels, split="stratified")
    need = int(re.search(r"which takes at least (\d+)", str(info.value)).group(1))
    assert need == 4
    clips, labels = _clips(n_classes=1, per_class=need)
    s = _split_all(clips, labels, split="stratified")
    assert (len(s.train), len(s.val), len(s.test)) == (2, 1, 1)


def test_official_lists_with_an_empty_split_are_a_user_error():
    clips = [Clip(path=f"/x/{k}.wav", label=f"c{k % 2}", split="val" if k < 4 else None) for k in range(20)]
    with pytest.raises(
        UserError, match=r"official \(lists\) split leaves the test split empty \(16 train, 4 val, 0 test"
    ):
        _split_all(clips, np.arange(20) % 2)
    tiny = [Clip(path=f"/x/{k}.wav", label=f"c{k % 2}", split="test" if k < 2 else None) for k in range(3)]
    with pytest.raises(
        UserError, match="dataset too small: the official lists leave 1 clip\\(s\\) outside the test list"
    ):
        _split_all(tiny, np.arange(3) % 2)


def test_official_test_list_validation_falls_back_to_random_when_needed():
    clips = [Clip(path=f"/x/{k}.wav", label=f"c{k % 12}", split="test" if k < 12 else None) for k in range(72)]
    s = _split_all(clips, np.arange(72) % 12)  # 60 rest, val 11 < 12 classes
    _check_partition(s, 72)
    assert (len(s.train), len(s.val), len(s.test)) == (49, 11, 12)
    assert s.protocol == "official test list; validation random (too few clips per class to stratify) from the rest"


def test_two_folds_leave_no_training_fold():
    clips = [Clip(path=f"/x/{k}.wav", label=f"c{k % 2}", fold=1 + k % 2) for k in range(8)]
    with pytest.raises(UserError, match=r"folds: test=2, val=1\) split leaves the train split empty"):
        _split_all(clips, np.arange(8) % 2)


def _old_speaker_groups(clips, cfg):
    """The speaker loop before the fix (both loops bounded by ``len(order) - 1``)."""
    speakers = [c.speaker for c in clips]
    order = np.random.default_rng(cfg.seed).permutation(sorted(set(speakers)))
    counts = {s: speakers.count(s) for s in order}
    groups, pos = {"test": [], "val": []}, 0
    for name, fraction in (("test", cfg.test_fraction), ("val", cfg.val_fraction)):
        while pos < len(order) - 1 and (
            not groups[name] or sum(counts[s] for s in groups[name]) < fraction * len(clips)
        ):
            groups[name].append(order[pos])
            pos += 1
    assert pos < len(order)  # why the old 'no speaker left for training' branch could never run
    return groups


def test_speaker_disjoint_always_leaves_every_split_a_speaker():
    """The test loop stops with 2 speakers left, the val loop with 1: no split is ever empty.

    Where the old loops gave a non-empty val split, the split is unchanged.
    """
    rng = np.random.default_rng(0)
    formerly_empty = 0
    for trial in range(300):
        n_speakers = int(rng.integers(3, 8))
        per_speaker = rng.integers(1, 60, size=n_speakers)
        if trial % 3 == 0:
            per_speaker[rng.integers(n_speakers)] = 500  # one speaker dominates: fractions can't be met
        clips = [
            Clip(path=f"/x/{s}_{k}.wav", label=f"c{k % 2}", speaker=f"s{s}")
            for s in range(n_speakers)
            for k in range(per_speaker[s])
        ]
        cfg = DataConfig(split="speaker", seed=trial)
        split = make_splits(clips, np.array([int(c.label[1]) for c in clips]), np.ones(len(clips), bool), cfg)
        _check_partition(split, len(clips))
        speakers = np.array([c.speaker for c in clips])
        groups = [set(speakers[split[name]]) for name in ("train", "val", "test")]
        assert all(groups) and not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
        old = _old_speaker_groups(clips, cfg)
        if old["val"]:
            assert (set(old["val"]), set(old["test"])) == (groups[1], groups[2])
        else:
            formerly_empty += 1
    assert formerly_empty > 10  # the case the fix is for does occur in this sample
