"""The feature cache: hit on the second run, invalidation on file or setting changes, bad files skipped,
temporary folders of killed runs removed."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from audio_trees import make_folders, write_wav

from train.datasets import load_dataset
from train.feature_cache import extract_features
from train.features import FeatureConfig
from train.tmp_dirs import remove_stale_tmp_dirs

CFG = FeatureConfig(clip_seconds=0.5)


def _extract(root, cache, cfg=CFG, jobs=1):
    return extract_features(load_dataset(root, "folders"), cfg, cache, jobs=jobs, progress=False)


def test_second_run_hits_the_cache(tmp_path):
    root = make_folders(tmp_path / "data")
    first = _extract(root, tmp_path / "cache")
    second = _extract(root, tmp_path / "cache")
    assert not first.hit and second.hit and first.key == second.key
    assert isinstance(second.x, np.memmap)
    assert np.array_equal(np.asarray(first.x), np.asarray(second.x))
    assert second.x.shape == (18, *CFG.shape) and second.valid.all()


@pytest.mark.parametrize("damage", ["truncate_features", "empty_valid", "garbled_index", "missing_index"])
def test_damaged_cache_is_moved_aside_and_extracted_again(tmp_path, caplog, damage):
    root = make_folders(tmp_path / "data")
    first = _extract(root, tmp_path / "cache")
    expected = np.array(first.x)
    folder = first.folder
    del first
    if damage == "truncate_features":
        data = (folder / "features.npy").read_bytes()
        (folder / "features.npy").write_bytes(data[: len(data) // 2])
    elif damage == "empty_valid":
        (folder / "valid.npy").write_bytes(b"")
    elif damage == "garbled_index":
        (folder / "index.json").write_text('{"key": ')
    else:
        (folder / "index.json").unlink()
    again = _extract(root, tmp_path / "cache")
    assert not again.hit and again.folder == folder
    aside = list(folder.parent.glob(f".tmp-{folder.name}-damaged-*/cache"))
    assert len(aside) == 1 and (aside[0] / "features.npy").exists()  # moved, not deleted
    assert np.array_equal(np.asarray(again.x), expected)
    assert "was damaged" in caplog.text and str(folder) in caplog.text
    assert _extract(root, tmp_path / "cache").hit


def test_parallel_extraction_equals_sequential(tmp_path):
    root = make_folders(tmp_path / "data", per_class=30)  # > one chunk, so joblib workers run
    seq = _extract(root, tmp_path / "c1", jobs=1)
    par = _extract(root, tmp_path / "c2", jobs=2)
    assert np.array_equal(np.asarray(seq.x), np.asarray(par.x))


def test_changed_file_invalidates(tmp_path):
    root = make_folders(tmp_path / "data")
    first = _extract(root, tmp_path / "cache")
    target = root / "cat" / "cat_0.wav"
    write_wav(target, 2000)
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 10**9))
    second = _extract(root, tmp_path / "cache")
    assert not second.hit and second.key != first.key
    row = [c.path.name for c in load_dataset(root, "folders").clips].index("cat_0.wav")
    assert not np.array_equal(np.asarray(first.x[row]), np.asarray(second.x[row]))


def test_added_file_and_changed_config_invalidate(tmp_path):
    root = make_folders(tmp_path / "data")
    first = _extract(root, tmp_path / "cache")
    write_wav(root / "dog" / "dog_new.wav", 900)
    assert _extract(root, tmp_path / "cache").key != first.key
    other = _extract(root, tmp_path / "cache", cfg=FeatureConfig(clip_seconds=0.5, n_mels=64))
    assert not other.hit and other.x.shape[1] == 64
    normed = _extract(root, tmp_path / "cache", cfg=FeatureConfig(clip_seconds=0.5, clip_norm="mean"))
    assert not normed.hit and normed.key != first.key
    np.testing.assert_allclose(np.asarray(normed.x).mean(axis=2), 0.0, atol=1e-3)


def test_bad_files_are_skipped_and_listed(tmp_path):
    root = make_folders(tmp_path / "data")
    (root / "dog" / "dog_broken.wav").write_bytes(b"")
    cache = _extract(root, tmp_path / "cache")
    assert cache.valid.sum() == 18 and (~cache.valid).sum() == 1
    assert len(cache.skipped) == 1 and cache.skipped[0][0].endswith("dog_broken.wav")
    assert "empty" in cache.skipped[0][1]
    again = _extract(root, tmp_path / "cache")
    assert again.hit and again.skipped == cache.skipped


def test_interrupted_extraction_leaves_no_cache_entry(tmp_path):
    root = make_folders(tmp_path / "data")
    _extract(root, tmp_path / "cache")
    entries = [p.name for p in (tmp_path / "cache" / "features").iterdir()]
    assert len(entries) == 1 and not entries[0].startswith(".tmp")


def _folder(path, age_s: float, file_age_s: float | None = None):
    """A folder holding one file, with modification times ``age_s`` ago (the file: ``file_age_s``)."""
    path.mkdir(parents=True)
    (path / "features.npy").write_bytes(b"partial")
    now = time.time()
    file_t = now - (age_s if file_age_s is None else file_age_s)
    os.utime(path / "features.npy", (file_t, file_t))
    os.utime(path, (now - age_s, now - age_s))
    return path


def test_stale_tmp_folders_of_killed_runs_are_removed_young_ones_kept(tmp_path):
    features = tmp_path / "cache" / "features"
    stale = _folder(features / ".tmp-abc-killed", age_s=2 * 3600)
    young = _folder(features / ".tmp-abc-writing", age_s=60)
    old_dir_new_file = _folder(features / ".tmp-abc-slow", age_s=2 * 3600, file_age_s=10)  # still written to
    old_entry = _folder(features / "0123456789abcdef0123", age_s=5 * 3600)  # a cache entry, not a temp folder
    root = make_folders(tmp_path / "data")
    _extract(root, tmp_path / "cache")
    assert not stale.exists()
    assert young.is_dir() and old_dir_new_file.is_dir() and old_entry.is_dir()
    assert not list(features.glob(".tmp-*-*/index.json"))  # this run's own temp folder was renamed away
    _extract(root, tmp_path / "cache")  # a cache hit cleans up too


def test_remove_stale_tmp_dirs_rules(tmp_path):
    stale = _folder(tmp_path / ".tmp-1", age_s=3700)
    edge = _folder(tmp_path / ".tmp-2", age_s=3500)
    other = _folder(tmp_path / "tmp-3", age_s=9999)  # no leading '.tmp-': not ours
    (tmp_path / ".tmp-file").write_text("x")  # a file, not a folder
    os.utime(tmp_path / ".tmp-file", (0, 0))
    assert remove_stale_tmp_dirs(tmp_path) == [stale]
    assert edge.exists() and other.exists() and (tmp_path / ".tmp-file").exists()
    assert remove_stale_tmp_dirs(tmp_path / "missing") == []
    assert remove_stale_tmp_dirs(tmp_path, now=time.time() + 3600) == [edge]


def test_the_crop_count_is_exactly_the_clips_cropped():
    """A clip one sample longer than the clip length is cropped and counted; one exactly as long is not."""
    from train.feature_cache import _durations
    from train.features import FeatureConfig

    cfg = FeatureConfig(clip_seconds=1.0)
    seconds = [(cfg.n_samples + 1) / cfg.sample_rate, cfg.n_samples / cfg.sample_rate, 1.05, 0.5]
    assert _durations(seconds, cfg)["n_cropped"] == 2
