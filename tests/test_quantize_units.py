"""Pieces of the quantization stage on hand-made run records: seed gaps, fair distillation pairs, config bases."""

from __future__ import annotations

import json
from pathlib import Path

from complete_pipeline import build_parser, overrides_from_args
from pipeline.api import Pipeline
from pipeline.final_training import checkpoint_of, finished_runs, model_dir
from pipeline.teacher_choice import _best_run
from pipeline.training_table import _paired_delta


def _record(name: str, seed: int, val: float, test: float, epochs: int = 10) -> dict:
    return {"model": name, "seed": seed, "spec": "c16k3s1-c32k3s2r2-c64k3s2-c128k3s2-h128d20",
            "train": {"best_val_accuracy": val, "best_val_macro_f1": val},
            "test": {"accuracy": test},
            "settings": {"train": {"epochs": epochs, "seed": seed}, "data": "d"}}  # fmt: skip


def _write(run: Path, name: str, k: int, record: dict) -> None:
    folder = model_dir(run, name, k)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps(record))


def test_seed_gaps_keep_each_run_with_its_own_folder(tmp_path):
    _write(tmp_path, "tiny", 1, _record("tiny", 1, 0.90, 0.80))
    _write(tmp_path, "tiny", 2, _record("tiny", 2, 0.95, 0.70))  # seed 0 never finished
    (tmp_path / "models" / "tiny" / "seed_old").mkdir()  # a user's folder: ignored, no traceback
    runs = finished_runs(tmp_path, "tiny")
    assert [r["seed_index"] for r in runs] == [1, 2]
    assert checkpoint_of(tmp_path, runs[0]) == tmp_path / "models" / "tiny" / "seed1" / "best.pt"
    assert _best_run(runs)["seed_index"] == 2  # the teacher is the run with the best validation accuracy


def test_distillation_pairs_only_runs_of_the_same_recipe():
    plain = [_record("tiny", 0, 0.9, 0.80), _record("tiny", 1, 0.9, 0.70, epochs=30)]
    student = [_record("tiny-kd", 0, 0.9, 0.85), _record("tiny-kd", 1, 0.9, 0.90)]
    delta, spread, n = _paired_delta(student, plain)
    assert n == 1 and abs(delta - 5.0) < 1e-9 and spread == 0.0  # seed 1's plain run had another recipe


def test_api_mapping_is_laid_over_the_run_folders_config(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"data": {"dataset": "fsdd", "path": "x"}, "train": {"epochs": 7}}))
    pipe = Pipeline({"quantize": {"survivors": 3}}, out=run)
    assert pipe.config.data.dataset == "fsdd" and pipe.config.train.epochs == 7 and pipe.config.quantize.survivors == 3


def test_flags_a_mode_does_not_read_change_nothing():
    argv = ["--mode", "quantization", "--out", "r", "--nas-generations", "50", "--epochs", "3"]
    args = build_parser().parse_args(argv)
    tree = overrides_from_args(args)
    assert tree["train"] == {"epochs": 3} and "nas" not in tree
