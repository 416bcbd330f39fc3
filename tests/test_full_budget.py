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
    from pipeline.full_budget import DECISION, SurvivorChoice, budgeted_survivors

    cfg, run_dir, _ = searched
    (run_dir / DECISION).unlink(missing_ok=True)
    choice = budgeted_survivors(cfg, run_dir, spent_s=0.0)  # 0.6 s for the whole run: not even one survivor fits
    assert choice.survivors == 0 and "2 survivor(s) would need about" in choice.line
    assert "quantizing the baselines only" in choice.line
    assert budgeted_survivors(cfg, run_dir, spent_s=-1e9) == choice  # decided once: a resume quantizes the same
    roomy = replace(cfg, full=replace(cfg.full, max_minutes=600))
    assert budgeted_survivors(roomy, run_dir, spent_s=0.0) == SurvivorChoice(2)  # another budget decides again
    unbudgeted = replace(cfg, full=replace(cfg.full, max_minutes=None))
    assert budgeted_survivors(unbudgeted, run_dir, spent_s=1e9) == SurvivorChoice(2)  # --max-minutes 0: no budget


def test_when_one_thinned_survivor_does_not_fit_the_most_accurate_that_fits_alone_is_pinned(searched, tmp_path):
    import json
    import shutil

    from pipeline.full_budget import survivors_that_fit
    from pipeline.survivors import select_survivors

    cfg, made, _ = searched
    run_dir = shutil.copytree(made, tmp_path / "run")
    journal, pareto = run_dir / "nas" / "journal.jsonl", run_dir / "nas" / "pareto.csv"
    lines = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    members = list({line["key"]: line for line in lines}.values())[:2]  # any two candidates, as a two-member front
    assert len(members) == 2, "the small search journaled fewer than two candidates"
    with open(pareto, newline="") as f:
        header = next(csv.reader(f))
    with open(pareto, "w", newline="") as f:
        writer = csv.DictWriter(f, header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({"generation": 0, **m["metrics"], "key": m["key"], "accuracy": accuracy, "macro_f1": accuracy}
                         for m, accuracy in zip(members, (0.9, 0.8), strict=True))  # fmt: skip
    slow = members[0]["key"]  # the more accurate member trains for 100 s, the other for 1 s
    for line in lines:
        if "wall_s" in line:
            line["wall_s"] = 100.0 if line.get("key") == slow else 1.0
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))
    front = [m["key"] for m in members]
    one = replace(cfg, quantize=replace(cfg.quantize, survivors=1))
    fast = survivors_that_fit(one, run_dir, 16, left_s=1e6)
    assert fast.survivors == 1 and fast.specs == ()  # fits: crowding thinning as configured
    choice = survivors_that_fit(one, run_dir, 16, left_s=400.0)  # 100 s x epochs ratio does not fit, 1 s does
    assert choice.survivors == 1 and choice.specs == (front[1],)  # the most accurate of those that fit
    kept, rows = select_survivors(run_dir, 1, only=choice.specs)
    assert [s.spec for s in kept] == [front[1]] and sum(r["kept"] for r in rows) == 1
    assert survivors_that_fit(one, run_dir, 16, left_s=1.0).survivors == 0  # nothing fits: baselines only


def _baselines_folder(run_dir: Path, n_train: int, runs: dict[str, tuple[float, int]]) -> Path:
    """A run folder holding only what the population decision reads: the split sizes and finished baselines."""
    import json

    (run_dir / "data").mkdir(parents=True)
    (run_dir / "data" / "summary.json").write_text(json.dumps({"split_sizes": {"train": n_train}}))
    for name, (wall_s, epochs_run) in runs.items():
        (run_dir / "models" / name).mkdir(parents=True)
        record = {"model": name, "train": {"wall_s": wall_s, "epochs_run": epochs_run}}
        (run_dir / "models" / name / "run.json").write_text(json.dumps(record))
    return run_dir


def _population_config(full_minutes: float, population: int = 16, jobs: int = 2):
    return build_config(None, {
        "run": {"jobs": jobs},
        "nas": {"population": population, "proxy": {"epochs": 4, "train_subset": 0.5}},
        "train": {"epochs": 10},
        "baseline": {"models": ["tiny", "small"]},
        "quantize": {"survivors": 2},
        "full": {"max_minutes": full_minutes},
    })  # fmt: skip


def test_the_proxy_cost_of_a_candidate_comes_from_the_baselines_seconds_per_epoch(tmp_path):
    from pipeline.full_population import proxy_s_from_baselines

    # tiny: 100 s for 10 epochs; small stopped early: 60 s for 3 epochs (20 s an epoch, not 6)
    run_dir = _baselines_folder(tmp_path / "run", 100, {"tiny": (100.0, 10), "small": (60.0, 3)})
    estimates = proxy_s_from_baselines(_population_config(20), run_dir, 100)
    assert estimates == pytest.approx([10 * 4 * 0.5, 20 * 4 * 0.5])  # per epoch x proxy epochs x half the clips


def test_the_first_generation_is_sized_to_what_the_baselines_left_and_a_resume_keeps_it(tmp_path):
    from pipeline.full_budget import cost_of_proxy
    from pipeline.full_population import DECISION, PopulationChoice, budgeted_population

    run_dir = _baselines_folder(tmp_path / "run", 100, {"tiny": (100.0, 10), "small": (100.0, 10)})  # 20 s each
    cfg = _population_config(20)
    reserve_s = cost_of_proxy(cfg, [20.0], 100).total_s  # one average survivor's quantization, and the reports
    spent_s = 1200 - (4 * 20.0 + reserve_s + 1)  # 8 candidates on 2 workers: 4 waves of 20 s, and 1 s to spare
    choice = budgeted_population(cfg, run_dir, spent_s)
    assert choice.population == 8 and "a first generation of 16 would take about 160 s" in choice.line
    assert "population 8 (--nas-population" in choice.line
    assert budgeted_population(cfg, run_dir, spent_s=0.0) == choice  # decided once: a resume searches the same
    assert budgeted_population(cfg, run_dir, spent_s=1e9) == choice
    roomy = replace(cfg, full=replace(cfg.full, max_minutes=600))
    assert budgeted_population(roomy, run_dir, spent_s) == PopulationChoice(16)  # another budget decides again
    (run_dir / DECISION).unlink()
    assert budgeted_population(cfg, run_dir, spent_s=1e9).population == 4  # nothing fits: NSGA-II's smallest
    unbudgeted = _population_config(0)  # --max-minutes 0
    assert budgeted_population(unbudgeted, run_dir, spent_s=1e9) == PopulationChoice(16)  # no budget: as asked


def test_a_search_begun_without_a_decision_keeps_its_population(tmp_path):
    from pipeline.full_population import PopulationChoice, budgeted_population

    run_dir = _baselines_folder(tmp_path / "run", 100, {"tiny": (100.0, 10)})
    (run_dir / "nas").mkdir()
    (run_dir / "nas" / "journal.jsonl").write_text("")  # a search folder from before the decision existed
    (run_dir / "nas" / "checkpoint.json").write_text("{}")
    assert budgeted_population(_population_config(20), run_dir, spent_s=1e9) == PopulationChoice(16)
