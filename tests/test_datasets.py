"""Each loader on a small tree in its real layout, layout detection, and loader errors."""

from __future__ import annotations

import os
import time
from collections import Counter

import pytest
from audio_trees import (
    make_crema_d,
    make_csv,
    make_emodb,
    make_esc50,
    make_folders,
    make_fsdd,
    make_ravdess,
    make_speech_commands,
    make_urbansound8k,
    write_wav,
)

from common.errors import UserError
from train.datasets import detect_dataset, list_datasets, load_dataset


def test_urbansound8k_folds_labels_and_groups(tmp_path):
    ds = load_dataset(make_urbansound8k(tmp_path), "urbansound8k")
    assert ds.name == "urbansound8k"
    assert ds.classes == ["air_conditioner", "car_horn", "dog_bark"]
    assert len(ds.clips) == 10 * 3 * 2
    assert sorted({c.fold for c in ds.clips}) == list(range(1, 11))
    assert all(c.path.parent.name == f"fold{c.fold}" for c in ds.clips)
    assert all(c.speaker.startswith("fs") for c in ds.clips)


def test_esc50_folds_and_categories(tmp_path):
    ds = load_dataset(make_esc50(tmp_path), "esc50")
    assert ds.classes == ["dog", "rain", "rooster"]
    assert sorted({c.fold for c in ds.clips}) == [1, 2, 3, 4, 5]
    assert len(ds.clips) == 5 * 3 * 2


def test_speech_commands_lists_and_background_excluded(tmp_path):
    ds = load_dataset(make_speech_commands(tmp_path), "speech_commands")
    assert ds.classes == ["no", "up", "yes"]
    assert "_background_noise_" not in ds.classes
    splits = Counter(c.split for c in ds.clips)
    assert splits == {"train": 6, "val": 3, "test": 3}
    assert {c.speaker for c in ds.clips} == {"0a7c2a8d", "1b4c9b89", "2c5d0c90", "3d6e1d01"}


def test_fsdd_fixture_tree(tmp_path):
    ds = load_dataset(make_fsdd(tmp_path), "fsdd")
    assert ds.classes == ["0", "1", "2"]
    assert {c.speaker for c in ds.clips} == {"jackson", "theo", "nicolas"}
    tests = [c for c in ds.clips if c.split == "test"]
    assert len(tests) == 3 * 3 * 5  # takes 0-4
    assert all(int(c.path.stem.split("_")[2]) < 5 for c in tests)


def test_fsdd_real(fsdd_path):
    ds = load_dataset(fsdd_path, "fsdd")
    assert len(ds.clips) == 3000
    assert ds.classes == [str(d) for d in range(10)]
    assert len({c.speaker for c in ds.clips}) == 6
    assert sum(c.split == "test" for c in ds.clips) == 300


@pytest.mark.parametrize(
    ("maker", "name", "classes", "n_speakers"),
    [
        (make_crema_d, "crema_d", ["anger", "happy", "sad"], 3),
        (make_ravdess, "ravdess", ["angry", "happy", "neutral"], 3),
        (make_emodb, "emodb", ["anger", "happiness", "neutral"], 3),
    ],
)
def test_emotion_datasets_parse_file_names(tmp_path, maker, name, classes, n_speakers):
    ds = load_dataset(maker(tmp_path), name)
    assert ds.classes == classes
    assert len({c.speaker for c in ds.clips}) == n_speakers
    assert ds.has_speakers


def test_ravdess_ignores_video_only_files(tmp_path):
    ds = load_dataset(make_ravdess(tmp_path), "ravdess")
    assert all(c.path.name.startswith("03-") for c in ds.clips)
    assert len(ds.clips) == 3 * 3 * 2


def test_csv_manifest_relative_paths_speakers_folds(tmp_path):
    csv_path = make_csv(tmp_path)
    for target in (csv_path, tmp_path):  # the file itself, or the folder holding metadata.csv
        ds = load_dataset(target, "csv")
        assert ds.classes == ["high", "low", "mid"]
        assert {c.fold for c in ds.clips} == {1, 2}
        assert {c.speaker for c in ds.clips} == {"spk0", "spk1", "spk2"}
        assert all(c.path.is_file() for c in ds.clips)


def test_csv_listing_missing_file_is_recorded_not_fatal(tmp_path):
    csv_path = make_csv(tmp_path)
    csv_path.write_text(csv_path.read_text() + "clips/gone.wav,low,spk0,1\n")
    ds = load_dataset(csv_path, "csv")
    assert len(ds.missing) == 1 and ds.missing[0][0].name == "gone.wav"


def test_csv_file_listed_twice_or_without_label_is_a_user_error(tmp_path):
    csv_path = make_csv(tmp_path)
    original = csv_path.read_text()
    first = original.splitlines()[1]
    csv_path.write_text(original + "./" + first + "\n")  # the same file, spelled differently
    n_lines = len(original.splitlines()) + 1
    with pytest.raises(UserError, match=rf"line {n_lines}: \./{first.split(',')[0]} is already listed on line 2"):
        load_dataset(csv_path, "csv")
    path, _, *rest = first.split(",")
    csv_path.write_text(original.replace(first, ",".join([path, " ", *rest])))
    with pytest.raises(UserError, match="line 2: empty label"):
        load_dataset(csv_path, "csv")


def test_folders_tree(tmp_path):
    ds = load_dataset(make_folders(tmp_path), "folders")
    assert ds.classes == ["bird", "cat", "dog"]
    assert len(ds.clips) == 18


@pytest.mark.parametrize(
    ("maker", "expected"),
    [
        (make_urbansound8k, "urbansound8k"),
        (make_esc50, "esc50"),
        (make_speech_commands, "speech_commands"),
        (make_fsdd, "fsdd"),
        (make_crema_d, "crema_d"),
        (make_ravdess, "ravdess"),
        (make_emodb, "emodb"),
        (make_folders, "folders"),
    ],
)
def test_layout_detection(tmp_path, maker, expected):
    maker(tmp_path)
    assert detect_dataset(tmp_path) == expected


def test_clip_order_is_sorted_and_stable(tmp_path):
    make_folders(tmp_path)
    a = load_dataset(tmp_path, "folders").clips
    b = load_dataset(tmp_path).clips
    assert a == b
    assert [str(c.path) for c in a] == sorted(str(c.path) for c in a)


def test_every_real_layout_has_a_loader():
    for name in ("urbansound8k", "esc50", "speech_commands", "fsdd", "crema_d", "ravdess", "emodb", "csv", "folders"):
        assert name in list_datasets()


# --- errors -----------------------------------------------------------------------------


def test_missing_path(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_dataset(tmp_path / "nope")


def test_unknown_dataset_lists_known(tmp_path):
    with pytest.raises(UserError, match=r"unknown dataset 'nosuch'; known datasets: .*fsdd"):
        load_dataset(tmp_path, "nosuch")


def test_no_layout_matches_lists_expected_files(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    with pytest.raises(UserError) as err:
        load_dataset(tmp_path)
    msg = str(err.value)
    assert "metadata/UrbanSound8K.csv" in msg and "meta/esc50.csv" in msg and "testing_list.txt" in msg


def test_named_layout_mismatch_says_what_was_expected(tmp_path):
    make_folders(tmp_path)
    with pytest.raises(UserError, match=r"does not look like a 'esc50' dataset: expected meta/esc50.csv"):
        load_dataset(tmp_path, "esc50")


def test_metadata_csv_missing_column(tmp_path):
    make_urbansound8k(tmp_path, per_fold=1)
    meta = tmp_path / "metadata" / "UrbanSound8K.csv"
    lines = meta.read_text().splitlines()
    meta.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")  # drop "class"
    with pytest.raises(UserError, match=r"lacks required column\(s\) class; found columns: slice_file_name"):
        load_dataset(tmp_path, "urbansound8k")


def test_single_class_is_refused(tmp_path):
    for k in range(3):
        write_wav(tmp_path / "only" / f"{k}.wav")
    (tmp_path / "metadata.csv").write_text("file_path,label\n" + "".join(f"only/{k}.wav,a\n" for k in range(3)))
    with pytest.raises(UserError, match="at least 2 are needed"):
        load_dataset(tmp_path, "csv")


def _with_split_column(csv_path, values):
    lines = csv_path.read_text().splitlines()
    rows = [lines[0] + ",split"] + [f"{row},{values[i % len(values)]}" for i, row in enumerate(lines[1:])]
    csv_path.write_text("\n".join(rows) + "\n")


def test_csv_split_values_and_aliases_are_normalised(tmp_path):
    csv_path = make_csv(tmp_path)
    aliases = ["Train", " training", "VAL", "validation", "valid", "Dev", "test", "TESTING", ""]
    _with_split_column(csv_path, aliases)
    ds = load_dataset(csv_path, "csv")
    assert Counter(c.split for c in ds.clips) == {"train": 4, "val": 8, "test": 4, None: 2}


@pytest.mark.parametrize("bad", ["tst", "holdout", "eval"])
def test_csv_unknown_split_value_is_a_user_error(tmp_path, bad):
    csv_path = make_csv(tmp_path)
    _with_split_column(csv_path, ["train", "test", bad])
    with pytest.raises(UserError, match=rf"metadata.csv, line 4: split '{bad}' is not a split name; accepted") as info:
        load_dataset(csv_path, "csv")
    assert "train, training, val, validation, valid, dev, test, testing" in str(info.value)


def test_synthetic_generation_removes_stale_tmp_folders_only(tmp_path):
    from train.datasets.synthetic import SyntheticConfig, generate_synthetic

    parent = tmp_path / "synthetic"
    stale, young = parent / ".tmp-killed", parent / ".tmp-writing"
    for folder, age_s in ((stale, 2 * 3600), (young, 30)):
        (folder / "beep").mkdir(parents=True)
        write_wav(folder / "beep" / "beep_0000.wav")
        for path in (folder / "beep" / "beep_0000.wav", folder / "beep", folder):
            os.utime(path, (time.time() - age_s,) * 2)
    root = generate_synthetic(SyntheticConfig(n_classes=8, clips_per_class=3), tmp_path)
    assert (root / "synthetic.json").is_file() and root.parent == parent
    assert not stale.exists() and young.is_dir()
    assert sorted(p.name for p in parent.iterdir()) == sorted([root.name, young.name])
