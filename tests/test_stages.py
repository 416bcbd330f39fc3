"""The stage seam: modes, flags, warnings and config sections all come from the registry in pipeline.stages."""

from __future__ import annotations

from pathlib import Path

import pytest

import complete_pipeline
import pipeline.stages
from nas.ranking import thin_by_crowding
from pipeline.config import PipelineConfig
from pipeline.flags import SHARED
from pipeline.stage import Stage

CALLS: list[tuple] = []


def run_probe(cfg, run_dir, resume):
    """A stage function for the registration test."""
    CALLS.append((cfg.train.epochs, run_dir, resume))
    return {"epochs": cfg.train.epochs}


def probe_summary(result, run_dir):
    return [f"probe ran with {result['epochs']} epochs"]


def test_every_stage_flag_is_declared_and_every_section_is_in_the_config():
    for stage in pipeline.stages.STAGES:
        assert set(stage.flags) <= set(SHARED), stage.mode
        if stage.section:
            assert stage.section[0] in PipelineConfig.__dataclass_fields__
    assert list(PipelineConfig.__dataclass_fields__)[:4] == ["run", "data", "features", "train"]


def test_a_stage_is_one_registration(monkeypatch, tmp_path, capsys):
    probe = Stage("probe", "a test stage", run=f"{__name__}:run_probe", summary=f"{__name__}:probe_summary",
                  flags=("epochs",))  # fmt: skip
    monkeypatch.setattr(pipeline.stages, "STAGES", (*pipeline.stages.STAGES, probe))
    monkeypatch.setattr(complete_pipeline, "STAGES", pipeline.stages.STAGES)
    monkeypatch.setattr(complete_pipeline, "MODES", (*complete_pipeline.MODES, "probe"))
    CALLS.clear()
    code = complete_pipeline.main(["--mode", "probe", "--epochs", "3", "--models", "tiny", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert [(3, Path(tmp_path), False)] == CALLS
    assert "probe ran with 3 epochs" in captured.out
    assert "--models has no effect in --mode probe (it applies to --mode baseline, full)" in captured.err
    assert (tmp_path / "config.json").is_file()  # a "new" run folder records the resolved config


def test_help_lists_modes_and_readers(capsys):
    with pytest.raises(SystemExit):
        complete_pipeline.main(["--help"])
    text = capsys.readouterr().out
    for stage in pipeline.stages.STAGES:
        assert stage.mode in text
    assert "[baseline, quantization, full]" in text  # --epochs is read by these three


def test_flag_value_zero_is_given(cli_error):
    assert "train.epochs must be >= 1, got 0" in cli_error(["--mode", "baseline", "--epochs", "0"])


def test_thin_by_crowding_keeps_the_extremes_and_spreads():
    front = [(i / 10, 1 - i / 10) for i in range(11)]
    assert thin_by_crowding(front, 5) == [0, 2, 5, 7, 10]
    assert thin_by_crowding(front, 2) == [0, 10]
    assert thin_by_crowding(front, 20) == list(range(11))
    assert thin_by_crowding(front, 1) == [0]  # the first (best-quality, as survivors order them) stays longest
