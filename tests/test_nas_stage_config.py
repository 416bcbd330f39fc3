"""The engine's settings in the pipeline config (``nas.search``): reachable, validated, checked on resume."""

from __future__ import annotations

import json

import pytest

from common.errors import UserError
from complete_pipeline import main
from pipeline.config import PipelineConfig, build_config
from pipeline.nas_config import STAGE_SET_FIELDS, SearchSettings
from pipeline.nas_stage import build_problem, search_config
from search_spaces import create_search_space

TINY = ["--nas-population", "4", "--nas-generations", "1", "--proxy-epochs", "1", "--max-latency-ms", "0.3",
        "--backend", "inline", "--jobs", "1", "--no-progress"]  # fmt: skip


def test_every_engine_setting_but_the_stage_set_ones_is_a_nas_search_key() -> None:
    import dataclasses

    from nas.config import SearchConfig

    engine = {f.name for f in dataclasses.fields(SearchConfig)}
    nested = {f.name for f in dataclasses.fields(SearchSettings)}
    assert nested == engine - set(STAGE_SET_FIELDS) and {"variation", "cx_prob", "mut_indpb", "sbx_eta"} <= nested
    assert PipelineConfig().nas.search == SearchSettings()
    defaults = SearchConfig()  # the engine's defaults, but the audio search's own (measured on FSDD)
    assert SearchSettings().variation == "uniform" != defaults.variation
    assert all(getattr(SearchSettings(), n) == getattr(defaults, n) for n in nested if n != "variation")


def test_nas_search_from_a_file_reaches_the_engine_with_the_stage_fields(tmp_path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("nas:\n  population: 8\n  search:\n    variation: step\n    step_max: 3\n    mut_indpb: 0.25\n")
    cfg = build_config(path, {"nas": {"generations": 3}, "run": {"seed": 7, "jobs": 1}})
    config = search_config(cfg)
    assert (config.variation, config.step_max, config.mut_indpb) == ("step", 3, 0.25)
    assert (config.population, config.generations, config.seed) == (8, 3, 7)
    assert config.cx_prob == SearchSettings().cx_prob
    assert cfg.to_dict()["nas"]["search"]["variation"] == "step"  # written to the run's config.json


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("nas:\n  search:\n    variation: blx\n", "nas.search: variation must be one of: uniform"),
        ("nas:\n  search:\n    pm_eta: 500\n", r"nas.search: pm_eta must be a distribution index in \[0, 100\]"),
        ("nas:\n  search:\n    cx_prob: 1.5\n", "nas.search: cx_prob must be a probability"),
        ("nas:\n  search:\n    population: 8\n", "unknown config key 'nas.search.population'"),
        ("nas:\n  search:\n    seed: 3\n", "unknown config key 'nas.search.seed'"),
    ],
)
def test_bad_nas_search_settings_are_named(tmp_path, text: str, named: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=named):
        build_config(path, {})


def test_the_audio_problem_knows_its_gene_kinds(tmp_path) -> None:
    cfg = build_config(None, {"nas": {"max_latency_ms": None, "objectives": ["accuracy", "size_kb"]}})
    problem = build_problem(cfg, tmp_path, n_classes=10, data="x")
    assert problem.gene_kinds == create_search_space("mel2d").gene_kinds


def test_resume_with_another_variation_is_refused_naming_it(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["--mode", "nas", "--out", str(out), *TINY]) == 0, capsys.readouterr().err
    capsys.readouterr()
    other = tmp_path / "other.yaml"
    current = json.loads((out / "config.json").read_text())["nas"]["search"]["variation"]
    other.write_text("nas:\n  search:\n    variation: " + ("step" if current != "step" else "uniform") + "\n")
    code = main(["--mode", "nas", "--out", str(out), "--resume", "--config", str(other), *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "config.variation" in err and "Traceback" not in err


def test_variation_flag_sets_the_engine_operators() -> None:
    from complete_pipeline import build_parser, overrides_from_args

    args = build_parser().parse_args(["--mode", "nas", "--variation", "step"])
    config = search_config(build_config(None, overrides_from_args(args)))
    assert config.variation == "step"


def test_int8_size_is_an_objective_and_a_constraint_computed_before_training(tmp_path) -> None:
    from search_spaces import int8_size_kb

    nas = {"max_latency_ms": None, "objectives": ["accuracy", "size_kb_int8"], "max_size_kb_int8": 64.0}
    problem = build_problem(build_config(None, {"nas": nas}), tmp_path, n_classes=10, data="x")
    assert [o.name for o in problem.objectives] == ["accuracy", "size_kb_int8"]
    assert "size_kb_int8<=64" in [c.label for c in problem.constraints]
    space = create_search_space("mel2d")
    genome = [0] * len(problem.gene_bounds)
    spec = space.decode(problem.canonical(genome))
    cheap = problem.precheck(problem.canonical(genome))
    assert cheap["size_kb_int8"] == pytest.approx(int8_size_kb(space.trace(spec, 10, (1, 40, 101))))
    assert cheap["size_kb_int8"] < cheap["size_kb"]
    assert "static INT8 ONNX" in problem.metric_descriptions()["size_kb_int8"]


def test_a_non_positive_int8_size_bound_is_refused(cli_error) -> None:
    assert "nas.max_size_kb_int8 must be > 0" in cli_error(["--mode", "nas", "--max-size-kb-int8", "0"])


def test_the_proxy_layout_is_compared_on_resume_and_old_searches_read_as_contiguous() -> None:
    import dataclasses

    from nas.checkpoint import changed_fields
    from pipeline.nas_config import default_proxy
    from pipeline.nas_problem import AudioProblem, AudioSettings

    def described(memory_format: str) -> dict:
        proxy = dataclasses.replace(default_proxy(), memory_format=memory_format)
        settings = AudioSettings(run_dir="/run", space="mel2d", input_shape=(1, 40, 101), n_classes=10, data="d",
                                 proxy=proxy, proxy_device="cpu", amp="off", seed=0)  # fmt: skip
        return AudioProblem(settings, [], []).describe()

    old, new = described("contiguous"), described("channels_last")
    assert "memory_format" not in old["proxy"]  # as a search written before the field existed
    assert new["proxy"]["memory_format"] == "channels_last"
    assert changed_fields(old, new) == ['proxy.memory_format (absent -> "channels_last")']
