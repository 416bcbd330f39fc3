"""The notebook API: the README's example runs as written, and methods return plain results."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from common.errors import UserError
from pipeline.api import Pipeline

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_example() -> str:
    text = README.read_text()
    section = text[text.index("## Notebook API") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(_readme_example(), "README.md", "exec"), namespace)
    table = namespace["baselines"]
    assert isinstance(table, pd.DataFrame) and list(table["model"]) == ["dscnn", "linear"]  # and the linear reference
    assert "test_accuracy_mean" in capsys.readouterr().out
    run = tmp_path / "runs" / "notebook"
    assert (run / "baseline_results.csv").is_file() and (run / "stages.jsonl").is_file()
    again = Pipeline(out=run)  # an existing run folder: its config.json is the starting point
    assert again.config.baseline.models == ("dscnn",) and again.config.train.epochs == 1


def test_unbuilt_or_refused_stage_raises_user_error(tmp_path):
    with pytest.raises(UserError, match="works on an existing run folder"):
        Pipeline().quantize_models()
