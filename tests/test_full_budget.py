"""--mode full's whole-run budget: the search gives way to the quantization and reports its front will need."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import pytest
from audio_trees import make_folders

from pipeline.api import Pipeline
from pipeline.config import build_config
from pipeline.full_budget import WholeRunBudget, after_search


def _config(root: Path, tmp_path: Path, full_minutes: float):
    return build_config(None, {
        "data": {"dataset": "folders", "path": str(root), "split": "stratified"},
        "run": {"cache_dir": str(tmp_path / "cache"), "jobs": 1, "progress": False},
        "nas": {"population": 4, "generations": 2, "backend": "inline", "max_latency_ms": None,
                "proxy": {"epochs": 1}},
        "quantize": {"survivors": 2},
        "full": {"max_minutes": full_minutes},
    })  # fmt: skip


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("budget")
    root = make_folders(tmp_path / "data", per_class=8)
    cfg = _config(root, tmp_path, 0.01)  # 0.6 s for the whole run: nothing after generation 0 fits
    result, run_dir = Pipeline(cfg, out=tmp_path / "run").run_stage("nas", whole_run_spent_s=0.0)
    return cfg, run_dir, result


def test_the_search_stops_where_quantization_and_reports_would_not_fit(searched, capsys):
    _, run_dir, result = searched
    with open(run_dir / "nas" / "history.csv") as f:
        generations = [int(r["generation"]) for r in csv.DictReader(f)]
    assert generations == [0]  # 2 asked for; the whole-run budget stopped it at the first boundary
    assert not result.completed


def test_the_estimate_scales_the_proxy_times_of_the_survivors(searched):
    cfg, run_dir, _ = searched
    estimate = after_search(cfg, run_dir, n_train=16)
    assert estimate.training_s > 0 and estimate.variants_s >= 6 * cfg.full.variant_s  # 4 baselines + 2 survivors
    longer = replace(cfg, train=replace(cfg.train, epochs=2 * cfg.train.epochs))  # full training: twice the epochs
    assert after_search(longer, run_dir, n_train=16).training_s == pytest.approx(2 * estimate.training_s)
    # the proxy saw half the clips full training will see
    half = replace(cfg, nas=replace(cfg.nas, proxy=replace(cfg.nas.proxy, train_subset=0.5)))
    assert after_search(half, run_dir, n_train=16).training_s == pytest.approx(2 * estimate.training_s)


def test_the_rule_keeps_the_search_running_when_everything_fits(searched):
    cfg, run_dir, _ = searched
    roomy = replace(cfg, full=replace(cfg.full, max_minutes=600))
    rule = WholeRunBudget(roomy, run_dir, spent_before_s=60.0, n_train=16)
    assert rule({"elapsed_s": 10.0, "wall_s": 10.0}) is False and "left the search running" in rule.line()
    tight = WholeRunBudget(cfg, run_dir, spent_before_s=60.0, n_train=16)
    assert tight({"elapsed_s": 10.0, "wall_s": 10.0}) is True and "stopped the search" in tight.line()
    assert tight({}) is False  # before generation 0: nothing measured, generation 0 always runs


def test_the_quantization_takes_the_survivors_that_fit_and_a_resume_keeps_the_choice(searched):
    from pipeline.full_budget import DECISION, budgeted_survivors

    cfg, run_dir, _ = searched
    (run_dir / DECISION).unlink(missing_ok=True)
    k, line = budgeted_survivors(cfg, run_dir, spent_s=0.0)  # 0.6 s for the whole run
    assert k == 1 and "2 survivors would need about" in line and "quantizing the 1 that fit" in line
    assert budgeted_survivors(cfg, run_dir, spent_s=1e9) == (1, line)  # decided once: a resume quantizes the same
    roomy = replace(cfg, full=replace(cfg.full, max_minutes=600))
    assert budgeted_survivors(roomy, run_dir, spent_s=0.0) == (2, None)  # another budget decides again
    unbudgeted = replace(cfg, full=replace(cfg.full, max_minutes=None))
    assert budgeted_survivors(unbudgeted, run_dir, spent_s=1e9) == (2, None)  # --max-minutes 0: no budget
