"""Variation operators: bounds and gene kinds (property tests), settings, determinism, resume, toy quality."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from deap import tools
from hypothesis import given, settings
from hypothesis import strategies as st
from kill_helpers import kill_when_lines

from common.errors import UserError
from nas.config import SearchConfig
from nas.history import without_timing
from nas.operators import DEFAULT_VARIATION, VARIATIONS, GeneLayout, build_variation
from nas.problem import validate_problem
from nas.search import run_search
from nas.toy import InterruptingToy, ToyProblem, read_calls

FAST = {"population": 16, "generations": 8, "backend": "inline"}
NAMES = list(VARIATIONS)


def search(run_dir: Path, problem: ToyProblem | None = None, resume: bool = False, on_generation=None, **fields: Any):
    config = SearchConfig(**{**FAST, **fields})
    problem = problem or ToyProblem()
    return run_search(problem, config, run_dir, resume=resume, progress=False, on_generation=on_generation)


def same_run(a, b) -> None:
    assert a.pareto == b.pareto
    assert without_timing(a.history) == without_timing(b.history)
    assert (a.n_evaluations, a.n_full_evaluations, a.n_cache_hits) == (b.n_evaluations, b.n_full_evaluations,
                                                                       b.n_cache_hits)  # fmt: skip


# --- property tests: bounds and kinds ------------------------------------------------------------------

layouts = st.lists(
    st.tuples(st.integers(0, 12), st.sampled_from(["ordinal", "categorical"])), min_size=1, max_size=12
).map(lambda genes: GeneLayout(tuple(b for b, _ in genes), tuple(k for _, k in genes)))


@st.composite
def cases(draw):
    layout = draw(layouts)
    genome = st.tuples(*[st.integers(0, b) for b in layout.bounds]).map(list)
    config = SearchConfig(
        variation=draw(st.sampled_from(NAMES)),
        cx_indpb=draw(st.floats(0, 1)),
        mut_indpb=draw(st.none() | st.floats(0, 1)),
        sbx_eta=draw(st.floats(0, 100)),
        pm_eta=draw(st.floats(0, 100)),
        step_max=draw(st.integers(1, 5)),
    )
    return layout, config, draw(genome), draw(genome), draw(st.integers(0, 2**32))


def _within(layout: GeneLayout, genome: list) -> bool:
    return all(type(g) is int and 0 <= g <= b for g, b in zip(genome, layout.bounds, strict=True))


@settings(max_examples=300, deadline=None)
@given(cases())
def test_crossover_keeps_bounds_and_kinds(case) -> None:
    layout, config, a, b = case[:4]
    random.seed(case[4])
    x, y = build_variation(layout, config).mate(list(a), list(b))
    assert _within(layout, x) and _within(layout, y)
    for i, bound in enumerate(layout.bounds):
        if bound == 0:
            assert x[i] == y[i] == 0
        if a[i] == b[i]:
            assert x[i] == y[i] == a[i]  # a choice both parents share is inherited
        if layout.kinds[i] == "categorical" or config.variation != "sbx":
            assert sorted((x[i], y[i])) == sorted((a[i], b[i]))  # swapped or kept, never interpolated


@settings(max_examples=300, deadline=None)
@given(cases())
def test_mutation_keeps_bounds_and_kinds(case) -> None:
    layout, config, a = case[:3]
    random.seed(case[4])
    (x,) = build_variation(layout, config).mutate(list(a))
    assert _within(layout, x)
    for i, bound in enumerate(layout.bounds):
        if bound == 0:
            assert x[i] == 0
        elif config.variation == "step" and layout.kinds[i] == "ordinal":
            assert abs(x[i] - a[i]) <= config.step_max


def test_uniform_is_the_original_deap_operators_bit_for_bit() -> None:
    bounds = (3, 31, 7, 5, 0, 7)
    layout = GeneLayout(bounds, ("categorical", "ordinal", "ordinal", "categorical", "ordinal", "ordinal"))
    variation = build_variation(layout, SearchConfig(variation="uniform", cx_indpb=0.4, mut_indpb=0.3))
    random.seed(7)
    mine = [variation.mate([1, 2, 3, 4, 0, 6], [3, 30, 0, 1, 0, 2]), variation.mutate([1, 2, 3, 4, 0, 6])]
    random.seed(7)
    deap = [tools.cxUniform([1, 2, 3, 4, 0, 6], [3, 30, 0, 1, 0, 2], indpb=0.4),
            tools.mutUniformInt([1, 2, 3, 4, 0, 6], low=[0] * 6, up=list(bounds), indpb=0.3)]  # fmt: skip
    assert mine == deap


def test_ordinal_mutation_takes_small_steps_and_always_moves_a_picked_gene() -> None:
    layout = GeneLayout((2, 100), ("ordinal", "ordinal"))
    for name in ("sbx", "step"):
        variation = build_variation(layout, SearchConfig(variation=name, mut_indpb=1.0, pm_eta=20.0, step_max=2))
        random.seed(0)
        moves = [variation.mutate([1, 50])[0] for _ in range(300)]
        assert all(m[0] != 1 for m in moves)  # a gene with 3 choices always moves when picked
        steps = Counter(abs(m[1] - 50) for m in moves)
        assert 0 not in steps and sum(n for d, n in steps.items() if d <= 10) > 0.8 * len(moves)  # mostly small


def test_categorical_genes_are_only_reset_by_ordinal_variations() -> None:
    layout = GeneLayout((9, 9), ("categorical", "ordinal"))
    for name in ("sbx", "step"):
        variation = build_variation(layout, SearchConfig(variation=name, mut_indpb=1.0, step_max=1))
        random.seed(1)
        values = Counter(variation.mutate([4, 4])[0][0] for _ in range(2000))
        assert len(values) == 10 and min(values.values()) > 120  # uniform over the choices, not near 4 only


# --- settings -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"variation": "blx"}, "variation must be one of: uniform .*sbx .*step"),
        ({"sbx_eta": -1.0}, r"sbx_eta must be a distribution index in \[0, 100\]"),
        ({"pm_eta": 1000}, "pm_eta"),
        ({"pm_eta": True}, "pm_eta"),
        ({"step_max": 0}, "step_max must be an integer >= 1"),
    ],
)
def test_invalid_variation_settings_are_named(fields: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        SearchConfig(**fields)


def test_the_default_variation_is_known_and_gene_kinds_are_validated() -> None:
    assert SearchConfig().variation == DEFAULT_VARIATION in VARIATIONS
    problem = ToyProblem()
    problem.gene_kinds = ["ordinal"] * 3
    with pytest.raises(ValueError, match="one kind per gene"):
        validate_problem(problem)
    problem.gene_kinds = ["ordinal"] * 11 + ["nominal"]
    with pytest.raises(ValueError, match=r"gene_kinds\[11\]"):
        validate_problem(problem)
    with pytest.raises(ValueError, match="unknown gene kind"):
        GeneLayout((1,), ("nominal",))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"variation": "step"}, 'config.variation ("sbx" -> "step")'),
        ({"sbx_eta": 5.0}, "config.sbx_eta (3.0 -> 5.0)"),
        ({"pm_eta": 5.0}, "config.pm_eta"),
        ({"step_max": 3}, "config.step_max"),
        ({"mut_indpb": 0.3}, "config.mut_indpb"),
    ],
)
def test_resume_with_other_operators_is_refused_naming_the_fields(tmp_path: Path, change: dict, named: str) -> None:
    search(tmp_path / "run", generations=1, variation="sbx")
    with pytest.raises(UserError, match="settings changed") as info:
        search(tmp_path / "run", resume=True, **{"variation": "sbx", **change})
    assert named in str(info.value)


def test_resume_with_other_gene_kinds_is_refused(tmp_path: Path) -> None:
    search(tmp_path / "run", generations=1)
    problem = ToyProblem()
    problem.gene_kinds = ["categorical"] + ["ordinal"] * 11
    with pytest.raises(UserError, match=r"problem\.gene_kinds"):
        search(tmp_path / "run", problem, resume=True)


def test_a_run_from_before_variations_resumes_as_uniform_only(tmp_path: Path) -> None:
    """A search.json without the new settings stands for the uniform operators it was run with."""
    full = search(tmp_path / "full", variation="uniform")
    search(tmp_path / "old", variation="uniform", on_generation=lambda row: row["generation"] >= 3)
    settings_file = tmp_path / "old" / "nas" / "search.json"
    data = json.loads(settings_file.read_text())
    for name in ("variation", "sbx_eta", "pm_eta", "step_max"):
        del data["settings"]["config"][name]
    del data["settings"]["problem"]["gene_kinds"]
    settings_file.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"config\.variation \(\"uniform\" -> \"sbx\"\)"):
        search(tmp_path / "old", resume=True, variation="sbx")
    same_run(full, search(tmp_path / "old", resume=True, variation="uniform"))


# --- determinism, resume, quality with every variation -----------------------------------------------


@pytest.mark.parametrize("variation", NAMES)
def test_each_variation_is_deterministic_and_differs(tmp_path: Path, variation: str) -> None:
    a = search(tmp_path / "a", variation=variation, seed=2)
    b = search(tmp_path / "b", variation=variation, seed=2)
    same_run(a, b)
    others = [search(tmp_path / o, variation=o, seed=2) for o in NAMES if o != variation]
    assert all([r["key"] for r in o.pareto] != [r["key"] for r in a.pareto] for o in others)


@pytest.mark.parametrize("variation", NAMES)
@pytest.mark.parametrize("cut", [0, 4])
def test_resume_equals_uninterrupted_with_each_variation(tmp_path: Path, variation: str, cut: int) -> None:
    problem = {"max_size_kb": 60, "min_accuracy": 0.75}  # precheck rejections and trained infeasible candidates
    full = search(tmp_path / "full", ToyProblem(**problem), variation=variation)
    state = {"state_dir": str(tmp_path), **problem}
    stopped = search(tmp_path / "part", ToyProblem(**state), variation=variation,
                     on_generation=lambda row: row["generation"] >= cut)  # fmt: skip
    assert not stopped.completed
    with pytest.raises(KeyboardInterrupt):  # and once more in the middle of the next generation
        search(tmp_path / "part", InterruptingToy(5, **state), resume=True, variation=variation)
    resumed = search(tmp_path / "part", ToyProblem(**state), resume=True, variation=variation)
    same_run(full, resumed)
    assert max(Counter(key for _, key in read_calls(tmp_path)).values()) == 1


@pytest.mark.parametrize("variation", NAMES)
def test_toy_reaches_its_hypervolume_threshold_with_each_variation(tmp_path: Path, variation: str) -> None:
    for seed in (0, 1):
        result = search(tmp_path / f"s{seed}", population=16, generations=15, seed=seed, variation=variation)
        assert result.history[-1]["hypervolume"] > 0.95  # the true front of the toy has hypervolume 0.9667


def test_search_spaces_declare_which_genes_are_categorical() -> None:
    from search_spaces import create_search_space

    mel = create_search_space("mel2d")
    categorical = {name for name, kind in zip(mel.gene_names, mel.gene_kinds, strict=True) if kind == "categorical"}
    assert categorical == {"stem_kernel", *(f"s{i}_{g}" for i in range(1, 6) for g in ("block", "se"))}
    wave = create_search_space("wave1d")
    assert set(wave.gene_kinds) == {"ordinal"} and len(wave.gene_kinds) == len(wave.gene_bounds)


@pytest.mark.parametrize("variation", [v for v in NAMES if v != DEFAULT_VARIATION])  # the default: test_nas_kill
def test_sigkill_then_resume_equals_uninterrupted_with_each_variation(tmp_path: Path, variation: str) -> None:
    import subprocess
    import sys

    config = {"population": 16, "generations": 5, "seed": 5, "backend": "inline", "variation": variation}
    reference = run_search(ToyProblem(), SearchConfig(**config), tmp_path / "ref", progress=False)
    run_dir, state = tmp_path / "run", tmp_path / "state"
    state.mkdir()
    repo = Path(__file__).resolve().parents[1]
    problem = json.dumps({"sleep_s": 0.01, "state_dir": str(state)})
    cmd = [sys.executable, "-m", "nas.toy", str(run_dir), "--config", json.dumps(config), "--problem", problem,
           "--no-progress"]  # fmt: skip
    journal = run_dir / "nas" / "journal.jsonl"
    for i, lines in enumerate([10, 50]):
        kill_when_lines(subprocess.Popen(cmd + (["--resume"] if i else []), cwd=repo, stderr=subprocess.DEVNULL),
                        journal, lines)  # fmt: skip
    done = subprocess.run([*cmd, "--resume"], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    folder, ref = run_dir / "nas", tmp_path / "ref" / "nas"
    assert (folder / "pareto.csv").read_text() == (ref / "pareto.csv").read_text()
    drop = ("wall_s", "elapsed_s")
    rows = [{k: v for k, v in r.items() if k not in drop} for r in _csv(folder / "history.csv")]
    assert rows == [{k: v for k, v in r.items() if k not in drop} for r in _csv(ref / "history.csv")]
    calls = Counter(key for _, key in read_calls(state))
    assert len(calls) == reference.n_full_evaluations and sum(calls.values()) - len(calls) <= 2  # in-flight only


def _csv(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))
