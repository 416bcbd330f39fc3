"""``--mode baseline --cv K --models ...,survivors``: the search's survivors cross-validated beside the baselines."""

from __future__ import annotations

import csv
from pathlib import Path

from complete_pipeline import main
from pipeline.survivors import select_survivors

SEARCH = ["--nas-population", "4", "--nas-generations", "0", "--proxy-epochs", "1", "--max-latency-ms", "0.3",
          "--backend", "inline", "--jobs", "1", "--no-progress"]  # fmt: skip


def test_survivors_are_cross_validated_on_every_fold_beside_the_baselines(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["--mode", "nas", "--out", str(out), *SEARCH]) == 0, capsys.readouterr().err
    survivors, _ = select_survivors(out, 1)
    assert survivors  # the tiny search left a feasible front
    argv = ["--mode", "baseline", "--out", str(out), "--cv", "2", "--models", "tiny,survivors", "--survivors", "1",
            "--epochs", "1", "--jobs", "1", "--no-progress"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    names = [s.name for s in survivors]
    assert f"{', '.join(names)}: the search's survivors" in printed
    with open(out / "cv_results.csv") as f:
        results = list(csv.DictReader(f))
    assert sorted((r["model"], r["fold"]) for r in results if r["model"] != "linear") == sorted(
        (m, str(k)) for m in ["tiny", *names] for k in (1, 2)
    )
    with open(out / "cv_summary.csv") as f:
        summary = {row["model"]: row for row in csv.DictReader(f)}
    for name in names:
        assert summary[name]["reference"] == "tiny" and summary[name]["delta_accuracy_pts_mean"] != ""
        assert "architecture chosen by the search on the run's single split" in summary[name]["protocol"]
    assert "chosen by the search" not in summary["tiny"]["protocol"]
    spec = next(s.spec for s in survivors if s.name == names[0])
    assert (out / "cv" / "fold1" / "models" / names[0] / "run.json").read_text().count(spec) >= 1


def test_survivors_without_cv_or_without_a_search_are_one_line_errors(cli_error, tmp_path: Path) -> None:
    assert "'survivors' needs --cv" in cli_error(["--mode", "baseline", "--models", "survivors"])
    message = cli_error(["--mode", "baseline", "--cv", "2", "--models", "tiny,survivors", "--out", str(tmp_path)])
    assert "holds no search with a feasible front" in message and "--mode nas" in message
    assert "or 'survivors'" in cli_error(["--mode", "baseline", "--models", "tiny,huge"])
