"""Cross-validated baselines: fold bookkeeping on generated trees, a killed CV run resumed, paired statistics."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from audio_trees import make_csv, make_esc50, make_folders, make_urbansound8k
from scipy.stats import wilcoxon

from common.errors import UserError
from pipeline.cv_stage import summarise
from train.cv_folds import cv_splits, parse_cv
from train.datasets import load_dataset

REPO = Path(__file__).resolve().parents[1]


def _arrays(root: Path):
    ds = load_dataset(root)
    y = np.array([ds.classes.index(c.label) for c in ds.clips])
    folds = np.array([c.fold if c.fold is not None else -1 for c in ds.clips])
    speakers = np.array([c.speaker for c in ds.clips], dtype=object) if ds.has_speakers else None
    return y, np.arange(len(y)), folds, speakers


def _check_partition(splits, rows) -> None:
    tested = np.concatenate([s.test for s in splits])
    assert sorted(tested.tolist()) == sorted(rows.tolist())  # every clip tested exactly once
    for s in splits:
        assert not set(s.train) & set(s.test) and not set(s.val) & set(s.test) and not set(s.train) & set(s.val)
        assert len(s.train) + len(s.val) + len(s.test) == len(rows)


def test_official_folds_each_test_once_and_validation_never_from_the_test_fold(tmp_path):
    y, rows, folds, speakers = _arrays(make_urbansound8k(tmp_path / "us8k"))
    splits = cv_splits(y, rows, folds, speakers, "official", 0.15, 0)
    assert len(splits) == 10
    _check_partition(splits, rows)
    for f, s in enumerate(splits, start=1):
        assert set(folds[s.test]) == {f} and f not in set(folds[s.train]) | set(folds[s.val])
        assert s.protocol.startswith(f"official 10-fold CV, official fold {f} as test")


def test_speaker_folds_keep_every_speaker_on_one_side(tmp_path):
    y, rows, folds, speakers = _arrays(make_csv(tmp_path / "csv", per_class=6))  # speakers spk0..spk2
    for cv in ("3", "loso"):
        splits = cv_splits(y, rows, folds, speakers, parse_cv(cv), 0.15, 0)
        assert len(splits) == 3
        _check_partition(splits, rows)
        for s in splits:
            assert not set(speakers[s.test]) & set(speakers[s.train])
    with pytest.raises(UserError, match="groups whole speakers, but the dataset has 3"):
        cv_splits(y, rows, folds, speakers, "4", 0.15, 0)


def test_protocols_a_dataset_cannot_support_are_refused_or_said(tmp_path, caplog):
    y, rows, folds, speakers = _arrays(make_folders(tmp_path / "f", per_class=6))
    with pytest.raises(UserError, match="--cv official needs the dataset's official folds"):
        cv_splits(y, rows, folds, speakers, "official", 0.15, 0)
    with pytest.raises(UserError, match="--cv loso needs speaker"):
        cv_splits(y, rows, folds, speakers, "loso", 0.15, 0)
    with caplog.at_level("WARNING"):
        splits = cv_splits(y, rows, folds, speakers, "3", 0.15, 0)
    assert "not speaker-independent" in caplog.text and splits[0].protocol.startswith("stratified 3-fold CV")
    _check_partition(splits, rows)
    for bad in ("1", "two", "0"):
        with pytest.raises(ValueError, match=r"must be .official."):
            parse_cv(bad)


def test_paired_comparison_over_the_same_folds_and_seeds():
    acc_a = [0.80, 0.70, 0.90, 0.60, 0.75]
    acc_b = [0.85, 0.72, 0.97, 0.61, 0.80]
    results = [{"model": m, "fold": f, "seed": 0, "test_accuracy": a, "test_macro_f1": a}
               for m, accs in (("a", acc_a), ("b", acc_b)) for f, a in enumerate(accs, start=1)]  # fmt: skip
    rows = {r["model"]: r for r in summarise(results, ["a", "b"], "official 5-fold CV")}
    assert rows["a"]["test_accuracy_mean"] == pytest.approx(np.mean(acc_a))
    assert rows["a"]["test_accuracy_std"] == pytest.approx(np.std(acc_a, ddof=1))
    assert rows["b"]["delta_accuracy_pts_mean"] == pytest.approx(100 * np.mean(np.subtract(acc_b, acc_a)))
    assert rows["b"]["wilcoxon_p"] == pytest.approx(wilcoxon(np.subtract(acc_b, acc_a)).pvalue)
    assert rows["a"]["wilcoxon_p"] is None and rows["b"]["protocol"].endswith("mean +- std over folds and seeds")
    assert "linear" not in rows and rows["a"]["delta_vs_linear_pts_mean"] is None


def test_paired_comparison_with_the_linear_reference_fold_by_fold():
    acc_a = {(1, 0): 0.80, (1, 1): 0.90, (2, 0): 0.70, (2, 1): 0.60, (3, 0): 0.95, (3, 1): 0.85}
    linear = [0.50, 0.70, 0.80]
    results = [{"model": "a", "fold": f, "seed": k, "test_accuracy": v, "test_macro_f1": v}
               for (f, k), v in acc_a.items()]  # fmt: skip
    results += [{"model": "linear", "fold": f, "seed": "", "test_accuracy": v, "test_macro_f1": v}
                for f, v in enumerate(linear, start=1)]  # fmt: skip
    rows = {r["model"]: r for r in summarise(results, ["a"], "leave-one-speaker-out CV")}
    per_fold = np.array([0.85, 0.65, 0.90]) - linear  # seeds averaged within each fold first
    assert rows["a"]["delta_vs_linear_pts_mean"] == pytest.approx(100 * per_fold.mean())
    assert rows["a"]["wilcoxon_p_vs_linear"] == pytest.approx(wilcoxon(per_fold).pvalue)
    assert rows["linear"]["folds"] == 3 and rows["linear"]["seeds"] == 1
    assert rows["linear"]["test_accuracy_mean"] == pytest.approx(np.mean(linear))


def test_a_killed_cv_run_resumes_without_training_a_finished_unit_again(tmp_path):
    root = make_urbansound8k(tmp_path / "us8k")
    argv = [sys.executable, str(REPO / "complete_pipeline.py"), "--mode", "baseline", "--dataset-path", str(root),
            "--cv", "official", "--models", "dscnn,tiny", "--epochs", "2", "--jobs", "1",
            "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list((tmp_path / "run" / "cv").glob("fold*/models/*/run.json"))) < 2:
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p: p.stat().st_mtime_ns for p in (tmp_path / "run" / "cv").glob("fold*/models/*/run.json")}
    assert 2 <= len(finished) < 20
    done = subprocess.run([*argv, "--resume"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())  # finished units were not trained again
    with open(tmp_path / "run" / "cv_results.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["model"], int(r["fold"])) for r in rows) == sorted((m, f) for m in ("dscnn", "tiny", "linear")
                                                                        for f in range(1, 11))  # fmt: skip
    assert "official 10-fold CV" in done.stdout and "vs dscnn" in done.stdout and "vs linear" in done.stdout


def test_official_cv_on_an_esc50_tree_trains_and_tests_one_model_per_fold(tmp_path, capsys):
    from complete_pipeline import main

    root = make_esc50(tmp_path / "esc50", per_fold=3)
    argv = ["--mode", "baseline", "--dataset-path", str(root), "--cv", "official", "--models", "tiny", "--epochs",
            "1", "--jobs", "1", "--out", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    with open(tmp_path / "run" / "cv_results.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["model"], int(r["fold"])) for r in rows) == [(m, k) for m in ("linear", "tiny")
                                                                  for k in range(1, 6)]  # fmt: skip
    for k in range(1, 6):  # fold k's test clips are exactly ESC-50's official fold k
        with open(tmp_path / "run" / "cv" / f"fold{k}" / "data" / "clips.csv") as f:
            clips = list(csv.DictReader(f))
        assert {c["fold"] for c in clips if c["split"] == "test"} == {str(k)}
        assert str(k) not in {c["fold"] for c in clips if c["split"] in ("train", "val")}
    assert "official 5-fold CV" in printed and "over 5 fold(s) x 1 seed(s)" in printed
