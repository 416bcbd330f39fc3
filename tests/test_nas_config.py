"""Config and problem validation, and round trips of the plain-data formats (journal line, checkpoint, RNG)."""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest

from nas.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from nas.config import SEARCH_RELEVANT_FIELDS, SearchConfig
from nas.journal import Journal
from nas.problem import Constraint, ObjectiveSpec, SearchProblem, validate_problem
from nas.records import make_record, precheck_record
from nas.rng import SearchRandom, global_rng_states, restore_global_rng_states
from nas.state import Member, SearchState


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"population": 2}, "population"),
        ({"population": 18}, "multiple of 4"),
        ({"population": 8.0}, "population"),
        ({"generations": -1}, "generations"),
        ({"cx_prob": 1.5}, "cx_prob"),
        ({"mut_prob": -0.1}, "mut_prob"),
        ({"mut_indpb": 2.0}, "mut_indpb"),
        ({"cx_indpb": True}, "cx_indpb"),
        ({"strategy": "nsga3"}, "strategy"),
        ({"backend": "ray"}, "backend"),
        ({"backend": "dask"}, "scheduler"),
        ({"jobs": 0}, "jobs"),
        ({"jobs": 2, "backend": "inline"}, "jobs=2 needs backend"),
        ({"retries": -1}, "retries"),
        ({"novelty_retries": -2}, "novelty_retries"),
        ({"feasible_retries": -1}, "feasible_retries"),
        ({"seed": "1"}, "seed"),
        ({"threads_per_worker": 0}, "threads_per_worker"),
        ({"connect_timeout_s": 0}, "connect_timeout_s"),
    ],
)
def test_invalid_config_names_the_field(fields: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        SearchConfig(**fields)


def test_population_rule_explains_itself_and_applies_to_nsga2_only() -> None:
    with pytest.raises(ValueError, match="tournament"):
        SearchConfig(population=10)
    assert SearchConfig(population=10, strategy="random").population == 10


def test_search_relevant_fields_are_explicit() -> None:
    names = {f.name for f in dataclasses.fields(SearchConfig)}
    assert set(SEARCH_RELEVANT_FIELDS) <= names
    assert not {"generations", "jobs", "backend", "scheduler", "retries"} & set(SEARCH_RELEVANT_FIELDS)
    unset = {name: getattr(SearchConfig(), name) for name in SEARCH_RELEVANT_FIELDS if name != "promote"}
    assert SearchConfig().relevant() == unset  # one fidelity: the settings of searches written before promote
    assert "feasible_retries" not in SearchConfig(feasible_retries=0).relevant()  # as searches made before it
    multi = SearchConfig(promote=0.25)
    assert multi.relevant() == {name: getattr(multi, name) for name in SEARCH_RELEVANT_FIELDS}


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: ObjectiveSpec("acc", "up", 1.0, 0.0), "direction"),
        (lambda: ObjectiveSpec("acc", "max", 0.0, 1.0), "best > worst"),
        (lambda: ObjectiveSpec("latency_ms", "min", 10.0, 1.0), "best < worst"),
        (lambda: ObjectiveSpec("latency ms", "min", 0.0, 1.0), "identifier"),
        (lambda: ObjectiveSpec("size_kb", "min", 0.0, math.inf), "finite"),
        (lambda: Constraint("size_kb", "<", 1.0), "op"),
        (lambda: Constraint("size_kb", "<=", math.nan), "finite"),
        (lambda: Constraint("size_kb", "<=", 1.0, scale=0.0), "scale"),
    ],
)
def test_invalid_objectives_and_constraints(make, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        make()


class _Problem(SearchProblem):
    def __init__(self, bounds, objectives) -> None:
        self.gene_bounds, self.objectives = bounds, objectives

    def evaluate(self, genome: list[int]) -> dict:
        return {}


ACC = ObjectiveSpec("accuracy", "max", 1.0, 0.0)


@pytest.mark.parametrize(
    ("problem", "named"),
    [
        (_Problem([], [ACC]), "gene_bounds is empty"),
        (_Problem([3, -1], [ACC]), r"gene_bounds\[1\]"),
        (_Problem([3, 2.5], [ACC]), r"gene_bounds\[1\]"),
        (_Problem([3], []), "objectives is empty"),
        (_Problem([3], [ACC, ACC]), "duplicate"),
    ],
)
def test_invalid_problem(problem: SearchProblem, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        validate_problem(problem)


def test_constraint_violation_is_relative_and_directional() -> None:
    assert Constraint.at_most("latency_ms", 20).violation(25) == pytest.approx(0.25)
    assert Constraint.at_most("latency_ms", 20).violation(15) == 0.0
    assert Constraint.at_least("accuracy", 0.8).violation(0.6) == pytest.approx(0.25)
    assert Constraint("delta", "<=", 0.0).violation(2.0) == 2.0  # a zero bound is not divided by
    assert Constraint("size_kb", "<=", 100.0, scale=10.0).violation(120.0) == 2.0
    assert Constraint.at_most("size_kb", 1).violation(math.nan) == math.inf
    assert Constraint.at_most("size_kb", 1).label == "size_kb<=1"


def test_journal_line_round_trip(tmp_path: Path) -> None:
    objectives = [ACC, ObjectiveSpec("latency_ms", "min", 0.0, 50.0)]
    constraints = [Constraint.at_most("size_kb", 64)]
    metrics = {"accuracy": 0.9, "latency_ms": math.inf, "size_kb": 12.0, "seed": np.int64(7)}
    record = make_record("c16k3", [1, 2], metrics, objectives, constraints, generation=3, info={"src": "table"})
    rejected = precheck_record("c64k5", [3, 3], {"size_kb": 80.0}, constraints, generation=3)
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append(record)
    journal.append(rejected)
    line = json.loads((tmp_path / "journal.jsonl").read_text().splitlines()[0])
    assert {"key", "genome", "metrics", "violation", "feasible", "generation", "wall_s", "status", "provenance"} <= set(
        line
    )
    assert line["metrics"]["seed"] == 7 and line["metrics"]["latency_ms"] == math.inf
    loaded, notes = journal.load()
    assert notes == [] and loaded == {"c16k3": record, "c64k5": rejected}
    assert rejected.status == "precheck_infeasible" and rejected.violation == pytest.approx(0.25)
    assert "size_kb<=64" in rejected.reason


def test_journal_skips_lines_of_another_format(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text('{"hello": 1}\n[1, 2]\n')
    loaded, notes = Journal(path).load()
    assert loaded == {} and len(notes) == 2


def test_checkpoint_round_trip_and_refusals(tmp_path: Path) -> None:
    state = SearchState(next_generation=4, population=[Member([1, 2], "k", math.inf)], evaluated_keys=["k"])
    state.history.append({"generation": 3, "hypervolume": 0.5})
    stream = SearchRandom(11)
    with stream.active():
        random.random()
    rng = {"python": stream.to_json(), **global_rng_states()}
    settings = {"config": {"seed": 11}, "problem": {"gene_bounds": [3, 3]}}
    path = tmp_path / "checkpoint.json"
    save_checkpoint(path, state, settings, rng, {"reference_point_z": [1.0]})
    loaded, loaded_rng = load_checkpoint(path, settings)
    assert loaded == state
    other = SearchRandom(0)
    other.load_json(loaded_rng["python"])
    with stream.active():
        expected = random.random()
    with other.active():
        assert random.random() == expected
    with pytest.raises(CheckpointError, match="other settings"):
        load_checkpoint(path, {"config": {"seed": 12}, "problem": {}})
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.json", settings)


def test_global_rng_states_round_trip_including_torch() -> None:
    torch = pytest.importorskip("torch")
    np.random.seed(1)
    torch.manual_seed(1)
    states = global_rng_states()
    expected = (np.random.random(), torch.rand(1).item())
    np.random.seed(2)
    torch.manual_seed(2)
    restore_global_rng_states(json.loads(json.dumps(states)))
    assert (np.random.random(), torch.rand(1).item()) == expected


def test_journal_keeps_a_whole_last_record_that_only_lost_its_newline(tmp_path: Path) -> None:
    objectives = [ACC]
    first = make_record("a", [0], {"accuracy": 0.5}, objectives, [], generation=0)
    second = make_record("b", [1], {"accuracy": 0.6}, objectives, [], generation=0)
    journal = Journal(tmp_path / "journal.jsonl")
    journal.append(first)
    with open(journal.path, "a") as f:
        f.write(json.dumps(second.to_json(), sort_keys=True))  # no newline
    loaded, notes = journal.load()
    assert notes == [] and set(loaded) == {"a", "b"}
    journal.append(first)  # the next append starts on its own line
    assert journal.load()[1] == [
        "journal " + str(journal.path) + ": ignored 1 repeated key(s) (the first result is kept)"
    ]
