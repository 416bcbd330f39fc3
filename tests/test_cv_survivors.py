"""``--mode baseline --cv K --models ...,survivors``: the search's survivors cross-validated beside the baselines."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from audio_trees import make_csv, make_urbansound8k

from complete_pipeline import main
from pipeline.cv_stage import RESULT_COLUMNS, SUMMARY_COLUMNS
from pipeline.search_data import search_data_line, search_data_record
from pipeline.survivors import select_survivors
from train.feature_set import load_features

SEARCH = ["--nas-population", "4", "--nas-generations", "0", "--proxy-epochs", "1", "--max-latency-ms", "0.3",
          "--backend", "inline", "--jobs", "1", "--no-progress"]  # fmt: skip


def test_survivors_are_cross_validated_on_every_fold_beside_the_baselines(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    data = ["--dataset-path", str(make_csv(tmp_path / "csv", per_class=12)), "--split", "speaker",
            "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(["--mode", "nas", "--out", str(out), *data, *SEARCH]) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    record = json.loads((out / "nas" / "search_data.json").read_text())
    test_speaker = record["speakers"]["test"]
    assert len(test_speaker) == 1 and record["test_clips_never_read"] == 12  # a whole speaker, never read
    assert record["train_clips"] + record["validation_clips"] == 24
    assert "search data: " in printed and "test clips are never read by the search" in printed
    survivors, _ = select_survivors(out, 1)
    assert survivors  # the tiny search left a feasible front
    argv = ["--mode", "baseline", "--out", str(out), *data, "--cv", "loso", "--models", "tiny,survivors",
            "--survivors", "1", "--epochs", "1", "--jobs", "1", "--no-progress"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    names = [s.name for s in survivors]
    assert f"{', '.join(names)}: the search's survivors" in printed
    with open(out / "cv_results.csv") as f:
        results = list(csv.DictReader(f))
    assert sorted((r["model"], r["fold"]) for r in results if r["model"] != "linear") == sorted(
        (m, str(k)) for m in ["tiny", *names] for k in (1, 2, 3)
    )
    unread = next(f for f in {r["fold"] for r in results} if read_fold_speaker(out, f) == test_speaker[0])
    for r in results:  # the search read every clip of the other speakers (train or validation), none of its test one
        expected = "" if r["model"] in ("tiny", "linear") else ("0.0" if r["fold"] == unread else "100.0")
        assert r["search_read_test_pct"] == expected, r
    with open(out / "cv_summary.csv") as f:
        summary = {row["model"]: row for row in csv.DictReader(f)}
    for name in names:
        row = summary[name]
        assert row["reference"] == "tiny" and row["delta_accuracy_pts_mean"] != ""
        assert float(row["search_read_test_pct"]) == pytest.approx(200 / 3) and row["unread_folds"] == "1"
        on_unread = [float(r["test_accuracy"]) for r in results if r["model"] == name and r["fold"] == unread]
        assert float(row["test_accuracy_unread_folds_mean"]) == pytest.approx(on_unread[0])
        assert f"fold {unread} holds none of them" in row["protocol"]
        assert "trained or validated on 66.7% of each fold's test clips" in row["protocol"]
    assert "chosen by the search" not in summary["tiny"]["protocol"] and summary["tiny"]["unread_folds"] == ""
    for model in ("tiny", "linear"):  # the baselines' figure on the same unread fold, to compare with
        on_unread = [float(r["test_accuracy"]) for r in results if r["model"] == model and r["fold"] == unread]
        assert float(summary[model]["test_accuracy_unread_folds_mean"]) == pytest.approx(on_unread[0])
    assert "on the fold(s) the search never read: test accuracy" in printed
    spec = next(s.spec for s in survivors if s.name == names[0])
    assert (out / "cv" / "fold1" / "models" / names[0] / "run.json").read_text().count(spec) >= 1
    legend = json.loads((out / "columns.json").read_text())
    for table, columns in (("cv_results.csv", RESULT_COLUMNS), ("cv_summary.csv", SUMMARY_COLUMNS)):
        assert [c for c in columns if c not in legend[table] and not c.endswith("_std")] == [], table

    # a run from before nas/search_data.json: the engine's search.json still names the search's data
    (out / "nas" / "search_data.json").unlink()
    assert main([*argv, "--resume"]) == 0, capsys.readouterr().err  # every unit reused
    with open(out / "cv_summary.csv") as f:
        assert float(next(r for r in csv.DictReader(f) if r["model"] == names[0])["unread_folds"]) == 1
    # a refused resume writes nothing of its own into nas/
    before = {p.name: p.read_bytes() for p in (out / "nas").iterdir() if p.is_file()}
    bigger = [*SEARCH]
    bigger[bigger.index("--nas-population") + 1] = "8"
    assert main(["--mode", "nas", "--out", str(out), *data, *bigger, "--resume"]) == 2
    assert {p.name: p.read_bytes() for p in (out / "nas").iterdir() if p.is_file()} == before


def read_fold_speaker(run_dir: Path, fold: str) -> str:
    """The (one) test speaker of a leave-one-speaker-out fold, from its data record."""
    with open(run_dir / "cv" / f"fold{fold}" / "data" / "clips.csv") as f:
        return {r["speaker"] for r in csv.DictReader(f) if r["split"] == "test"}.pop()


def test_survivors_without_cv_or_without_a_search_are_one_line_errors(cli_error, tmp_path: Path) -> None:
    assert "'survivors' needs --cv" in cli_error(["--mode", "baseline", "--models", "survivors"])
    message = cli_error(["--mode", "baseline", "--cv", "2", "--models", "tiny,survivors", "--out", str(tmp_path)])
    assert "holds no search with a feasible front" in message and "--mode nas" in message
    assert "or 'survivors'" in cli_error(["--mode", "baseline", "--models", "tiny,huge"])


def test_the_search_data_record_names_the_folds_of_an_official_split(tmp_path: Path) -> None:
    root = make_urbansound8k(tmp_path / "us8k")
    run = tmp_path / "run"
    assert main(["--mode", "features", "--dataset-path", str(root), "--out", str(run), "--cache-dir",
                 str(tmp_path / "cache"), "--no-progress"]) == 0  # fmt: skip
    features = load_features(run)
    record = search_data_record(run, features, proxy_train_clips=10)
    assert record["folds"] == {"train": [str(f) for f in range(1, 9)], "validation": ["9"], "test": ["10"]}
    assert "speakers" not in record  # the split is by fold (the sources happen to be disjoint too)
    assert record["test_clips_never_read"] == len(features.splits.test) == 6
    line = search_data_line(record)
    assert "(each proxy draws 10)" in line and "folds: train 1, 2, 3, 4, 5, 6, 7, 8 | validation 9 | test 10" in line
